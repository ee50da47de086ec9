//! The embedded SQLite backend.
//!
//! # Durability
//! The file is always in WAL mode; every operation is one `BEGIN IMMEDIATE` transaction.
//!
//! | [`Synchronous`] | process killed (`kill -9`, panic, OOM) | power cut / kernel crash |
//! |---|---|---|
//! | `Full` (default) | every acknowledged operation survives | every acknowledged operation survives (the WAL is fsynced before `Ok` returns), provided the disk honours flushes |
//! | `Normal` | every acknowledged operation survives (it is in the WAL, handed to the OS) | the database stays consistent, but the operations acknowledged since the last checkpoint (up to ~1000 pages of WAL) may be rolled back |
//!
//! In both cases no operation is ever half-applied: a job is in exactly one state and a
//! state change and its change-log entry commit together.
//!
//! Progress reports can use a cheaper policy, [`SqliteOptions::progress_synchronous`]
//! (default `Normal`): such a commit is not fsynced itself, but WAL frames are written in
//! order, so the next `Full` commit (any state change, or the next heartbeat) makes it durable
//! too. A power cut therefore loses at most the progress recorded since the last heartbeat, a
//! process kill loses none of it.

mod ops;
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::changes::ChangeHub;
use crate::model::{JobId, Timestamp};
use crate::state::JobState;
use crate::store::{Change, ChangeKind, StoreError};

/// When SQLite calls fsync (see the module docs for what each survives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// `PRAGMA synchronous=FULL`: fsync the WAL at every commit.
    Full,
    /// `PRAGMA synchronous=NORMAL`: fsync only at checkpoints.
    Normal,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How [`SqliteStore::open`] configures the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of queue operations (default `Full`).
    pub synchronous: Synchronous,
    /// Durability of [`crate::Store::record_progress`] commits (default `Normal`).
    pub progress_synchronous: Synchronous,
    /// How long to wait for another connection's write lock before [`StoreError::Locked`].
    pub busy_timeout: Duration,
    /// Run `PRAGMA quick_check` at open and refuse a damaged file (default true; it reads
    /// the whole file, which is small for a queue).
    pub verify_on_open: bool,
    /// Cap the file at this many pages (`PRAGMA max_page_count`); past it writes fail with
    /// [`StoreError::DiskFull`] and the queue stays intact. `None`: no cap.
    pub max_pages: Option<u32>,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            synchronous: Synchronous::Full,
            progress_synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            verify_on_open: true,
            max_pages: None,
        }
    }
}

/// A job queue in one SQLite file.
///
/// `Send + Sync`: share it between threads with an `Arc`; calls are serialised on one
/// connection. Several processes (or several `SqliteStore`s) may open the same file; SQLite's
/// locks keep them consistent and claims exclusive.
///
/// ```
/// use easyprint_queue::{ContentHash, JobSource, NewJob, SourceKind, SqliteOptions,
///     SqliteStore, Store, Timestamp, JobState};
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("queue.db"), SqliteOptions::default()).unwrap();
/// let source = JobSource {
///     hash: ContentHash::parse("0123456789abcdef0123456789abcdef").unwrap(),
///     file_name: "benchy.gcode".into(),
///     kind: SourceKind::Gcode,
/// };
/// let job = store.enqueue(&NewJob::new("ann", source), Timestamp(1_000)).unwrap();
/// assert_eq!(job.state, JobState::Ready);
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    options: SqliteOptions,
    hub: ChangeHub,
}

impl SqliteStore {
    /// Opens (creating if absent) and migrates the queue at `path`.
    ///
    /// Refuses, with a specific error, a corrupt file, another application's database, a
    /// newer schema, a file locked past the busy timeout and an unwritable location. A
    /// damaged file is never replaced by an empty queue.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let fail = |op: &'static str| {
            let path = path.clone();
            move |e: rusqlite::Error| map_error(&path, op, e)
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(fail("open"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(fail("open"))?;

        // The first read of the header tells a non-database file apart.
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(fail("open"))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(fail("open"))?;
        if app_id != schema::APPLICATION_ID && (app_id != 0 || tables != 0) {
            return Err(StoreError::NotAQueueDatabase {
                path,
                application_id: app_id,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(fail("open"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend {
                path,
                operation: "open",
                detail: format!("journal mode is {mode}, WAL could not be enabled"),
            });
        }
        conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
            .map_err(fail("open"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(fail("open"))?;
        if let Some(pages) = options.max_pages {
            conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |_| Ok(()))
                .map_err(fail("open"))?;
        }
        if options.verify_on_open {
            let verdict: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(fail("integrity check"))?;
            if verdict != "ok" {
                return Err(StoreError::Corrupt {
                    path,
                    detail: verdict,
                });
            }
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail("open"))?;
        if version > schema::supported_version() {
            return Err(StoreError::SchemaTooNew {
                path,
                found: version,
                supported: schema::supported_version(),
            });
        }
        if app_id == 0 {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail("initialise"))?;
            tx.pragma_update(None, "application_id", schema::APPLICATION_ID)
                .map_err(fail("initialise"))?;
            tx.commit().map_err(fail("initialise"))?;
        }
        schema::migrate(&mut conn).map_err(fail("migrate"))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
            options,
            hub: ChangeHub::new(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Live changes made through this `SqliteStore` (other processes' changes show up in
    /// [`crate::Store::changes_since`]). A receiver that falls `capacity` behind is
    /// disconnected; catch up from the log and subscribe again (see [`crate::Change`]).
    pub fn subscribe(&self, capacity: usize) -> Receiver<Change> {
        self.hub.subscribe(capacity)
    }

    /// Like [`SqliteStore::subscribe`], as a `tokio::sync::broadcast` receiver (a receiver
    /// that lags gets `RecvError::Lagged` and catches up from the log).
    #[cfg(feature = "tokio")]
    pub fn subscribe_async(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.hub.subscribe_async()
    }

    /// Full `PRAGMA integrity_check` plus foreign keys; `Err(Corrupt)` names what is wrong.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        let fail = |e| map_error(&self.path, "integrity check", e);
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(fail)?;
        if verdict != "ok" {
            return Err(self.corrupt(verdict));
        }
        let dangling: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(fail)?;
        if dangling != 0 {
            return Err(self.corrupt(format!("{dangling} rows reference missing rows")));
        }
        Ok(())
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-operation dropped its transaction (rolled back): the connection is fine.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, commits, then publishes its changes.
    fn write<T>(
        &self,
        operation: &'static str,
        now: Timestamp,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(operation, now, self.options.synchronous, f)
    }

    /// [`SqliteStore::write`] committing with `sync` instead of the configured policy.
    ///
    /// The pragma is switched and restored under the same lock as the transaction, so no
    /// other operation on this connection can commit with the relaxed policy.
    fn write_with<T>(
        &self,
        operation: &'static str,
        now: Timestamp,
        sync: Synchronous,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (out, changes) = {
            let mut conn = self.lock();
            let relaxed = sync != self.options.synchronous;
            let set = |conn: &Connection, s: Synchronous| {
                conn.pragma_update(None, "synchronous", s.pragma_value())
                    .map_err(|e| map_error(&self.path, operation, e))
            };
            if relaxed {
                set(&conn, sync)?;
            }
            let result = Self::transaction(&mut conn, &self.path, operation, now, f);
            if relaxed {
                // Restoring cannot fail short of a broken connection; if it does, report it
                // rather than let later state changes commit with the relaxed policy (only
                // idempotent progress writes use this path, so a retry is harmless).
                set(&conn, self.options.synchronous)?;
            }
            result?
        };
        // Published after the lock is released so a slow subscriber cannot stall writers.
        self.hub.publish(&changes);
        Ok(out)
    }

    fn transaction<T>(
        conn: &mut Connection,
        path: &Path,
        operation: &'static str,
        now: Timestamp,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, Vec<Change>), StoreError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_error(path, operation, e))?;
        let mut w = Tx {
            tx,
            path,
            operation,
            now,
            changes: Vec::new(),
        };
        let out = f(&mut w)?;
        let Tx { tx, changes, .. } = w;
        tx.commit().map_err(|e| map_error(path, operation, e))?;
        Ok((out, changes))
    }

    /// Runs a read on the connection.
    fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.lock();
        f(&conn).map_err(|e| map_error(&self.path, operation, e))
    }
}

/// One open write transaction and the changes it will publish once committed.
struct Tx<'c> {
    tx: rusqlite::Transaction<'c>,
    path: &'c Path,
    operation: &'static str,
    now: Timestamp,
    changes: Vec<Change>,
}

impl Tx<'_> {
    /// Executes a statement from the connection's statement cache (parsing and planning
    /// SQL costs more than running these small statements).
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// Reads one row with a cached statement.
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, f)
    }

    /// Maps a SQLite error of this operation.
    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| map_error(self.path, self.operation, e))
    }

    /// Appends to the change log (same transaction) and queues the live notification.
    fn log(&mut self, job: JobId, kind: ChangeKind, state: JobState) -> Result<(), StoreError> {
        let at = self.now;
        let r = self.exec(
            "INSERT INTO changes (job_id, kind, state, at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![job.0, kind.as_str(), state.as_str(), at.0],
        );
        self.db(r)?;
        let seq = u64::try_from(self.tx.last_insert_rowid()).unwrap_or(0);
        self.changes.push(Change {
            seq,
            job,
            kind,
            state,
            at,
        });
        Ok(())
    }
}

/// Turns a SQLite error into the specific [`StoreError`] a caller can act on.
fn map_error(path: &Path, operation: &'static str, err: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt {
                path,
                detail: err.to_string(),
            },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Locked { path, operation }
            }
            ErrorCode::DiskFull => StoreError::DiskFull { path, operation },
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                StoreError::CannotOpen {
                    path,
                    detail: err.to_string(),
                }
            }
            _ => StoreError::Backend {
                path,
                operation,
                detail: err.to_string(),
            },
        },
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt {
                path,
                detail: format!("{operation}: unexpected value in a row: {err}"),
            }
        }
        _ => StoreError::Backend {
            path,
            operation,
            detail: err.to_string(),
        },
    }
}

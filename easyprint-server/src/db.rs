//! The server's own SQLite database: users, API keys, sessions and file metadata.
//!
//! One connection behind a mutex, used from blocking threads ([`Db::call`]) so no async task
//! ever waits on SQLite. WAL journal with `synchronous=FULL`: what the client saw acknowledged
//! survives a power cut. The schema is versioned with `PRAGMA user_version`; each migration runs
//! once, in a transaction, in order.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::ApiError;

/// Ordered schema migrations; index + 1 is the `user_version` after applying it.
const MIGRATIONS: &[&str] = &[
    // 1: users, sessions, API keys, uploaded files.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions(user_id);
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        key_hash BLOB NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        stored_name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        userdata TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, display_name)
    );",
    // 2: printers added, changed or removed at runtime (merged over the configuration file's).
    "CREATE TABLE printers (
        id TEXT PRIMARY KEY,
        settings TEXT,
        removed INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 3: virtual folders (files name theirs in `display_name`: `folder/sub/name.gcode`); this
    // table keeps empty ones too.
    "CREATE TABLE folders (
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (owner_id, path)
    ) WITHOUT ROWID;",
    // 4: the printer each user chose with OctoPrint's `/api/connection` (their current one).
    "CREATE TABLE current_printers (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        printer TEXT NOT NULL,
        chosen_at INTEGER NOT NULL
    );",
];

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite refused to open, configure or migrate the file.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer version of this server.
    #[error("database schema version {found} is newer than this server's {supported}")]
    TooNew {
        /// Version found in the file.
        found: usize,
        /// Highest version this build knows.
        supported: usize,
    },
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await?
    }

    /// Runs `f` with the connection on the current thread (for the command-line tools).
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(DbError::TooNew {
            found: version,
            supported: MIGRATIONS.len(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database migrated");
    }
    Ok(())
}

/// Seconds since the Unix epoch (wall clock: stored timestamps and expiry dates).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        Db::open(&path).unwrap();
        let db = Db::open(&path).unwrap();
        let version: i64 = db
            .call_blocking(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = db
            .call_blocking(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Db::open(&path),
            Err(DbError::TooNew { found: 99, .. })
        ));
    }
}

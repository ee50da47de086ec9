//! Uploaded files on disk and their records in the database.
//!
//! Layout under the data directory: `uploads/` holds finished files named
//! `<32 random hex>.<our extension>`, `tmp/` holds uploads in progress. An upload is written to
//! `tmp/`, fsync'd, renamed into `uploads/` (same file system, so atomic) and the directory is
//! fsync'd; only then is its row committed. A crash at any point leaves either nothing or a
//! complete file; [`FileStore::sweep`] removes what a crash left behind at the next start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::names::FileKind;
use crate::auth::secrets::random_id;
use crate::db::{unix_now, Db};
use crate::error::ApiError;

/// The upload and temporary directories.
#[derive(Debug, Clone)]
pub struct FileStore {
    uploads: PathBuf,
    tmp: PathBuf,
}

/// What [`FileStore::sweep`] cleaned up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Temporary files of interrupted uploads, removed.
    pub temp_files: usize,
    /// Finished files without a database row (crash between rename and commit), removed.
    pub orphan_files: usize,
    /// Rows whose file is missing, removed.
    pub dangling_rows: usize,
}

impl FileStore {
    /// Creates the directories under `data_dir` if needed.
    pub fn open(data_dir: &Path) -> std::io::Result<FileStore> {
        let store = FileStore {
            uploads: data_dir.join("uploads"),
            tmp: data_dir.join("tmp"),
        };
        std::fs::create_dir_all(&store.uploads)?;
        std::fs::create_dir_all(&store.tmp)?;
        Ok(store)
    }

    /// Directory of finished uploads.
    pub fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    /// Directory of uploads in progress.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Path of a stored file. `stored_name` comes from our database, never from a request.
    pub fn path_of(&self, stored_name: &str) -> PathBuf {
        self.uploads.join(stored_name)
    }

    /// Starts an upload: a new temporary file with a random name.
    pub async fn begin(&self) -> std::io::Result<TempUpload> {
        let path = self.tmp.join(format!("{}.part", random_id()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(TempUpload {
            path: Some(path),
            file: Some(file),
            size: 0,
            hasher: Sha256::new(),
        })
    }

    /// Removes interrupted uploads, files without rows and rows without files.
    pub fn sweep(&self, db: &Db) -> Result<SweepReport, ApiError> {
        let mut report = SweepReport::default();
        for entry in std::fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                report.temp_files += 1;
            }
        }
        let known: HashSet<String> = db.call_blocking(|conn| {
            let mut stmt = conn.prepare("SELECT stored_name FROM files")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(names)
        })?;
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&self.uploads)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                present.insert(name);
            } else if entry.file_type()?.is_file() {
                tracing::warn!(file = %name, "removing upload without a database record");
                std::fs::remove_file(entry.path())?;
                report.orphan_files += 1;
            }
        }
        for missing in known.difference(&present) {
            tracing::warn!(file = %missing, "removing file record whose file is missing");
            db.call_blocking(|conn| {
                conn.execute("DELETE FROM files WHERE stored_name = ?1", [missing])?;
                Ok(())
            })?;
            report.dangling_rows += 1;
        }
        Ok(report)
    }

    /// A second stored file with the bytes of `stored_name`, under a fresh random name: a hard
    /// link (stored files are never changed in place, and removing one name leaves the other),
    /// or, where the file system has none, a copy made durable like an upload.
    pub async fn duplicate(&self, stored_name: &str, kind: FileKind) -> std::io::Result<String> {
        let source = self.path_of(stored_name);
        let name = format!("{}.{}", random_id(), kind.stored_extension());
        let target = self.path_of(&name);
        let temp = self.tmp.join(format!("{}.part", random_id()));
        let uploads = self.uploads.clone();
        tokio::task::spawn_blocking(move || {
            if std::fs::hard_link(&source, &target).is_err() {
                // An interrupted copy is left in tmp/, which the start-up sweep empties.
                std::fs::copy(&source, &temp)?;
                std::fs::File::open(&temp)?.sync_all()?;
                std::fs::rename(&temp, &target)?;
            }
            std::fs::File::open(&uploads)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(name)
    }

    /// Free and total bytes of the upload file system.
    pub fn disk_space(&self) -> Option<(u64, u64)> {
        let stat = rustix::fs::statvfs(&self.uploads).ok()?;
        Some((
            stat.f_bavail.saturating_mul(stat.f_frsize),
            stat.f_blocks.saturating_mul(stat.f_frsize),
        ))
    }
}

/// An upload being written; dropping it unfinished deletes the temporary file.
#[derive(Debug)]
pub struct TempUpload {
    path: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    size: u64,
    hasher: Sha256,
}

/// A file durably stored under its final random name, not yet recorded in the database.
#[derive(Debug)]
pub struct StoredFile {
    /// Name inside the uploads directory.
    pub stored_name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

impl TempUpload {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let file = self.file.as_mut().expect("written after finish");
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the upload durable under a fresh random name with our extension for `kind`.
    pub async fn finish(
        mut self,
        store: &FileStore,
        kind: FileKind,
    ) -> std::io::Result<StoredFile> {
        let mut file = self.file.take().expect("finished twice");
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let stored_name = format!("{}.{}", random_id(), kind.stored_extension());
        let temp = self.path.take().expect("finished twice");
        let target = store.path_of(&stored_name);
        if let Err(err) = tokio::fs::rename(&temp, &target).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err);
        }
        let dir = store.uploads.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await??;
        Ok(StoredFile {
            stored_name,
            size: self.size,
            sha256: hex::encode(self.hasher.clone().finalize()),
        })
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort; the start-up sweep removes anything left.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A file's database record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Public random id.
    pub id: String,
    /// Owning user.
    pub owner_id: i64,
    /// Name shown to the user (also its OctoPrint path).
    pub display_name: String,
    /// Random name on disk.
    pub stored_name: String,
    /// Extension-derived kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Client-supplied JSON (`userdata` field), verbatim.
    pub userdata: Option<String>,
    /// Upload time, seconds since the Unix epoch.
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, owner_id, display_name, stored_name, kind, size, sha256, userdata, created_at";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<FileRecord> {
    let kind: String = row.get(4)?;
    Ok(FileRecord {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        display_name: row.get(2)?,
        stored_name: row.get(3)?,
        kind: FileKind::from_stored_extension(&kind).unwrap_or(FileKind::Gcode),
        size: row.get::<_, i64>(5)? as u64,
        sha256: row.get(6)?,
        userdata: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// Outcome of recording an upload.
#[derive(Debug)]
pub struct Recorded {
    /// The new record.
    pub record: FileRecord,
    /// Stored name of the file this upload replaced (delete it from disk after the commit).
    pub replaced: Option<String>,
}

/// Records a stored file for `owner_id`, replacing a same-named file unless `no_overwrite`
/// (then 409 `file_exists`).
pub fn record_upload(
    conn: &mut Connection,
    owner_id: i64,
    display_name: &str,
    kind: FileKind,
    stored: &StoredFile,
    userdata: Option<&str>,
    no_overwrite: bool,
) -> Result<Recorded, ApiError> {
    let tx = conn.transaction()?;
    let replaced: Option<String> = tx
        .query_row(
            "SELECT stored_name FROM files WHERE owner_id = ?1 AND display_name = ?2",
            params![owner_id, display_name],
            |r| r.get(0),
        )
        .optional()?;
    if replaced.is_some() {
        if no_overwrite {
            return Err(ApiError::conflict(
                "file_exists",
                format!("file {display_name:?} already exists"),
            ));
        }
        tx.execute(
            "DELETE FROM files WHERE owner_id = ?1 AND display_name = ?2",
            params![owner_id, display_name],
        )?;
    }
    let record = FileRecord {
        id: random_id(),
        owner_id,
        display_name: display_name.to_owned(),
        stored_name: stored.stored_name.clone(),
        kind,
        size: stored.size,
        sha256: stored.sha256.clone(),
        userdata: userdata.map(str::to_owned),
        created_at: unix_now(),
    };
    insert(&tx, &record)?;
    tx.commit()?;
    Ok(Recorded { record, replaced })
}

fn insert(conn: &Connection, record: &FileRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        record.id,
        record.owner_id,
        record.display_name,
        record.stored_name,
        record.kind.stored_extension(),
        record.size as i64,
        record.sha256,
        record.userdata,
        record.created_at,
    ])?;
    Ok(())
}

/// Records a copy of `original` (same owner, content and user data; a new id and time) at
/// `display_name`, its bytes at `stored_name` ([`FileStore::duplicate`]). The caller checked
/// that the name is free.
pub fn record_copy(
    conn: &Connection,
    original: &FileRecord,
    display_name: &str,
    stored_name: &str,
) -> Result<FileRecord, ApiError> {
    let record = FileRecord {
        id: random_id(),
        display_name: display_name.to_owned(),
        stored_name: stored_name.to_owned(),
        created_at: unix_now(),
        ..original.clone()
    };
    insert(conn, &record)?;
    Ok(record)
}

/// Records a generated file for `owner_id` under the first free name of `stem (n).ext`
/// ([`super::names::numbered_name`]): it never replaces an existing file, which a queued job
/// may still need.
pub fn record_numbered(
    conn: &mut Connection,
    owner_id: i64,
    stem: &str,
    kind: FileKind,
    stored: &StoredFile,
) -> Result<FileRecord, ApiError> {
    /// Past this many same-named files, give up rather than scan forever.
    const MAX_TRIES: u32 = 10_000;
    for n in 1..=MAX_TRIES {
        let name = super::names::numbered_name(stem, kind.stored_extension(), n);
        match record_upload(conn, owner_id, &name, kind, stored, None, true) {
            Ok(recorded) => return Ok(recorded.record),
            Err(ApiError::Conflict {
                code: "file_exists",
                ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        "file_exists",
        format!("too many files named {stem:?}"),
    ))
}

/// Files of `owner_id`, newest first.
pub fn list_files(conn: &Connection, owner_id: i64) -> Result<Vec<FileRecord>, ApiError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM files WHERE owner_id = ?1 ORDER BY created_at DESC, display_name"
    ))?;
    let files = stmt
        .query_map([owner_id], record)?
        .collect::<Result<_, _>>()?;
    Ok(files)
}

/// A file of `owner_id` by display name (the OctoPrint path).
pub fn file_by_name(
    conn: &Connection,
    owner_id: i64,
    name: &str,
) -> Result<Option<FileRecord>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM files WHERE owner_id = ?1 AND display_name = ?2"),
            params![owner_id, name],
            record,
        )
        .optional()?)
}

/// A file of `owner_id` by id.
pub fn file_by_id(
    conn: &Connection,
    owner_id: i64,
    id: &str,
) -> Result<Option<FileRecord>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM files WHERE owner_id = ?1 AND id = ?2"),
            params![owner_id, id],
            record,
        )
        .optional()?)
}

/// The newest file of `owner_id` with this content (the queue refers to files by hash).
pub fn file_by_sha256(
    conn: &Connection,
    owner_id: i64,
    sha256: &str,
) -> Result<Option<FileRecord>, ApiError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM files WHERE owner_id = ?1 AND sha256 = ?2 \
                 ORDER BY created_at DESC LIMIT 1"
            ),
            params![owner_id, sha256],
            record,
        )
        .optional()?)
}

/// Bytes stored by `owner_id`.
pub fn bytes_used(conn: &Connection, owner_id: i64) -> Result<u64, ApiError> {
    let used: i64 = conn.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM files WHERE owner_id = ?1",
        [owner_id],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Deletes a record of `owner_id`; the caller removes the file from disk afterwards.
pub fn delete_file(conn: &Connection, owner_id: i64, id: &str) -> Result<bool, ApiError> {
    Ok(conn.execute(
        "DELETE FROM files WHERE owner_id = ?1 AND id = ?2",
        params![owner_id, id],
    )? > 0)
}

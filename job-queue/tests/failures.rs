//! A corrupt, foreign, locked or full database gives a specific error and the queue stays
//! intact.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::*;
use easyprint_queue::*;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// 300 jobs, then the store is closed: the last connection checkpoints the WAL into the
/// main file, so damaging the main file damages committed data.
fn fill_and_close(path: &std::path::Path) {
    let store = open(path);
    for n in 0..300 {
        let mut job = gcode_job("ann", n);
        job.settings = serde_json::json!({ "note": "x".repeat(200) });
        store.enqueue(&job, t(0)).unwrap();
    }
}

#[test]
fn garbage_file_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let garbage = b"this is not a database, just some text that happens to be here\n".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("q.db"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never recreated");
}

#[test]
fn damaged_page_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    fill_and_close(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len > 20 * 4096,
        "file too small to damage a middle page: {len}"
    );
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    for page in [3u64, 7, 12] {
        f.seek(SeekFrom::Start(page * 4096)).unwrap();
        f.write_all(&[0xA5; 4096]).unwrap();
    }
    drop(f);
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn truncated_file_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    fill_and_close(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotAQueueDatabase {
                application_id: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn locked_file_gives_locked_error_and_reads_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options.clone()).unwrap();
    let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();

    // Another program (think: an sqlite3 shell) holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store.enqueue(&gcode_job("ann", 2), t(1)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Locked {
                operation: "enqueue",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        store.claim_print(&printer("p"), "h", LEASE, t(1)),
        Err(StoreError::Locked { .. })
    ));
    // WAL: readers are not blocked, and a second store can still open the migrated file.
    assert_eq!(store.job(job.id).unwrap().state, JobState::Ready);
    let second = SqliteStore::open(&path, options).unwrap();
    assert_eq!(second.jobs(&JobFilter::default()).unwrap().len(), 1);

    other.execute_batch("COMMIT").unwrap();
    store.enqueue(&gcode_job("ann", 2), t(2)).unwrap();
    assert_eq!(second.jobs(&JobFilter::default()).unwrap().len(), 2);
}

#[test]
fn full_disk_rolls_back_and_keeps_the_queue_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let options = SqliteOptions {
        max_pages: Some(48),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).unwrap();
    let mut acknowledged = Vec::new();
    let mut full = None;
    for n in 0..10_000 {
        let mut job = gcode_job("ann", n);
        job.settings = serde_json::json!({ "padding": "p".repeat(900) });
        match store.enqueue(&job, t(0)) {
            Ok(job) => acknowledged.push(job),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the size cap was never reached");
    assert!(
        matches!(
            err,
            StoreError::DiskFull {
                operation: "enqueue",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("unchanged"));
    assert!(acknowledged.len() > 10, "only {} fit", acknowledged.len());

    // Operations keep failing cleanly or succeeding while full; nothing half-applied.
    for job in acknowledged.iter().take(5) {
        match store.cancel(job.id, t(1)) {
            Ok(_) | Err(StoreError::DiskFull { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let jobs = store.jobs(&JobFilter::default()).unwrap();
    assert_eq!(jobs.len(), acknowledged.len(), "no job lost or added");
    for (stored, acked) in jobs.iter().zip(&acknowledged) {
        assert_eq!(stored.id, acked.id);
        assert_eq!(stored.source, acked.source);
        assert_eq!(stored.settings, acked.settings);
    }
    drop(store);
    assert_consistent(&path);

    // With space again, the same file takes new work.
    let store = open(&path);
    store.enqueue(&gcode_job("ann", 99_999), t(2)).unwrap();
    assert_eq!(
        store.jobs(&JobFilter::default()).unwrap().len(),
        acknowledged.len() + 1
    );
}

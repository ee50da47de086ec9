//! Versioned, embedded schema migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied; each migration runs in
//! its own `BEGIN IMMEDIATE` transaction together with the version bump, so a crash leaves
//! the file at one version or the next, never between. To change the schema, append a
//! migration; never edit a published one.

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of a queue database ("EPQ1").
pub(crate) const APPLICATION_ID: i64 = 0x4550_5131;

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: jobs, attempts (runs), latest progress, change log.
    "
    CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        owner            TEXT NOT NULL,
        source_hash      TEXT NOT NULL,
        source_name      TEXT NOT NULL,
        source_kind      TEXT NOT NULL CHECK (source_kind IN ('model', 'gcode')),
        gcode_hash       TEXT,
        settings         TEXT NOT NULL,
        target_printer   TEXT,
        req_nozzle_um    INTEGER,
        req_material     TEXT COLLATE NOCASE,
        req_x_mm         REAL,
        req_y_mm         REAL,
        req_z_mm         REAL,
        priority         INTEGER NOT NULL,
        rank             REAL NOT NULL,
        copies           INTEGER NOT NULL CHECK (copies >= 1),
        copies_done      INTEGER NOT NULL DEFAULT 0 CHECK (copies_done <= copies),
        not_before       INTEGER,
        state            TEXT NOT NULL CHECK (state IN ('queued', 'slicing', 'ready',
                             'printing', 'paused', 'interrupted', 'done', 'failed', 'cancelled')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        failure          TEXT,
        lease_run        INTEGER,
        lease_worker     TEXT,
        lease_printer    TEXT,
        lease_expires_at INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        -- a lease exists exactly in the states that need one
        CHECK ((state IN ('slicing', 'printing', 'paused')) = (lease_run IS NOT NULL))
    );
    CREATE INDEX jobs_claim ON jobs (state, priority DESC, rank, id);
    -- enqueue appends after MAX(rank), reorder looks up neighbours
    CREATE INDEX jobs_rank ON jobs (rank);

    -- runs and changes are never deleted, so plain rowids never repeat (the run id is the
    -- lease's fencing token); AUTOINCREMENT would add a sqlite_sequence write per commit.
    -- A future pruning migration must keep each table's newest row.
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL REFERENCES jobs (id),
        kind        TEXT NOT NULL CHECK (kind IN ('slice', 'print')),
        worker      TEXT NOT NULL,
        printer     TEXT,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        result      TEXT CHECK (result IN ('completed', 'failed', 'cancelled', 'interrupted')),
        print_ms    INTEGER NOT NULL DEFAULT 0,
        filament_mm REAL NOT NULL DEFAULT 0,
        failure     TEXT,
        note        TEXT,
        CHECK ((ended_at IS NULL) = (result IS NULL))
    );
    CREATE INDEX runs_job ON runs (job_id);
    -- at most one open run per job
    CREATE UNIQUE INDEX runs_one_open ON runs (job_id) WHERE ended_at IS NULL;

    -- One small row per job, overwritten in place: progress writes touch one page.
    CREATE TABLE progress (
        job_id            INTEGER PRIMARY KEY REFERENCES jobs (id),
        run_id            INTEGER NOT NULL REFERENCES runs (id),
        line              INTEGER NOT NULL,
        byte_offset       INTEGER NOT NULL,
        layer             INTEGER,
        layer_line        INTEGER,
        layer_byte_offset INTEGER,
        layer_z           REAL,
        layer_e           REAL,
        z                 REAL NOT NULL,
        e                 REAL NOT NULL,
        relative_e        INTEGER NOT NULL,
        relative_xyz      INTEGER NOT NULL,
        hotend_c          REAL NOT NULL,
        bed_c             REAL NOT NULL,
        fan               INTEGER NOT NULL,
        feedrate          REAL,
        updated_at        INTEGER NOT NULL
    );

    CREATE TABLE changes (
        seq    INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        kind   TEXT NOT NULL,
        state  TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    ",
    // 2: a printer's runs newest first (its last print, its history) without scanning every
    // run: 6 ms at 100k runs before, microseconds after.
    "
    CREATE INDEX runs_printer ON runs (printer, id);
    ",
];

/// Applies the migrations `conn` lacks. Returns the version found before migrating.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i64::try_from(i).unwrap_or(i64::MAX) {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(found)
}

/// Number of migrations this library knows.
pub(crate) fn supported_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written by a library that knew only the first migration: opening it applies the
    /// rest, keeps its rows, and a printer's history then uses the index.
    #[test]
    fn a_version_1_file_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO jobs (id, owner, source_hash, source_name, source_kind, settings,
                                   priority, rank, copies, state, created_at, updated_at)
                 VALUES (1, 'ada', 'h', 'cube.gcode', 'gcode', '{}', 0, 1.0, 1, 'done', 0, 0);
                 INSERT INTO runs (id, job_id, kind, worker, printer, started_at, ended_at, result)
                 VALUES (7, 1, 'print', 'w', 'mk3', 0, 1, 'completed');",
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 1);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, supported_version());
        let run: (i64, String) = conn
            .query_row("SELECT id, printer FROM runs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(run, (7, "mk3".to_owned()));
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE printer = 'mk3'
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("runs_printer"), "{plan}");
        // Migrating again is a no-op.
        assert_eq!(migrate(&mut conn).unwrap(), supported_version());
    }
}

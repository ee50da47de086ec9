//! Helpers shared by the integration tests (each test file uses a subset).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use easyprint_queue::*;

pub const LEASE: Duration = Duration::from_secs(30);

pub fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("open store")
}

/// A distinct valid content hash per number.
pub fn hash(n: u64) -> ContentHash {
    ContentHash::parse(&format!("{n:032x}")).unwrap()
}

pub fn gcode_job(owner: &str, n: u64) -> NewJob {
    NewJob::new(
        owner,
        JobSource {
            hash: hash(n),
            file_name: format!("part-{n}.gcode"),
            kind: SourceKind::Gcode,
        },
    )
}

pub fn model_job(owner: &str, n: u64) -> NewJob {
    NewJob::new(
        owner,
        JobSource {
            hash: hash(n),
            file_name: format!("part-{n}.stl"),
            kind: SourceKind::Model,
        },
    )
}

pub fn printer(id: &str) -> PrinterProfile {
    PrinterProfile {
        id: id.into(),
        nozzle_um: 400,
        material: Some("PLA".into()),
        build_volume: BuildVolume::new(220.0, 220.0, 250.0),
    }
}

/// Progress at `line` in layer `layer` (each layer 100 lines, 0.2 mm).
pub fn progress(line: u64, layer: u32) -> Progress {
    Progress {
        line,
        byte_offset: line * 25,
        layer: Some(LayerMark {
            number: layer,
            line: u64::from(layer) * 100 + 1,
            byte_offset: u64::from(layer) * 2500,
            z: 0.2 * f64::from(layer + 1),
            e: f64::from(layer) * 30.0,
        }),
        z: 0.2 * f64::from(layer + 1),
        e: f64::from(layer) * 30.0 + 1.5,
        extrusion: ExtrusionMode::Absolute,
        positioning: Positioning::Absolute,
        hotend_c: 205.0,
        bed_c: 60.0,
        fan: 255,
        feedrate_mm_min: Some(1800.0),
    }
}

/// Claims the next job on printer "p" as worker "h" at `now` and records
/// `progress(line, layer)` at `now + 1`.
pub fn start_printing(store: &SqliteStore, line: u64, layer: u32, now: i64) -> Claim {
    let claim = store
        .claim_print(&printer("p"), "h", LEASE, Timestamp(now))
        .unwrap()
        .expect("a job to print");
    store
        .record_progress(&claim.lease, &progress(line, layer), Timestamp(now + 1))
        .unwrap();
    claim
}

/// [`start_printing`], then the worker dies (released at `now + 2`): the job ends up
/// interrupted with that resume record.
pub fn print_and_die(store: &SqliteStore, line: u64, layer: u32, now: i64) -> Claim {
    let claim = start_printing(store, line, layer, now);
    store.release_worker("h", Timestamp(now + 2)).unwrap();
    claim
}

/// A tiny deterministic PRNG (xorshift64*), so tests need no extra crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Checks the structural invariants that must hold in any committed state of the file.
pub fn assert_consistent(path: &Path) {
    let store = open(path);
    store.integrity_check().expect("integrity check");
    let conn = rusqlite::Connection::open(path).unwrap();
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    // A leased job has exactly its lease's run open; nothing else is open.
    assert_eq!(
        q(
            "SELECT count(*) FROM jobs j WHERE lease_run IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM runs r WHERE r.id = j.lease_run AND r.ended_at IS NULL)"
        ),
        0,
        "leased job without an open run"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM runs r WHERE ended_at IS NULL AND NOT EXISTS
             (SELECT 1 FROM jobs j WHERE j.lease_run = r.id)"
        ),
        0,
        "open run without a lease"
    );
    // The latest change logged for each job names its current state.
    assert_eq!(
        q(
            "SELECT count(*) FROM jobs j WHERE state != (SELECT c.state FROM changes c
             WHERE c.job_id = j.id ORDER BY seq DESC LIMIT 1)"
        ),
        0,
        "change log disagrees with a job's state"
    );
}

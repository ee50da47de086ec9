//! Durable job-queue operation rates vs a bare SQLite commit loop with the same durability,
//! measured in the same run on the same disk.
//!
//! ```text
//! cargo run --release -p easyprint-benches --bin queue-bench -- [N] [DIR]
//! ```
//! N operations per measurement (default 2000); files go in DIR (default the system temp
//! directory; put it on the disk you care about, never on tmpfs).

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use easyprint_queue::{
    BuildVolume, ContentHash, ExtrusionMode, JobSource, LayerMark, NewJob, Positioning,
    PrinterProfile, Progress, SourceKind, SqliteOptions, SqliteStore, Store, Synchronous,
    Timestamp, Usage,
};

const LEASE: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;
    println!(
        "queue-bench: {n} operations per row, files in {}",
        base.display()
    );
    println!(
        "{:<8} {:<34} {:>12} {:>10} {:>14}",
        "sync", "operation", "ops/s", "µs/op", "bare loop / op"
    );
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let bare = bare_insert_loop(&dir.path().join(format!("bare-{sync:?}.db")), sync, n)?;
        row(sync, "bare SQLite INSERT loop (baseline)", bare, bare);
        let rates = queue_ops(&dir.path().join(format!("queue-{sync:?}.db")), sync, n)?;
        for (name, rate) in rates {
            row(sync, name, rate, bare);
        }
    }
    Ok(())
}

fn row(sync: Synchronous, name: &str, rate: f64, bare: f64) {
    println!(
        "{:<8} {:<34} {:>12.0} {:>10.1} {:>13.2}x",
        format!("{sync:?}"),
        name,
        rate,
        1e6 / rate,
        bare / rate
    );
}

/// One committed single-row INSERT per iteration: WAL, the given synchronous, nothing else.
fn bare_insert_loop(path: &Path, sync: Synchronous, n: u64) -> Result<f64, Box<dyn Error>> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    let level = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, owner TEXT, at INTEGER)")?;
    let mut insert = conn.prepare("INSERT INTO t (owner, at) VALUES (?1, ?2)")?;
    let start = Instant::now();
    for i in 0..n {
        insert.execute(rusqlite::params!["ann", i64::try_from(i)?])?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn queue_ops(
    path: &Path,
    sync: Synchronous,
    n: u64,
) -> Result<Vec<(&'static str, f64)>, Box<dyn Error>> {
    let options = SqliteOptions {
        synchronous: sync,
        progress_synchronous: sync,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(path, options)?;
    let printer = PrinterProfile {
        id: "p1".into(),
        nozzle_um: 400,
        material: Some("PLA".into()),
        build_volume: BuildVolume {
            x_mm: 220.0,
            y_mm: 220.0,
            z_mm: 250.0,
        },
    };
    let mut out = Vec::new();
    // A clock that moves, so every heartbeat really changes its row.
    let mut clock = 0i64;
    let mut now = || {
        clock += 1;
        Timestamp(clock)
    };

    let start = Instant::now();
    for i in 0..n {
        let source = JobSource {
            hash: ContentHash::parse(&format!("{i:032x}"))?,
            file_name: format!("part-{i}.gcode"),
            kind: SourceKind::Gcode,
        };
        store.enqueue(&NewJob::new("ann", source), now())?;
    }
    out.push(("enqueue", rate(n, start)));

    let start = Instant::now();
    let mut leases = Vec::new();
    while let Some(claim) = store.claim_print(&printer, "bench", LEASE, now())? {
        leases.push(claim.lease);
    }
    out.push(("claim_print", rate(n, start)));

    let lease = leases[0].clone();
    let start = Instant::now();
    for i in 0..n {
        store.record_progress(&lease, &progress(i), now())?;
    }
    out.push(("record_progress", rate(n, start)));

    let start = Instant::now();
    for lease in &leases {
        store.heartbeat(lease, LEASE, now())?;
    }
    out.push(("heartbeat", rate(n, start)));

    let usage = Usage {
        print_time: Duration::from_secs(60),
        filament_mm: 100.0,
    };
    let start = Instant::now();
    for lease in &leases {
        store.complete(lease, &usage, now())?;
    }
    out.push(("complete", rate(n, start)));

    if sync == Synchronous::Full {
        // The default: state changes FULL, progress NORMAL (fsynced by the next heartbeat).
        drop(store);
        let store = SqliteStore::open(path, SqliteOptions::default())?;
        let source = JobSource {
            hash: ContentHash::parse(&format!("{:032x}", u64::MAX))?,
            file_name: "long.gcode".into(),
            kind: SourceKind::Gcode,
        };
        store.enqueue(&NewJob::new("ann", source), now())?;
        let claim = store
            .claim_print(&printer, "bench", LEASE, now())?
            .ok_or("no job to claim")?;
        let start = Instant::now();
        for i in 0..n {
            store.record_progress(&claim.lease, &progress(i), now())?;
        }
        out.push(("record_progress (default: NORMAL)", rate(n, start)));
    }
    Ok(out)
}

fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn progress(i: u64) -> Progress {
    let layer = u32::try_from(i / 50).unwrap_or(u32::MAX);
    Progress {
        line: i,
        byte_offset: i * 24,
        layer: Some(LayerMark {
            number: layer,
            line: u64::from(layer) * 50,
            byte_offset: u64::from(layer) * 1200,
            z: 0.2 * f64::from(layer + 1),
            e: 0.0,
        }),
        z: 0.2 * f64::from(layer + 1),
        e: i as f64 * 0.05,
        extrusion: ExtrusionMode::Absolute,
        positioning: Positioning::Absolute,
        hotend_c: 205.0,
        bed_c: 60.0,
        fan: 255,
        feedrate_mm_min: Some(1800.0),
    }
}

//! Durable job-queue operation rates vs a bare SQLite commit loop with the same durability,
//! measured in the same run on the same disk.
//!
//! ```text
//! cargo run --release -p easyprint-benches --bin queue-bench -- [N] [DIR]
//! ```
//! N operations of each kind per fsync policy (default 2000); files go in DIR (default the
//! system temp directory; put it on the disk you care about, never on tmpfs).
//!
//! The measurements are interleaved in 20 rounds (bare loop, enqueue, claim, progress,
//! heartbeat, complete, bare loop, …) so that a disk whose speed drifts, e.g. because other
//! programs write to it, affects the baseline and the queue alike.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use easyprint_benches::queue::{gcode_source, printer, progress};
use easyprint_queue::{
    Lease, NewJob, SqliteOptions, SqliteStore, Store, Synchronous, Timestamp, Usage,
};

const LEASE: Duration = Duration::from_secs(60);
const ROUNDS: u64 = 20;

/// Accumulated time of one kind of operation.
#[derive(Default)]
struct Meter {
    name: &'static str,
    ops: u64,
    time: Duration,
}

impl Meter {
    fn new(name: &'static str) -> Meter {
        Meter {
            name,
            ..Meter::default()
        }
    }

    fn run<T>(
        &mut self,
        ops: u64,
        f: impl FnOnce() -> Result<T, Box<dyn Error>>,
    ) -> Result<T, Box<dyn Error>> {
        let start = Instant::now();
        let out = f()?;
        self.time += start.elapsed();
        self.ops += ops;
        Ok(out)
    }

    fn rate(&self) -> f64 {
        self.ops as f64 / self.time.as_secs_f64()
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;
    println!(
        "queue-bench: {n} operations of each kind per policy, {ROUNDS} interleaved rounds, \
         files in {}",
        base.display()
    );
    println!(
        "{:<8} {:<36} {:>10} {:>10} {:>16}",
        "sync", "operation", "ops/s", "µs/op", "time vs bare"
    );
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let meters = measure(dir.path(), sync, n.div_ceil(ROUNDS))?;
        let bare = meters[0].rate();
        for m in &meters {
            println!(
                "{:<8} {:<36} {:>10.0} {:>10.1} {:>15.2}x",
                format!("{sync:?}"),
                m.name,
                m.rate(),
                1e6 / m.rate(),
                bare / m.rate()
            );
        }
    }
    Ok(())
}

fn measure(dir: &Path, sync: Synchronous, chunk: u64) -> Result<Vec<Meter>, Box<dyn Error>> {
    // The baseline: one committed single-row INSERT per iteration, WAL, same synchronous.
    let bare = rusqlite::Connection::open(dir.join(format!("bare-{sync:?}.db")))?;
    bare.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    let level = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    bare.pragma_update(None, "synchronous", level)?;
    bare.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, owner TEXT, at INTEGER)")?;
    let mut insert = bare.prepare("INSERT INTO t (owner, at) VALUES (?1, ?2)")?;

    let options = SqliteOptions {
        synchronous: sync,
        progress_synchronous: sync,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir.join(format!("queue-{sync:?}.db")), options)?;
    // The default policy for progress: state changes at `sync`, progress NORMAL.
    let relaxed = SqliteStore::open(
        dir.join(format!("relaxed-{sync:?}.db")),
        SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        },
    )?;
    let printer = printer();
    relaxed.enqueue(&NewJob::new("ann", gcode_source(u64::MAX)), Timestamp(0))?;
    let long_print = relaxed
        .claim_print(&printer, "bench", LEASE, Timestamp(0))?
        .ok_or("no job to claim")?
        .lease;

    let mut m = [
        Meter::new("bare SQLite INSERT loop (baseline)"),
        Meter::new("enqueue"),
        Meter::new("claim_print"),
        Meter::new("record_progress"),
        Meter::new("heartbeat"),
        Meter::new("complete"),
        Meter::new("record_progress, progress NORMAL"),
    ];
    // A clock that moves, so every heartbeat really changes its row.
    let mut clock = 0i64;
    let mut now = || {
        clock += 1;
        Timestamp(clock)
    };
    let usage = Usage {
        print_time: Duration::from_secs(60),
        filament_mm: 100.0,
    };
    let mut line = 0u64;
    for round in 0..ROUNDS {
        m[0].run(chunk, || {
            for i in 0..chunk {
                insert.execute(rusqlite::params!["ann", i64::try_from(i)?])?;
            }
            Ok(())
        })?;
        m[1].run(chunk, || {
            for i in 0..chunk {
                let job = NewJob::new("ann", gcode_source(round * chunk + i));
                store.enqueue(&job, now())?;
            }
            Ok(())
        })?;
        let leases: Vec<Lease> = m[2].run(chunk, || {
            let mut leases = Vec::new();
            while let Some(claim) = store.claim_print(&printer, "bench", LEASE, now())? {
                leases.push(claim.lease);
            }
            Ok(leases)
        })?;
        m[3].run(chunk, || {
            for _ in 0..chunk {
                line += 1;
                store.record_progress(&leases[0], &progress(line), now())?;
            }
            Ok(())
        })?;
        m[4].run(chunk, || {
            for lease in &leases {
                store.heartbeat(lease, LEASE, now())?;
            }
            Ok(())
        })?;
        m[5].run(chunk, || {
            for lease in &leases {
                store.complete(lease, &usage, now())?;
            }
            Ok(())
        })?;
        m[6].run(chunk, || {
            for _ in 0..chunk {
                line += 1;
                relaxed.record_progress(&long_print, &progress(line), now())?;
            }
            Ok(())
        })?;
    }
    Ok(m.into())
}

//! Criterion benchmarks of the job queue: a full job cycle and a progress write on a real
//! SQLite file (synchronous=NORMAL, so CPU cost is measured rather than the disk's fsync;
//! `queue-bench` measures the durable rates), and the pure resume-point lookup.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use easyprint_benches::queue::{gcode_source, printer, progress};
use easyprint_queue::{
    resume_point, NewJob, ResumeFrom, SqliteOptions, SqliteStore, Store, Synchronous, Timestamp,
    Usage,
};

const LEASE: Duration = Duration::from_secs(60);

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    SqliteStore::open(dir.path().join("bench.db"), options).unwrap()
}

fn queue(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let printer = printer();
    let mut clock = 0i64;
    c.bench_function("queue/enqueue_claim_complete", |b| {
        b.iter(|| {
            clock += 1;
            let now = Timestamp(clock);
            store
                .enqueue(
                    &NewJob::new("ann", gcode_source(u64::try_from(clock).unwrap())),
                    now,
                )
                .unwrap();
            let claim = store
                .claim_print(&printer, "w", LEASE, now)
                .unwrap()
                .unwrap();
            store
                .complete(&claim.lease, &Usage::default(), now)
                .unwrap()
        })
    });

    store
        .enqueue(&NewJob::new("ann", gcode_source(u64::MAX)), Timestamp(0))
        .unwrap();
    let claim = store
        .claim_print(&printer, "w", LEASE, Timestamp(0))
        .unwrap()
        .unwrap();
    let mut line = 0u64;
    c.bench_function("queue/record_progress", |b| {
        b.iter(|| {
            line += 1;
            store
                .record_progress(&claim.lease, &progress(line), Timestamp(1))
                .unwrap()
        })
    });

    let record = progress(5000);
    c.bench_function("queue/resume_point", |b| {
        b.iter(|| resume_point(&record, ResumeFrom::LayerStart).unwrap())
    });
}

criterion_group!(benches, queue);
criterion_main!(benches);

//! Criterion benchmarks of the job queue: a full job cycle and a progress write on a real
//! SQLite file (synchronous=NORMAL, so CPU cost is measured rather than the disk's fsync;
//! `queue-bench` measures the durable rates), and the pure resume-preamble builder.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use easyprint_queue::{
    resume_plan, BuildVolume, ContentHash, ExtrusionMode, JobSource, LayerMark, NewJob,
    Positioning, PrinterProfile, Progress, ResumeFrom, ResumeOptions, SourceKind, SqliteOptions,
    SqliteStore, Store, Synchronous, Timestamp, Usage,
};

const LEASE: Duration = Duration::from_secs(60);

fn printer() -> PrinterProfile {
    PrinterProfile {
        id: "p1".into(),
        nozzle_um: 400,
        material: Some("PLA".into()),
        build_volume: BuildVolume {
            x_mm: 220.0,
            y_mm: 220.0,
            z_mm: 250.0,
        },
    }
}

fn progress(i: u64) -> Progress {
    Progress {
        line: i,
        byte_offset: i * 24,
        layer: Some(LayerMark {
            number: 12,
            line: 4000,
            byte_offset: 96_000,
            z: 2.6,
            e: 700.0,
        }),
        z: 2.6,
        e: 712.5,
        extrusion: ExtrusionMode::Absolute,
        positioning: Positioning::Absolute,
        hotend_c: 205.0,
        bed_c: 60.0,
        fan: 255,
        feedrate_mm_min: Some(1800.0),
    }
}

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
            let source = JobSource {
                hash: ContentHash::parse(&format!("{clock:032x}")).unwrap(),
                file_name: "part.gcode".into(),
                kind: SourceKind::Gcode,
            };
            store.enqueue(&NewJob::new("ann", source), now).unwrap();
            let claim = store
                .claim_print(&printer, "w", LEASE, now)
                .unwrap()
                .unwrap();
            store
                .complete(&claim.lease, &Usage::default(), now)
                .unwrap()
        })
    });

    let source = JobSource {
        hash: ContentHash::parse(&format!("{:032x}", u64::MAX)).unwrap(),
        file_name: "long.gcode".into(),
        kind: SourceKind::Gcode,
    };
    store
        .enqueue(&NewJob::new("ann", source), Timestamp(0))
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
    let options = ResumeOptions::default();
    c.bench_function("queue/resume_plan", |b| {
        b.iter(|| resume_plan(&record, ResumeFrom::LayerStart, &options).unwrap())
    });
}

criterion_group!(benches, queue);
criterion_main!(benches);

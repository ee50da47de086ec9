//! A tour of easyprint-queue on a real SQLite file: enqueue, slice, print with coalesced
//! progress, a host crash, recovery to `interrupted`, a person confirming a resume from the
//! start of a layer, and history and statistics.
//!
//! ```text
//! cargo run -p easyprint-examples --example queue_demo -- [PATH.db]
//! ```
//! Without a path it uses a fresh file in the system temp directory.

use std::time::Duration;

use easyprint_queue::{
    BuildVolume, ContentHash, ExtrusionMode, HistoryFilter, JobSource, LayerMark, NewJob,
    Positioning, PrinterProfile, Progress, ProgressCheckpointer, Requirements, ResumeConfirmation,
    ResumeFrom, SourceKind, SqliteOptions, SqliteStore, Store, Target, Timestamp, Usage,
};

const LEASE: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => p.into(),
        None => {
            let p = std::env::temp_dir().join(format!("queue-demo-{}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
            p
        }
    };
    println!("queue file: {}", path.display());
    let printer = PrinterProfile {
        id: "ender3".into(),
        nozzle_um: 400,
        material: Some("PLA".into()),
        build_volume: BuildVolume::new(220.0, 220.0, 250.0),
    };
    // The host's clock lives outside the library: every call takes `now`.
    let mut clock = 1_700_000_000_000i64;
    let mut now = |advance_ms: i64| {
        clock += advance_ms;
        Timestamp(clock)
    };

    // --- the first life of the host -------------------------------------------------
    {
        let store = SqliteStore::open(&path, SqliteOptions::default())?;
        let changes = store.subscribe(256);

        let mut model = NewJob::new(
            "ann",
            JobSource {
                hash: ContentHash::parse("5d41402abc4b2a76b9719d911017c592")?,
                file_name: "benchy.stl".into(),
                kind: SourceKind::Model,
            },
        );
        model.settings = serde_json::json!({ "layer_height": 0.2, "infill": 15 });
        model.target = Target::Any(Requirements {
            nozzle_um: Some(400),
            material: Some("pla".into()),
            min_build_volume: Some(BuildVolume::new(60.0, 31.0, 48.0)),
        });
        let job = store.enqueue(&model, now(0))?;
        println!(
            "enqueued {} ({}), state {}",
            job.id, job.source.file_name, job.state
        );

        let slicing = store
            .claim_slicing("slicer-1", LEASE, now(100))?
            .ok_or("no job")?;
        // A real host runs the slicer here and stores its output by content hash.
        let gcode = ContentHash::parse("7215ee9c7d9dc229d2921a40e899ec5f")?;
        let ready = store.finish_slicing(&slicing.lease, &gcode, now(40_000))?;
        println!("sliced: {} now {}", ready.id, ready.state);

        let claim = store
            .claim_print(&printer, "host-a", LEASE, now(1_000))?
            .ok_or("nothing to print")?;
        println!(
            "{} printing on {} under {}",
            claim.job.id, printer.id, claim.lease.run
        );

        // Stream 3 layers of 1000 lines at ~300 lines/s; persist only what the policy asks.
        let mut checkpointer = ProgressCheckpointer::new(Duration::from_secs(5));
        let (mut written, mut lease) = (0, claim.lease.clone());
        for line in 1..=3_000u64 {
            let layer = u32::try_from((line - 1) / 1000)?;
            let report = Progress {
                line,
                byte_offset: line * 24,
                layer: Some(LayerMark {
                    number: layer,
                    line: u64::from(layer) * 1000 + 1,
                    byte_offset: u64::from(layer) * 24_000,
                    z: 0.2 * f64::from(layer + 1),
                    e: 150.0 * f64::from(layer),
                }),
                z: 0.2 * f64::from(layer + 1),
                e: 150.0 * f64::from(layer) + 0.15 * (line % 1000) as f64,
                extrusion: ExtrusionMode::Absolute,
                positioning: Positioning::Absolute,
                hotend_c: 205.0,
                bed_c: 60.0,
                fan: 255,
                feedrate_mm_min: Some(2400.0),
            };
            let t = now(3);
            if let Some(p) = checkpointer.offer(report, t) {
                store.record_progress(&lease, &p, t)?;
                written += 1;
            }
            if line % 1000 == 0 {
                lease = store.heartbeat(&lease, LEASE, t)?;
            }
        }
        println!("3000 confirmed lines, {written} progress writes");
        let live: Vec<String> = changes
            .try_iter()
            .map(|c| format!("{}:{}", c.kind.as_str(), c.state))
            .collect();
        println!("live changes seen by a UI: {}", live.join(" "));
        println!("*** host-a dies here (no complete, no fail) ***");
    }

    // --- the host restarts ----------------------------------------------------------
    let store = SqliteStore::open(&path, SqliteOptions::default())?;
    for job in store.release_worker("host-a", now(60_000))? {
        println!(
            "recovered {}: {} ({})",
            job.id,
            job.state,
            job.failure.as_deref().unwrap_or("")
        );
        let record = store.resume_record(job.id)?.ok_or("no resume record")?;
        println!(
            "  last confirmed line {} (byte {}), layer {:?}",
            record.line,
            record.byte_offset,
            record.layer.map(|l| l.number)
        );

        // Nothing resumes on its own: this call is what a person's "resume" button makes.
        let confirmation = ResumeConfirmation {
            confirmed_by: "ann".into(),
            from: ResumeFrom::LayerStart,
        };
        let start =
            store.confirm_resume(job.id, &confirmation, &printer, "host-b", LEASE, now(5_000))?;
        println!(
            "  resume from line {} (byte {}) at z {}, layer {:?}",
            start.point.start_line, start.point.start_byte_offset, start.point.z, start.point.layer
        );
        // The prelude G-code (heat, declare Z, home X/Y, restore E and modes) is
        // easyprint-gcode's `MachineState::resume_prelude`, fed with the file's lines up to
        // that byte offset: the easyprint server does exactly that.
        let usage = Usage {
            print_time: Duration::from_secs(3_600),
            filament_mm: 4_200.0,
        };
        let done = store.complete(&start.lease, &usage, now(3_600_000))?;
        println!("  {} is {}", done.id, done.state);
    }

    for run in store.history(&HistoryFilter::default())? {
        println!(
            "history: {} {:?} on {:?} by {} -> {:?} {}",
            run.id,
            run.kind,
            run.printer,
            run.worker,
            run.result,
            run.note.or(run.failure).unwrap_or_default()
        );
    }
    let stats = store.statistics(&HistoryFilter::default())?;
    for t in stats.per_owner.iter().chain(&stats.per_printer) {
        println!(
            "stats {}: {} completed, {} unsuccessful, {:?} printing, {:.0} mm filament",
            t.key, t.completed, t.unsuccessful, t.print_time, t.filament_mm
        );
    }
    Ok(())
}

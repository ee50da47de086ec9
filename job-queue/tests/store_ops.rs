//! Queue operations against a real SQLite file.

mod common;

use std::time::Duration;

use common::*;
use easyprint_queue::*;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

#[test]
fn enqueue_sets_entry_state_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let model = store.enqueue(&model_job("ann", 1), t(1)).unwrap();
    let gcode = store.enqueue(&gcode_job("ann", 2), t(2)).unwrap();
    assert_eq!(model.state, JobState::Queued);
    assert_eq!(model.gcode, None);
    assert_eq!(gcode.state, JobState::Ready);
    assert_eq!(gcode.gcode, Some(hash(2)));
    assert!(gcode.rank > model.rank);
    assert_eq!(store.job(model.id).unwrap(), model);

    let mut bad = gcode_job("ann", 3);
    bad.copies = 0;
    assert!(matches!(
        store.enqueue(&bad, t(3)),
        Err(StoreError::InvalidJob(JobSpecError::ZeroCopies))
    ));
    assert!(matches!(
        store.job(JobId(999)),
        Err(StoreError::NotFound(JobId(999)))
    ));
    // The refused job left nothing behind.
    assert_eq!(store.jobs(&JobFilter::default()).unwrap().len(), 2);
}

#[test]
fn full_lifecycle_with_slicing_copies_history_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let mut job = model_job("ann", 1);
    job.copies = 2;
    let job = store.enqueue(&job, t(0)).unwrap();

    assert!(store
        .claim_print(&printer("p1"), "host", LEASE, t(1))
        .unwrap()
        .is_none());
    let slice = store.claim_slicing("slicer", LEASE, t(1)).unwrap().unwrap();
    assert_eq!(slice.job.state, JobState::Slicing);
    assert!(store
        .claim_slicing("slicer", LEASE, t(1))
        .unwrap()
        .is_none());
    let sliced = store.finish_slicing(&slice.lease, &hash(77), t(5)).unwrap();
    assert_eq!(sliced.state, JobState::Ready);
    assert_eq!(sliced.gcode, Some(hash(77)));

    for copy in 1..=2u32 {
        let claim = store
            .claim_print(&printer("p1"), "host", LEASE, t(10))
            .unwrap()
            .unwrap();
        assert_eq!(claim.job.id, job.id);
        assert_eq!(claim.job.attempts, copy);
        store
            .record_progress(&claim.lease, &progress(150, 1), t(11))
            .unwrap();
        let paused = store.pause(&claim.lease, t(12)).unwrap();
        assert_eq!(paused.state, JobState::Paused);
        store
            .record_progress(&claim.lease, &progress(160, 1), t(12))
            .unwrap();
        assert_eq!(
            store.continue_print(&claim.lease, t(13)).unwrap().state,
            JobState::Printing
        );
        let usage = Usage {
            print_time: Duration::from_secs(100),
            filament_mm: 500.0,
        };
        let after = store.complete(&claim.lease, &usage, t(20)).unwrap();
        assert_eq!(after.copies_done, copy);
        let expect = if copy == 1 {
            JobState::Ready
        } else {
            JobState::Done
        };
        assert_eq!(after.state, expect);
        assert!(after.lease.is_none());
        assert_eq!(store.resume_record(job.id).unwrap(), None);
        // The finished lease is dead.
        assert!(matches!(
            store.heartbeat(&claim.lease, LEASE, t(21)),
            Err(StoreError::LeaseLost { .. })
        ));
    }
    assert_eq!(store.job(job.id).unwrap().finished_at, Some(t(20)));

    let history = store.history(&HistoryFilter::default()).unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].kind, RunKind::Slice);
    assert!(history
        .iter()
        .all(|r| r.result == Some(RunResult::Completed)));
    let prints = HistoryFilter {
        kind: Some(RunKind::Print),
        ..Default::default()
    };
    assert_eq!(store.history(&prints).unwrap().len(), 2);

    let stats = store.statistics(&HistoryFilter::default()).unwrap();
    assert_eq!(stats.per_owner.len(), 1);
    assert_eq!(stats.per_owner[0].key, "ann");
    assert_eq!(stats.per_owner[0].completed, 2);
    assert_eq!(stats.per_owner[0].print_time, Duration::from_secs(200));
    assert_eq!(stats.per_owner[0].filament_mm, 1000.0);
    assert_eq!(stats.per_printer[0].key, "p1");
}

#[test]
fn claim_respects_requirements_schedule_priority_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let mut other_printer = gcode_job("ann", 1);
    other_printer.target = Target::Printer("p2".into());
    let mut big_nozzle = gcode_job("ann", 2);
    big_nozzle.target = Target::Any(Requirements {
        nozzle_um: Some(600),
        ..Default::default()
    });
    let mut petg = gcode_job("ann", 3);
    petg.target = Target::Any(Requirements {
        material: Some("petg".into()),
        ..Default::default()
    });
    let mut too_tall = gcode_job("ann", 4);
    too_tall.target = Target::Any(Requirements {
        min_build_volume: Some(BuildVolume::new(10.0, 10.0, 300.0)),
        ..Default::default()
    });
    let mut later = gcode_job("ann", 5);
    later.not_before = Some(t(1_000));
    let mut pla = gcode_job("bob", 6);
    pla.target = Target::Any(Requirements {
        nozzle_um: Some(400),
        material: Some("pla".into()),
        min_build_volume: Some(BuildVolume::new(200.0, 200.0, 200.0)),
    });
    let plain = gcode_job("bob", 7);
    let mut urgent = gcode_job("bob", 8);
    urgent.priority = 5;
    let ids: Vec<JobId> = [
        other_printer,
        big_nozzle,
        petg,
        too_tall,
        later,
        pla,
        plain,
        urgent,
    ]
    .iter()
    .map(|j| store.enqueue(j, t(0)).unwrap().id)
    .collect();

    let p1 = printer("p1");
    let mut order = Vec::new();
    while let Some(c) = store.claim_print(&p1, "host", LEASE, t(10)).unwrap() {
        assert!(p1.accepts(&c.job.target));
        order.push(c.job.id);
    }
    // Priority first, then queue order; the rest do not fit p1 or are not due yet.
    assert_eq!(order, vec![ids[7], ids[5], ids[6]]);
    let c = store
        .claim_print(&p1, "host", LEASE, t(1_000))
        .unwrap()
        .unwrap();
    assert_eq!(c.job.id, ids[4]);
    let c = store
        .claim_print(&printer("p2"), "host", LEASE, t(1_000))
        .unwrap()
        .unwrap();
    assert_eq!(c.job.id, ids[0]);
    let mut petg_printer = printer("p3");
    petg_printer.material = Some("PETG".into());
    let c = store
        .claim_print(&petg_printer, "h", LEASE, t(1_000))
        .unwrap()
        .unwrap();
    assert_eq!(c.job.id, ids[2]);
    // Names go into the history: control characters and blanks are refused.
    assert!(matches!(
        store.claim_print(&printer("bad\nid"), "h", LEASE, t(1_000)),
        Err(StoreError::InvalidArgument {
            field: "printer id",
            ..
        })
    ));
    assert!(matches!(
        store.claim_print(&printer("p1"), " ", LEASE, t(1_000)),
        Err(StoreError::InvalidArgument {
            field: "worker",
            ..
        })
    ));
}

#[test]
fn reorder_and_priority_change_the_claim_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let ids: Vec<JobId> = (0..5)
        .map(|n| store.enqueue(&gcode_job("ann", n), t(0)).unwrap().id)
        .collect();
    let queue_order = || -> Vec<JobId> {
        let filter = JobFilter {
            states: vec![JobState::Ready],
            ..Default::default()
        };
        store.jobs(&filter).unwrap().iter().map(|j| j.id).collect()
    };
    store.reorder(ids[4], Placement::First, t(1)).unwrap();
    store.reorder(ids[0], Placement::Last, t(1)).unwrap();
    store
        .reorder(ids[1], Placement::After(ids[3]), t(1))
        .unwrap();
    store
        .reorder(ids[2], Placement::Before(ids[4]), t(1))
        .unwrap();
    assert_eq!(queue_order(), vec![ids[2], ids[4], ids[3], ids[1], ids[0]]);
    // Repeatedly inserting into the same gap exhausts float precision and forces a renumber.
    for _ in 0..80 {
        store
            .reorder(ids[0], Placement::Before(ids[4]), t(2))
            .unwrap();
        store
            .reorder(ids[0], Placement::After(ids[2]), t(2))
            .unwrap();
        store
            .reorder(ids[1], Placement::Before(ids[0]), t(2))
            .unwrap();
        store
            .reorder(ids[1], Placement::After(ids[2]), t(2))
            .unwrap();
    }
    assert_eq!(queue_order(), vec![ids[2], ids[1], ids[0], ids[4], ids[3]]);
    store.set_priority(ids[3], 9, t(3)).unwrap();
    let claim = store
        .claim_print(&printer("p"), "h", LEASE, t(4))
        .unwrap()
        .unwrap();
    assert_eq!(claim.job.id, ids[3]);
    assert!(matches!(
        store.reorder(JobId(99), Placement::First, t(5)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn expired_leases_become_interrupted_never_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let printing = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    store.enqueue(&model_job("ann", 2), t(0)).unwrap();
    let print = store
        .claim_print(&printer("p"), "host-a", LEASE, t(0))
        .unwrap()
        .unwrap();
    let slice = store.claim_slicing("slicer", LEASE, t(0)).unwrap().unwrap();
    store
        .record_progress(&print.lease, &progress(420, 4), t(5))
        .unwrap();

    // A heartbeat moves the deadline; reaping before it changes nothing.
    let renewed = store.heartbeat(&print.lease, LEASE, t(20_000)).unwrap();
    assert_eq!(renewed.expires_at, t(50_000));
    let reaped = store.expire_leases(t(40_000)).unwrap();
    assert_eq!(reaped.len(), 1, "only the slicer's lease had run out");
    assert_eq!(reaped[0].state, JobState::Queued);
    assert!(matches!(
        store.finish_slicing(&slice.lease, &hash(9), t(40_001)),
        Err(StoreError::LeaseLost { .. })
    ));

    let reaped = store.expire_leases(t(50_001)).unwrap();
    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].id, printing.id);
    assert_eq!(reaped[0].state, JobState::Interrupted);
    assert!(reaped[0].failure.as_deref().unwrap().contains("host-a"));
    for err in [
        store
            .record_progress(&print.lease, &progress(430, 4), t(50_002))
            .err(),
        store
            .complete(&print.lease, &Usage::default(), t(50_002))
            .err(),
        store.pause(&print.lease, t(50_002)).err(),
    ] {
        assert!(matches!(err, Some(StoreError::LeaseLost { .. })), "{err:?}");
    }
    // Interrupted jobs are never claimed on their own.
    assert!(store
        .claim_print(&printer("p"), "h", LEASE, t(60_000))
        .unwrap()
        .is_none());
    // The record survives for a resume.
    assert_eq!(store.resume_record(printing.id).unwrap().unwrap().line, 420);
    let run = &store
        .history(&HistoryFilter {
            job: Some(printing.id),
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!(run.result, Some(RunResult::Interrupted));
}

#[test]
fn release_worker_interrupts_a_dead_hosts_jobs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    store.enqueue(&gcode_job("ann", 2), t(0)).unwrap();
    store
        .claim_print(&printer("a"), "old-host", LEASE, t(0))
        .unwrap()
        .unwrap();
    let keep = store
        .claim_print(&printer("b"), "other-host", LEASE, t(0))
        .unwrap()
        .unwrap();
    let changed = store.release_worker("old-host", t(1)).unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, JobState::Interrupted);
    assert_eq!(store.job(keep.job.id).unwrap().state, JobState::Printing);
}

#[test]
fn resume_needs_a_person_and_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let confirm = ResumeConfirmation {
        confirmed_by: "ann".into(),
        from: ResumeFrom::LayerStart,
    };
    // Not interrupted: refused with the transition named.
    let err = store
        .confirm_resume(job.id, &confirm, &printer("p"), "h", LEASE, t(1))
        .unwrap_err();
    assert!(matches!(err, StoreError::Transition { .. }), "{err}");
    assert!(err.to_string().contains("confirm_resume"));

    let claim = store
        .claim_print(&printer("p"), "h", LEASE, t(1))
        .unwrap()
        .unwrap();
    store.release_worker("h", t(2)).unwrap();
    assert!(matches!(
        store.confirm_resume(job.id, &confirm, &printer("p"), "h", LEASE, t(3)),
        Err(StoreError::NoResumeRecord(_))
    ));
    assert!(matches!(
        store.heartbeat(&claim.lease, LEASE, t(3)),
        Err(StoreError::LeaseLost { .. })
    ));

    // Interrupted with a record: the point is the layer's first line.
    store.retry(job.id, t(4)).unwrap();
    print_and_die(&store, 742, 7, 5);
    let start = store
        .confirm_resume(job.id, &confirm, &printer("p"), "h2", LEASE, t(8))
        .unwrap();
    assert_eq!(start.job.state, JobState::Printing);
    assert_eq!(start.point.start_line, 701);
    assert_eq!(start.point.start_byte_offset, 7 * 2500);
    assert_eq!(start.point.layer, Some(7));
    assert_eq!(
        Some(start.point.checkpoint),
        store.resume_record(job.id).unwrap()
    );
    let run = &store.history(&HistoryFilter::default()).unwrap()[0];
    assert!(run.note.as_deref().unwrap().contains("confirmed by ann"));
    // The resumed print keeps reporting progress under its new lease.
    store
        .record_progress(&start.lease, &progress(760, 7), t(9))
        .unwrap();
    store
        .complete(&start.lease, &Usage::default(), t(10))
        .unwrap();
}

#[test]
fn resume_refuses_a_printer_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let mut job = gcode_job("ann", 1);
    job.target = Target::Any(Requirements {
        nozzle_um: Some(400),
        ..Default::default()
    });
    let job = store.enqueue(&job, t(0)).unwrap();
    print_and_die(&store, 5, 0, 1);
    let mut wide = printer("wide");
    wide.nozzle_um = 800;
    let confirm = ResumeConfirmation {
        confirmed_by: "ann".into(),
        from: ResumeFrom::LastConfirmedLine,
    };
    assert!(matches!(
        store.confirm_resume(job.id, &confirm, &wide, "h", LEASE, t(4)),
        Err(StoreError::PrinterMismatch { .. })
    ));
    assert_eq!(store.job(job.id).unwrap().state, JobState::Interrupted);
}

#[test]
fn cancel_retry_fail_and_abandon() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let a = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let claim = store
        .claim_print(&printer("p"), "h", LEASE, t(1))
        .unwrap()
        .unwrap();
    // A person cancels while it prints: the worker learns at its next call.
    assert_eq!(store.cancel(a.id, t(2)).unwrap().state, JobState::Cancelled);
    assert!(matches!(
        store.heartbeat(&claim.lease, LEASE, t(3)),
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.cancel(a.id, t(4)),
        Err(StoreError::Transition { .. })
    ));
    assert!(matches!(
        store.retry(a.id, t(4)),
        Err(StoreError::Transition { .. })
    ));

    let b = store.enqueue(&model_job("bob", 2), t(5)).unwrap();
    let slice = store.claim_slicing("s", LEASE, t(6)).unwrap().unwrap();
    let failed = store
        .fail(&slice.lease, "slicer crashed", &Usage::default(), t(7))
        .unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("slicer crashed"));
    // Never sliced, so a retry goes back to slicing.
    assert_eq!(store.retry(b.id, t(8)).unwrap().state, JobState::Queued);
    assert!(matches!(
        store.fail(&slice.lease, "again", &Usage::default(), t(9)),
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.abandon(b.id, "operator gave up", t(9)),
        Err(StoreError::Transition { .. })
    ));
    assert!(matches!(
        store.fail(&slice.lease, "", &Usage::default(), t(9)),
        Err(StoreError::InvalidArgument { .. })
    ));

    let c = store.enqueue(&gcode_job("cy", 3), t(10)).unwrap();
    store
        .claim_print(&printer("p"), "h", LEASE, t(11))
        .unwrap()
        .unwrap();
    store.release_worker("h", t(12)).unwrap();
    let abandoned = store.abandon(c.id, "bed knocked over", t(13)).unwrap();
    assert_eq!(abandoned.state, JobState::Failed);
    assert_eq!(store.retry(c.id, t(14)).unwrap().state, JobState::Ready);

    let unsuccessful = store.statistics(&HistoryFilter::default()).unwrap();
    let ann = unsuccessful
        .per_owner
        .iter()
        .find(|t| t.key == "ann")
        .unwrap();
    assert_eq!((ann.completed, ann.unsuccessful), (0, 1));
    let failed_runs = HistoryFilter {
        result: Some(RunResult::Failed),
        ..Default::default()
    };
    assert_eq!(store.history(&failed_runs).unwrap().len(), 1);
    let bobs = JobFilter {
        owner: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(store.jobs(&bobs).unwrap().len(), 1);
}

#[test]
fn change_log_and_live_subscription_agree() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let live = store.subscribe(64);
    let slow = store.subscribe(1);
    let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let claim = start_printing(&store, 1, 0, 1);
    store
        .complete(&claim.lease, &Usage::default(), t(3))
        .unwrap();

    let logged = store.changes_since(0, 100).unwrap();
    let kinds: Vec<ChangeKind> = logged.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Enqueued,
            ChangeKind::Event(JobEvent::StartPrint),
            ChangeKind::Event(JobEvent::Complete { copies_left: false }),
        ]
    );
    assert!(logged.iter().all(|c| c.job == job.id));
    assert!(logged.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.changes_since(logged[1].seq, 100).unwrap(),
        logged[2..]
    );

    let received: Vec<Change> = live.try_iter().collect();
    assert_eq!(received.len(), 4, "three logged changes plus one progress");
    assert_eq!(received[2].kind, ChangeKind::Progress);
    let without_progress: Vec<Change> = received
        .into_iter()
        .filter(|c| c.kind != ChangeKind::Progress)
        .collect();
    assert_eq!(without_progress, logged);
    // The subscriber that could hold one change was dropped, not allowed to grow.
    assert_eq!(slow.try_iter().count(), 1);
    assert!(matches!(
        slow.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Disconnected)
    ));
}

#[test]
fn reopening_keeps_everything_and_refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let (job, lease) = {
        let store = open(&path);
        let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
        let claim = start_printing(&store, 55, 0, 1);
        (job.id, claim.lease)
    };
    let store = open(&path);
    let again = store.job(job).unwrap();
    assert_eq!(again.state, JobState::Printing);
    assert_eq!(again.lease.as_ref(), Some(&lease));
    assert_eq!(store.resume_record(job).unwrap().unwrap().line, 55);
    store.complete(&lease, &Usage::default(), t(3)).unwrap();
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 2,
            ..
        }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[cfg(feature = "tokio")]
#[test]
fn async_subscription_receives_changes_and_reports_lag() {
    use tokio::sync::broadcast::error::RecvError;
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir.path().join("q.db"), options).unwrap();
    let mut rx = store.subscribe_async();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let change = rt.block_on(rx.recv()).unwrap();
    assert_eq!((change.job, change.kind), (job.id, ChangeKind::Enqueued));

    // A receiver that falls more than the channel's capacity behind learns how much it
    // missed, then catches up from the durable log.
    for n in 0..1100 {
        store.set_priority(job.id, n, t(1)).unwrap();
    }
    match rt.block_on(rx.recv()) {
        Err(RecvError::Lagged(missed)) => assert!(missed > 0),
        other => panic!("expected a lag report, got {other:?}"),
    }
    let caught_up = store.changes_since(change.seq, 10_000).unwrap();
    assert_eq!(caught_up.len(), 1100);
}

#[test]
fn slice_only_jobs_end_done_and_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let job = store.enqueue(&model_job("ann", 1), t(0)).unwrap();
    let slice = store.claim_slicing("slicer", LEASE, t(1)).unwrap().unwrap();
    let done = store
        .finish_slicing_only(&slice.lease, &hash(9), t(2))
        .unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.gcode, Some(hash(9)));
    assert_eq!(done.finished_at, Some(t(2)));
    assert!(store
        .claim_print(&printer("p1"), "host", LEASE, t(3))
        .unwrap()
        .is_none());
    // The stale lease cannot finish it again.
    assert!(matches!(
        store.finish_slicing_only(&slice.lease, &hash(9), t(4)),
        Err(StoreError::LeaseLost { .. })
    ));
    let history = store
        .history(&HistoryFilter {
            job: Some(job.id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, RunKind::Slice);
    assert_eq!(history[0].result, Some(RunResult::Completed));
    let kinds: Vec<ChangeKind> = store
        .changes_since(0, 10)
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds.last(), Some(&ChangeKind::Event(JobEvent::SlicedOnly)));
}

#[test]
fn rescheduling_moves_the_earliest_start_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let job = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let later = store.set_not_before(job.id, Some(t(1000)), t(1)).unwrap();
    assert_eq!(later.not_before, Some(t(1000)));
    assert!(store
        .claim_print(&printer("p1"), "host", LEASE, t(999))
        .unwrap()
        .is_none());
    let now = store.set_not_before(job.id, None, t(2)).unwrap();
    assert_eq!(now.not_before, None);
    assert!(store
        .claim_print(&printer("p1"), "host", LEASE, t(3))
        .unwrap()
        .is_some());
    let changes = store.changes_since(0, 10).unwrap();
    assert_eq!(changes[1].kind, ChangeKind::Rescheduled);
    assert_eq!(changes[2].kind, ChangeKind::Rescheduled);
    assert!(matches!(
        store.set_not_before(JobId(99), None, t(4)),
        Err(StoreError::NotFound(JobId(99)))
    ));
}

#[test]
fn a_waiting_job_changes_printer_and_a_running_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let mut new = gcode_job("ann", 1);
    new.target = Target::Printer("gone".into());
    let job = store.enqueue(&new, t(0)).unwrap();
    assert!(store
        .claim_print(&printer("b"), "h", LEASE, t(1))
        .unwrap()
        .is_none());

    let moved = store
        .set_target(job.id, &Target::Printer("b".into()), t(2))
        .unwrap();
    assert_eq!(
        (moved.target.clone(), moved.state),
        (Target::Printer("b".into()), JobState::Ready)
    );
    let last = store.changes_since(0, 100).unwrap().pop().unwrap();
    assert_eq!((last.job, last.kind), (job.id, ChangeKind::Retargeted));
    // A bad target is refused, naming the field, and changes nothing.
    assert!(matches!(
        store.set_target(job.id, &Target::Printer(" ".into()), t(3)),
        Err(StoreError::InvalidJob(JobSpecError::EmptyText(
            "target printer"
        )))
    ));
    let claim = store
        .claim_print(&printer("b"), "h", LEASE, t(4))
        .unwrap()
        .unwrap();
    assert_eq!(claim.job.id, job.id);
    // Printing: the printer cannot change under it.
    let err = store
        .set_target(job.id, &Target::Any(Requirements::default()), t(5))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotWaiting {
                state: JobState::Printing,
                ..
            }
        ),
        "{err}"
    );
    // Interrupted: it may move, to resume on another printer.
    store.release_worker("h", t(6)).unwrap();
    let any = store
        .set_target(job.id, &Target::Any(Requirements::default()), t(7))
        .unwrap();
    assert_eq!(any.state, JobState::Interrupted);
    assert_eq!(any.target, Target::Any(Requirements::default()));
    // Every requirement column is written, and read back as enqueued.
    let needs = Target::Any(Requirements {
        nozzle_um: Some(600),
        material: Some("PETG".into()),
        min_build_volume: Some(BuildVolume::new(10.0, 20.0, 30.0)),
    });
    let retargeted = store.set_target(job.id, &needs, t(8)).unwrap();
    assert_eq!(retargeted.target, needs);
    let mut new = gcode_job("ann", 2);
    new.target = needs.clone();
    assert_eq!(store.enqueue(&new, t(9)).unwrap().target, needs);
}

#[test]
fn a_printers_last_ended_print_skips_the_running_one_and_other_printers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let last_ended = |printer: &str| {
        store
            .history(&HistoryFilter {
                printer: Some(printer.into()),
                kind: Some(RunKind::Print),
                ended: true,
                limit: 1,
                ..Default::default()
            })
            .unwrap()
    };
    let first = store.enqueue(&gcode_job("ann", 1), t(0)).unwrap();
    let second = store.enqueue(&gcode_job("ann", 2), t(0)).unwrap();
    let other = store.enqueue(&gcode_job("bob", 3), t(0)).unwrap();
    assert!(last_ended("p").is_empty());

    let claim = store
        .claim_print(&printer("p"), "h", LEASE, t(1))
        .unwrap()
        .unwrap();
    assert_eq!(claim.job.id, first.id);
    store
        .fail(&claim.lease, "thermal runaway", &Usage::default(), t(2))
        .unwrap();
    let running = store
        .claim_print(&printer("p"), "h", LEASE, t(3))
        .unwrap()
        .unwrap();
    assert_eq!(running.job.id, second.id);
    let on_q = store
        .claim_print(&printer("q"), "h", LEASE, t(4))
        .unwrap()
        .unwrap();
    assert_eq!(on_q.job.id, other.id);
    store
        .complete(&on_q.lease, &Usage::default(), t(5))
        .unwrap();

    // The running print and printer q's newer one do not count.
    let last = last_ended("p");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].job, first.id);
    assert_eq!(last[0].result, Some(RunResult::Failed));
    assert_eq!(last[0].failure.as_deref(), Some("thermal runaway"));
    assert_eq!(last[0].ended_at, Some(t(2)));

    store
        .complete(&running.lease, &Usage::default(), t(6))
        .unwrap();
    let last = last_ended("p");
    assert_eq!(last[0].job, second.id);
    assert_eq!(last[0].result, Some(RunResult::Completed));
}

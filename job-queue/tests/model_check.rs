//! Property test: random operation sequences against a real SQLite store agree with a
//! simple in-memory model built on the pure state machine (`JobState::apply`).

mod common;

use std::collections::BTreeMap;

use common::*;
use easyprint_queue::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Enqueue { gcode: bool, copies: u32 },
    ClaimSlicing,
    ClaimPrint,
    FinishSlicing(usize),
    Pause(usize),
    Continue(usize),
    Complete(usize),
    Fail(usize),
    Cancel(usize),
    Retry(usize),
    Abandon(usize),
    WorkerDies,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 1..3u32).prop_map(|(gcode, copies)| Op::Enqueue { gcode, copies }),
        2 => Just(Op::ClaimSlicing),
        3 => Just(Op::ClaimPrint),
        2 => (0..8usize).prop_map(Op::FinishSlicing),
        1 => (0..8usize).prop_map(Op::Pause),
        1 => (0..8usize).prop_map(Op::Continue),
        3 => (0..8usize).prop_map(Op::Complete),
        1 => (0..8usize).prop_map(Op::Fail),
        1 => (0..8usize).prop_map(Op::Cancel),
        1 => (0..8usize).prop_map(Op::Retry),
        1 => (0..8usize).prop_map(Op::Abandon),
        1 => Just(Op::WorkerDies),
    ]
}

/// What the model expects of one job.
#[derive(Debug, Clone)]
struct Expected {
    state: JobState,
    sliced: bool,
    copies: u32,
    copies_done: u32,
}

struct Model {
    jobs: BTreeMap<i64, Expected>,
    /// Leases the (single) worker believes it holds, oldest first; may be stale.
    leases: Vec<Lease>,
}

impl Model {
    /// The job a claim must pick: first in queue order among those in `state`.
    fn next_in(&self, state: JobState) -> Option<i64> {
        self.jobs
            .iter()
            .find(|(_, j)| j.state == state)
            .map(|(id, _)| *id)
    }

    fn current_lease(&self, lease: &Lease, store: &SqliteStore) -> bool {
        store.job(lease.job).unwrap().lease.map(|l| l.run) == Some(lease.run)
    }
}

fn check_lease_op(
    model: &mut Model,
    store: &SqliteStore,
    i: usize,
    event: impl Fn(&Expected) -> JobEvent,
    run: impl FnOnce(&SqliteStore, &Lease) -> Result<Job, StoreError>,
) -> Result<(), TestCaseError> {
    if model.leases.is_empty() {
        return Ok(());
    }
    let lease = model.leases[i % model.leases.len()].clone();
    let held = model.current_lease(&lease, store);
    let expected = &model.jobs[&lease.job.0];
    let event = event(expected);
    let result = run(store, &lease);
    match (held, expected.state.apply(event), result) {
        (false, _, Err(StoreError::LeaseLost { .. })) => {
            model.leases.retain(|l| l != &lease);
        }
        (true, Ok(next), Ok(job)) => {
            prop_assert_eq!(job.state, next, "{} on {:?}", event, expected);
            let e = model.jobs.get_mut(&lease.job.0).unwrap();
            e.state = next;
            e.copies_done = job.copies_done;
            if event == JobEvent::SlicingDone {
                e.sliced = true;
            }
            if !next.holds_lease() {
                model.leases.retain(|l| l != &lease);
            }
        }
        (true, Err(_), Err(StoreError::Transition { .. })) => {}
        (held, want, got) => {
            prop_assert!(false, "lease held {held}, model {want:?}, store {got:?}");
        }
    }
    Ok(())
}

fn check_person_op(
    model: &mut Model,
    store: &SqliteStore,
    i: usize,
    event: impl Fn(&Expected) -> Option<JobEvent>,
    run: impl FnOnce(&SqliteStore, JobId) -> Result<Job, StoreError>,
) -> Result<(), TestCaseError> {
    let Some(id) = model.jobs.keys().nth(i % model.jobs.len().max(1)).copied() else {
        return Ok(());
    };
    let expected = model.jobs[&id].clone();
    let want = event(&expected).map(|e| expected.state.apply(e));
    match (want, run(store, JobId(id))) {
        (Some(Ok(next)), Ok(job)) => {
            prop_assert_eq!(job.state, next);
            model.jobs.get_mut(&id).unwrap().state = next;
            model.leases.retain(|l| l.job.0 != id || next.holds_lease());
        }
        (Some(Err(_)) | None, Err(StoreError::Transition { .. })) => {}
        (want, got) => prop_assert!(
            false,
            "job {id} {expected:?}: model {want:?}, store {got:?}"
        ),
    }
    Ok(())
}

fn run_ops(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).unwrap();
    let mut model = Model {
        jobs: BTreeMap::new(),
        leases: Vec::new(),
    };
    let now = Timestamp(1);
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Enqueue { gcode, copies } => {
                let mut job = if gcode {
                    gcode_job("ann", n as u64)
                } else {
                    model_job("ann", n as u64)
                };
                job.copies = copies;
                let job = store.enqueue(&job, now).unwrap();
                let state = if gcode {
                    JobState::Ready
                } else {
                    JobState::Queued
                };
                prop_assert_eq!(job.state, state);
                model.jobs.insert(
                    job.id.0,
                    Expected {
                        state,
                        sliced: gcode,
                        copies,
                        copies_done: 0,
                    },
                );
            }
            Op::ClaimSlicing | Op::ClaimPrint => {
                let (from, claim) = if matches!(op, Op::ClaimSlicing) {
                    (
                        JobState::Queued,
                        store.claim_slicing("w", LEASE, now).unwrap(),
                    )
                } else {
                    let c = store.claim_print(&printer("p"), "w", LEASE, now).unwrap();
                    (JobState::Ready, c)
                };
                prop_assert_eq!(claim.as_ref().map(|c| c.job.id.0), model.next_in(from));
                if let Some(c) = claim {
                    let next = if from == JobState::Queued {
                        JobState::Slicing
                    } else {
                        JobState::Printing
                    };
                    prop_assert_eq!(c.job.state, next);
                    model.jobs.get_mut(&c.job.id.0).unwrap().state = next;
                    model.leases.push(c.lease);
                }
            }
            Op::FinishSlicing(i) => check_lease_op(
                &mut model,
                &store,
                i,
                |_| JobEvent::SlicingDone,
                |s, l| s.finish_slicing(l, &hash(7), now),
            )?,
            Op::Pause(i) => check_lease_op(
                &mut model,
                &store,
                i,
                |_| JobEvent::Pause,
                |s, l| s.pause(l, now),
            )?,
            Op::Continue(i) => check_lease_op(
                &mut model,
                &store,
                i,
                |_| JobEvent::Continue,
                |s, l| s.continue_print(l, now),
            )?,
            Op::Complete(i) => check_lease_op(
                &mut model,
                &store,
                i,
                |e| JobEvent::Complete {
                    copies_left: e.copies_done + 1 < e.copies,
                },
                |s, l| s.complete(l, &Usage::default(), now),
            )?,
            Op::Fail(i) => check_lease_op(
                &mut model,
                &store,
                i,
                |_| JobEvent::Fail,
                |s, l| s.fail(l, "nozzle clog", &Usage::default(), now),
            )?,
            Op::Cancel(i) => check_person_op(
                &mut model,
                &store,
                i,
                |_| Some(JobEvent::Cancel),
                |s, id| s.cancel(id, now),
            )?,
            Op::Retry(i) => check_person_op(
                &mut model,
                &store,
                i,
                |e| Some(JobEvent::Retry { sliced: e.sliced }),
                |s, id| s.retry(id, now),
            )?,
            // Abandon is only for interrupted prints, even where the machine allows Fail.
            Op::Abandon(i) => check_person_op(
                &mut model,
                &store,
                i,
                |e| (e.state == JobState::Interrupted).then_some(JobEvent::Fail),
                |s, id| s.abandon(id, "gave up", now),
            )?,
            Op::WorkerDies => {
                let changed = store.release_worker("w", now).unwrap();
                for job in changed {
                    let e = model.jobs.get_mut(&job.id.0).unwrap();
                    prop_assert_eq!(Ok(job.state), e.state.apply(JobEvent::LeaseExpired));
                    e.state = job.state;
                }
                let leased = model
                    .jobs
                    .values()
                    .filter(|e| e.state.holds_lease())
                    .count();
                prop_assert_eq!(leased, 0);
            }
        }
        // Every job in the store is where the model says.
        for job in store.jobs(&JobFilter::default()).unwrap() {
            let e = &model.jobs[&job.id.0];
            prop_assert_eq!(job.state, e.state, "job {}", job.id);
            prop_assert_eq!(job.lease.is_some(), e.state.holds_lease());
        }
    }
    drop(store);
    assert_consistent(&path);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_agrees_with_the_state_machine(ops in prop::collection::vec(op(), 1..60)) {
        run_ops(ops)?;
    }
}

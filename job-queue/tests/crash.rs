//! Crash test: a child process performs random queue operations and is killed with SIGKILL
//! at random moments, many times. After each kill the parent reopens the file and checks
//! that every operation the child acknowledged is there, nothing is half-applied, no job
//! is lost, duplicated or in two states, and the dead worker's jobs are recoverable.
//!
//! The child is this test binary re-executed (`--ignored --exact crash_child`) with
//! environment variables telling it the file, seed and clock. It prints `ACK` lines to a
//! pipe only after the operation's commit returned.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use easyprint_queue::*;

const CHILD_DB: &str = "EASYPRINT_QUEUE_CRASH_DB";
const CHILD_SEED: &str = "EASYPRINT_QUEUE_CRASH_SEED";
const CHILD_CLOCK: &str = "EASYPRINT_QUEUE_CRASH_CLOCK";
const WORKER: &str = "crash-child";

/// Runs only as the child of `kill_nine_at_random_moments_loses_nothing_acknowledged`.
#[test]
#[ignore = "child process of the crash test, started by it"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut clock: i64 = std::env::var(CHILD_CLOCK).unwrap().parse().unwrap();
    let mut rng = Rng::new(seed);
    let store = open(path.as_ref());
    let out = std::io::stdout();
    let ack = |job: &Job| {
        // Written only after the commit returned; a kill may fall between the two.
        let mut out = out.lock();
        writeln!(out, "ACK {} {} {}", job.id.0, job.state, job.copies_done).unwrap();
        out.flush().unwrap();
    };
    let mut leases: Vec<Lease> = Vec::new();
    let mut known: Vec<JobId> = store
        .jobs(&JobFilter::default())
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    let printers = [printer("p1"), printer("p2")];
    for n in 0u64.. {
        clock += 100;
        let now = Timestamp(clock);
        match rng.below(12) {
            0..=2 => {
                let mut job = if rng.below(2) == 0 {
                    gcode_job("ann", seed ^ n)
                } else {
                    model_job("bob", seed ^ n)
                };
                job.copies = 1 + u32::try_from(rng.below(2)).unwrap();
                job.priority = i32::try_from(rng.below(3)).unwrap();
                let job = store.enqueue(&job, now).unwrap();
                known.push(job.id);
                ack(&job);
            }
            3 => {
                if let Some(c) = store.claim_slicing(WORKER, LEASE, now).unwrap() {
                    ack(&c.job);
                    leases.push(c.lease);
                }
            }
            4 | 5 => {
                let p = &printers[usize::try_from(rng.below(2)).unwrap()];
                if let Some(c) = store.claim_print(p, WORKER, LEASE, now).unwrap() {
                    ack(&c.job);
                    leases.push(c.lease);
                }
            }
            6 | 7 if !leases.is_empty() => {
                let i = usize::try_from(rng.below(leases.len() as u64)).unwrap();
                let lease = leases[i].clone();
                let job = store.job(lease.job).unwrap();
                if job.state == JobState::Slicing {
                    let job = store.finish_slicing(&lease, &hash(n), now).unwrap();
                    leases.swap_remove(i);
                    ack(&job);
                } else if job.state == JobState::Printing && rng.below(3) > 0 {
                    let p = progress(n, u32::try_from(n / 10).unwrap());
                    store.record_progress(&lease, &p, now).unwrap();
                    ack(&job);
                } else if job.state == JobState::Printing {
                    let usage = Usage {
                        print_time: Duration::from_secs(60),
                        filament_mm: 10.0,
                    };
                    let job = store.complete(&lease, &usage, now).unwrap();
                    leases.swap_remove(i);
                    ack(&job);
                }
            }
            8 if !leases.is_empty() => {
                let i = usize::try_from(rng.below(leases.len() as u64)).unwrap();
                let usage = Usage::default();
                let job = store
                    .fail(&leases[i], "random failure", &usage, now)
                    .unwrap();
                leases.swap_remove(i);
                ack(&job);
            }
            9 if !known.is_empty() => {
                let id = known[usize::try_from(rng.below(known.len() as u64)).unwrap()];
                match store.cancel(id, now) {
                    Ok(job) => {
                        leases.retain(|l| l.job != id);
                        ack(&job);
                    }
                    Err(StoreError::Transition { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            10 if !known.is_empty() => {
                let id = known[usize::try_from(rng.below(known.len() as u64)).unwrap()];
                match store.retry(id, now) {
                    Ok(job) => ack(&job),
                    Err(StoreError::Transition { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            11 if !known.is_empty() => {
                let id = known[usize::try_from(rng.below(known.len() as u64)).unwrap()];
                let job = store.reorder(id, Placement::First, now).unwrap();
                ack(&job);
            }
            _ => {}
        }
    }
}

/// What the parent knows of a job: its state and copies done.
type Snapshot = BTreeMap<i64, (JobState, u32)>;

fn snapshot(store: &SqliteStore) -> Snapshot {
    store
        .jobs(&JobFilter::default())
        .unwrap()
        .into_iter()
        .map(|j| (j.id.0, (j.state, j.copies_done)))
        .collect()
}

/// Any single event that takes `from` to `to` (or none needed).
fn one_step(from: JobState, to: JobState) -> bool {
    from == to || ALL_EVENTS.into_iter().any(|e| from.apply(e) == Ok(to))
}

#[test]
fn kill_nine_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    drop(open(&path));
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(0xC0FFEE);
    let mut model: Snapshot = BTreeMap::new();
    let started = Instant::now();
    let (mut kills, mut total_acks, mut unacked_commits) = (0, 0, 0);
    // Bounded by time as well as count so a slow CI machine stays within budget.
    while kills < 60 && started.elapsed() < Duration::from_secs(40) {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &path)
            .env(CHILD_SEED, rng.next().to_string())
            .env(CHILD_CLOCK, (i64::from(kills) * 1_000_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                // libtest prints "test crash_child ... " without a newline before the test
                // runs, so the first acknowledgement shares its line.
                .filter_map(|l| l.find("ACK ").map(|i| l[i..].to_string()))
                .collect::<Vec<String>>()
        });
        // Kill at a random moment: sometimes during start-up, mostly mid-operations.
        std::thread::sleep(Duration::from_micros(2_000 + rng.below(120_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the child must die by the signal, not exit"
        );
        let acks = reader.join().unwrap();
        kills += 1;
        total_acks += acks.len();

        // Everything acknowledged, in order, updates the expected state.
        for line in &acks {
            let f: Vec<&str> = line.split(' ').collect();
            let id: i64 = f[1].parse().unwrap();
            let state = JobState::from_name(f[2]).unwrap();
            model.insert(id, (state, f[3].parse().unwrap()));
        }

        assert_consistent(&path);
        let store = open(&path);
        let actual = snapshot(&store);
        // At most the one operation in flight at the kill committed without its ACK.
        let mut diverged = Vec::new();
        for (id, expected) in &model {
            let got = actual
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged job {id} lost"));
            if got != expected {
                assert!(
                    one_step(expected.0, got.0),
                    "job {id}: acknowledged {expected:?}, found {got:?}"
                );
                diverged.push(*id);
            }
        }
        let new: Vec<&i64> = actual.keys().filter(|id| !model.contains_key(id)).collect();
        assert!(
            diverged.len() + new.len() <= 1,
            "more than one unacknowledged change: {diverged:?} {new:?}"
        );
        unacked_commits += diverged.len() + new.len();

        // Recovery: the dead worker's prints become interrupted, its slicing goes back to
        // the queue; a person then retries or abandons each interrupted print.
        let recovered = store
            .release_worker(WORKER, Timestamp(i64::from(kills) * 1_000_000_000 - 1))
            .unwrap();
        for job in recovered {
            assert!(matches!(
                job.state,
                JobState::Interrupted | JobState::Queued
            ));
            if job.state == JobState::Interrupted {
                if let Some(record) = store.resume_record(job.id).unwrap() {
                    if record.layer.is_some() {
                        resume_point(&record, ResumeFrom::LayerStart).unwrap();
                    }
                }
                store
                    .retry(job.id, Timestamp(i64::from(kills) * 1_000_000_000))
                    .unwrap();
            }
        }
        assert!(store
            .jobs(&JobFilter {
                states: vec![JobState::Slicing, JobState::Printing, JobState::Paused],
                ..Default::default()
            })
            .unwrap()
            .is_empty());
        model = snapshot(&store);
    }
    assert!(kills >= 10, "only {kills} kills in the time budget");
    assert!(
        total_acks > 50,
        "the child barely ran: {total_acks} acknowledgements"
    );
    eprintln!(
        "crash test: {kills} kills, {total_acks} acknowledged operations, {unacked_commits} \
         committed-but-unacknowledged, {} jobs",
        model.len()
    );
}

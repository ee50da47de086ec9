//! Several claimers, in threads and in separate processes, never get the same job.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use common::*;
use easyprint_queue::*;

const CHILD_DB: &str = "EASYPRINT_QUEUE_CLAIM_DB";
const CHILD_NAME: &str = "EASYPRINT_QUEUE_CLAIM_NAME";

/// Claims until the queue is empty and prints each claimed id (child of the process test).
fn claim_all(store: &SqliteStore, name: &str, mut report: impl FnMut(i64)) {
    let p = printer(name);
    while let Some(claim) = store.claim_print(&p, name, LEASE, Timestamp(1)).unwrap() {
        report(claim.job.id.0);
        // "Printing": leaves the lock to the other claimers between transactions.
        std::thread::sleep(std::time::Duration::from_millis(2));
        store
            .complete(&claim.lease, &Usage::default(), Timestamp(2))
            .unwrap();
    }
}

fn fill(path: &std::path::Path, jobs: u64) -> BTreeSet<i64> {
    let store = open(path);
    (0..jobs)
        .map(|n| {
            store
                .enqueue(&gcode_job("ann", n), Timestamp(0))
                .unwrap()
                .id
                .0
        })
        .collect()
}

fn assert_disjoint_cover(per_claimer: &[Vec<i64>], all: &BTreeSet<i64>) {
    let mut seen = BTreeSet::new();
    for ids in per_claimer {
        for id in ids {
            assert!(seen.insert(*id), "job {id} claimed twice");
        }
    }
    assert_eq!(&seen, all, "every job claimed exactly once");
    assert!(
        per_claimer.iter().filter(|ids| !ids.is_empty()).count() > 1,
        "claimers did not actually compete: {:?}",
        per_claimer.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

#[test]
fn threads_with_own_connections_never_share_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let all = fill(&path, 120);
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = open(&path);
                barrier.wait();
                let mut got = Vec::new();
                claim_all(&store, &format!("printer-{i}"), |id| got.push(id));
                got
            })
        })
        .collect();
    let results: Vec<Vec<i64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_disjoint_cover(&results, &all);
    assert_consistent(&path);
}

#[test]
fn one_store_shared_by_threads_never_shares_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let all = fill(&path, 80);
    let store = Arc::new(open(&path));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                claim_all(&store, &format!("printer-{i}"), |id| got.push(id));
                got
            })
        })
        .collect();
    let results: Vec<Vec<i64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut seen = BTreeSet::new();
    for id in results.iter().flatten() {
        assert!(seen.insert(*id), "job {id} claimed twice");
    }
    assert_eq!(seen, all);
}

/// Runs only as a child of `processes_never_share_a_job`.
#[test]
#[ignore = "child process of the concurrency test, started by it"]
fn claim_child() {
    let (Ok(path), Ok(name)) = (std::env::var(CHILD_DB), std::env::var(CHILD_NAME)) else {
        return;
    };
    let store = open(path.as_ref());
    claim_all(&store, &name, |id| println!("\nCLAIMED {id}"));
}

#[test]
fn processes_never_share_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let all = fill(&path, 150);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "claim_child", "--nocapture"])
                .env(CHILD_DB, &path)
                .env(CHILD_NAME, format!("printer-{i}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<Vec<i64>> = children
        .into_iter()
        .map(|mut child| {
            let out = BufReader::new(child.stdout.take().unwrap());
            let ids = out
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("CLAIMED ").map(|id| id.parse().unwrap()))
                .collect();
            assert!(child.wait().unwrap().success());
            ids
        })
        .collect();
    assert_disjoint_cover(&results, &all);
    assert_consistent(&path);
}

//! The host-wide slice slot is shared by processes whatever their `TMPDIR`: each test spawns
//! this test binary again as helper processes (`SLOT_ROLE`) and talks to them over pipes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use easyprint_slicer::{CancelToken, ConcurrencyLimit, SLOTS_ENV};

const ROLE: &str = "EASYPRINT_SLOT_TEST_ROLE";
const MARK: &str = "slot-test: ";

/// Runs only inside helper processes: `hold` takes the default slot, says so and keeps it
/// until its stdin closes; `probe` reports whether the slot is free; both first print the slot
/// directory they use.
#[test]
fn slot_helper_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // the normal test run: nothing to do
    };
    let limit = ConcurrencyLimit::host_default();
    // A marker: the harness prints `test slot_helper_process ... ` before our first line.
    println!("{MARK}dir {}", limit.slot_dir().unwrap().display());
    match role.as_str() {
        "hold" => {
            let guard = limit.acquire(&CancelToken::new()).unwrap();
            println!("{MARK}acquired");
            std::io::stdout().flush().unwrap();
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
            drop(guard);
        }
        "probe" => {
            let state = if limit.try_acquire().is_some() {
                "free"
            } else {
                "busy"
            };
            println!("{MARK}{state}");
        }
        other => panic!("unknown role {other}"),
    }
}

fn helper(role: &str, tmpdir: &Path, slots: Option<&Path>) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "slot_helper_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env("TMPDIR", tmpdir)
    .env_remove(SLOTS_ENV)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    if let Some(s) = slots {
        cmd.env(SLOTS_ENV, s);
    }
    let mut child = cmd.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// The helper's next report that starts with one of `words` (test harness noise skipped).
fn next_word(out: &mut BufReader<ChildStdout>, words: &[&str]) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "helper ended early");
        if let Some((_, report)) = line.split_once(MARK) {
            if words.iter().any(|w| report.starts_with(w)) {
                return report.trim().to_owned();
            }
        }
    }
}

fn probe(tmpdir: &Path, slots: Option<&Path>) -> String {
    let (mut child, mut out) = helper("probe", tmpdir, slots);
    let answer = next_word(&mut out, &["free", "busy"]);
    assert!(child.wait().unwrap().success());
    answer
}

#[test]
fn processes_with_different_tmpdirs_share_one_slot() {
    let root = tempfile::tempdir().unwrap();
    let (tmp_a, tmp_b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&tmp_a).unwrap();
    std::fs::create_dir_all(&tmp_b).unwrap();
    let slots = root.path().join("slots");
    let (mut holder, mut out) = helper("hold", &tmp_a, Some(&slots));
    assert_eq!(
        next_word(&mut out, &["dir"]),
        format!("dir {}", slots.display())
    );
    assert_eq!(next_word(&mut out, &["acquired"]), "acquired");
    assert_eq!(probe(&tmp_b, Some(&slots)), "busy");
    drop(holder.stdin.take()); // the holder releases and exits
    assert!(holder.wait().unwrap().success());
    assert_eq!(probe(&tmp_b, Some(&slots)), "free");
}

#[test]
fn the_default_slot_dir_does_not_follow_tmpdir() {
    let root = tempfile::tempdir().unwrap();
    let (mut child, mut out) = helper("probe", root.path(), None);
    let dir = next_word(&mut out, &["dir"]);
    let _ = next_word(&mut out, &["free", "busy"]);
    assert!(child.wait().unwrap().success());
    let dir = dir.strip_prefix("dir ").unwrap();
    assert!(!Path::new(dir).starts_with(root.path()), "{dir}");
    assert_eq!(ConcurrencyLimit::default_slot_dir().to_str(), Some(dir));
}

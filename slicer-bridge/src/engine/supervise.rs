//! Running an engine process: isolation, bounded stderr streaming, cancel and timeout.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::isolation;

/// Longest stderr line kept (the engine's settings dump is one ~30 KB line).
const MAX_LINE: usize = 256 * 1024;
/// How often the supervisor checks the cancel flag and the deadline.
const POLL: Duration = Duration::from_millis(5);

/// Cancels a running slice from another thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the slice to stop; the engine's process group is killed within milliseconds.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancel was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// How a supervised run ended.
#[derive(Debug)]
pub(crate) enum RunEnd {
    Exited(ExitStatus),
    Cancelled,
    TimedOut,
}

/// Limits how many engines run at once: within this process, and optionally across every
/// process on the host through lock files (default: one slice per host).
#[derive(Debug)]
pub struct ConcurrencyLimit {
    max: usize,
    running: Mutex<usize>,
    freed: Condvar,
    /// Directory of `slot-<n>.lock` files shared by every process on the host.
    host_slots: Option<PathBuf>,
}

impl ConcurrencyLimit {
    /// At most `max` (at least 1) concurrent slices in this process.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            running: Mutex::new(0),
            freed: Condvar::new(),
            host_slots: None,
        })
    }

    /// At most `max` concurrent slices across all processes using the same `dir` (each slot
    /// is an `flock` on `dir/slot-<n>.lock`, released by the kernel if a process dies).
    pub fn per_host(max: usize, dir: impl Into<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            running: Mutex::new(0),
            freed: Condvar::new(),
            host_slots: Some(dir.into()),
        })
    }

    /// The default: one slice at a time per host, shared by every slicer of this process and
    /// every process on the host whatever its `TMPDIR` (slots in
    /// [`ConcurrencyLimit::default_slot_dir`]).
    pub fn host_default() -> Arc<Self> {
        static DEFAULT: std::sync::OnceLock<Arc<ConcurrencyLimit>> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| ConcurrencyLimit::per_host(1, Self::default_slot_dir()))
            .clone()
    }

    /// Where the host-wide slots live by default: `$EASYPRINT_SLICER_SLOTS` if set, else
    /// `/run/lock/easyprint-slicer` (shared by every user and process of the host, emptied at
    /// boot) when `/run/lock` is writable, else `$XDG_RUNTIME_DIR/easyprint-slicer` (shared by
    /// this user's processes), else the temp dir's `easyprint-slicer-slots`.
    pub fn default_slot_dir() -> PathBuf {
        let writable = |dir: &std::path::Path| {
            std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) && isolation::can_write(dir)
        };
        choose_slot_dir(
            std::env::var_os(SLOTS_ENV).map(PathBuf::from),
            Some(PathBuf::from(RUN_LOCK)).filter(|d| writable(d)),
            std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|d| d.is_absolute() && writable(d)),
            std::env::temp_dir(),
        )
    }

    /// The directory of host-wide slots, if this limit has them.
    pub fn slot_dir(&self) -> Option<&std::path::Path> {
        self.host_slots.as_deref()
    }

    /// Wait for a free slot (or cancel): `None` when cancelled while waiting. A host slot that
    /// cannot be created (unusable dir) degrades to the in-process limit.
    pub fn acquire(self: &Arc<Self>, cancel: &CancelToken) -> Option<SlotGuard> {
        loop {
            if let Some(guard) = self.take(true) {
                return Some(guard);
            }
            if cancel.is_cancelled() {
                return None;
            }
            // In-process waiters are woken by the condvar in `take`; host slots are polled.
            std::thread::sleep(POLL * 4);
        }
    }

    /// Take a free slot without waiting: `None` when all are busy (here or in another process).
    pub fn try_acquire(self: &Arc<Self>) -> Option<SlotGuard> {
        self.take(false)
    }

    fn take(self: &Arc<Self>, wait_in_process: bool) -> Option<SlotGuard> {
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if *running >= self.max {
                if !wait_in_process {
                    return None;
                }
                running = self
                    .freed
                    .wait_timeout(running, POLL * 4)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                if *running >= self.max {
                    return None;
                }
            }
            *running += 1;
        }
        let mut guard = SlotGuard {
            limit: self.clone(),
            _host_lock: None,
        };
        let Some(dir) = &self.host_slots else {
            return Some(guard);
        };
        if ensure_shared_dir(dir).is_err() {
            return Some(guard);
        }
        for n in 0..self.max {
            let path = dir.join(format!("slot-{n}.lock"));
            // flock needs no write access: another user's lock file is opened read-only.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .or_else(|_| std::fs::File::open(&path));
            let Ok(file) = file else {
                return Some(guard);
            };
            match isolation::try_lock_exclusive(&file) {
                Ok(true) => {
                    guard._host_lock = Some(file);
                    return Some(guard);
                }
                Ok(false) => {}
                Err(_) => return Some(guard),
            }
        }
        None // `guard` drops: the in-process slot is released
    }
}

/// Environment variable naming the directory of host-wide slice slots.
pub const SLOTS_ENV: &str = "EASYPRINT_SLICER_SLOTS";

/// Debian's (and the FHS's) directory for lock files shared by every process.
const RUN_LOCK: &str = "/run/lock";

/// The slot directory from the candidates, in order of preference.
fn choose_slot_dir(
    explicit: Option<PathBuf>,
    run_lock: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    temp_dir: PathBuf,
) -> PathBuf {
    explicit
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| run_lock.map(|d| d.join("easyprint-slicer")))
        .or_else(|| runtime_dir.map(|d| d.join("easyprint-slicer")))
        .unwrap_or_else(|| temp_dir.join("easyprint-slicer-slots"))
}

/// Create `dir` if needed; one we create in a shared place is world-writable with the sticky
/// bit (like /tmp), so other users' processes can add their own lock files.
fn ensure_shared_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let shared = dir
        .parent()
        .is_some_and(|p| p == std::path::Path::new(RUN_LOCK));
    if shared {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
    }
    Ok(())
}

/// A held slice slot; released on drop.
#[derive(Debug)]
pub struct SlotGuard {
    limit: Arc<ConcurrencyLimit>,
    /// Holds the host-wide `flock` while open.
    _host_lock: Option<std::fs::File>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut running = self.limit.running.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        self.limit.freed.notify_one();
    }
}

/// Read lines of at most [`MAX_LINE`] bytes (longer ones are truncated, never buffered whole).
fn for_each_line(reader: impl Read, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut overflow = false;
        loop {
            let chunk = match reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            if chunk.is_empty() {
                if !buf.is_empty() {
                    f(&String::from_utf8_lossy(&buf));
                }
                return;
            }
            let (take, done) = match memchr_newline(chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..take.min(room)]);
            overflow |= take > room;
            reader.consume(take);
            if done {
                break;
            }
        }
        let _ = overflow;
        f(&String::from_utf8_lossy(&buf));
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

/// Spawn `cmd` isolated, hand each stdout/stderr line to `on_line` (on this thread), and wait
/// for the end, a cancel or the timeout. On cancel/timeout the whole process group is killed
/// and reaped before returning.
pub(crate) fn run(
    mut cmd: Command,
    idle: bool,
    cancel: &CancelToken,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(Stream, &str),
) -> std::io::Result<RunEnd> {
    isolation::isolate(&mut cmd, idle);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    let (tx, rx) = mpsc::channel::<(Stream, String)>();
    let streams: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ];
    let readers: Vec<_> = streams
        .into_iter()
        .map(|(stream, pipe)| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                if let Some(pipe) = pipe {
                    for_each_line(pipe, |l| {
                        let _ = tx.send((stream, l.to_owned()));
                    });
                }
            })
        })
        .collect();
    drop(tx);
    let (exit_tx, exit_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = exit_tx.send(());
        status
    });
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut end = None;
    loop {
        // Drain stderr lines first so progress flows while the engine runs.
        match rx.recv_timeout(POLL) {
            Ok((stream, line)) => {
                on_line(stream, &line);
                while let Ok((stream, line)) = rx.try_recv() {
                    on_line(stream, &line);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stderr closed: the engine is exiting; wait for the waiter below.
                if exit_rx.recv_timeout(POLL).is_ok() {
                    break;
                }
            }
        }
        if exit_rx.try_recv().is_ok() {
            break;
        }
        if cancel.is_cancelled() {
            end = Some(RunEnd::Cancelled);
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            end = Some(RunEnd::TimedOut);
        }
        if end.is_some() {
            // The leader is not reaped yet (the waiter would have signalled), so `pgid` still
            // names the engine's group.
            isolation::kill_group(pgid);
            break;
        }
    }
    let status = waiter
        .join()
        .map_err(|_| std::io::Error::other("engine waiter thread panicked"))??;
    // Anything else left in the group (nothing, for CuraEngine) goes too.
    if isolation::group_alive(pgid) {
        isolation::kill_group(pgid);
    }
    for reader in readers {
        let _ = reader.join();
    }
    while let Ok((stream, line)) = rx.try_recv() {
        on_line(stream, &line);
    }
    Ok(end.unwrap_or(RunEnd::Exited(status)))
}

#[cfg(test)]
mod slot_dir_tests {
    use super::*;

    #[test]
    fn slot_dir_prefers_explicit_then_run_lock_then_runtime_dir() {
        let p = |s: &str| Some(PathBuf::from(s));
        let tmp = PathBuf::from("/tmp/x");
        assert_eq!(
            choose_slot_dir(p("/e"), p("/run/lock"), p("/run/user/1"), tmp.clone()),
            PathBuf::from("/e")
        );
        assert_eq!(
            choose_slot_dir(p(""), p("/run/lock"), None, tmp.clone()),
            PathBuf::from("/run/lock/easyprint-slicer")
        );
        assert_eq!(
            choose_slot_dir(None, None, p("/run/user/1"), tmp.clone()),
            PathBuf::from("/run/user/1/easyprint-slicer")
        );
        assert_eq!(
            choose_slot_dir(None, None, None, tmp),
            PathBuf::from("/tmp/x/easyprint-slicer-slots")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_slots_exclude_other_holders() {
        let dir = tempfile::tempdir().unwrap();
        // Two limits on one directory stand for two processes: flock conflicts between
        // separate open files even within one process.
        let a = ConcurrencyLimit::per_host(1, dir.path());
        let b = ConcurrencyLimit::per_host(1, dir.path());
        let held = a.acquire(&CancelToken::new()).unwrap();
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            c2.cancel();
        });
        assert!(
            b.acquire(&cancel).is_none(),
            "slot is taken by the other holder"
        );
        t.join().unwrap();
        drop(held);
        assert!(b.acquire(&CancelToken::new()).is_some());
    }

    #[test]
    fn long_lines_are_truncated_not_buffered() {
        let mut data = vec![b'x'; MAX_LINE * 2];
        data.extend_from_slice(b"\nshort\nlast");
        let mut lines = Vec::new();
        for_each_line(&data[..], |l| lines.push(l.len()));
        assert_eq!(lines, [MAX_LINE, 6, 4]);
    }

    #[test]
    fn cancel_kills_the_group_promptly() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30; echo never >&2"]);
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c2.cancel();
            Instant::now()
        });
        let mut lines = Vec::new();
        let end = run(cmd, true, &cancel, None, |_, l| lines.push(l.to_owned())).unwrap();
        let latency = t.join().unwrap().elapsed();
        assert!(matches!(end, RunEnd::Cancelled));
        assert!(lines.is_empty());
        // Generous bound: this only proves the kill does not wait for the 30 s sleeps.
        assert!(latency < Duration::from_secs(5), "{latency:?}");
    }

    #[test]
    fn timeout_and_exit_status() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let end = run(
            cmd,
            false,
            &CancelToken::new(),
            Some(Duration::from_millis(50)),
            |_, _| {},
        )
        .unwrap();
        assert!(matches!(end, RunEnd::TimedOut));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one >&2; echo two; exit 3"]);
        let mut lines = Vec::new();
        let end = run(cmd, false, &CancelToken::new(), None, |s, l| {
            lines.push((s == Stream::Stdout, l.to_owned()))
        })
        .unwrap();
        assert!(matches!(end, RunEnd::Exited(s) if s.code() == Some(3)));
        lines.sort();
        assert_eq!(
            lines,
            [(false, "one\n".to_owned()), (true, "two\n".to_owned())]
        );
    }
}

//! Driving the `easyprint` server binary from bench commands: administration through its CLI,
//! start-up on a free port, raw keep-alive GETs (so the client adds as little as possible) and
//! RSS from `/proc`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `easyprint` binary named by the bench command's first argument (default
/// `target/release/easyprint`); panics with what to do when it is missing.
pub fn binary_from_args() -> PathBuf {
    let binary = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/release/easyprint".into()),
    );
    assert!(
        binary.exists(),
        "{} not found: build it first",
        binary.display()
    );
    binary
}

/// Runs a CLI subcommand with `stdin`; returns its standard output.
pub fn cli(binary: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Creates the account `bench` (an administrator when `admin`) with the CLI and returns a new
/// API key of it.
pub fn bench_account(binary: &Path, config: &Path, admin: bool) -> String {
    let config = config.to_str().unwrap();
    let mut args = vec!["user", "add", "--config", config, "bench"];
    if admin {
        args.push("--admin");
    }
    cli(binary, &args, "bench password\n");
    cli(
        binary,
        &["apikey", "--config", config, "--user", "bench"],
        "",
    )
    .trim()
    .to_owned()
}

/// Spawns the server on a free port and polls `/api/version` until it answers 200.
pub fn start(binary: &Path, config: &Path, key: &str) -> (Server, SocketAddr, Duration) {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = Instant::now();
    let child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(config)
        .env("EASYPRINT_LISTEN", addr.to_string())
        .env("EASYPRINT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if get(&mut stream, &mut reader, "/api/version", key) == 200 {
                return (server, addr, started.elapsed());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not answer"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// One keep-alive GET, with `key` as `X-Api-Key` unless it is empty; returns the status (0 on a
/// broken connection).
pub fn get(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    path: &str,
    key: &str,
) -> u16 {
    let request = if key.is_empty() {
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n")
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nX-Api-Key: {key}\r\n\r\n")
    };
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return 0;
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    status
}

/// Resident set size of `pid` and its descendants in MB (0 for a process that is gone).
pub fn rss_mb(pid: u32) -> f64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    own / 1024.0 + children(pid).into_iter().map(rss_mb).sum::<f64>()
}

/// CPU time (user + system, all threads) `pid` has used so far; zero for a process that is gone.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Number of threads of `pid`.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Direct children of `pid`, from every thread's `/proc/<pid>/task/<tid>/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Median of five starts to the first answer, with the last server left running.
pub fn start_five(binary: &Path, config: &Path, key: &str) -> (Server, SocketAddr, Vec<Duration>) {
    let mut startups = Vec::new();
    for _ in 0..4 {
        let (server, _, took) = start(binary, config, key);
        startups.push(took);
        drop(server);
    }
    let (server, addr, took) = start(binary, config, key);
    startups.push(took);
    startups.sort();
    (server, addr, startups)
}

/// Median, 99th percentile and maximum of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Of `times` (sorted here).
    pub fn of(times: &mut [Duration]) -> Percentiles {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Percentiles {
            p50: ms(times[times.len() / 2]),
            p99: ms(times[times.len() * 99 / 100]),
            max: ms(times[times.len() - 1]),
        }
    }
}

/// `n` sequential keep-alive GETs of `path` after 200 warm-up ones; every answer must be 200,
/// 204 (a public probe) or 409 (an offline printer).
pub fn get_latency(addr: SocketAddr, path: &str, key: &str, n: usize) -> Percentiles {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let started = Instant::now();
        let status = get(&mut stream, &mut reader, path, key);
        if i >= 200 {
            times.push(started.elapsed());
        }
        assert!(matches!(status, 200 | 204 | 409), "{path}: {status}");
    }
    Percentiles::of(&mut times)
}

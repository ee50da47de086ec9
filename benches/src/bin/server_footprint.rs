//! Startup time, idle memory and REST latency of the `easyprint` server binary.
//!
//! Build the server first, then run:
//!
//! ```sh
//! cargo build --release -p easyprint-server
//! cargo run --release -p easyprint-benches --bin server_footprint -- target/release/easyprint
//! ```
//!
//! Startup is measured from process spawn to the first `200` answer of `/api/version`; RSS is
//! read from `/proc/<pid>/status` after one second idle and after the latency runs; latency is
//! 2000 sequential keep-alive requests per endpoint from one local client (plain HTTP/1.1 over
//! `std::net`, so the client adds as little as possible). OctoPrint's figures for comparison are
//! the ones measured on this machine by `../shared/peers/octoprint/measure.sh` (not re-run here).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// OctoPrint 1.11.8 on this machine (shared/docs/octoprint-api.md, section 6).
const OCTOPRINT_STARTUP_S: f64 = 3.72;
const OCTOPRINT_RSS_MB: f64 = 107.8;
const OCTOPRINT_PRINTER_P50_MS: f64 = 3.91;
const OCTOPRINT_PRINTER_P99_MS: f64 = 6.40;
const OCTOPRINT_JOB_P50_MS: f64 = 3.23;
const OCTOPRINT_JOB_P99_MS: f64 = 4.75;

fn main() {
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
    let dir = std::env::temp_dir().join(format!("easyprint-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("easyprint.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", dir.join("data"))).unwrap();
    cli(
        &binary,
        &["user", "add", "--config", config.to_str().unwrap(), "bench"],
        "bench password\n",
    );
    let key = cli(
        &binary,
        &[
            "apikey",
            "--config",
            config.to_str().unwrap(),
            "--user",
            "bench",
        ],
        "",
    )
    .trim()
    .to_owned();

    let mut startups = Vec::new();
    for _ in 0..5 {
        let (server, addr, took) = start(&binary, &config, &key);
        startups.push(took);
        drop(server);
        let _ = addr;
    }
    startups.sort();
    let startup = startups[startups.len() / 2];

    let (server, addr, _) = start(&binary, &config, &key);
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = rss_mb(server.0.id());
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut results = Vec::new();
    for path in ["/api/version", "/api/job", "/api/printer", "/api/files"] {
        let mut times = Vec::with_capacity(2000);
        for i in 0..2200 {
            let started = Instant::now();
            let status = get(&mut stream, &mut reader, path, &key);
            if i >= 200 {
                times.push(started.elapsed());
            }
            assert!(status == 200 || status == 409, "{path}: {status}");
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        results.push((
            path,
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            ms(times[times.len() - 1]),
        ));
    }
    let rss_after = rss_mb(server.0.id());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    println!("easyprint server footprint ({})", binary.display());
    println!(
        "startup to first answer  median {:6.1} ms  (5 starts: {})   OctoPrint {:.2} s  -> {:.0}x faster",
        startup.as_secs_f64() * 1000.0,
        startups.iter().map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0)).collect::<Vec<_>>().join(" / "),
        OCTOPRINT_STARTUP_S,
        OCTOPRINT_STARTUP_S / startup.as_secs_f64()
    );
    println!(
        "RSS idle                 {rss_idle:6.1} MB   after 8800 requests {rss_after:.1} MB   OctoPrint {OCTOPRINT_RSS_MB} MB -> {:.1}x less",
        OCTOPRINT_RSS_MB / rss_idle
    );
    for (path, p50, p99, max) in results {
        let peer = match path {
            "/api/printer" => format!(
                "   OctoPrint p50 {OCTOPRINT_PRINTER_P50_MS} / p99 {OCTOPRINT_PRINTER_P99_MS} ms (answers 200 with a connected printer; ours is 409 offline)"
            ),
            "/api/job" => format!("   OctoPrint p50 {OCTOPRINT_JOB_P50_MS} / p99 {OCTOPRINT_JOB_P99_MS} ms"),
            _ => String::new(),
        };
        println!("latency {path:<14}  p50 {p50:6.3} ms  p99 {p99:6.3} ms  max {max:6.3} ms{peer}");
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(binary: &Path, args: &[&str], stdin: &str) -> String {
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

/// Spawns the server on a free port and polls `/api/version` until it answers 200.
fn start(binary: &Path, config: &Path, key: &str) -> (Server, SocketAddr, Duration) {
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

/// One keep-alive GET; returns the status (0 on a broken connection).
fn get(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, path: &str, key: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nX-Api-Key: {key}\r\n\r\n");
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

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

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

use std::time::Duration;

use easyprint_benches::server::{bench_account, binary_from_args, get_latency, rss_mb, start_five};

/// OctoPrint 1.11.8 on this machine (shared/docs/octoprint-api.md, section 6).
const OCTOPRINT_STARTUP_S: f64 = 3.72;
const OCTOPRINT_RSS_MB: f64 = 107.8;
const OCTOPRINT_PRINTER_P50_MS: f64 = 3.91;
const OCTOPRINT_PRINTER_P99_MS: f64 = 6.40;
const OCTOPRINT_JOB_P50_MS: f64 = 3.23;
const OCTOPRINT_JOB_P99_MS: f64 = 4.75;

fn main() {
    let binary = binary_from_args();
    let dir = std::env::temp_dir().join(format!("easyprint-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("easyprint.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", dir.join("data"))).unwrap();
    let key = bench_account(&binary, &config, false);

    let (server, addr, startups) = start_five(&binary, &config, &key);
    let startup = startups[startups.len() / 2];
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = rss_mb(server.0.id());
    let mut results = Vec::new();
    for path in ["/api/version", "/api/job", "/api/printer", "/api/files"] {
        let p = get_latency(addr, path, &key, 2000);
        results.push((path, p.p50, p.p99, p.max));
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

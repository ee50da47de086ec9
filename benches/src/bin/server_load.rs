//! The `easyprint` server under load, with a simulated Marlin that outlives it on a pty (so the
//! printer-side counters are read here):
//!
//! 1. REST latency (`/api/printer`, `/api/job`) idle and while printing;
//! 2. WebSocket fan-out: 1000 clients subscribed to `terminal`; a command is posted and the
//!    time until each client has the echoed line is measured, while printing;
//! 3. stream underruns (times the simulated planner ran empty with more moves to come) for the
//!    same dense print quiet, then while CuraEngine slices a model and 200 WebSocket clients
//!    connect, subscribe and disconnect in a loop.
//!
//! ```sh
//! cargo build --release -p easyprint-server
//! cargo run --release -p easyprint-benches --bin server_load -- target/release/easyprint
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_benches::server::{binary_from_args, cli, get_latency, start, Percentiles};
use easyprint_marlin::sim::{LinkConfig, SimConfig, SimStats, VirtualPrinter};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const FANOUT_CLIENTS: usize = 1000;
const FANOUT_ROUNDS: usize = 20;
const CHURN_CLIENTS: usize = 200;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A dense print: 0.5 mm chords of a 20 mm circle at 50 mm/s, 100 lines a second.
fn dense_gcode(lines: usize) -> String {
    let mut g = String::from(
        "M140 S60\nM104 S200\nM190 S60\nM109 S200\nG28\nG90\nM82\nG92 E0\nG1 Z0.2 F600\n",
    );
    let mut e = 0.0;
    for i in 0..lines {
        let a = i as f64 * 0.025;
        e += 0.02;
        g.push_str(&format!(
            "G1 X{:.3} Y{:.3} E{e:.4} F3000\n",
            100.0 + 20.0 * a.cos(),
            100.0 + 20.0 * a.sin()
        ));
    }
    g.push_str("M104 S0\nM140 S0\n");
    g
}

/// A closed binary STL cylinder (`facets` sides, radius and height in mm).
fn cylinder_stl(facets: u32, radius: f32, height: f32) -> Vec<u8> {
    let point = |k: u32, z: f32| {
        let a = k as f32 / facets as f32 * std::f32::consts::TAU;
        [radius * a.cos() + 100.0, radius * a.sin() + 100.0, z]
    };
    let centre = |z: f32| [100.0, 100.0, z];
    let mut triangles = Vec::new();
    for k in 0..facets {
        let (a0, a1) = (point(k, 0.0), point(k + 1, 0.0));
        let (b0, b1) = (point(k, height), point(k + 1, height));
        triangles.push([a0, a1, b1]);
        triangles.push([a0, b1, b0]);
        triangles.push([centre(0.0), a1, a0]);
        triangles.push([centre(height), b0, b1]);
    }
    let mut out = vec![0u8; 80];
    out.extend_from_slice(&(triangles.len() as u32).to_le_bytes());
    for t in triangles {
        out.extend_from_slice(&[0u8; 12]);
        for v in t {
            for c in v {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    out
}

struct Bench {
    http: reqwest::Client,
    base: String,
    addr: SocketAddr,
    key: String,
}

impl Bench {
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let v = self.get(path).await;
            if done(&v) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn upload(&self, name: &str, content: Vec<u8>) -> Value {
        let form = reqwest::multipart::Form::new().text("print", "true").part(
            "file",
            reqwest::multipart::Part::bytes(content).file_name(name.to_owned()),
        );
        let response = self
            .http
            .post(format!("{}/api/files/local", self.base))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "upload {name}");
        response.json().await.unwrap()
    }

    async fn socket(&self, topics: &[&str]) -> Socket {
        let mut request = format!("ws://{}/api/ws", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("x-api-key", self.key.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(Message::Text(
                json!({ "subscribe": topics }).to_string().into(),
            ))
            .await
            .unwrap();
        // Until the acknowledgement (snapshots may follow).
        while let Some(Ok(m)) = socket.next().await {
            if matches!(&m, Message::Text(t) if t.contains("\"subscribed\"")) {
                break;
            }
        }
        socket
    }

    /// Prints `gcode` to the end; returns the simulator's counters over the print.
    async fn print(&self, sim: &VirtualPrinter, name: &str, gcode: &str) -> (SimStats, Duration) {
        let before = sim.stats();
        let started = Instant::now();
        self.upload(name, gcode.as_bytes().to_vec()).await;
        self.wait("/api/job", "the print to start", |j| {
            j["state"] == "Printing"
        })
        .await;
        self.wait("/api/job", "the print to end", |j| {
            j["state"] == "Operational"
        })
        .await;
        (difference(&sim.stats(), &before), started.elapsed())
    }
}

fn difference(after: &SimStats, before: &SimStats) -> SimStats {
    SimStats {
        executed: after.executed - before.executed,
        underruns: after.underruns - before.underruns,
        starved: after.starved.saturating_sub(before.starved),
        line_errors: after.line_errors - before.line_errors,
        ..SimStats::default()
    }
}

/// The time from posting a command until each of `sockets` has its terminal line.
async fn fanout(bench: &Bench, sockets: Vec<Socket>) -> (Percentiles, Vec<Socket>) {
    let mut latencies = Vec::new();
    let mut sockets = sockets;
    for round in 0..FANOUT_ROUNDS {
        let marker = format!("fanout{round}");
        let readers: Vec<_> = sockets
            .into_iter()
            .map(|mut s| {
                let marker = marker.clone();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = s.next().await {
                        if matches!(&m, Message::Text(t) if t.contains(&marker)) {
                            return (Instant::now(), s);
                        }
                    }
                    panic!("socket closed")
                })
            })
            .collect();
        let sent = Instant::now();
        let response = bench
            .http
            .post(format!("{}/api/v1/printers/sim/commands", bench.base))
            .header("x-api-key", &bench.key)
            .json(&json!({ "commands": [format!("M117 {marker}")] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        sockets = Vec::with_capacity(readers.len());
        for r in readers {
            let (at, s) = r.await.unwrap();
            latencies.push(at.saturating_duration_since(sent));
            sockets.push(s);
        }
    }
    (Percentiles::of(&mut latencies), sockets)
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let binary = binary_from_args();
    // 1000 client sockets here, 1000 server sockets in the child (which inherits the limit).
    raise_fd_limit();
    let sim = VirtualPrinter::spawn(
        SimConfig {
            heating_rate: 1000.0,
            homing_time: Duration::ZERO,
            ..SimConfig::default()
        },
        LinkConfig {
            baud: 115_200,
            ..LinkConfig::default()
        },
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("easyprint-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("easyprint.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[limits]\nmax_ws_clients = {}\n[[printers]]\nid = \"sim\"\nport = {:?}\nbaudrate = 115200\n",
            dir.join("data"),
            FANOUT_CLIENTS + CHURN_CLIENTS + 50,
            sim.path().display().to_string()
        ),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    cli(
        &binary,
        &["user", "add", "--config", path, "--admin", "bench"],
        "bench password\n",
    );
    let key = cli(
        &binary,
        &["apikey", "--config", path, "--user", "bench"],
        "",
    )
    .trim()
    .to_owned();
    let (server, addr, _) = start(&binary, &config, &key);
    let bench = Bench {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        addr,
        key,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        bench
            .wait("/api/v1/printers/sim", "the printer", |p| p["state"] == "operational")
            .await;
        let idle_printer = get_latency(addr, "/api/printer", &bench.key, 2000);
        let idle_job = get_latency(addr, "/api/job", &bench.key, 2000);

        // Quiet baseline print.
        let gcode = dense_gcode(3000);
        let (quiet, quiet_time) = bench.print(&sim, "quiet.gcode", &gcode).await;

        // The same print with load: REST, fan-out, then slicing and churn until it ends.
        let before = sim.stats();
        let started = Instant::now();
        bench.upload("loaded.gcode", gcode.clone().into_bytes()).await;
        bench.wait("/api/job", "the loaded print", |j| j["state"] == "Printing").await;
        let printing_printer = tokio::task::spawn_blocking({
            let key = bench.key.clone();
            move || get_latency(addr, "/api/printer", &key, 2000)
        })
        .await
        .unwrap();
        let printing_job = tokio::task::spawn_blocking({
            let key = bench.key.clone();
            move || get_latency(addr, "/api/job", &key, 2000)
        })
        .await
        .unwrap();
        let connect_started = Instant::now();
        let mut sockets = Vec::with_capacity(FANOUT_CLIENTS);
        for chunk in 0..FANOUT_CLIENTS / 50 {
            let batch: Vec<_> = (0..50).map(|_| bench.socket(&["terminal"])).collect();
            sockets.extend(futures_util::future::join_all(batch).await);
            let _ = chunk;
        }
        let connect_time = connect_started.elapsed();
        let (fan, sockets) = fanout(&bench, sockets).await;
        drop(sockets);

        let churning = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(AtomicU64::new(0));
        let bench = Arc::new(bench);
        let churn: Vec<_> = (0..CHURN_CLIENTS)
            .map(|_| {
                let (bench, churning, connections) =
                    (bench.clone(), churning.clone(), connections.clone());
                tokio::spawn(async move {
                    while churning.load(Ordering::Relaxed) {
                        let mut s = bench
                            .socket(&["printer_status", "temperatures", "job_progress", "terminal", "queue"])
                            .await;
                        let _ = tokio::time::timeout(Duration::from_millis(100), s.next()).await;
                        let _ = s.close(None).await;
                        connections.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let model = cylinder_stl(256, 30.0, 40.0);
        let sliced_started = Instant::now();
        let sliced_job = bench.upload("load.stl", model).await;
        let _ = sliced_job;
        bench.wait("/api/job", "the loaded print to end", |j| j["state"] != "Printing").await;
        let loaded_time = started.elapsed();
        let loaded = difference(&sim.stats(), &before);
        churning.store(false, Ordering::Relaxed);
        for c in churn {
            let _ = c.await;
        }
        let jobs = bench.get("/api/v1/history").await;
        let slice_secs = jobs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "slice" && r["ended_at"].is_i64())
            .map(|r| {
                (r["ended_at"].as_i64().unwrap_or(0) - r["started_at"].as_i64().unwrap_or(0)) as f64
                    / 1000.0
            });

        println!("easyprint server under load ({}), machine shared with other builds", binary.display());
        let row = |name: &str, p: &Percentiles| {
            println!("  {name:<34} p50 {:7.3} ms  p99 {:7.3} ms  max {:7.3} ms", p.p50, p.p99, p.max)
        };
        println!("REST, 2000 sequential keep-alive GETs:");
        row("/api/printer idle", &idle_printer);
        row("/api/printer while printing", &printing_printer);
        row("/api/job idle", &idle_job);
        row("/api/job while printing", &printing_job);
        println!(
            "WebSocket fan-out, {FANOUT_CLIENTS} clients on `terminal` (connected in {:.2} s), {FANOUT_ROUNDS} commands, while printing:",
            connect_time.as_secs_f64()
        );
        row("command posted -> line at client", &fan);
        println!("Stream underruns, {} lines at 115200 baud:", gcode.lines().count());
        println!(
            "  quiet   {:3} underruns, starved {:6.3} s, {} line errors, print {:.1} s",
            quiet.underruns,
            quiet.starved.as_secs_f64(),
            quiet.line_errors,
            quiet_time.as_secs_f64()
        );
        println!(
            "  loaded  {:3} underruns, starved {:6.3} s, {} line errors, print {:.1} s  (CuraEngine slice {} s started {:.1} s in, {} WebSocket connections by {CHURN_CLIENTS} churning clients, {FANOUT_CLIENTS}-client fan-out, REST)",
            loaded.underruns,
            loaded.starved.as_secs_f64(),
            loaded.line_errors,
            loaded_time.as_secs_f64(),
            slice_secs.map_or("?".to_owned(), |s| format!("{s:.1}")),
            sliced_started.duration_since(started).as_secs_f64(),
            connections.load(Ordering::Relaxed)
        );
    });
    drop(server);
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

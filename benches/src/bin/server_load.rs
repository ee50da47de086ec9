//! The `easyprint` server against the issue's targets, with a simulated Marlin in a process of
//! its own on a real pty (so the printer-side counters are read here and the simulator does not
//! share the bench's threads):
//!
//! 1. startup to the first answer (median of 5) and idle RSS;
//! 2. REST latency idle and while printing: a public probe without a key (the HTTP stack
//!    alone), `/api/version` (authentication and a constant answer), `/api/printer`, `/api/job`;
//! 3. WebSocket fan-out: 1000 clients subscribed to `terminal`; a command is posted and the
//!    time until each client has its echo is measured, idle and while printing;
//! 4. stream underruns (times the simulated planner ran empty with more moves to come) for a
//!    dense print quiet, then the same print while the bench runs REST requests, connects the
//!    1000 clients, fans out, and finally has CuraEngine slice a model while 200 WebSocket
//!    clients connect, subscribe and disconnect in a loop; underruns are attributed to these
//!    phases from the simulator's counters sampled every 100 ms;
//! 5. OctoPrint measured in the same run (startup, RSS, REST idle and while printing its own
//!    virtual printer) when its peer scripts are named, with ratios.
//!
//! ```sh
//! cargo build --release -p easyprint-server -p easyprint-benches --bin easyprint --bin server_load
//! target/release/server_load target/release/easyprint [--octoprint ../shared/peers/octoprint]
//! ```
//! (`OCTOPRINT_PEER=DIR` works as `--octoprint DIR`.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyprint_benches::octoprint::{peer_dir_from_args, OctoPrint};
use easyprint_benches::server::{
    bench_account, binary_from_args, cpu_time, get_latency, rss_mb, start_five, threads,
    Percentiles,
};
use easyprint_benches::sim_process::{serve_if_asked, SimProcess};
use easyprint_marlin::sim::SimStats;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const FANOUT_CLIENTS: usize = 1000;
const FANOUT_ROUNDS: usize = 20;
const CHURN_CLIENTS: usize = 200;
const REST_REQUESTS: usize = 2000;
/// Lines of the dense print: 60 s at 100 lines a second, long enough for every loaded phase.
const PRINT_LINES: usize = 6000;

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

    /// Uploads `gcode` with `print` and waits until it prints.
    async fn start_print(&self, name: &str, gcode: &str) {
        self.upload(name, gcode.as_bytes().to_vec()).await;
        self.wait("/api/job", name, |j| j["state"] == "Printing")
            .await;
    }

    async fn socket(&self, topics: &[&str]) -> Socket {
        let mut request = format!("ws://{}/api/ws", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("x-api-key", self.key.parse().unwrap());
        // A small read buffer: tungstenite zero-fills the whole buffer (128 KiB by default) on
        // every read, which would make this client, not the server, the fan-out's bottleneck.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .unwrap();
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

    /// `n` clients subscribed to `terminal`, connected 50 at a time; and how long that took.
    async fn sockets(&self, n: usize) -> (Vec<Socket>, Duration) {
        let started = Instant::now();
        let mut sockets = Vec::with_capacity(n);
        while sockets.len() < n {
            let batch: Vec<_> = (0..50.min(n - sockets.len()))
                .map(|_| self.socket(&["terminal"]))
                .collect();
            sockets.extend(futures_util::future::join_all(batch).await);
        }
        (sockets, started.elapsed())
    }

    /// The REST rows, each `REST_REQUESTS` sequential keep-alive GETs on a blocking thread.
    async fn rest(&self) -> Vec<(&'static str, Percentiles)> {
        let (addr, key) = (self.addr, self.key.clone());
        tokio::task::spawn_blocking(move || {
            REST_PATHS
                .iter()
                .map(|&(name, path, with_key)| {
                    let key = if with_key { key.as_str() } else { "" };
                    (name, get_latency(addr, path, key, REST_REQUESTS))
                })
                .collect()
        })
        .await
        .unwrap()
    }
}

/// Row name, path, and whether the API key is sent: a public probe without a key (the HTTP
/// stack alone), `/api/version` (authentication and a constant answer), then the two status
/// endpoints OctoPrint clients poll.
const REST_PATHS: [(&str, &str, bool); 4] = [
    ("public probe, no key", "/plugin/appkeys/probe", false),
    ("/api/version", "/api/version", true),
    ("/api/printer", "/api/printer", true),
    ("/api/job", "/api/job", true),
];

fn difference(after: &SimStats, before: &SimStats) -> SimStats {
    SimStats {
        executed: after.executed - before.executed,
        underruns: after.underruns - before.underruns,
        starved: after.starved.saturating_sub(before.starved),
        line_errors: after.line_errors - before.line_errors,
        ..SimStats::default()
    }
}

/// One fan-out measurement: every client's latency, and per round the first and last client's.
struct Fanout {
    clients: Percentiles,
    first: Percentiles,
    last: Percentiles,
    post: Percentiles,
}

/// The time from posting a command until each of `sockets` has its terminal echo.
///
/// Every client is read by a task of its own, spawned before the first round (so spawning
/// 1000 tasks is not measured), which reports `(round, arrival)` for each echo it sees.
async fn fanout(bench: &Bench, sockets: Vec<Socket>) -> Fanout {
    let clients = sockets.len();
    let (tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = s.next().await {
                    let Message::Text(t) = m else { continue };
                    // "fanout-<round>-" in the echo of `M117 fanout-<round>-`.
                    let round = t
                        .as_str()
                        .split("fanout-")
                        .nth(1)
                        .and_then(|rest| rest.split('-').next())
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(round) = round {
                        if tx.send((round, Instant::now())).is_err() {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let (mut latencies, mut firsts, mut lasts, mut posts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..FANOUT_ROUNDS {
        let sent = Instant::now();
        let response = bench
            .http
            .post(format!("{}/api/v1/printers/sim/commands", bench.base))
            .header("x-api-key", &bench.key)
            .json(&json!({ "commands": [format!("M117 fanout-{round}-")] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        posts.push(sent.elapsed());
        let mut round_times = Vec::with_capacity(clients);
        while round_times.len() < clients {
            let (r, at) = arrivals.recv().await.expect("a client closed");
            if r == round {
                round_times.push(at.saturating_duration_since(sent));
            }
        }
        firsts.push(*round_times.iter().min().unwrap());
        lasts.push(*round_times.iter().max().unwrap());
        latencies.extend(round_times);
    }
    for r in readers {
        r.abort();
    }
    Fanout {
        clients: Percentiles::of(&mut latencies),
        first: Percentiles::of(&mut firsts),
        last: Percentiles::of(&mut lasts),
        post: Percentiles::of(&mut posts),
    }
}

/// What one phase of the loaded print cost: simulator underruns and starved time, CPU time of
/// the server, of this bench (its clients) and of the simulator.
struct PhaseCost {
    underruns: u64,
    starved: Duration,
    server_cpu: Duration,
    bench_cpu: Duration,
    sim_cpu: Duration,
}

#[derive(Clone, Default)]
struct Sample {
    sim: SimStats,
    server_cpu: Duration,
    bench_cpu: Duration,
    sim_cpu: Duration,
}

/// The simulator's counters and the processes' CPU time every 100 ms, to attribute underruns
/// to what the bench was doing.
struct Sampler {
    samples: Arc<Mutex<Vec<(Instant, Sample)>>>,
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(sim: Arc<SimProcess>, server_pid: u32) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let thread = std::thread::spawn({
            let (samples, running) = (samples.clone(), running.clone());
            move || {
                while running.load(Ordering::Relaxed) {
                    let sample = Sample {
                        sim: sim.stats(),
                        server_cpu: cpu_time(server_pid),
                        bench_cpu: cpu_time(std::process::id()),
                        sim_cpu: cpu_time(sim.pid()),
                    };
                    samples.lock().unwrap().push((Instant::now(), sample));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Sampler {
            samples,
            running,
            thread: Some(thread),
        }
    }

    /// The cost of the time between `from` and `to` (to the nearest sample).
    fn between(&self, from: Instant, to: Instant) -> PhaseCost {
        let samples = self.samples.lock().unwrap();
        let at = |t: Instant| {
            samples
                .iter()
                .rev()
                .find(|(when, _)| *when <= t)
                .or(samples.first())
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        let (a, b) = (at(from), at(to));
        PhaseCost {
            underruns: b.sim.underruns - a.sim.underruns,
            starved: b.sim.starved.saturating_sub(a.sim.starved),
            server_cpu: b.server_cpu.saturating_sub(a.server_cpu),
            bench_cpu: b.bench_cpu.saturating_sub(a.bench_cpu),
            sim_cpu: b.sim_cpu.saturating_sub(a.sim_cpu),
        }
    }

    fn stop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// When the sliced model's job entered and left `slicing` (polling the native jobs API).
async fn follow_slice(bench: Arc<Bench>, name: &'static str) -> (Option<Instant>, Option<Instant>) {
    let (mut began, mut ended) = (None, None);
    let started = Instant::now();
    while ended.is_none() && started.elapsed() < Duration::from_secs(600) {
        let jobs = bench.get("/api/v1/jobs").await;
        let state = jobs["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["file"] == name))
            .and_then(|j| j["state"].as_str().map(str::to_owned));
        match state.as_deref() {
            Some("slicing") if began.is_none() => began = Some(Instant::now()),
            Some("queued" | "slicing") | None => {}
            Some(_) => ended = Some(Instant::now()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (began, ended)
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

/// What OctoPrint measured in this run.
struct PeerFigures {
    startup: Duration,
    rss_mb: f64,
    idle: Vec<(&'static str, Percentiles)>,
    printing: Vec<(&'static str, Percentiles)>,
}

/// OctoPrint's figures, or why there are none.
async fn measure_octoprint(http: &reqwest::Client, gcode: &str) -> Result<PeerFigures, String> {
    let dir = peer_dir_from_args().ok_or(
        "not measured: pass --octoprint DIR (or OCTOPRINT_PEER=DIR) naming the peer scripts",
    )?;
    let peer = OctoPrint::start(&dir)?;
    peer.connect_virtual_printer(http).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_mb(peer.pid);
    let rows = |addr: SocketAddr, key: String| {
        tokio::task::spawn_blocking(move || {
            ["/api/printer", "/api/job"]
                .map(|path| (path, get_latency(addr, path, &key, REST_REQUESTS)))
                .to_vec()
        })
    };
    let idle = rows(peer.addr, peer.key.clone()).await.unwrap();
    peer.print(http, gcode.to_owned()).await?;
    let printing = rows(peer.addr, peer.key.clone()).await.unwrap();
    peer.cancel(http).await?;
    Ok(PeerFigures {
        startup: peer.startup,
        rss_mb: rss,
        idle,
        printing,
    })
}

fn main() {
    serve_if_asked();
    let binary = binary_from_args();
    // 1000 client sockets here, 1000 server sockets in the child (which inherits the limit).
    raise_fd_limit();
    let sim = Arc::new(SimProcess::spawn(115_200));
    let dir = std::env::temp_dir().join(format!("easyprint-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("easyprint.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[limits]\nmax_ws_clients = {}\n[[printers]]\nid = \"sim\"\nport = {:?}\nbaudrate = 115200\n",
            dir.join("data"),
            FANOUT_CLIENTS + CHURN_CLIENTS + 50,
            sim.path()
        ),
    )
    .unwrap();
    let key = bench_account(&binary, &config, true);
    let (server, addr, startups) = start_five(&binary, &config, &key);
    let bench = Arc::new(Bench {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        addr,
        key,
    });
    let gcode = dense_gcode(PRINT_LINES);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(async {
        bench
            .wait("/api/v1/printers/sim", "the printer", |p| {
                p["state"] == "operational"
            })
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_idle = rss_mb(server.0.id());
        let idle_rest = bench.rest().await;
        let (sockets, idle_connect) = bench.sockets(FANOUT_CLIENTS).await;
        let idle_fan = fanout(&bench, sockets).await;

        // Quiet baseline print.
        eprintln!("server_load: quiet print");
        let before = sim.stats();
        let started = Instant::now();
        bench.start_print("quiet.gcode", &gcode).await;
        bench
            .wait("/api/job", "the quiet print to end", |j| {
                j["state"] == "Operational"
            })
            .await;
        let quiet = (difference(&sim.stats(), &before), started.elapsed());

        // The same print with load, phase by phase.
        eprintln!("server_load: loaded print");
        let mut sampler = Sampler::start(sim.clone(), server.0.id());
        let before = sim.stats();
        let started = Instant::now();
        bench.start_print("loaded.gcode", &gcode).await;
        let mut phases = vec![("waiting for the print to start", started)];
        let mut phase = |name: &'static str| {
            eprintln!("server_load: {name}");
            phases.push((name, Instant::now()));
        };
        phase("REST, sequential GETs");
        let printing_rest = bench.rest().await;
        phase("connecting 1000 WebSocket clients");
        let (sockets, printing_connect) = bench.sockets(FANOUT_CLIENTS).await;
        phase("fan-out to 1000 clients");
        let printing_fan = fanout(&bench, sockets).await;
        // CuraEngine alone, then the churning clients alone: their underruns apart.
        phase("CuraEngine slicing a model");
        let slice_requested = Instant::now();
        bench
            .upload("load.stl", cylinder_stl(256, 30.0, 40.0))
            .await;
        let (slice_began, slice_ended) = follow_slice(bench.clone(), "load.stl").await;
        phase("200 clients churning WebSockets");
        let churning = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(AtomicU64::new(0));
        let churn: Vec<_> = (0..CHURN_CLIENTS)
            .map(|_| {
                let (bench, churning, connections) =
                    (bench.clone(), churning.clone(), connections.clone());
                tokio::spawn(async move {
                    while churning.load(Ordering::Relaxed) {
                        let mut s = bench
                            .socket(&[
                                "printer_status",
                                "temperatures",
                                "job_progress",
                                "terminal",
                                "queue",
                            ])
                            .await;
                        let _ = tokio::time::timeout(Duration::from_millis(100), s.next()).await;
                        let _ = s.close(None).await;
                        connections.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        bench
            .wait("/api/job", "the loaded print to end", |j| {
                // The sliced model was uploaded with `print`, so it may follow at once.
                j["state"] != "Printing" || j["job"]["file"]["name"] != "loaded.gcode"
            })
            .await;
        let ended = Instant::now();
        let loaded = (difference(&sim.stats(), &before), started.elapsed());
        churning.store(false, Ordering::Relaxed);
        for c in churn {
            let _ = c.await;
        }
        let rss_after = (rss_mb(server.0.id()), threads(server.0.id()));
        sampler.stop();
        let mut attribution = Vec::new();
        for (i, (name, from)) in phases.iter().enumerate() {
            let to = phases.get(i + 1).map_or(ended, |p| p.1);
            attribution.push((*name, to - *from, sampler.between(*from, to)));
        }
        let slice =
            match (slice_began, slice_ended) {
                (Some(b), Some(e)) => format!(
                "CuraEngine slice {:.1} s (queued {:.1} s after the upload; {} the print's end)",
                (e - b).as_secs_f64(),
                (b - slice_requested).as_secs_f64(),
                if e <= ended { "ended before" } else { "still running at" }
            ),
                _ => "CuraEngine slice: no slicing state seen within 600 s".to_owned(),
            };
        Report {
            startups,
            rss_idle,
            rss_after,
            idle_rest,
            printing_rest,
            idle_connect,
            idle_fan,
            printing_connect,
            printing_fan,
            quiet,
            loaded,
            attribution,
            slice,
            churn_connections: connections.load(Ordering::Relaxed),
        }
    });
    drop(server);
    let peer = runtime.block_on(measure_octoprint(&bench.http, &gcode));
    report.print(&binary.display().to_string(), peer);
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

struct Report {
    startups: Vec<Duration>,
    rss_idle: f64,
    rss_after: (f64, usize),
    idle_rest: Vec<(&'static str, Percentiles)>,
    printing_rest: Vec<(&'static str, Percentiles)>,
    idle_connect: Duration,
    idle_fan: Fanout,
    printing_connect: Duration,
    printing_fan: Fanout,
    quiet: (SimStats, Duration),
    loaded: (SimStats, Duration),
    attribution: Vec<(&'static str, Duration, PhaseCost)>,
    slice: String,
    churn_connections: u64,
}

fn row(name: &str, p: &Percentiles) -> String {
    format!(
        "  {name:<38} p50 {:7.3} ms  p99 {:7.3} ms  max {:7.3} ms",
        p.p50, p.p99, p.max
    )
}

impl Report {
    fn print(&self, binary: &str, peer: Result<PeerFigures, String>) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let startup = self.startups[self.startups.len() / 2];
        println!("easyprint server under load ({binary}); the machine may be shared: compare rows of this run");
        println!(
            "startup to first answer  median {:.1} ms (5 starts: {})",
            ms(startup),
            self.startups
                .iter()
                .map(|d| format!("{:.1}", ms(*d)))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        println!(
            "RSS  idle (printer connected) {:.1} MB, after the load {:.1} MB ({} threads)",
            self.rss_idle, self.rss_after.0, self.rss_after.1
        );
        println!("REST, {REST_REQUESTS} sequential keep-alive GETs per row:");
        for (path, p) in &self.idle_rest {
            println!("{}", row(&format!("{path} idle"), p));
        }
        for (path, p) in &self.printing_rest {
            println!("{}", row(&format!("{path} while printing"), p));
        }
        for (name, connect, fan) in [
            ("idle", self.idle_connect, &self.idle_fan),
            ("while printing", self.printing_connect, &self.printing_fan),
        ] {
            println!(
                "WebSocket fan-out {name}: {FANOUT_CLIENTS} clients on `terminal` (connected in {:.2} s), {FANOUT_ROUNDS} commands:",
                connect.as_secs_f64()
            );
            println!(
                "{}",
                row("command posted -> echo at a client", &fan.clients)
            );
            println!("{}", row("  -> at the first client of a round", &fan.first));
            println!("{}", row("  -> at the last client of a round", &fan.last));
            println!(
                "{}",
                row("  POST answered (printer acknowledged)", &fan.post)
            );
        }
        println!("Stream underruns, {PRINT_LINES} dense lines at 115200 baud, simulator in its own process:");
        for (name, (s, took)) in [("quiet ", &self.quiet), ("loaded", &self.loaded)] {
            println!(
                "  {name} {:3} underruns, starved {:6.3} s, {} line errors, print {:.1} s",
                s.underruns,
                s.starved.as_secs_f64(),
                s.line_errors,
                took.as_secs_f64()
            );
        }
        println!("  loaded run by phase (CPU: seconds used by the server / this bench's clients / the simulator):");
        for (name, took, cost) in &self.attribution {
            println!(
                "    {name:<34} {:5.1} s  {:3} underruns, starved {:6.3} s  CPU {:5.1} / {:5.1} / {:4.1} s",
                took.as_secs_f64(),
                cost.underruns,
                cost.starved.as_secs_f64(),
                cost.server_cpu.as_secs_f64(),
                cost.bench_cpu.as_secs_f64(),
                cost.sim_cpu.as_secs_f64()
            );
        }
        println!(
            "  {}; {} WebSocket connections by {CHURN_CLIENTS} churning clients",
            self.slice, self.churn_connections
        );
        match peer {
            Err(why) => println!("OctoPrint: {why}"),
            Ok(peer) => {
                println!("OctoPrint in the same run (its virtual printer):");
                println!(
                    "  startup {:.2} s -> easyprint {:.0}x faster; RSS idle {:.1} MB -> easyprint {:.1}x less",
                    peer.startup.as_secs_f64(),
                    peer.startup.as_secs_f64() / startup.as_secs_f64(),
                    peer.rss_mb,
                    peer.rss_mb / self.rss_idle
                );
                for (when, theirs, ours) in [
                    ("idle", &peer.idle, &self.idle_rest),
                    ("while printing", &peer.printing, &self.printing_rest),
                ] {
                    for (path, p) in theirs {
                        let mine = ours.iter().find(|(q, _)| q == path).map(|(_, p)| p);
                        println!(
                            "{}{}",
                            row(&format!("{path} {when}"), p),
                            mine.map_or(String::new(), |m| format!(
                                "  -> easyprint p50 {:.0}x, p99 {:.0}x lower",
                                p.p50 / m.p50,
                                p.p99 / m.p99
                            ))
                        );
                    }
                }
            }
        }
    }
}

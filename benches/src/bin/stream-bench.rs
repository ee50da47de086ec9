//! Streams G-code through the real serial path (`Printer` → serialport → pty → simulated
//! Marlin, in real time) and prints a table: link utilisation, planner underruns and host CPU,
//! for ping-pong vs the credit window (ADVANCED_OK), at 115200 and 250000 baud, on a dense
//! curve file and an ordinary slicer-like file, idle and with every core busy-looping.
//! Then the host-limited rate: instant moves, an unthrottled pty.
//!
//! Then host CPU while connected: idle and at low line rates, measured on this process alone
//! (nanosecond CPU time and context switches per thread from `/proc/self/task`) with the
//! simulator in a child process.
//!
//! Then stream health (underruns, longest gap between lines, resends) while CuraEngine slices
//! a model over and over on the same machine, at idle and at normal priority.
//!
//! Run with `cargo run --release -p easyprint-benches --bin stream-bench` (`--quick` for short
//! runs, `--cpu`, `--slicing` or `--host-limited` for one section alone, `--cpu-rates 1000` for one row of the
//! CPU section, `--files dense,denser --baud 250000` for
//! some rows of the table and nothing else, `--latency-ms 16` for those rows behind an FTDI
//! bridge's latency timer, `--ack-batching-ms 0` to read every `ok` as it comes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_marlin::printer::{Printer, PrinterConfig, PrinterEvent};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, UsbBatching, VirtualPrinter};
use easyprint_marlin::transport::PortSpec;
use easyprint_marlin::{FlowPolicy, SessionConfig};

/// OctoPrint 1.11 streaming to its virtual printer with instant moves ("fast" mode), measured
/// on this machine class by `../shared/peers/octoprint` (cube 2,361 and cylinder 2,645 lines/s).
const OCTOPRINT_HOST_LIMITED: f64 = 2_500.0;

/// Segments around circles: `chord` mm chords at 60 mm/s need `60 / chord` lines/s.
fn curves(lines: usize, chord: f64) -> Vec<String> {
    // Start on the circle: no long first move.
    let mut out = vec![
        "G90".to_string(),
        "M83".to_string(),
        "G92 X120 Y100".to_string(),
        "G1 F3600".to_string(),
    ];
    let r = 20.0f64;
    let step = chord / r; // radians per chord
    for i in 0..lines {
        let a = i as f64 * step;
        let layer = i / 628;
        out.push(format!(
            "G1 X{:.3} Y{:.3} E{:.5}",
            100.0 + r * a.cos() + layer as f64 * 0.01,
            100.0 + r * a.sin(),
            chord * 0.0332
        ));
    }
    out
}

/// Perimeters and infill of a slicer: moves of 1–10 mm, travel moves, fan and comments.
fn slicer_like(lines: usize) -> Vec<String> {
    let mut out = vec![
        "G90".to_string(),
        "M83".to_string(),
        "G92 X50 Y50".to_string(),
    ];
    let (mut x, mut y) = (50.0f64, 50.0f64);
    for i in 0..lines {
        let len = 1.0 + (i % 10) as f64;
        if (i / 20) % 2 == 0 {
            x += len;
        } else {
            x -= len;
        }
        y += 0.4 * f64::from(i % 20 == 0);
        match i % 25 {
            0 => out.push(format!(";TYPE:WALL-OUTER layer {}", i / 25)),
            1 => out.push(format!("G0 F9000 X{x:.3} Y{y:.3}")),
            2 => out.push("M106 S255".to_string()),
            _ => out.push(format!("G1 F4800 X{x:.3} Y{y:.3} E{:.5}", len * 0.0332)),
        }
    }
    out
}

struct Row {
    lines: u64,
    elapsed: Duration,
    utilisation: f64,
    underruns: u64,
    starved: Duration,
    cpu_per_1000: Duration,
    cpu_share: f64,
    max_gap: Duration,
    resends: u64,
}

/// Receive buffer and command slots of the simulated board.
#[derive(Clone, Copy)]
struct Board {
    rx_buffer: usize,
    slots: usize,
}

/// Stock 8-bit Marlin: 128-byte RX buffer, BUFSIZE 4.
const AVR: Board = Board {
    rx_buffer: 128,
    slots: 4,
};

/// A 32-bit board on native USB with larger buffers (RX_BUFFER_SIZE 1024, BUFSIZE 32).
const BIG: Board = Board {
    rx_buffer: 1024,
    slots: 32,
};

/// `--ack-batching-ms N`: the session's longest read deferral (default: the library's).
static ACK_BATCHING: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();

/// Connects with `flow` and no temperature reporting (nothing but the job on the wire).
async fn connect(spec: &PortSpec, flow: FlowPolicy) -> Printer {
    let defaults = SessionConfig::default();
    Printer::connect(
        spec,
        PrinterConfig {
            session: SessionConfig {
                flow,
                ack_batching: ACK_BATCHING
                    .get()
                    .copied()
                    .flatten()
                    .unwrap_or(defaults.ack_batching),
                ..defaults
            },
            ..PrinterConfig::default()
        },
    )
    .await
    .expect("connect")
}

async fn run_on(
    board: Board,
    job: &[String],
    baud: u32,
    credit: bool,
    sim_moves: MoveTiming,
    usb: Option<UsbBatching>,
) -> Row {
    let link = if baud == 0 {
        LinkConfig {
            baud: 100_000_000,
            latency: Duration::ZERO,
        }
    } else {
        LinkConfig {
            baud,
            latency: Duration::from_millis(1),
        }
    };
    let vp = VirtualPrinter::spawn(
        SimConfig {
            advanced_ok: credit,
            moves: sim_moves,
            rx_buffer: board.rx_buffer,
            command_slots: board.slots,
            usb_batching: usb,
            // Host-limited runs: the firmware takes no time either.
            command_time: if baud == 0 {
                Duration::ZERO
            } else {
                SimConfig::default().command_time
            },
            ..SimConfig::default()
        },
        link,
    )
    .expect("pty");
    let spec = PortSpec::Serial {
        path: vp.path().to_string_lossy().into_owned(),
        baud: baud.max(115_200),
    };
    let flow = if credit {
        FlowPolicy::Auto {
            rx_bytes: board.rx_buffer as u32,
        }
    } else {
        FlowPolicy::PingPong
    };
    let printer = connect(&spec, flow).await;
    let cpu0 = printer.status().borrow().io_cpu;
    let bytes0 = printer.status().borrow().bytes_written;
    let stats0 = vp.stats();
    let mut events = printer.events();
    let start = Instant::now();
    printer
        .stream(job.to_vec(), Some(job.len() as u64))
        .await
        .expect("stream");
    let mut resends = 0;
    let done = loop {
        match events.recv().await {
            Ok(PrinterEvent::JobFinished(p)) => break p,
            Ok(PrinterEvent::Session(easyprint_marlin::Event::Resending { .. })) => resends += 1,
            Ok(PrinterEvent::Session(easyprint_marlin::Event::Fatal(e))) => panic!("{e}"),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    };
    let elapsed = start.elapsed();
    let status = printer.status().borrow().clone();
    drop(printer);
    let stats = vp.stats();
    drop(vp);
    let bytes = status.bytes_written - bytes0;
    let capacity = f64::from(link.baud) / 10.0 * elapsed.as_secs_f64();
    Row {
        lines: done.acknowledged,
        elapsed,
        utilisation: bytes as f64 / capacity,
        underruns: stats.underruns - stats0.underruns,
        starved: stats.starved - stats0.starved,
        cpu_per_1000: (status.io_cpu - cpu0) * 1000 / done.acknowledged.max(1) as u32,
        cpu_share: (status.io_cpu - cpu0).as_secs_f64() / elapsed.as_secs_f64(),
        max_gap: stats.max_line_gap,
        resends,
    }
}

/// Busy-loops on every core until dropped.
struct Load(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Load {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..n)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !s.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self(stop, threads)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

/// Child mode: serve a simulated printer on a pty, print its path, stop at end of stdin.
fn serve_sim(args: &[String]) {
    let baud: u32 = args.first().and_then(|b| b.parse().ok()).unwrap_or(250_000);
    let advanced_ok = args.iter().any(|a| a == "--advanced-ok");
    let vp = VirtualPrinter::spawn(
        SimConfig {
            advanced_ok,
            ..SimConfig::default()
        },
        LinkConfig {
            baud,
            latency: Duration::from_millis(1),
        },
    )
    .expect("pty");
    println!("{}", vp.path().display());
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// A simulated printer in a child process, so its CPU is not counted as the host's.
struct SimProcess {
    child: std::process::Child,
    path: String,
}

impl SimProcess {
    fn spawn(baud: u32, advanced_ok: bool) -> Self {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("own path"));
        cmd.arg("--serve-sim").arg(baud.to_string());
        if advanced_ok {
            cmd.arg("--advanced-ok");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("simulator child");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("pty path");
        Self {
            child,
            path: line.trim().to_string(),
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One thread's counters from `/proc/self/task/<tid>/`: CPU time in nanoseconds
/// (`schedstat`) and context switches (`status`), so a row shows which thread wakes how often.
#[derive(Debug, Clone, Default)]
struct ThreadTimes {
    name: String,
    cpu: Duration,
    voluntary: u64,
    involuntary: u64,
}

/// Every thread of this process, by thread id.
fn thread_times() -> std::collections::HashMap<u32, ThreadTimes> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
        let cpu_ns: u64 = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let status = read("status");
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        out.insert(
            tid,
            ThreadTimes {
                name: read("comm").trim().to_string(),
                cpu: Duration::from_nanos(cpu_ns),
                voluntary: field("voluntary_ctxt_switches:"),
                involuntary: field("nonvoluntary_ctxt_switches:"),
            },
        );
    }
    out
}

/// What each group of threads used between two snapshots: the printer's I/O thread, tokio's
/// workers, the main thread (the bench's own event loop) and the rest. Threads that started
/// in between count from zero; threads that ended in between are missed (none do here).
fn thread_groups(
    before: &std::collections::HashMap<u32, ThreadTimes>,
    after: &std::collections::HashMap<u32, ThreadTimes>,
) -> Vec<(&'static str, ThreadTimes)> {
    let groups = ["marlin-io", "tokio-worker", "main", "other"];
    let mut sums: Vec<ThreadTimes> = vec![ThreadTimes::default(); groups.len()];
    let main_tid = std::process::id();
    for (tid, t) in after {
        let zero = ThreadTimes::default();
        let b = before.get(tid).unwrap_or(&zero);
        let g = if t.name == "marlin-io" {
            0
        } else if t.name.starts_with("tokio-runtime") {
            1
        } else if *tid == main_tid {
            2
        } else {
            3
        };
        sums[g].cpu += t.cpu.saturating_sub(b.cpu);
        sums[g].voluntary += t.voluntary.saturating_sub(b.voluntary);
        sums[g].involuntary += t.involuntary.saturating_sub(b.involuntary);
    }
    groups.into_iter().zip(sums).collect()
}

/// Host CPU while connected: idle, and streaming moves that pace the job at a low line rate.
async fn cpu_section(secs: u64, rates: Option<&[String]>) {
    println!();
    println!("host CPU while connected (this process only; simulator in a child process; {secs} s per row)");
    println!("cpu_%, us/line: all threads, nanosecond schedstat; then per thread group: us/line and wakeups (voluntary context switches) per line");
    println!(
        "{:<31} {:>7} {:>7} {:>8} | {:>16} {:>16} {:>16} {:>16}",
        "row",
        "lines/s",
        "cpu_%",
        "us/line",
        "marlin-io us/wk",
        "tokio-wrk us/wk",
        "main us/wk",
        "other us/wk"
    );
    for (name, baud, credit, rate) in [
        ("idle, connected", 250_000u32, false, 0u32),
        ("50 lines/s, ping-pong, 250000", 250_000, false, 50),
        ("50 lines/s, credit, 250000", 250_000, true, 50),
        ("500 lines/s, credit, 250000", 250_000, true, 500),
        ("1000 lines/s, credit, 2 Mbaud", 2_000_000, true, 1000),
    ] {
        if rates.is_some_and(|r| !r.contains(&rate.to_string())) {
            continue;
        }
        let sim = SimProcess::spawn(baud, credit);
        let spec = PortSpec::Serial {
            path: sim.path.clone(),
            baud: baud.min(250_000),
        };
        let flow = if credit {
            FlowPolicy::Auto { rx_bytes: 128 }
        } else {
            FlowPolicy::PingPong
        };
        let printer = connect(&spec, flow).await;
        let mut events = printer.events();
        let lines = u64::from(rate) * secs;
        let threads0 = thread_times();
        let start = Instant::now();
        if rate == 0 {
            tokio::time::sleep(Duration::from_secs(secs)).await;
        } else {
            // 1 mm moves at `rate` mm/s: each move takes 1 / rate seconds.
            let mut job = vec!["G91".to_string(), format!("G1 F{}", rate * 60)];
            job.extend(
                (0..lines).map(|i| format!("G1 X{} E0.03", if i % 2 == 0 { 1 } else { -1 })),
            );
            printer.stream(job, None).await.expect("stream");
            loop {
                match events.recv().await {
                    Ok(PrinterEvent::JobFinished(_)) => break,
                    Ok(PrinterEvent::Session(easyprint_marlin::Event::Fatal(e))) => panic!("{e}"),
                    _ => {}
                }
            }
        }
        let elapsed = start.elapsed();
        let groups = thread_groups(&threads0, &thread_times());
        drop(printer);
        drop(sim);
        let cpu: Duration = groups.iter().map(|(_, t)| t.cpu).sum();
        let per_line = |t: &ThreadTimes| {
            if lines == 0 {
                format!(
                    "{:.0}ms/{:.0}/s",
                    t.cpu.as_secs_f64() * 1e3,
                    t.voluntary as f64 / elapsed.as_secs_f64()
                )
            } else {
                format!(
                    "{:.1}/{:.2}",
                    t.cpu.as_secs_f64() * 1e6 / lines as f64,
                    t.voluntary as f64 / lines as f64
                )
            }
        };
        println!(
            "{:<31} {:>7.0} {:>7.2} {:>8} | {:>16} {:>16} {:>16} {:>16}",
            name,
            lines as f64 / elapsed.as_secs_f64(),
            cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
            if lines > 0 {
                format!("{:.1}", cpu.as_secs_f64() * 1e6 / lines as f64)
            } else {
                "-".to_string()
            },
            per_line(&groups[0].1),
            per_line(&groups[1].1),
            per_line(&groups[2].1),
            per_line(&groups[3].1),
        );
    }
}

/// A closed cylinder with `segments` facets around: enough triangles to keep CuraEngine busy.
fn cylinder_stl(radius: f64, height: f64, segments: usize) -> String {
    let mut out = String::from("solid cylinder\n");
    let point = |i: usize, z: f64| {
        let a = i as f64 / segments as f64 * std::f64::consts::TAU;
        (100.0 + radius * a.cos(), 100.0 + radius * a.sin(), z)
    };
    let mut facet = |p: [(f64, f64, f64); 3]| {
        out.push_str("facet normal 0 0 0\nouter loop\n");
        for (x, y, z) in p {
            out.push_str(&format!("vertex {x:.4} {y:.4} {z:.4}\n"));
        }
        out.push_str("endloop\nendfacet\n");
    };
    for i in 0..segments {
        let (a0, a1) = (point(i, 0.0), point(i + 1, 0.0));
        let (b0, b1) = (point(i, height), point(i + 1, height));
        facet([a0, a1, b1]);
        facet([a0, b1, b0]);
        facet([(100.0, 100.0, 0.0), a1, a0]);
        facet([(100.0, 100.0, height), b0, b1]);
    }
    out.push_str("endsolid cylinder\n");
    out
}

/// Slices with CuraEngine (through easyprint-slicer) over and over until dropped; `priority`
/// false runs the engine at normal priority instead of the idle class the server uses.
struct Slicing {
    stop: Arc<AtomicBool>,
    slices: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Slicing {
    fn start(idle_priority: bool) -> Option<Self> {
        use easyprint_slicer::{
            CancelToken, CuraOptions, CuraSlicer, Profile, SliceRequest, Slicer,
        };
        let mut options = CuraOptions::default();
        options.run.idle_priority = idle_priority;
        let slicer = match CuraSlicer::discover(options) {
            Ok(s) => s,
            Err(e) => {
                println!("(CuraEngine not available: {e}; slicing rows skipped)");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let model = dir.path().join("cylinder.stl");
        std::fs::write(&model, cylinder_stl(30.0, 40.0, 720)).expect("write stl");
        let stop = Arc::new(AtomicBool::new(false));
        let slices = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, n) = (stop.clone(), slices.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0u32;
            while !s.load(Ordering::Relaxed) {
                // A different wall count each time: never a cache hit.
                let profile = Profile::machine("creality_ender3")
                    .set(&format!("wall_line_count={}", 2 + i % 3))
                    .expect("setting");
                let output = dir.path().join(format!("out{i}.gcode"));
                let cancel = CancelToken::new();
                let _ = slicer.slice(SliceRequest {
                    model: &model,
                    profile: &profile,
                    output: &output,
                    progress: None,
                    cancel,
                });
                let _ = std::fs::remove_file(&output);
                n.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });
        Some(Self {
            stop,
            slices,
            thread: Some(thread),
        })
    }
}

impl Drop for Slicing {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stream health while CuraEngine slices on the same machine (issue #4's "stream health while
/// slicing"): planner underruns, the longest gap between lines while moves remained, resends.
async fn slicing_section(job: &[String]) {
    println!();
    println!(
        "stream health while CuraEngine slices (250000 baud, curves file, simulator in-process)"
    );
    println!(
        "{:<22} {:<10} {:>6} {:>9} {:>11} {:>11} {:>8} {:>7}",
        "load", "policy", "lines", "underruns", "starved_ms", "max_gap_ms", "resends", "slices"
    );
    for load in ["none", "slicing (idle)", "slicing (normal)"] {
        for credit in [false, true] {
            let slicing = match load {
                "none" => None,
                l => match Slicing::start(l == "slicing (idle)") {
                    Some(s) => Some(s),
                    None => return,
                },
            };
            let r = run_on(AVR, job, 250_000, credit, MoveTiming::Kinematic, None).await;
            let slices = slicing
                .as_ref()
                .map_or(0, |s| s.slices.load(Ordering::Relaxed));
            drop(slicing);
            println!(
                "{:<22} {:<10} {:>6} {:>9} {:>11.1} {:>11.1} {:>8} {:>7}",
                load,
                if credit { "credit" } else { "ping-pong" },
                r.lines,
                r.underruns,
                r.starved.as_secs_f64() * 1000.0,
                r.max_gap.as_secs_f64() * 1000.0,
                r.resends,
                slices
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--serve-sim") {
        serve_sim(&args[1..]);
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(&args));
}

async fn bench(args: &[String]) {
    let quick = args.iter().any(|a| a == "--quick");
    let ack_batching = args
        .iter()
        .position(|a| a == "--ack-batching-ms")
        .and_then(|i| args.get(i + 1)?.parse::<u64>().ok())
        .map(Duration::from_millis);
    let _ = ACK_BATCHING.set(ack_batching);
    let cpu_secs = if quick { 5 } else { 30 };
    // `--files dense,curves` and `--baud 250000` pick rows of the table, `--cpu-rates 0,1000`
    // rows of the CPU section.
    let pick = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
    };
    if args.iter().any(|a| a == "--cpu") {
        cpu_section(cpu_secs, pick("--cpu-rates").as_deref()).await;
        return;
    }
    if args.iter().any(|a| a == "--host-limited") {
        host_limited_section(quick).await;
        return;
    }
    if args.iter().any(|a| a == "--slicing") {
        slicing_section(&curves(if quick { 600 } else { 2400 }, 0.25)).await;
        return;
    }
    let scale = if quick { 4 } else { 1 };
    let dense = curves(2400 / scale, 0.1);
    // Needs 1200 lines/s: more than either link carries, so utilisation shows the protocol.
    let denser = curves(2400 / scale, 0.05);
    let (files, bauds) = (pick("--files"), pick("--baud"));
    // `--latency-ms 16`: the board's FTDI bridge holds printer->host bytes for its latency
    // timer (or until a 62-byte packet fills).
    let usb = pick("--latency-ms")
        .and_then(|v| v.first()?.parse::<u64>().ok())
        .map(|ms| UsbBatching::ftdi(Duration::from_millis(ms)));
    let curvy = curves(1200 / scale, 0.25);
    let slicer = slicer_like(600 / scale);
    match usb {
        Some(b) => println!("stream-bench: Printer -> serialport -> pty -> simulated Marlin (real time, 1 ms latency each way; printer->host held by an FTDI latency timer of {} ms or a 62-byte packet)", b.timer.as_millis()),
        None => println!("stream-bench: Printer -> serialport -> pty -> simulated Marlin (real time, 1 ms latency each way)"),
    }
    println!(
        "{:<6} {:>6} {:<7} {:<10} {:>6} {:>7} {:>8} {:>9} {:>11} {:>10} {:>6}",
        "load",
        "baud",
        "file",
        "policy",
        "lines",
        "time_s",
        "link_%",
        "underruns",
        "starved_ms",
        "cpu_us/1k",
        "cpu_%"
    );
    println!("files: dense = 0.1 mm chords at 60 mm/s (600 lines/s needed), denser = 0.05 mm chords (1200 lines/s), curves = 0.25 mm chords (240 lines/s), slicer = 1-10 mm moves");
    for loaded in [false, true] {
        let _load = loaded.then(Load::start);
        for baud in [115_200u32, 250_000] {
            if bauds
                .as_ref()
                .is_some_and(|b| !b.contains(&baud.to_string()))
            {
                continue;
            }
            for (name, job) in [
                ("dense", &dense),
                ("denser", &denser),
                ("curves", &curvy),
                ("slicer", &slicer),
            ] {
                if files.as_ref().is_some_and(|f| !f.iter().any(|f| f == name)) {
                    continue;
                }
                for credit in [false, true] {
                    let r = run_on(AVR, job, baud, credit, MoveTiming::Kinematic, usb).await;
                    println!(
                        "{:<6} {:>6} {:<7} {:<10} {:>6} {:>7.2} {:>8.1} {:>9} {:>11.1} {:>10} {:>6.2}",
                        if loaded { "busy" } else { "idle" },
                        baud,
                        name,
                        if credit { "credit" } else { "ping-pong" },
                        r.lines,
                        r.elapsed.as_secs_f64(),
                        r.utilisation * 100.0,
                        r.underruns,
                        r.starved.as_secs_f64() * 1000.0,
                        r.cpu_per_1000.as_micros(),
                        r.cpu_share * 100.0
                    );
                }
            }
        }
    }
    if files.is_some() || bauds.is_some() || usb.is_some() {
        return;
    }
    host_limited_section(quick).await;
    slicing_section(&curves(if quick { 600 } else { 2400 }, 0.25)).await;
    cpu_section(cpu_secs, None).await;
}

/// The host-limited rate: instant moves and an unthrottled pty, so only the host, the pty and
/// the simulator's round trip set the pace.
async fn host_limited_section(quick: bool) {
    println!();
    println!("host-limited rate: instant moves, unthrottled pty (OctoPrint 1.11: ~{OCTOPRINT_HOST_LIMITED} lines/s, from ../shared/peers/octoprint, not re-measured here)");
    let job = curves(if quick { 20_000 } else { 100_000 }, 0.1);
    for (name, board, credit) in [
        ("ping-pong, 8-bit board", AVR, false),
        ("credit, 8-bit board (RX 128 B, 4 slots)", AVR, true),
        ("credit, 32-bit board (RX 1 KiB, 32 slots)", BIG, true),
    ] {
        let r = run_on(board, &job, 0, credit, MoveTiming::Instant, None).await;
        let rate = r.lines as f64 / r.elapsed.as_secs_f64();
        println!(
            "{:<42} {:>7} lines in {:>6.2} s = {:>8.0} lines/s = {:>5.1}x OctoPrint; host cpu {} us/1k lines",
            name,
            r.lines,
            r.elapsed.as_secs_f64(),
            rate,
            rate / OCTOPRINT_HOST_LIMITED,
            r.cpu_per_1000.as_micros()
        );
    }
}

//! Streams G-code through the real serial path (`Printer` → serialport → pty → simulated
//! Marlin, in real time) and prints a table: link utilisation, planner underruns and host CPU,
//! for ping-pong vs the credit window (ADVANCED_OK), at 115200 and 250000 baud, on a dense
//! curve file and an ordinary slicer-like file, idle and with every core busy-looping.
//! Then the host-limited rate: instant moves, an unthrottled pty.
//!
//! Run with `cargo run --release -p easyprint-benches --bin stream-bench`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_marlin::printer::{Printer, PrinterConfig, PrinterEvent};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
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

async fn run(job: &[String], baud: u32, credit: bool, sim_moves: MoveTiming) -> Row {
    run_on(AVR, job, baud, credit, sim_moves).await
}

async fn run_on(
    board: Board,
    job: &[String],
    baud: u32,
    credit: bool,
    sim_moves: MoveTiming,
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
    let printer = Printer::connect(
        &spec,
        PrinterConfig {
            session: SessionConfig {
                flow,
                ..SessionConfig::default()
            },
        },
    )
    .await
    .expect("connect");
    let cpu0 = printer.status().borrow().io_cpu;
    let bytes0 = printer.status().borrow().bytes_written;
    let stats0 = vp.stats();
    let mut events = printer.events();
    let start = Instant::now();
    printer
        .stream(job.to_vec(), Some(job.len() as u64))
        .await
        .expect("stream");
    let done = loop {
        match events.recv().await {
            Ok(PrinterEvent::JobFinished(p)) => break p,
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 4 } else { 1 };
    let dense = curves(2400 / scale, 0.1);
    let curvy = curves(1200 / scale, 0.25);
    let slicer = slicer_like(600 / scale);
    println!("stream-bench: Printer -> serialport -> pty -> simulated Marlin (real time, 1 ms latency each way)");
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
    println!("files: dense = 0.1 mm chords at 60 mm/s (600 lines/s needed), curves = 0.25 mm chords (240 lines/s), slicer = 1-10 mm moves");
    for loaded in [false, true] {
        let _load = loaded.then(Load::start);
        for baud in [115_200u32, 250_000] {
            for (name, job) in [("dense", &dense), ("curves", &curvy), ("slicer", &slicer)] {
                for credit in [false, true] {
                    let r = run(job, baud, credit, MoveTiming::Kinematic).await;
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
    println!();
    println!("host-limited rate: instant moves, unthrottled pty (OctoPrint 1.11: ~{OCTOPRINT_HOST_LIMITED} lines/s, from ../shared/peers/octoprint, not re-measured here)");
    let job = curves(if quick { 20_000 } else { 100_000 }, 0.1);
    for (name, board, credit) in [
        ("ping-pong, 8-bit board", AVR, false),
        ("credit, 8-bit board (RX 128 B, 4 slots)", AVR, true),
        ("credit, 32-bit board (RX 1 KiB, 32 slots)", BIG, true),
    ] {
        let r = run_on(board, &job, 0, credit, MoveTiming::Instant).await;
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

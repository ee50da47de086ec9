//! A simulated Marlin printer in a process of its own, on a real pty, so that a bench measures
//! the host and not a simulator starved of CPU by the bench's own threads.
//!
//! The bench binary re-executes itself with [`SIMULATOR_FLAG`]; [`serve_if_asked`] (called first
//! in `main`) then runs easyprint-marlin's [`VirtualPrinter`], prints the pty path, and answers
//! every `stats` line on standard input with one line of counters until standard input closes.
//! (The `virtual-printer` binary reports its counters only at exit and cannot skip heating and
//! homing, which a bench printing twice needs.)

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use easyprint_marlin::sim::{LinkConfig, SimConfig, SimStats, VirtualPrinter};

/// First argument that turns the bench binary into the simulator process.
pub const SIMULATOR_FLAG: &str = "--simulator-process";

/// When the process was started with [`SIMULATOR_FLAG`] `<baud>`: serves the simulator and
/// exits. Otherwise returns at once.
pub fn serve_if_asked() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(SIMULATOR_FLAG) {
        return;
    }
    let baud = args.next().and_then(|b| b.parse().ok()).unwrap_or(115_200);
    let sim = VirtualPrinter::spawn(
        SimConfig {
            // Heating and homing are not what the benches measure.
            heating_rate: 1000.0,
            homing_time: Duration::ZERO,
            ..SimConfig::default()
        },
        LinkConfig {
            baud,
            ..LinkConfig::default()
        },
    )
    .expect("a pseudo-terminal");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", sim.path().display()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "stats" {
            let s = sim.stats();
            writeln!(
                out,
                "{} {} {} {} {}",
                s.executed,
                s.underruns,
                s.starved.as_nanos(),
                s.line_errors,
                s.max_line_gap.as_nanos()
            )
            .unwrap();
            out.flush().unwrap();
        }
    }
    drop(sim);
    std::process::exit(0);
}

/// The simulator process, stopped on drop (by closing its standard input).
pub struct SimProcess {
    child: Child,
    pipes: Mutex<Option<(ChildStdin, BufReader<ChildStdout>)>>,
    path: String,
}

impl SimProcess {
    /// Starts this executable as a simulator at `baud` and waits for its pty path.
    pub fn spawn(baud: u32) -> SimProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([SIMULATOR_FLAG, &baud.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut path = String::new();
        stdout.read_line(&mut path).unwrap();
        assert!(!path.trim().is_empty(), "the simulator did not start");
        SimProcess {
            child,
            pipes: Mutex::new(Some((stdin, stdout))),
            path: path.trim().to_owned(),
        }
    }

    /// The pty to configure as the printer's port.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The simulator's counters now (they are refreshed every 50 ms in the simulator).
    pub fn stats(&self) -> SimStats {
        let mut pipes = self.pipes.lock().unwrap();
        let (stdin, stdout) = pipes.as_mut().expect("simulator running");
        stdin.write_all(b"stats\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let n: Vec<u128> = line
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let nanos = |v: u128| Duration::from_nanos(v as u64);
        SimStats {
            executed: n[0] as u64,
            underruns: n[1] as u64,
            starved: nanos(n[2]),
            line_errors: n[3] as u64,
            max_line_gap: nanos(n[4]),
            ..SimStats::default()
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // End of input stops it.
        self.pipes.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = self.child.wait();
    }
}

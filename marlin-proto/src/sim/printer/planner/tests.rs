//! The planner step by step in virtual time: Marlin's first-move delay, and underruns that
//! count only real starvation. Moves are 0.1 mm at 600 mm/min (10 ms each) unless noted; each
//! command takes the firmware 0.3 ms to parse.

use std::time::{Duration, Instant};

use crate::line::frame_numbered;
use crate::session::{FlowPolicy, SessionConfig};
use crate::sim::{Harness, LinkConfig, SimConfig, SimPrinter, SimStats};

fn ms(ms: f64) -> Duration {
    Duration::from_secs_f64(ms / 1000.0)
}

/// A printer past its banner and `M110`, at virtual time `t`.
struct Fw {
    p: SimPrinter,
    t0: Instant,
    t: Instant,
    n: i64,
}

impl Fw {
    fn new(config: SimConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
        let t0 = Instant::now();
        let mut fw = Self {
            p: SimPrinter::new(config),
            t0,
            t: t0,
            n: 0,
        };
        fw.send(&["M110 N0"]);
        fw.t0 = fw.t;
        fw
    }

    /// Numbered lines arriving together now; runs until the firmware has parsed them.
    fn send(&mut self, commands: &[&str]) {
        let mut bytes = Vec::new();
        for c in commands {
            frame_numbered(self.n, c, &mut bytes);
            self.n += 1;
        }
        self.p.handle_rx(self.t, &bytes);
        self.run_until(self.t + ms(0.3) * commands.len() as u32);
        self.p.poll_transmit(&mut Vec::new());
    }

    /// Runs the printer's own deadlines up to `end` (then the clock is at `end`).
    fn run_until(&mut self, end: Instant) {
        while let Some(d) = self.p.poll_timeout().filter(|d| *d <= end) {
            self.t = self.t.max(d);
            self.p.handle_timeout(self.t);
        }
        self.t = self.t.max(end);
    }

    /// Runs to `at_ms` after the start and says whether motion has stopped by then.
    fn idle_at(&mut self, at_ms: f64) -> bool {
        self.run_until(self.t0 + ms(at_ms));
        self.p.is_idle()
    }

    /// Checks that motion still runs 0.1 ms before `at_ms` and has stopped 0.1 ms after.
    fn motion_ends_at(&mut self, at_ms: f64) {
        assert!(!self.idle_at(at_ms - 0.1), "still moving before {at_ms} ms");
        assert!(self.idle_at(at_ms + 0.1), "stopped after {at_ms} ms");
    }
}

const MOVE: &str = "G1 X0.1 F600";
const BACK: &str = "G1 X0";

#[test]
fn a_lone_first_move_waits_for_the_first_move_delay() {
    let mut fw = Fw::new(SimConfig::default());
    // Parsed at 0.3 ms, held 100 ms, then 10 ms of motion.
    fw.send(&[MOVE]);
    fw.motion_ends_at(110.3);
    assert_eq!(fw.p.stats().underruns, 0, "a print's start is no underrun");
}

#[test]
fn three_queued_moves_start_at_once() {
    let mut fw = Fw::new(SimConfig::default());
    // The third is planned at 0.9 ms: motion starts then, 30 ms of it.
    fw.send(&[MOVE, BACK, MOVE]);
    fw.motion_ends_at(30.9);
    assert_eq!(fw.p.stats().underruns, 0);
}

#[test]
fn two_moves_wait_for_a_third() {
    let mut fw = Fw::new(SimConfig::default());
    fw.send(&[MOVE, BACK]);
    assert!(!fw.idle_at(50.0));
    assert_eq!(
        fw.p.planner.len(),
        2,
        "nothing ran in the first 50 ms: both still queued"
    );
    // The third arrives at 50 ms, is planned at 50.3: all three run, 30 ms.
    fw.send(&[MOVE]);
    fw.motion_ends_at(80.3);
}

#[test]
fn moves_joining_running_motion_are_not_held() {
    let mut fw = Fw::new(SimConfig::default());
    fw.send(&[MOVE, BACK, MOVE]);
    fw.run_until(fw.t0 + ms(20.0));
    // One move joins while the third runs: it follows at once (ends at 40.9 ms).
    fw.send(&[BACK]);
    fw.motion_ends_at(40.9);
    assert_eq!(fw.p.stats().underruns, 0);
}

#[test]
fn a_host_too_slow_to_keep_up_is_an_underrun_lasting_until_motion_resumes() {
    let mut fw = Fw::new(SimConfig::default());
    fw.send(&[MOVE, BACK, MOVE]);
    // Motion ends at 30.9 ms; the next move comes at 60 ms (planned at 60.3) and, alone, is
    // held for the first-move delay: motion stood still from 30.9 to 160.3 ms.
    assert!(fw.idle_at(60.0));
    fw.send(&[BACK]);
    assert_eq!(fw.p.stats().underruns, 0, "counted when motion resumes");
    fw.motion_ends_at(170.3);
    assert_eq!(fw.p.stats().underruns, 1);
    let starved = fw.p.stats().starved;
    assert!(starved > ms(129.3) && starved < ms(129.5), "{starved:?}");
}

#[test]
fn waits_the_host_asked_for_are_not_underruns() {
    for wait in ["G4 P50", "M400", "G28"] {
        let mut fw = Fw::new(SimConfig {
            homing_time: ms(20.0),
            ..SimConfig::default()
        });
        fw.send(&[MOVE, BACK, MOVE, wait]);
        fw.run_until(fw.t0 + ms(200.0));
        fw.send(&[BACK, MOVE, BACK]);
        fw.run_until(fw.t0 + ms(400.0));
        assert!(fw.p.is_idle(), "{wait}");
        assert_eq!(fw.p.stats().underruns, 0, "{wait}");
    }
}

#[test]
fn instant_moves_are_never_held() {
    let mut fw = Fw::new(SimConfig {
        moves: crate::sim::MoveTiming::Instant,
        ..SimConfig::default()
    });
    fw.send(&[MOVE]);
    assert!(fw.p.is_idle());
}

/// The curve file: 0.25 mm chords at 60 mm/s, 240 lines/s.
fn curves(lines: usize) -> Vec<String> {
    let mut job = vec![
        "G90".to_string(),
        "M83".to_string(),
        "G92 X120 Y100".to_string(),
    ];
    job.push("G1 F3600".to_string());
    let step = 0.25 / 20.0;
    job.extend((0..lines).map(|i| {
        let a = i as f64 * step;
        format!(
            "G1 X{:.3} Y{:.3} E0.0083",
            100.0 + 20.0 * a.cos(),
            100.0 + 20.0 * a.sin()
        )
    }));
    job
}

fn stream(flow: FlowPolicy, baud: u32, lines: usize) -> SimStats {
    let session = SessionConfig {
        flow,
        ..SessionConfig::default()
    };
    let printer = SimConfig {
        advanced_ok: true,
        ..SimConfig::default()
    };
    let link = LinkConfig {
        baud,
        latency: ms(1.0),
    };
    #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
    let mut h = Harness::new(session, printer, link, Instant::now());
    let report = h.run(curves(lines), Duration::from_secs(600));
    assert_eq!(report.fatal, None, "{report:?}");
    assert_eq!(report.completed as usize, lines + 4, "{report:?}");
    assert!(h.printer().is_idle());
    h.printer().stats().clone()
}

#[test]
fn a_credit_window_never_starves_where_ping_pong_does() {
    // 250000 baud: ping-pong's round trip per line (about 4.5 ms) is longer than a chord
    // (4.2 ms), the credit window keeps the planner fed from the first move to the last.
    let credit = stream(FlowPolicy::Auto { rx_bytes: 128 }, 250_000, 600);
    assert_eq!(credit.underruns, 0, "{credit:?}");
    let ping_pong = stream(FlowPolicy::PingPong, 250_000, 600);
    assert!(ping_pong.underruns > 10, "{ping_pong:?}");
}

#[test]
fn a_link_too_slow_for_the_file_still_shows_underruns() {
    // 9600 baud carries about 24 of these 40-byte lines a second: the printer starves.
    let slow = stream(FlowPolicy::Auto { rx_bytes: 128 }, 9600, 100);
    // Each time the planner runs dry, the next move waits for two more (or 100 ms).
    assert!(slow.underruns > 20, "{slow:?}");
    assert!(slow.starved > Duration::from_secs(2), "{slow:?}");
}

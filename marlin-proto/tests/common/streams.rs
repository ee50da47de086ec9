//! Streaming a job through the in-process harness (virtual time, no ptys) and checking the
//! printer's ledger and the wire afterwards.

use std::time::{Duration, Instant};

use easyprint_marlin::sim::{
    Faults, Harness, LinkConfig, MoveTiming, RunReport, SimConfig, SimFlavor,
};
use easyprint_marlin::{FlowPolicy, SessionConfig};

/// `lines` distinct moves (no two alike, so a repeated or swapped line shows in the ledger).
pub fn job(lines: usize) -> Vec<String> {
    (0..lines)
        .map(|i| format!("G1 X{}.{} Y{} E{i}", i % 200, i % 7, (i / 200) % 200))
        .collect()
}

/// Where and how a job is streamed.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The simulated firmware (its [`Faults`] included).
    pub printer: SimConfig,
    /// The session's flow control.
    pub flow: FlowPolicy,
    /// The link's baud rate (1 ms latency).
    pub baud: u32,
}

impl Stream {
    /// `flavor` with 1 ms moves, `flow`, 115200 baud, under `faults`.
    pub fn to(flavor: SimFlavor, flow: FlowPolicy, faults: Faults) -> Self {
        Self {
            printer: SimConfig {
                moves: MoveTiming::Fixed(Duration::from_millis(1)),
                faults,
                ..SimConfig::flavored(flavor)
            },
            flow,
            baud: 115_200,
        }
    }

    /// Streams [`job`]`(lines)` through a fresh harness with events recorded and the wire
    /// audited; at most 30 days of virtual time.
    pub fn run(&self, lines: usize) -> (Harness, RunReport) {
        let session = SessionConfig {
            flow: self.flow,
            ..SessionConfig::default()
        };
        let link = LinkConfig {
            baud: self.baud,
            latency: Duration::from_millis(1),
        };
        #[allow(clippy::disallowed_methods)] // origin of virtual time
        let mut h = Harness::new(session, self.printer.clone(), link, Instant::now());
        h.record_events(true);
        h.audit_wire();
        let report = h.run(job(lines), Duration::from_secs(30 * 24 * 3600));
        (h, report)
    }
}

/// The job's moves the printer ran, in order.
pub fn executed_moves(h: &Harness) -> Vec<&str> {
    h.printer()
        .ledger()
        .iter()
        .filter(|e| e.command.starts_with("G1"))
        .map(|e| e.command.as_str())
        .collect()
}

/// The moves that ran are the first ones of [`job`]`(lines)`, each once, in order (a line
/// skipped, repeated or swapped is named with its neighbours), and the session never skipped
/// a line number nor re-sent a line unasked. Returns how many ran.
pub fn assert_in_order_prefix(h: &Harness, report: &RunReport, lines: usize) -> usize {
    let executed = executed_moves(h);
    let expected = job(lines);
    if let Some(i) =
        (0..executed.len()).find(|&i| expected.get(i).map(String::as_str) != Some(executed[i]))
    {
        let around = |v: &[&str]| v[i.saturating_sub(2)..(i + 3).min(v.len())].join(" | ");
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        panic!(
            "command {i} differs: ran [{}], wanted [{}]; {report:?}",
            around(&executed),
            around(&want)
        );
    }
    assert_eq!(h.wire_violations(), &[], "{report:?}");
    // A bounded receive buffer overrun would be a line error the host caused.
    assert_eq!(h.printer().stats().rx_overflow_bytes, 0, "{report:?}");
    executed.len()
}

/// Every line of [`job`]`(lines)` ran exactly once, in order, and was reported complete; the
/// session never gave up, never skipped a line number, never re-sent a line unasked.
pub fn assert_exactly_once(h: &Harness, report: &RunReport, lines: usize) {
    let ran = assert_in_order_prefix(h, report, lines);
    assert_eq!(report.fatal, None, "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(ran, lines, "{report:?}");
    assert_eq!(report.completed as usize, lines, "{report:?}");
}

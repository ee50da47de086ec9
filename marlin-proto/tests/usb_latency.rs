//! The simulator behind an FTDI bridge's 16 ms latency timer, in virtual time: ping-pong waits
//! for the timer on every `ok`, the credit window (ADVANCED_OK) keeps the link busy.

use std::time::{Duration, Instant};

use easyprint_marlin::sim::{Harness, LinkConfig, MoveTiming, RunReport, SimConfig, UsbBatching};
use easyprint_marlin::{FlowPolicy, SessionConfig};

const LINES: usize = 600;

fn stream(flow: FlowPolicy, usb: Option<UsbBatching>) -> RunReport {
    let printer = SimConfig {
        advanced_ok: true,
        moves: MoveTiming::Instant,
        usb_batching: usb,
        ..SimConfig::default()
    };
    let link = LinkConfig {
        baud: 250_000,
        latency: Duration::from_millis(1),
    };
    let session = SessionConfig {
        flow,
        ..SessionConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // origin of virtual time
    let mut h = Harness::new(session, printer, link, Instant::now());
    let job = (0..LINES).map(|i| format!("G1 X{} Y{}", i % 100, i % 37));
    let report = h.run(job, Duration::from_secs(3600));
    assert_eq!(report.fatal, None);
    assert_eq!(report.completed as usize, LINES, "{report:?}");
    let executed = h.printer().ledger().iter();
    assert_eq!(
        executed.filter(|e| e.command.starts_with("G1")).count(),
        LINES
    );
    report
}

#[test]
fn ping_pong_waits_for_the_latency_timer_on_every_ok() {
    let report = stream(FlowPolicy::PingPong, Some(UsbBatching::FTDI_DEFAULT));
    // One line per `ok`, each `ok` held up to 16 ms: at best one line per timer period.
    let per_line = report.elapsed / LINES as u32;
    assert!(per_line >= Duration::from_millis(15), "{per_line:?}");
    let direct = stream(FlowPolicy::PingPong, None);
    // Without the bridge a round trip takes about 3.7 ms here.
    assert!(
        direct.elapsed * 4 < report.elapsed,
        "{direct:?} vs {report:?}"
    );
}

#[test]
fn the_credit_window_keeps_the_link_busy_behind_the_latency_timer() {
    let ping_pong = stream(FlowPolicy::PingPong, Some(UsbBatching::FTDI_DEFAULT));
    let credit = stream(
        FlowPolicy::Auto { rx_bytes: 128 },
        Some(UsbBatching::FTDI_DEFAULT),
    );
    // Four commands and 128 bytes in flight per 16 ms period (plus full 62-byte packets of
    // `ok`s), against one line per period.
    assert!(
        credit.elapsed * 3 < ping_pong.elapsed,
        "{credit:?} vs {ping_pong:?}"
    );
}

//! The quirk table through the real session, against the simulator's firmware flavors: each
//! flavor streams a job under its own fault injection and every line runs exactly once, in
//! order; each flavor's halt stops the session with its reason.

use std::time::{Duration, Instant};

use easyprint_marlin::sim::{
    Faults, Harness, LinkConfig, MoveTiming, RunReport, SimConfig, SimFlavor,
};
use easyprint_marlin::{
    Event, FatalError, FirmwareError, FirmwareFlavor, FlowPolicy, Quirks, SessionConfig, Warning,
};

const LINES: usize = 200;

/// Streams 200 moves, the 101st outside the bed, to a simulated Klipper.
fn stream(session: SessionConfig, faults: Faults) -> (Harness, RunReport) {
    let printer = SimConfig {
        moves: MoveTiming::Fixed(Duration::from_millis(2)),
        faults,
        ..SimConfig::klipper()
    };
    #[allow(clippy::disallowed_methods)] // origin of virtual time
    let mut h = Harness::new(session, printer, LinkConfig::default(), Instant::now());
    h.record_events(true);
    let job = (0..LINES).map(|i| {
        if i == 100 {
            "G1 X300 Y10".to_owned()
        } else {
            format!("G1 X{} Y{}", i % 100, i % 37)
        }
    });
    let report = h.run(job, Duration::from_secs(600));
    (h, report)
}

#[test]
fn klipper_is_detected_and_its_command_errors_are_not_fatal() {
    let (mut h, report) = stream(SessionConfig::default(), Faults::none());
    assert_eq!(report.fatal, None, "{report:?}");
    assert_eq!(report.completed as usize, LINES);
    assert_eq!(report.resends, 0, "Klipper never asks for a line again");
    assert_eq!(h.session().firmware().flavor(), FirmwareFlavor::Klipper);
    assert_eq!(h.session().quirks(), Quirks::KLIPPER);
    let rejected = h.events().iter().filter(|e| {
        matches!(e, Event::Warning(Warning::FirmwareError(FirmwareError::Other(m)))
            if m.starts_with("Move out of range: 300.000 10.000"))
    });
    assert_eq!(rejected.count(), 1);
    let moves = h.printer().ledger().iter();
    assert_eq!(moves.filter(|e| e.command.starts_with("G1")).count(), LINES);
}

#[test]
fn a_klipper_shutdown_stops_the_session_with_its_reason() {
    let faults = Faults {
        halt_after: Some(50),
        ..Faults::none()
    };
    let (_, report) = stream(SessionConfig::default(), faults);
    assert_eq!(
        report.fatal,
        Some(FatalError::Halted {
            reason: Some("THERMAL RUNAWAY".to_owned())
        }),
        "{report:?}"
    );
}

#[test]
fn the_config_can_insist_on_marlin_behaviour() {
    let session = SessionConfig {
        quirks: Some(Quirks::MARLIN),
        ..SessionConfig::default()
    };
    let (_, report) = stream(session, Faults::none());
    assert!(
        matches!(&report.fatal, Some(FatalError::FirmwareFatal(m)) if m.starts_with("Move out of range")),
        "{report:?}"
    );
}

/// The job for the other flavors: 1,500 distinct moves.
fn job(lines: usize) -> Vec<String> {
    (0..lines)
        .map(|i| format!("G1 X{}.{} Y{} E{i}", i % 200, i % 7, (i / 200) % 200))
        .collect()
}

/// Streams `lines` moves to a simulated `flavor` with 1 ms moves at 115200 baud.
fn stream_to(
    flavor: SimFlavor,
    flow: FlowPolicy,
    faults: Faults,
    lines: usize,
) -> (Harness, RunReport) {
    let printer = SimConfig {
        moves: MoveTiming::Fixed(Duration::from_millis(1)),
        faults,
        ..SimConfig::flavored(flavor)
    };
    let session = SessionConfig {
        flow,
        ..SessionConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // origin of virtual time
    let mut h = Harness::new(session, printer, LinkConfig::default(), Instant::now());
    h.record_events(true);
    let report = h.run(job(lines), Duration::from_secs(3600));
    (h, report)
}

/// Faults a firmware with a resend protocol recovers from (line noise both ways).
fn line_noise(seed: u64) -> Faults {
    Faults {
        seed,
        corrupt_line: 0.02,
        drop_byte: 0.01,
        lose_line: 0.005,
        lost_ok: 0.005,
        duplicate_ok: 0.005,
        spurious_resend: 0.005,
        ..Faults::none()
    }
}

/// Every job line ran exactly once, in order, and was reported complete.
fn assert_exactly_once(h: &Harness, report: &RunReport, lines: usize) {
    let executed: Vec<&str> = h
        .printer()
        .ledger()
        .iter()
        .filter(|e| e.command.starts_with("G1"))
        .map(|e| e.command.as_str())
        .collect();
    let expected = job(lines);
    if let Some(i) = (0..executed.len().max(lines))
        .find(|&i| executed.get(i).copied() != expected.get(i).map(String::as_str))
    {
        let around = |v: &[&str]| v[i.saturating_sub(2)..(i + 3).min(v.len())].join(" | ");
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        panic!(
            "command {i} differs: ran [{}], wanted [{}]; {report:?}",
            around(&executed),
            around(&want)
        );
    }
    assert_eq!(report.fatal, None, "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.completed as usize, lines, "{report:?}");
}

#[test]
fn each_flavor_is_detected_and_gets_its_table_entry() {
    for (flavor, detected, quirks) in [
        (SimFlavor::Marlin, FirmwareFlavor::Marlin, Quirks::MARLIN),
        (SimFlavor::Prusa, FirmwareFlavor::Prusa, Quirks::PRUSA),
        (
            SimFlavor::Repetier,
            FirmwareFlavor::Repetier,
            Quirks::REPETIER,
        ),
        (
            SimFlavor::Smoothieware,
            FirmwareFlavor::Smoothieware,
            Quirks::SMOOTHIEWARE,
        ),
        (
            SimFlavor::RepRapFirmware,
            FirmwareFlavor::RepRapFirmware,
            Quirks::REPRAPFIRMWARE,
        ),
    ] {
        let (mut h, report) = stream_to(flavor, FlowPolicy::PingPong, Faults::none(), 50);
        assert_exactly_once(&h, &report, 50);
        assert_eq!(h.session().firmware().flavor(), detected, "{flavor:?}");
        assert_eq!(h.session().quirks(), quirks, "{flavor:?}");
        assert_eq!(report.resends, 0, "{flavor:?}");
    }
}

const CREDIT: FlowPolicy = FlowPolicy::Credit {
    slots: 4,
    rx_bytes: 128,
};

/// Streams 1,500 lines under [`line_noise`] once per `(seed, flow)`: every line runs exactly
/// once, in order, after resends.
fn survives_line_noise(flavor: SimFlavor, runs: &[(u64, FlowPolicy)]) {
    for &(seed, flow) in runs {
        let (h, report) = stream_to(flavor, flow, line_noise(seed), 1_500);
        assert_exactly_once(&h, &report, 1_500);
        assert!(report.resends > 0, "{flavor:?}: {report:?}");
    }
}

#[test]
fn each_flavor_with_resends_streams_exactly_once_under_line_noise() {
    let ping_pong = FlowPolicy::PingPong;
    survives_line_noise(
        SimFlavor::Prusa,
        &[(1, ping_pong), (2, ping_pong), (3, ping_pong)],
    );
    // With a credit window, lines in flight behind a bad one come back as `skip <n>` + `ok`.
    survives_line_noise(
        SimFlavor::Repetier,
        &[(1, ping_pong), (2, ping_pong), (3, CREDIT), (4, CREDIT)],
    );
    survives_line_noise(
        SimFlavor::Smoothieware,
        &[(1, ping_pong), (2, ping_pong), (3, CREDIT)],
    );
}

#[test]
fn each_flavors_halt_stops_the_session_with_its_reason() {
    let halt = Faults {
        halt_after: Some(40),
        ..Faults::none()
    };
    let (_, report) = stream_to(SimFlavor::Prusa, FlowPolicy::PingPong, halt.clone(), 200);
    assert_eq!(report.fatal, Some(FatalError::Stopped), "{report:?}");
    let (_, report) = stream_to(SimFlavor::Repetier, FlowPolicy::PingPong, halt.clone(), 200);
    assert!(
        matches!(&report.fatal, Some(FatalError::FirmwareFatal(m)) if m.starts_with("Heater decoupled during hold - Printer stopped")),
        "{report:?}"
    );
    let (_, report) = stream_to(SimFlavor::Smoothieware, FlowPolicy::PingPong, halt, 200);
    assert!(
        matches!(&report.fatal, Some(FatalError::FirmwareFatal(m)) if m.ends_with("HALT asserted - reset or M999 required")),
        "{report:?}"
    );
}

#[test]
fn reprapfirmware_streams_exactly_once_when_nothing_is_lost() {
    // Only `ok`s doubled: every line arrives, so every line runs exactly once.
    let faults = Faults {
        seed: 5,
        duplicate_ok: 0.01,
        ..Faults::none()
    };
    let (h, report) = stream_to(
        SimFlavor::RepRapFirmware,
        FlowPolicy::PingPong,
        faults,
        1_500,
    );
    assert_exactly_once(&h, &report, 1_500);
}

#[test]
fn a_line_reprapfirmware_drops_stops_the_session_instead_of_being_skipped() {
    for seed in 1..=3 {
        let faults = Faults {
            seed,
            corrupt_line: 0.01,
            ..Faults::none()
        };
        let (h, report) = stream_to(
            SimFlavor::RepRapFirmware,
            FlowPolicy::PingPong,
            faults,
            1_500,
        );
        let Some(FatalError::Unconfirmed { line: Some(line) }) = report.fatal else {
            panic!("{report:?}");
        };
        // Everything before the dropped line ran once, in order; nothing after it ran.
        let executed: Vec<&str> = h
            .printer()
            .ledger()
            .iter()
            .filter(|e| e.command.starts_with("G1"))
            .map(|e| e.command.as_str())
            .collect();
        let expected = job(1_500);
        assert!(executed.len() < 1_500, "{report:?}");
        assert!(
            executed.iter().zip(&expected).all(|(a, b)| a == b),
            "{report:?}"
        );
        // The dropped line comes after every move that ran (only the probe `M105` ran later).
        let last_move = h
            .printer()
            .ledger()
            .iter()
            .rev()
            .find(|e| e.command.starts_with("G1"))
            .and_then(|e| e.line)
            .unwrap_or(0);
        assert!(line > last_move, "line {line}, last move {last_move}");
    }
}

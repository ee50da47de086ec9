//! The quirk table through the real session, against the simulator's firmware flavors: each
//! flavor is detected and gets its entry; Klipper's command errors and shutdown. Streaming
//! each flavor under faults (line noise, resets, halts) is `fault_schedules.rs`'s.

mod common;

use std::time::{Duration, Instant};

use common::streams::{assert_exactly_once, Stream};
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
        let (mut h, report) = Stream::to(flavor, FlowPolicy::PingPong, Faults::none()).run(50);
        assert_exactly_once(&h, &report, 50);
        assert_eq!(h.session().firmware().flavor(), detected, "{flavor:?}");
        assert_eq!(h.session().quirks(), quirks, "{flavor:?}");
        assert_eq!(report.resends, 0, "{flavor:?}");
    }
}

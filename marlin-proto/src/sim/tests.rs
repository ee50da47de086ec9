//! The simulated firmware byte for byte, then host and firmware together under every fault.

use std::time::{Duration, Instant};

use super::*;
use crate::line::frame_numbered;
use crate::session::{Event, FatalError, FlowPolicy, SessionConfig};

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
    Instant::now()
}

fn numbered(n: i64, payload: &str) -> Vec<u8> {
    let mut v = Vec::new();
    frame_numbered(n, payload, &mut v);
    v
}

/// A printer past its boot banner, driven by hand.
struct Fw {
    p: SimPrinter,
    t: Instant,
}

impl Fw {
    fn new(config: SimConfig) -> Self {
        let mut p = SimPrinter::new(config);
        let mut banner = Vec::new();
        p.poll_transmit(&mut banner);
        assert!(banner.starts_with(b"start\n"));
        Self { p, t: t0() }
    }

    fn rx(&mut self, bytes: &[u8]) -> String {
        self.p.handle_rx(self.t, bytes);
        self.settle()
    }

    /// Runs the printer's own deadlines for `ms` and returns its output.
    fn run_ms(&mut self, ms: u64) -> String {
        let end = self.t + Duration::from_millis(ms);
        while let Some(d) = self.p.poll_timeout().filter(|d| *d <= end) {
            self.t = self.t.max(d);
            self.p.handle_timeout(self.t);
        }
        self.t = end;
        self.settle()
    }

    fn settle(&mut self) -> String {
        // Finish the command's parse time.
        let end = self.t + Duration::from_millis(1);
        while let Some(d) = self.p.poll_timeout().filter(|d| *d <= end) {
            self.t = self.t.max(d);
            self.p.handle_timeout(self.t);
        }
        let mut out = Vec::new();
        self.p.poll_transmit(&mut out);
        String::from_utf8(out).unwrap()
    }
}

fn instant_moves() -> SimConfig {
    SimConfig {
        moves: MoveTiming::Instant,
        ..SimConfig::default()
    }
}

#[test]
fn accepts_numbered_lines_and_both_hello_styles() {
    let mut fw = Fw::new(instant_moves());
    assert_eq!(fw.rx(&numbered(0, "M110 N0")), "ok\n");
    assert_eq!(fw.rx(&numbered(1, "G1 X1")), "ok\n");
    // Printrun style (scenario 49).
    assert_eq!(fw.rx(&numbered(-1, "M110 N-1")), "ok\n");
    assert_eq!(fw.rx(&numbered(0, "G1 X2")), "ok\n");
    let lines: Vec<_> = fw.p.ledger().iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(0), Some(1), Some(-1), Some(0)]);
    assert_eq!(fw.p.ledger()[1].command, "G1 X1");
}

#[test]
fn line_errors_in_marlin_order_with_resend_and_ok() {
    let mut fw = Fw::new(instant_moves());
    fw.rx(&numbered(0, "M110 N0"));
    assert_eq!(
        fw.rx(b"N2 G1 X1*0\n"),
        "Error:Line Number is not Last Line Number+1, Last Line: 0\nResend: 1\nok\n"
    );
    assert_eq!(
        fw.rx(b"N1 G1 X1*0\n"),
        "Error:checksum mismatch, Last Line: 0\nResend: 1\nok\n"
    );
    assert_eq!(
        fw.rx(b"N1 G1 X1\n"),
        "Error:No Checksum with line number, Last Line: 0\nResend: 1\nok\n"
    );
}

#[test]
fn s13_unstripped_comment_hides_the_checksum() {
    let mut fw = Fw::new(instant_moves());
    fw.rx(&numbered(0, "M110 N0"));
    let mut line = b"N1 G1 X1 ; move".to_vec();
    let cs = crate::line::checksum(&line);
    line.extend_from_slice(format!("*{cs}\n").as_bytes());
    assert_eq!(
        fw.rx(&line),
        "Error:No Checksum with line number, Last Line: 0\nResend: 1\nok\n"
    );
}

#[test]
fn s14_parentheses_and_backslashes_change_what_marlin_checksums() {
    let mut fw = Fw::new(SimConfig {
        paren_comments: true,
        ..instant_moves()
    });
    fw.rx(&numbered(0, "M110 N0"));
    assert!(fw
        .rx(&numbered(1, "M117 Hi (x)"))
        .starts_with("Error:checksum mismatch"));
    assert!(fw
        .rx(&numbered(1, "M117 a\\b"))
        .starts_with("Error:checksum mismatch"));
}

#[test]
fn s12_overlong_line_is_truncated_and_fails_forever() {
    let mut fw = Fw::new(instant_moves());
    fw.rx(&numbered(0, "M110 N0"));
    let long = format!("M117 {}", "a".repeat(100));
    for _ in 0..3 {
        assert!(fw
            .rx(&numbered(1, &long))
            .starts_with("Error:No Checksum with line number"));
    }
}

#[test]
fn resend_ok_depends_on_the_version() {
    let mut fw = Fw::new(SimConfig {
        version: MarlinVersion::V2_0,
        ..instant_moves()
    });
    fw.rx(&numbered(0, "M110 N0"));
    assert_eq!(
        fw.rx(b"N1 G1*0\n"),
        "Error:checksum mismatch, Last Line: 0\nResend: 1\n"
    );
}

#[test]
fn v2_drains_rx_but_v1_answers_every_line_in_flight() {
    let burst = |fw: &mut Fw| {
        let mut bytes = b"N1 G1 X1*0\n".to_vec();
        bytes.extend(numbered(2, "G1 X2"));
        bytes.extend(numbered(3, "G1 X3"));
        fw.rx(&bytes)
    };
    let mut fw = Fw::new(instant_moves());
    fw.rx(&numbered(0, "M110 N0"));
    assert_eq!(
        burst(&mut fw),
        "Error:checksum mismatch, Last Line: 0\nResend: 1\nok\n"
    );
    let mut fw = Fw::new(SimConfig {
        version: MarlinVersion::V1,
        ..instant_moves()
    });
    fw.rx(&numbered(0, "M110 N0"));
    let out = burst(&mut fw);
    assert_eq!(out.matches("Resend: 1\nok\n").count(), 3, "{out}");
}

#[test]
fn advanced_ok_reports_free_planner_blocks_and_slots() {
    let mut fw = Fw::new(SimConfig {
        advanced_ok: true,
        ..SimConfig::default()
    });
    assert_eq!(fw.rx(&numbered(0, "M110 N0")), "ok N0 P16 B3\n");
    assert_eq!(fw.rx(&numbered(1, "G1 X10 F600")), "ok N1 P15 B3\n");
    assert_eq!(fw.rx(b"M105\n").lines().count(), 1);
    assert_eq!(fw.rx(b"G1 X20\n"), "ok P14 B3\n");
}

#[test]
fn full_rx_buffer_loses_bytes_while_the_firmware_is_blocked() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    fw.rx(&numbered(1, "G28"));
    let mut flood = Vec::new();
    for n in 2..12 {
        flood.extend(numbered(n, "G1 X1.234 Y5.678 E0.1234"));
    }
    fw.rx(&flood);
    assert!(fw.p.stats().rx_overflow_bytes > 0);
}

#[test]
fn blocking_commands_send_busy_and_heat_along_a_curve() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    assert_eq!(fw.rx(&numbered(1, "G28")), "");
    let out = fw.run_ms(9000);
    assert!(out.starts_with("echo:busy: processing\n"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
    // 22 °C to 200 °C at 5 °C/s: about 36 s, with a report every second.
    fw.rx(&numbered(2, "M109 S200"));
    let out = fw.run_ms(30_000);
    assert!(!out.contains("ok"), "still heating");
    assert!(out.matches(" T:").count() >= 29);
    let out = fw.run_ms(10_000);
    assert!(out.contains("ok\n"));
    let out = fw.rx(b"M105\n");
    assert!(out.starts_with("ok T:200.00 /200.00"), "{out}");
}

#[test]
fn emergency_parser_breaks_a_heating_wait_and_m112_kills() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    fw.rx(&numbered(1, "M109 S250"));
    fw.run_ms(3000);
    let out = fw.rx(b"M108\n");
    assert!(out.contains("ok\n"), "M109 released: {out}");
    let out = fw.rx(b"M112\n");
    assert_eq!(
        out,
        "echo:Killed by M112\nError:Printer halted. kill() called!\n"
    );
    assert!(fw.p.is_halted());
    assert_eq!(fw.rx(&numbered(2, "G1 X1")), "", "silence after kill");
}

#[test]
fn planner_takes_time_and_underruns_are_counted() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    // 10 mm at 600 mm/min: one second, after the first-move delay (100 ms).
    fw.rx(&numbered(1, "G1 X10 F600"));
    fw.run_ms(1500);
    assert!(fw.p.is_idle());
    fw.rx(&numbered(2, "G1 X20"));
    // Counted when motion resumes: alone, the move is held for the first-move delay.
    fw.run_ms(150);
    assert_eq!(fw.p.stats().underruns, 1);
    let starved = fw.p.stats().starved;
    assert!(
        starved >= Duration::from_millis(499) && starved <= Duration::from_millis(502),
        "{starved:?}"
    );
}

// ----- host and firmware together -------------------------------------------------------

fn job(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("G1 X{}.{} Y{} E{i}", i % 200, i % 7, (i / 200) % 200))
        .collect()
}

fn executed_job(p: &SimPrinter) -> Vec<&str> {
    p.ledger()
        .iter()
        .filter(|e| e.line.is_some_and(|n| n >= 2) && e.command != "M105")
        .map(|e| e.command.as_str())
        .collect()
}

fn stream(
    session: SessionConfig,
    printer: SimConfig,
    baud: u32,
    lines: usize,
) -> (Harness, RunReport) {
    let link = LinkConfig {
        baud,
        latency: Duration::from_millis(1),
    };
    let mut h = Harness::new(session, printer, link, t0());
    let report = h.run(job(lines), Duration::from_secs(7 * 24 * 3600));
    (h, report)
}

fn assert_exactly_once(h: &Harness, report: &RunReport, lines: usize) {
    assert_eq!(report.fatal, None, "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.completed as usize, lines, "{report:?}");
    let expected = job(lines);
    let executed = executed_job(h.printer());
    assert_eq!(executed.len(), lines, "{report:?}");
    for (i, (got, want)) in executed.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "command {i}");
    }
}

const POLICIES: [FlowPolicy; 3] = [
    FlowPolicy::PingPong,
    FlowPolicy::Auto { rx_bytes: 128 },
    FlowPolicy::Credit {
        slots: 4,
        rx_bytes: 128,
    },
];

fn faulty(version: MarlinVersion, advanced_ok: bool, faults: Faults) -> SimConfig {
    SimConfig {
        version,
        advanced_ok,
        moves: MoveTiming::Fixed(Duration::from_millis(2)),
        faults,
        ..SimConfig::default()
    }
}

fn fault_class(name: &str, seed: u64) -> Faults {
    let mut f = Faults {
        seed,
        ..Faults::none()
    };
    match name {
        "corrupt" => f.corrupt_line = 0.03,
        "drop" => f.drop_byte = 0.03,
        "lose" => f.lose_line = 0.02,
        "lost_ok" => f.lost_ok = 0.02,
        "duplicate_ok" => f.duplicate_ok = 0.03,
        "spurious_resend" => f.spurious_resend = 0.03,
        _ => unreachable!(),
    }
    f
}

#[test]
fn clean_stream_executes_everything_once_in_order() {
    for flow in POLICIES {
        for advanced_ok in [false, true] {
            let session = SessionConfig {
                flow,
                ..SessionConfig::default()
            };
            let (h, report) = stream(
                session,
                faulty(MarlinVersion::V2_1, advanced_ok, Faults::none()),
                250_000,
                2000,
            );
            assert_exactly_once(&h, &report, 2000);
            assert_eq!(report.resends, 0);
            assert_eq!(h.printer().stats().rx_overflow_bytes, 0, "{flow:?}");
        }
    }
}

#[test]
fn every_fault_class_executes_everything_once_in_order() {
    let classes = [
        "corrupt",
        "drop",
        "lose",
        "lost_ok",
        "duplicate_ok",
        "spurious_resend",
    ];
    for (k, class) in classes.into_iter().enumerate() {
        for version in [MarlinVersion::V1, MarlinVersion::V2_0, MarlinVersion::V2_1] {
            for advanced_ok in [false, true] {
                for flow in POLICIES {
                    if matches!(flow, FlowPolicy::Credit { .. }) && !advanced_ok {
                        // Send-ahead without ADVANCED_OK cannot match oks to lines; Auto
                        // falls back to ping-pong there (see FlowPolicy::Credit).
                        continue;
                    }
                    let seed = k as u64 * 1000 + version as u64 * 10 + u64::from(advanced_ok);
                    let session = SessionConfig {
                        flow,
                        ..SessionConfig::default()
                    };
                    let (h, report) = stream(
                        session,
                        faulty(version, advanced_ok, fault_class(class, seed)),
                        115_200,
                        600,
                    );
                    assert!(
                        h.printer().stats().faults_injected > 0,
                        "{class}: no fault injected"
                    );
                    eprintln!("{class} {version:?} advanced_ok={advanced_ok} {flow:?}");
                    assert_exactly_once(&h, &report, 600);
                }
            }
        }
    }
}

#[test]
fn firmware_reset_mid_stream_stops_with_the_reason() {
    let faults = Faults {
        reset_after: Some(300),
        ..Faults::none()
    };
    let (h, report) = stream(
        SessionConfig::default(),
        faulty(MarlinVersion::V2_1, true, faults),
        250_000,
        1000,
    );
    assert!(
        matches!(report.fatal, Some(FatalError::FirmwareReset { .. })),
        "{report:?}"
    );
    // Everything that ran, ran once and in order.
    let executed = executed_job(h.printer());
    assert_eq!(executed[..], job(1000)[..executed.len()]);
}

#[test]
fn firmware_halt_mid_stream_stops_with_the_reason() {
    let faults = Faults {
        halt_after: Some(500),
        ..Faults::none()
    };
    let (h, report) = stream(
        SessionConfig::default(),
        faulty(MarlinVersion::V2_1, false, faults),
        115_200,
        1000,
    );
    assert_eq!(
        report.fatal,
        Some(FatalError::Thermal {
            cause: "Thermal Runaway".into(),
            heater: "bed".into()
        })
    );
    let executed = executed_job(h.printer());
    assert_eq!(executed[..], job(1000)[..executed.len()]);
}

#[test]
fn credit_window_beats_ping_pong_on_the_wire() {
    let session = |flow| SessionConfig {
        flow,
        ..SessionConfig::default()
    };
    let printer = SimConfig {
        advanced_ok: true,
        moves: MoveTiming::Instant,
        ..SimConfig::default()
    };
    let (_, ping) = stream(
        session(FlowPolicy::PingPong),
        printer.clone(),
        250_000,
        3000,
    );
    let (_, credit) = stream(
        session(FlowPolicy::Auto { rx_bytes: 128 }),
        printer,
        250_000,
        3000,
    );
    assert!(
        credit.link_utilisation > ping.link_utilisation * 1.3,
        "credit {:.2} vs ping-pong {:.2}",
        credit.link_utilisation,
        ping.link_utilisation
    );
}

#[test]
fn m155_autoreports_by_itself_until_s0_and_is_unknown_without_the_feature() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    assert_eq!(fw.rx(&numbered(1, "M155 S1")), "ok\n");
    let out = fw.run_ms(3_000);
    assert_eq!(out.matches(" T:").count(), 3, "{out}");
    assert!(!out.contains("ok"), "autoreports carry no ok: {out}");
    assert!(out
        .lines()
        .all(|l| l.starts_with(" T:") && l.contains(" B:")));
    // Reports continue while a blocking command runs (Marlin reports from `idle()`).
    assert_eq!(fw.rx(&numbered(2, "G4 S3")), "");
    let out = fw.run_ms(2_500);
    assert_eq!(out.matches(" T:").count(), 2, "{out}");
    fw.run_ms(1_000);
    fw.rx(&numbered(3, "M155 S0"));
    assert_eq!(fw.run_ms(5_000), "", "S0 stops the reports");

    let mut old = Fw::new(SimConfig {
        autoreport_temp: false,
        ..SimConfig::default()
    });
    old.rx(&numbered(0, "M110 N0"));
    let out = old.rx(&numbered(1, "M115"));
    assert!(out.contains("Cap:AUTOREPORT_TEMP:0"), "{out}");
    let out = old.rx(&numbered(2, "M155 S1"));
    assert_eq!(out, "echo:Unknown command: \"M155 S1\"\nok\n");
    assert_eq!(old.run_ms(3_000), "");
}

/// Host and firmware together: with `Cap:AUTOREPORT_TEMP:1` the session switches autoreports
/// on and never polls; the unsolicited lines arrive during a long dwell without completing it.
/// Without the capability the session polls with numbered `M105`s.
#[test]
fn temperatures_come_by_autoreport_or_by_polling() {
    for autoreport in [true, false] {
        let session = SessionConfig {
            temperature_interval: Some(Duration::from_secs(2)),
            ..SessionConfig::default()
        };
        let printer = SimConfig {
            autoreport_temp: autoreport,
            ..instant_moves()
        };
        let mut h = Harness::new(session, printer, LinkConfig::default(), t0());
        h.record_events(true);
        let job = ["G28", "G4 S10", "G1 X10"];
        let report = h.run(job, Duration::from_secs(600));
        assert_eq!(report.fatal, None);
        assert_eq!(report.completed, 3, "{report:?}");
        let executed: Vec<&str> = h
            .printer()
            .ledger()
            .iter()
            .map(|e| e.command.as_str())
            .collect();
        // M105s before the last job line (the one after it is the end-of-burst barrier).
        let last = executed.iter().position(|c| *c == "G1 X10").unwrap();
        let polls = executed[..last].iter().filter(|c| **c == "M105").count();
        let temperature_events = h
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Temperatures(_)))
            .count();
        let connected = h.events().iter().find_map(|e| match e {
            Event::Connected { temperatures, .. } => Some(*temperatures),
            _ => None,
        });
        if autoreport {
            assert_eq!(
                connected,
                Some(crate::TemperatureReporting::Autoreport {
                    interval: Duration::from_secs(2)
                })
            );
            let m115 = executed.iter().position(|c| *c == "M115").unwrap();
            assert_eq!(executed[m115 + 1], "M155 S2", "first after the handshake");
            assert_eq!(polls, 0, "{executed:?}");
            // G28 (8 s) and G4 (10 s) block; reports keep coming every 2 s.
            assert!(temperature_events >= 8, "{temperature_events}");
        } else {
            assert!(matches!(
                connected,
                Some(crate::TemperatureReporting::Polled { .. })
            ));
            assert!(!executed.iter().any(|c| c.starts_with("M155")));
            // Polls queue behind the job lines already queued, and a blocked firmware reads
            // nothing: the first poll runs after the job here, and answers with temperatures.
            let all_polls = executed.iter().filter(|c| **c == "M105").count();
            assert!(all_polls >= 1, "{executed:?}");
            assert!(
                temperature_events >= all_polls,
                "{temperature_events} < {all_polls}"
            );
        }
        // Job lines ran once each, in order.
        let job_lines: Vec<&str> = executed
            .iter()
            .copied()
            .filter(|c| job.contains(c))
            .collect();
        assert_eq!(job_lines, job);
    }
}

#[test]
fn the_longest_gap_between_lines_is_measured_while_moves_remain() {
    let mut fw = Fw::new(SimConfig::default());
    fw.rx(&numbered(0, "M110 N0"));
    fw.run_ms(2_000);
    // Idle time before the first move does not count.
    fw.rx(&numbered(1, "G1 X100 F600"));
    assert_eq!(fw.p.stats().max_line_gap, Duration::ZERO);
    fw.run_ms(500);
    fw.rx(&numbered(2, "G1 X0"));
    let gap = fw.p.stats().max_line_gap;
    assert!(
        gap >= Duration::from_millis(500) && gap <= Duration::from_millis(505),
        "{gap:?}"
    );
}

/// Link-limited streaming at 250000 baud with 1 ms latency each way: with the receive-buffer
/// bytes of queued lines released (ADVANCED_OK's `B`), the credit window keeps the wire busy.
#[test]
fn credit_window_fills_a_250000_baud_link() {
    let printer = SimConfig {
        advanced_ok: true,
        moves: MoveTiming::Instant,
        ..SimConfig::default()
    };
    let (_, report) = stream(SessionConfig::default(), printer, 250_000, 3000);
    println!("utilisation at 250000: {:.3}", report.link_utilisation);
    assert!(report.link_utilisation >= 0.95, "{report:?}");
}

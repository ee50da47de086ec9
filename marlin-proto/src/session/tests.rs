//! Step-by-step scenarios from the protocol notes (numbers refer to its scenario list).

use super::*;
use crate::line::checksum;
use crate::response::{BusyReason, HostAction};

struct Host {
    s: Session,
    t: Instant,
}

fn line(n: i64, payload: &str) -> String {
    let mut v = Vec::new();
    frame_numbered(n, payload, &mut v);
    String::from_utf8(v).unwrap()
}

impl Host {
    fn new(config: SessionConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // the one clock read: an arbitrary origin
        let t = Instant::now();
        Self {
            s: Session::new(config, t),
            t,
        }
    }

    /// Handshake with a plain-`ok` Marlin and the given capability lines.
    fn connected(config: SessionConfig, hello_ok: &str, caps: &str) -> Self {
        let mut h = Self::new(config);
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.rx(&format!("{hello_ok}\n"));
        assert_eq!(h.tx(), "N1 M115*39\n");
        h.rx(&format!("FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 11 2023) PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3\n{caps}{}\n", hello_ok.replace("N0", "N1")));
        let ev = h.events();
        assert!(matches!(ev.last(), Some(Event::Connected { .. })), "{ev:?}");
        h
    }

    fn plain() -> Self {
        Self::connected(SessionConfig::default(), "ok", "")
    }

    fn tx(&mut self) -> String {
        let mut out = Vec::new();
        self.s.poll_transmit(self.t, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn rx(&mut self, text: &str) {
        self.s.handle_rx(self.t, text.as_bytes());
    }

    /// Advances virtual time by `ms`, firing every deadline on the way.
    fn wait_ms(&mut self, ms: u64) {
        let end = self.t + Duration::from_millis(ms);
        while let Some(d) = self.s.poll_timeout().filter(|d| *d <= end) {
            self.t = self.t.max(d);
            self.s.handle_timeout(self.t);
        }
        self.t = end;
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn send(&mut self, text: &str) -> CommandId {
        self.s.send(text).unwrap().unwrap()
    }

    fn completed(&mut self) -> Vec<i64> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed { line, .. } => Some(line),
                _ => None,
            })
            .collect()
    }
}

fn advanced() -> Host {
    Host::connected(SessionConfig::default(), "ok N0 P15 B3", "")
}

#[test]
fn s01_ping_pong_keeps_one_line_outstanding() {
    let mut h = Host::plain();
    let a = h.send("G28");
    h.send("G1 X1");
    assert_eq!(h.tx(), line(2, "G28"));
    assert_eq!(h.tx(), "", "second line waits for the ok");
    h.rx("ok\n");
    assert!(matches!(h.events()[..], [Event::Completed { id, line: 2, .. }] if id == a));
    assert_eq!(h.tx(), line(3, "G1 X1"));
    assert_eq!(h.s.policy(), ActivePolicy::PingPong);
}

#[test]
fn s02_ok_with_temperatures_acknowledges_and_reports() {
    let mut h = Host::plain();
    h.send("M105");
    h.tx();
    h.rx("ok T:200.00 /200.00 B:60.00 /60.00 @:64 B@:0\n");
    let ev = h.events();
    assert!(
        matches!(&ev[0], Event::Temperatures(t) if t.get(&crate::Heater::Bed).unwrap().actual == 60.0)
    );
    assert!(
        matches!(&ev[1], Event::Completed { line: 2, response, .. } if response[0].starts_with("ok T:200.00"))
    );
}

#[test]
fn s03_advanced_ok_opens_a_credit_window() {
    let mut h = advanced();
    assert!(h.s.firmware().advanced_ok);
    assert_eq!(
        h.s.policy(),
        ActivePolicy::Credit {
            slots: 4,
            rx_bytes: 128
        }
    );
    for i in 0..6 {
        h.send(&format!("G1 X{i}"));
    }
    // Four slots: N2..N5 go out at once.
    let sent = h.tx();
    assert_eq!(sent.lines().count(), 4, "{sent}");
    assert_eq!(h.s.in_flight_len(), 4);
    h.rx("ok N2 P14 B3\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), line(6, "G1 X4"));
    // An ok naming a later line acknowledges the earlier ones (their oks were lost).
    h.rx("ok N4 P14 B3\n");
    let ev = h.events();
    assert!(ev.contains(&Event::Warning(Warning::SkippedOks { count: 1 })));
    // A stale or duplicate ok changes nothing.
    h.rx("ok N4 P14 B3\n");
    assert!(h.events().contains(&Event::Warning(Warning::UnexpectedOk)));
    assert_eq!(h.s.in_flight_len(), 2, "N5 and N6");
}

#[test]
fn credit_window_respects_receive_buffer_bytes() {
    let mut h = Host::connected(
        SessionConfig {
            flow: FlowPolicy::Credit {
                slots: 8,
                rx_bytes: 64,
            },
            ..SessionConfig::default()
        },
        "ok",
        "",
    );
    for i in 0..5 {
        h.send(&format!("G1 X{i}.12345 Y{i}.12345"));
    }
    let sent = h.tx();
    assert!(sent.len() <= 64, "{} bytes in flight", sent.len());
    assert_eq!(sent.lines().count(), 2);
}

#[test]
fn s04_repetier_ok_with_number_acknowledges() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("ok 2\n");
    assert_eq!(h.completed(), vec![2]);
}

#[test]
fn s05_checksum_mismatch_resends_identical_bytes() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    let first = h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Resending {
            from: 2,
            reason: Some(FirmwareError::Checksum { last: Some(1) })
        }
    )));
    assert!(!ev.iter().any(|e| matches!(e, Event::Completed { .. })));
    assert_eq!(h.tx(), first, "same N, same checksum");
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
    // Without ADVANCED_OK a rewind is followed by a sync M105 (stale oks may be on their way).
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok\n");
    assert_eq!(h.tx(), "", "a plain ok never answers the M105");
    h.rx("ok T:21.0 /0.0\n");
    assert_eq!(h.tx(), line(4, "G1 X2"));
}

#[test]
fn s06_resend_without_ok_continues_after_the_timeout() {
    let mut h = Host::plain();
    h.send("G1 X1");
    let first = h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\n");
    assert_eq!(h.tx(), "", "waits briefly for the ok that may follow");
    h.wait_ms(500);
    assert_eq!(h.tx(), first);
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
}

#[test]
fn s06_resend_without_ok_continues_when_another_line_comes() {
    let mut h = Host::plain();
    h.send("G1 X1");
    let first = h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\necho:hello\n");
    assert_eq!(h.tx(), first);
}

#[test]
fn s07_late_ok_after_a_probe_repaired_it_is_absorbed() {
    let mut h = advanced();
    h.send("G1 X1");
    h.tx();
    h.wait_ms(1_000);
    h.rx(" T:20.00 /0.00 B:20.00 /0.00\n"); // autoreports keep the line alive
    h.wait_ms(5_000);
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok T:20.00 /0.00 B:20.00 /0.00\n");
    let ev = h.events();
    assert!(ev.contains(&Event::Warning(Warning::SkippedOks { count: 1 })));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Completed { line: 2, .. })));
    h.rx("ok N2 P15 B3\n");
    assert!(h.events().contains(&Event::Warning(Warning::UnexpectedOk)));
    assert!(h.s.is_idle());
}

#[test]
fn s08_duplicate_resend_requests_resend_the_range_once() {
    let mut h = advanced();
    for i in 0..4 {
        h.send(&format!("G1 X{i}"));
    }
    let burst = h.tx(); // N2..N5
                        // Old Marlin: every line behind the bad one fails the line-number check.
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
    // One re-sent line at a time until it is acknowledged: the lines it replaces may still
    // sit in the firmware's receive buffer.
    assert_eq!(h.tx(), line(2, "G1 X0"));
    for _ in 0..3 {
        h.rx("Error:Line Number is not Last Line Number+1, Last Line: 1\nResend: 2\nok\n");
        assert_eq!(h.tx(), "");
    }
    h.rx("ok N2 P15 B3\n");
    assert_eq!(
        h.tx(),
        burst[line(2, "G1 X0").len()..],
        "N3..N5 again, identical"
    );
    let ignored = h
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Warning(Warning::IgnoredResend { .. })))
        .count();
    assert_eq!(ignored, 3);
    h.rx("ok N3 P15 B3\nok N4 P15 B3\nok N5 P15 B3\n");
    assert_eq!(h.completed(), vec![3, 4, 5]);
    assert!(h.s.is_idle());
}

#[test]
fn s09_resend_for_the_line_about_to_be_sent_is_ignored() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("ok\n");
    h.completed();
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 2\nResend: 3\nok\n");
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Warning(Warning::IgnoredResend { line: Some(3), .. })
    )));
    assert!(h.s.fatal().is_none());
    h.send("G1 X2");
    assert_eq!(h.tx(), line(3, "G1 X2"));
}

#[test]
fn s10_resend_older_than_history_is_fatal() {
    let mut h = Host::connected(
        SessionConfig {
            history_len: 8,
            flow: FlowPolicy::PingPong,
            ..SessionConfig::default()
        },
        "ok",
        "",
    );
    let mut last = None;
    for i in 0..80 {
        last = Some(h.send(&format!("G1 X{i}")));
        let mut out = h.tx();
        if out.contains("M105") {
            // The sync M105 sent alone every 32 commands.
            h.rx("ok T:21.0 /0.0\n");
            out = h.tx();
        }
        assert!(out.contains("G1"), "{out}");
        h.rx("ok\n");
    }
    h.send("G1 X99");
    h.tx();
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 2\nResend: 3\nok\n");
    // 72 lines kept: the history never shrinks below the largest Auto window (64) + 8. The
    // newest is N84 (81 G1s and two sync M105s after N1).
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::ResendOutOfHistory {
            requested: 3,
            oldest: Some(85 - 72)
        })
    );
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Abandoned(_))));
    assert!(last.is_some());
    assert_eq!(h.tx(), "", "nothing is sent after a fatal error");
    assert!(matches!(h.s.send("G1 X1"), Err(SendError::Failed(_))));
}

#[test]
fn s11_resend_for_a_line_never_sent_or_negative_is_fatal() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("Resend: 40\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::ResendNotSent {
            requested: 40,
            next: 3
        })
    );
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("Resend: -5\n");
    assert!(matches!(
        h.s.fatal(),
        Some(FatalError::ResendNotSent { requested: -5, .. })
    ));
}

#[test]
fn s12_resend_loop_gives_up() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    for _ in 0..10 {
        h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
        assert_eq!(h.tx(), line(2, "G1 X1"));
    }
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::ResendLoop { line: 2, times: 11 })
    );
    assert_eq!(
        h.s.fatal().unwrap().to_string(),
        "printer keeps requesting line 2 (11 times): communication stuck"
    );
}

#[test]
fn s15_lost_line_is_replayed_in_order() {
    let mut h = advanced();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx(); // N2, N3; N2 vanishes
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 1\nResend: 2\nok\n");
    assert_eq!(h.tx(), line(2, "G1 X1"));
    h.rx("ok N2 P15 B3\n");
    assert_eq!(h.tx(), line(3, "G1 X2"));
    h.rx("ok N3 P15 B3\n");
    assert_eq!(h.completed(), vec![2, 3]);
}

#[test]
fn s16_send_ahead_resend_on_modern_marlin_keeps_older_lines_outstanding() {
    let mut h = advanced();
    for i in 0..4 {
        h.send(&format!("G1 X{i}"));
    }
    h.tx(); // N2..N5
            // N2 executed (ok not yet seen), N3 corrupted; N4, N5 drained silently.
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert_eq!(h.s.in_flight_len(), 1, "N2 still outstanding");
    assert_eq!(h.tx(), line(3, "G1 X1"));
    h.rx("ok N2 P15 B3\nok N3 P15 B3\n");
    assert_eq!(h.tx(), format!("{}{}", line(4, "G1 X2"), line(5, "G1 X3")));
    h.rx("ok N4 P15 B3\nok N5 P15 B3\n");
    assert_eq!(h.completed(), vec![2, 3, 4, 5]);
}

#[test]
fn s17_s18_busy_keeps_a_long_command_alive() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    for _ in 0..20 {
        h.wait_ms(2000);
        h.rx("echo:busy: processing\n");
    }
    assert!(h.s.fatal().is_none());
    assert_eq!(h.s.in_flight_len(), 1, "no ok was assumed lost");
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
}

#[test]
fn s19_paused_for_user_is_reported() {
    let mut h = Host::plain();
    h.send("M0");
    h.tx();
    h.rx("echo:busy: paused for user\n");
    assert!(h.events().contains(&Event::Busy(BusyReason::PausedForUser)));
    h.wait_ms(120_000);
    assert!(h.s.fatal().is_none(), "M0 may wait for the user for long");
}

#[test]
fn s20_wait_triggers_a_probe() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx();
    h.rx("wait\n");
    assert_eq!(h.tx(), "", "just sent: the wait predates it");
    h.wait_ms(1000);
    h.rx("wait\n");
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok T:20.0 /0.0\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), line(4, "G1 X2"));
}

#[test]
fn s21_lost_ok_with_autoreports_fires_the_ok_timer() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx();
    let mut sent = String::new();
    for _ in 0..5 {
        h.wait_ms(2000);
        h.rx(" T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0\n");
        sent += &h.tx();
    }
    assert_eq!(sent, line(3, "M105"), "probed once the ok was 10 s overdue");
    h.rx("ok T:20.0 /0.0\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), line(4, "G1 X2"));
}

#[test]
fn s22_long_command_without_busy_is_not_a_lost_printer() {
    let mut h = Host::plain();
    h.send("G28");
    h.tx();
    h.wait_ms(5_000);
    assert_eq!(h.tx(), line(3, "M105"), "quiet line: probe");
    h.wait_ms(5_000);
    assert_eq!(
        h.tx(),
        line(4, "M105"),
        "a second probe, in case the first was lost"
    );
    h.wait_ms(120_000);
    assert_eq!(
        h.tx(),
        "",
        "no more: they would only fill a blocked receive buffer"
    );
    assert!(h.s.fatal().is_none());
    h.rx("ok\nok T:20.0 /0.0\nok T:20.0 /0.0\n");
    assert_eq!(h.completed(), vec![2]);
    assert!(h.s.is_idle());
}

#[test]
fn s47_silent_printer_is_lost() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.wait_ms(5_000);
    assert!(h.events().contains(&Event::Warning(Warning::Probed)));
    assert_eq!(h.tx(), line(3, "M105"));
    h.wait_ms(25_000);
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::PrinterLost {
            silent_for: Duration::from_secs(30)
        })
    );
}

#[test]
fn s23_silent_port_and_garbage_fail_the_handshake_clearly() {
    let mut h = Host::new(SessionConfig::default());
    for _ in 0..3 {
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.wait_ms(3000);
    }
    assert_eq!(h.s.fatal(), Some(&FatalError::NoResponse { attempts: 3 }));

    let mut h = Host::new(SessionConfig::default());
    for _ in 0..3 {
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.s.handle_rx(h.t, b"\x80\x00\xf3\x1c\n\xfe\xfe\x92");
        h.wait_ms(3000);
    }
    assert!(matches!(
        h.s.fatal(),
        Some(FatalError::Garbled { attempts: 3, .. })
    ));
}

#[test]
fn s23_garbage_then_answer_connects() {
    let mut h = Host::new(SessionConfig::default());
    h.tx();
    h.s.handle_rx(h.t, b"\x80\x00garbage\n");
    h.wait_ms(3000);
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");
}

#[test]
fn s29_s30_start_during_connect_repeats_the_hello() {
    let mut h = Host::new(SessionConfig::default());
    h.tx();
    h.rx("start\necho: External Reset\nMarlin 2.1.2\n");
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("wait\n"); // counts as the hello's ok
    assert_eq!(h.tx(), "N1 M115*39\n");
    h.rx("echo:Unknown command: \"M115\"\nok\n");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Connected { .. })));
}

#[test]
fn s24_corrupted_ok_is_not_an_acknowledgement() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("kok\no\nok N11365 P1\n");
    // Only the truncated ADVANCED_OK line (starts with exactly "ok") acknowledges.
    assert_eq!(h.completed(), vec![2]);
}

#[test]
fn s25_line_endings() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.send("G1 X3");
    h.tx();
    h.rx("ok\r\n");
    h.tx();
    h.rx("ok\r");
    h.tx();
    h.s.handle_rx(h.t, b"o");
    h.s.handle_rx(h.t, b"k\n");
    assert_eq!(h.completed(), vec![2, 3, 4]);
}

#[test]
fn s26_autoreport_between_error_and_resend() {
    let mut h = Host::plain();
    h.send("G1 X1");
    let first = h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\n T:20.00 /0.00\nResend: 2\n T:20.00 /0.00\nok\n");
    assert_eq!(h.tx(), first);
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::Resending {
            reason: Some(FirmwareError::Checksum { .. }),
            ..
        }
    )));
}

#[test]
fn s27_reset_mid_print_is_fatal() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx();
    h.rx("ok\n");
    h.tx();
    h.rx("start\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::FirmwareReset {
            last_acknowledged: Some(2),
            unfinished: 1
        })
    );
}

#[test]
fn s28_reset_while_idle_resyncs() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("ok\n");
    h.rx("start\n");
    assert!(h.events().contains(&Event::FirmwareReset));
    assert!(h.s.fatal().is_none());
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");
    h.rx("FIRMWARE_NAME:Marlin\nok\n");
    h.send("G1 X2");
    assert_eq!(h.tx(), line(2, "G1 X2"));
}

#[test]
fn s31_kill_is_fatal_with_its_reason() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("echo:Killed by M112\nError:Printer halted. kill() called!\n//action:poweroff\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::Halted {
            reason: Some("Killed by M112".into())
        })
    );
    assert_eq!(
        h.s.fatal().unwrap().to_string(),
        "printer halted (kill() called): Killed by M112"
    );
}

#[test]
fn s32_thermal_runaway_names_the_heater() {
    let mut h = Host::plain();
    h.rx("Error:Thermal Runaway, system stopped! Heater_ID: bed\nError:Printer halted. kill() called!\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::Thermal {
            cause: "Thermal Runaway".into(),
            heater: "bed".into()
        })
    );
    let mut h = Host::plain();
    h.rx("Error:0\n: Extruder switched off. MAXTEMP triggered !\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::Thermal {
            cause: "Extruder switched off. MAXTEMP triggered !".into(),
            heater: "0".into()
        })
    );
}

#[test]
fn s33_stop_state_is_fatal() {
    let mut h = Host::plain();
    h.rx("Error:Printer stopped due to errors. Fix the error and use M999 to restart. (Temperature is reset. Set it after restarting)\n");
    assert_eq!(h.s.fatal(), Some(&FatalError::Stopped));
    let mut h = Host::plain();
    h.rx("!! STOP called because of BLTouch error - restart with M999\n");
    assert!(matches!(h.s.fatal(), Some(FatalError::FirmwareFatal(_))));
}

#[test]
fn s34_unknown_command_is_acknowledged_with_a_warning() {
    let mut h = Host::plain();
    h.send("G999");
    h.tx();
    h.rx("echo:Unknown command: \"G999\"\nok\n");
    let ev = h.events();
    assert!(ev.contains(&Event::Warning(Warning::UnknownCommand("G999".into()))));
    assert!(ev.iter().any(|e| matches!(e, Event::Completed { line: 2, response, .. } if response == &vec!["echo:Unknown command: \"G999\"".to_string()])));
    assert!(h.s.fatal().is_none());
}

#[test]
fn s35_emergency_stop_jumps_everything() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\n");
    h.s.emergency_stop();
    assert_eq!(h.tx(), "M112\n");
    assert_eq!(h.s.fatal(), Some(&FatalError::EmergencyStop));
    let abandoned = h
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Abandoned(_)))
        .count();
    assert_eq!(abandoned, 1, "the queued G1 X2 (N2 was already rewound)");
    // Typing M112 as a command does the same.
    let mut h = Host::plain();
    assert!(h.s.send("M112").is_err());
    assert_eq!(h.tx(), "M112\n");
}

#[test]
fn s36_m108_goes_out_of_band_with_the_emergency_parser() {
    let mut h = Host::connected(SessionConfig::default(), "ok", "Cap:EMERGENCY_PARSER:1\n");
    h.send("M109 S200");
    h.send("G1 X1");
    h.tx();
    h.s.send_emergency(h.t, EmergencyCommand::Continue).unwrap();
    assert_eq!(h.tx(), "M108\n", "while the M109 ok is outstanding");
    h.rx("ok\n"); // M109 done
    assert_eq!(h.completed(), vec![2]);
    h.rx("ok\n"); // the M108 itself
    assert_eq!(h.completed(), vec![-1]);
    assert_eq!(h.tx(), line(3, "G1 X1"));
    // Without the parser it is queued first, numbered.
    let mut h = Host::plain();
    h.send("G1 X1");
    h.s.send_emergency(h.t, EmergencyCommand::PromptResponse(1))
        .unwrap();
    assert_eq!(h.tx(), line(2, "M876 S1"));
}

#[test]
fn s37_s38_host_actions_become_events() {
    let mut h = Host::plain();
    h.rx("//action:prompt_begin Paused\n//action:prompt_button PurgeMore\n//action:prompt_show\n//action:cancel\n//action:weird x\n");
    let ev = h.events();
    assert_eq!(
        ev,
        vec![
            Event::Action(HostAction::PromptBegin("Paused".into())),
            Event::Action(HostAction::PromptButton("PurgeMore".into())),
            Event::Action(HostAction::PromptShow),
            Event::Action(HostAction::Cancel),
            Event::Action(HostAction::Other {
                name: "weird".into(),
                params: "x".into()
            }),
        ]
    );
}

#[test]
fn s40_m110_cannot_be_queued() {
    let mut h = Host::plain();
    assert_eq!(
        h.s.send("M110 N5"),
        Err(SendError::Payload(PayloadError::ContainsM110))
    );
}

#[test]
fn s41_probe_keeps_fifo_order() {
    let mut h = Host::plain();
    h.send("G28");
    h.send("G1 X1");
    h.tx();
    h.wait_ms(5000);
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok\n"); // G28
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(
        h.tx(),
        line(4, "G1 X1"),
        "the probe does not use the window"
    );
    h.rx("ok T:20.0 /0.0\nok\n");
    assert_eq!(h.completed(), vec![4]);
    assert!(h.s.is_idle());
}

#[test]
fn probe_answer_repairs_a_lost_ok() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    h.tx();
    h.wait_ms(5000); // the ok for N2 was lost: silence, probe
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok T:20.0 /0.0\n");
    let ev = h.events();
    assert!(ev.contains(&Event::Warning(Warning::SkippedOks { count: 1 })));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Completed { line: 2, .. })));
    assert_eq!(h.tx(), line(4, "G1 X2"));
}

#[test]
fn probe_reveals_a_lost_last_line() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx(); // N2 never arrives: the firmware cannot know
    h.wait_ms(5000);
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 1\nResend: 2\nok\n");
    assert_eq!(h.tx(), format!("{}{}", line(2, "G1 X1"), line(3, "M105")));
    h.rx("ok\nok T:20.0 /0.0\n");
    assert_eq!(h.completed(), vec![2]);
    assert!(h.s.is_idle());
}

#[test]
fn s42_empty_and_comment_lines_are_never_numbered() {
    let mut h = Host::plain();
    assert_eq!(h.s.send("; comment").unwrap(), None);
    assert_eq!(h.s.send("   ").unwrap(), None);
    h.send("G1 X1 ; with comment");
    assert_eq!(h.tx(), line(2, "G1 X1"));
}

#[test]
fn s48_resend_of_the_last_line() {
    let mut h = Host::plain();
    h.send("M400");
    let first = h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
    assert!(!h.s.is_idle());
    assert_eq!(h.tx(), first);
    h.rx("ok\n");
    assert!(h.s.is_idle());
}

#[test]
fn paused_session_holds_new_lines_but_finishes_resends() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.send("G1 X2");
    let first = h.tx();
    h.s.set_paused(true);
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\nok\n");
    assert_eq!(h.tx(), first);
    h.rx("ok\n");
    assert_eq!(h.tx(), "");
    h.s.set_paused(false);
    assert_eq!(h.tx(), line(3, "M105"), "the sync after a rewind");
    h.rx("ok T:21.0 /0.0\n");
    assert_eq!(h.tx(), line(4, "G1 X2"));
}

#[test]
fn checksum_reference() {
    assert_eq!(checksum(b"N0 M110 N0"), 125);
}

#[test]
fn paren_comments_capability_changes_framing() {
    let mut h = Host::connected(SessionConfig::default(), "ok", "Cap:PAREN_COMMENTS:1\n");
    h.send("G1 X1 (note)");
    assert_eq!(h.tx(), line(2, "G1 X1"));
}

fn reporting(interval_s: u64, caps: &str) -> Host {
    let config = SessionConfig {
        temperature_interval: Some(Duration::from_secs(interval_s)),
        ..SessionConfig::default()
    };
    Host::connected(config, "ok", caps)
}

const AUTOREPORT: &str = " T:21.50 /0.00 B:22.00 /0.00 @:0 B@:0\n";

#[test]
fn s51_autoreport_is_switched_on_and_its_lines_answer_nothing() {
    let mut h = reporting(2, "Cap:AUTOREPORT_TEMP:1\n");
    assert_eq!(
        h.s.temperature_reporting(),
        TemperatureReporting::Autoreport {
            interval: Duration::from_secs(2)
        }
    );
    let g1 = h.send("G1 X1");
    assert_eq!(
        h.tx(),
        line(2, "M155 S2"),
        "M155 goes before queued commands"
    );
    assert_eq!(h.tx(), "");
    h.rx(AUTOREPORT);
    assert!(matches!(h.events()[..], [Event::Temperatures(_)]));
    assert_eq!(h.tx(), "", "an autoreport is not the M155's ok");
    h.rx("ok\n");
    assert_eq!(
        h.completed(),
        Vec::<i64>::new(),
        "M155 is the session's own"
    );
    assert_eq!(h.tx(), line(3, "G1 X1"));
    h.rx(AUTOREPORT);
    h.rx(AUTOREPORT);
    assert_eq!(h.completed(), Vec::<i64>::new());
    h.rx("ok\n");
    let ev = h.events();
    assert!(
        matches!(&ev[..], [Event::Completed { id, line: 3, response }] if *id == g1 && response.is_empty()),
        "{ev:?}"
    );
    // Without ADVANCED_OK the burst ends with its numbered M105 barrier (not a poll).
    assert_eq!(h.tx(), line(4, "M105"));
    h.rx("ok T:21.50 /0.00 B:22.00 /0.00 @:0 B@:0\n");
    // Autoreports replace polling: nothing is sent while idle.
    h.wait_ms(20_000);
    assert_eq!(h.tx(), "");
}

#[test]
fn s52_autoreport_between_an_error_and_its_resend_changes_nothing() {
    let mut h = reporting(2, "Cap:AUTOREPORT_TEMP:1\n");
    h.tx();
    h.rx("ok\n");
    h.send("G1 X1");
    assert_eq!(h.tx(), line(3, "G1 X1"));
    h.rx(&format!(
        "Error:checksum mismatch, Last Line: 2\n{AUTOREPORT}Resend: 3\n{AUTOREPORT}ok\n"
    ));
    assert_eq!(
        h.tx(),
        line(3, "G1 X1"),
        "re-sent once, after the resend's ok"
    );
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![3]);
    assert_eq!(h.tx(), line(4, "M105"), "the end-of-burst barrier");
}

#[test]
fn s53_without_autoreport_a_numbered_m105_is_polled() {
    let mut h = reporting(2, "Cap:AUTOREPORT_TEMP:0\n");
    assert_eq!(
        h.s.temperature_reporting(),
        TemperatureReporting::Polled {
            interval: Duration::from_secs(2)
        }
    );
    h.wait_ms(0);
    assert_eq!(h.tx(), line(2, "M105"));
    h.rx("ok T:21.50 /0.00 B:22.00 /0.00 @:0 B@:0\n");
    let ev = h.events();
    assert!(matches!(ev[..], [Event::Temperatures(_)]), "{ev:?}");
    h.wait_ms(1_900);
    assert_eq!(h.tx(), "", "not before the interval");
    h.wait_ms(100);
    assert_eq!(h.tx(), line(3, "M105"));
    // Unanswered: no second poll piles up behind it.
    h.wait_ms(2_000);
    assert_eq!(h.tx(), "");
    h.rx("ok T:21.50 /0.00 B:22.00 /0.00 @:0 B@:0\n");
    h.wait_ms(2_000);
    assert_eq!(h.tx(), line(4, "M105"));
}

#[test]
fn s54_a_firmware_reset_re_arms_autoreport() {
    let mut h = reporting(5, "Cap:AUTOREPORT_TEMP:1\n");
    assert_eq!(h.tx(), line(2, "M155 S5"));
    h.rx("ok\n");
    h.rx("start\n");
    assert!(h.events().contains(&Event::FirmwareReset));
    assert_eq!(h.s.temperature_reporting(), TemperatureReporting::Off);
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");
    h.rx("FIRMWARE_NAME:Marlin 2.1.2.1\nCap:AUTOREPORT_TEMP:1\nok\n");
    assert_eq!(h.tx(), line(2, "M155 S5"));
}

/// ADVANCED_OK's `B` says how many lines sit in the firmware's command queue: those have left
/// its receive buffer, so their bytes stop counting against `rx_bytes` (the window is then
/// bounded by the slots). Without this, long lines at 250000 baud left the link idle.
#[test]
fn s55_lines_known_to_be_queued_free_their_receive_buffer_bytes() {
    let mut h = advanced();
    let long = "G1 X123.456 Y123.456 Z0.3 E0.12345 F1234";
    for _ in 0..8 {
        h.send(long);
    }
    // 128 bytes hold two lines of about 48 bytes.
    let sent = h.tx();
    assert_eq!(sent.lines().count(), 2, "{sent}");
    // B2: N2 still holds a slot, so N3 is the other queued command: its bytes left RX.
    h.rx("ok N2 P14 B2\n");
    assert_eq!(h.completed(), vec![2]);
    let sent = h.tx();
    assert_eq!(sent.lines().count(), 2, "N4 and N5 fit beside N3: {sent}");
    // Counting N3's bytes, only N4 would have fitted (3 × 48 > 128).
    h.rx("ok N3 P14 B0\n");
    assert_eq!(h.completed(), vec![3]);
    // N4 and N5 are queued (B0): the slots (4) bound the window, not the bytes.
    let sent = h.tx();
    assert_eq!(sent.lines().count(), 2, "{sent}");
    assert_eq!(h.s.in_flight_len(), 4);
    // A rewind forgets what was known about the queue.
    h.rx("Error:checksum mismatch, Last Line: 5\nResend: 6\nok\n");
    assert_eq!(h.tx(), line(6, long));
}

#[test]
fn an_m105_answered_while_a_rewind_waits_is_not_sent_again() {
    // Marlin 2.0.x (no `ok` after `Resend:`): a duplicate of line 1 made the firmware ask for
    // 2 while N2 M105 was already on the wire; it ran, and its answer comes during the rewind.
    let mut h = Host::plain();
    let id = h.send("M105");
    assert_eq!(h.tx(), line(2, "M105"));
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 1\nResend: 2\n");
    h.rx("ok T:20.0 /0.0\n");
    let done: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Completed { id, line, response } => Some((id, line, response.len())),
            _ => None,
        })
        .collect();
    assert_eq!(done, vec![(id, 2, 1)], "completed with its answer");
    h.wait_ms(1_000);
    // Re-sent, it would be rejected as a duplicate and never answered.
    assert_eq!(h.tx(), "");
    assert!(h.s.is_idle());
}

#[test]
fn an_m105_whose_answer_was_lost_does_not_shift_later_answers() {
    let mut h = Host::plain();
    h.send("M105");
    assert_eq!(h.tx(), line(2, "M105"));
    h.wait_ms(5_000); // its `ok T:` was lost on the wire
    assert_eq!(h.tx(), line(3, "M105"));
    h.rx("ok T:20.0 /0.0\n");
    // The probe's answer is the probe's: it proves N2 ran too.
    assert_eq!(h.completed(), vec![2]);
    assert!(h.s.is_idle(), "nothing left waiting for an answer");
    h.send("M105");
    assert_eq!(h.tx(), line(4, "M105"));
    h.rx("ok T:20.0 /0.0\n");
    assert_eq!(
        h.completed(),
        vec![4],
        "answered at once, not one M105 behind"
    );
    assert!(h.s.is_idle());
}

/// A firmware without ADVANCED_OK that answers in order, once per line (`ok T:` for M105),
/// with one extra `ok` after the answer to line `duplicate_after`. Returns, for each `ok T:`
/// given, the highest line reported complete before it, and the M105 lines.
fn credit_without_advanced_ok(commands: usize, duplicate_after: i64) -> (Host, Vec<(i64, i64)>) {
    let config = SessionConfig {
        flow: FlowPolicy::Credit {
            slots: 4,
            rx_bytes: 128,
        },
        ..SessionConfig::default()
    };
    let mut h = Host::connected(config, "ok", "");
    for i in 0..commands {
        h.send(&format!("G1 X{i}"));
    }
    let mut firmware: VecDeque<(i64, bool)> = VecDeque::new();
    let mut highest = 1;
    let mut syncs = Vec::new();
    for _ in 0..10_000 {
        for l in h.tx().lines() {
            let n: i64 = l[1..l.find(' ').unwrap()].parse().unwrap();
            firmware.push_back((n, l.contains("M105")));
        }
        let Some((n, m105)) = firmware.pop_front() else {
            break;
        };
        if m105 {
            syncs.push((n, highest));
            h.rx("ok T:20.0 /0.0\n");
        } else {
            h.rx("ok\n");
        }
        if n == duplicate_after {
            h.rx("ok\n");
        }
        for e in h.events() {
            match e {
                Event::Completed { line, .. } => highest = highest.max(line),
                Event::Fatal(f) => panic!("{f}"),
                _ => {}
            }
        }
    }
    (h, syncs)
}

#[test]
fn credit_without_advanced_ok_syncs_and_absorbs_a_duplicated_ok() {
    let (h, syncs) = credit_without_advanced_ok(70, 5);
    assert!(h.s.is_idle());
    // One M105 among the lines every 32 commands (plus the end-of-burst barrier).
    let lines: Vec<i64> = syncs.iter().map(|&(n, _)| n).collect();
    assert_eq!(lines, vec![34, 67, 74], "{syncs:?}");
    // The surplus `ok` made completions run one line early, but never past an M105: when
    // each M105's answer came, nothing after it had been reported complete.
    for &(n, highest) in &syncs {
        assert!(
            highest < n,
            "line {highest} reported before M105 N{n} answered"
        );
    }
    assert_eq!(h.s.last_acknowledged(), Some(74));
}

#[test]
fn lines_a_rewind_took_out_of_flight_complete_when_the_firmware_asks_for_the_next_one() {
    let mut h = Host::connected(
        SessionConfig {
            flow: FlowPolicy::Credit {
                slots: 4,
                rx_bytes: 128,
            },
            ..SessionConfig::default()
        },
        "ok",
        "",
    );
    h.send("G1 X1");
    h.send("G1 X2");
    assert_eq!(h.tx(), format!("{}{}", line(2, "G1 X1"), line(3, "G1 X2")));
    // A duplicate of line 1 was rejected (Marlin 2.0.x: no `ok` after `Resend:`); N2 and N3
    // arrive after it and run. N2's `ok` is taken for the resend's.
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 1\nResend: 2\nok\n");
    assert_eq!(h.tx(), line(2, "G1 X1"), "one re-sent line at a time");
    h.rx("ok\n"); // N3's, taken for the re-sent N2
    assert_eq!(h.completed(), vec![2]);
    // The re-sent N2 is rejected: the firmware has everything through N3.
    h.rx("Error:Line Number is not Last Line Number+1, Last Line: 3\nResend: 4\n");
    assert_eq!(h.completed(), vec![3], "N3 ran: the firmware asked for N4");
    assert_eq!(h.tx(), "", "N3 is not sent again");
}

#[test]
fn a_credit_window_full_of_bytes_still_probes_into_silence() {
    let mut h = Host::connected(
        SessionConfig {
            flow: FlowPolicy::Credit {
                slots: 4,
                rx_bytes: 128,
            },
            ..SessionConfig::default()
        },
        "ok",
        "",
    );
    // Four lines of about 31 bytes: no room left for a 14-byte probe in 128.
    for _ in 0..4 {
        h.send("G1 X100.00 Y100.00 E1.23");
    }
    let window = h.tx();
    assert!(window.len() + 16 > 128, "{window}");
    assert_eq!(h.s.in_flight_len(), 4);
    // Every `ok` lost. Nothing long runs, so the lines have moved from the receive buffer
    // to the command queue: the probe fits.
    h.wait_ms(5_000);
    assert_eq!(h.tx(), line(6, "M105"));
}

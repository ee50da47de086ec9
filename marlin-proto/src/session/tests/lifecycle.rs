//! Handshake, firmware resets, halts and fatal errors, emergency commands, host actions.

use super::*;

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

/// A hello answered with a resend request (garbled on the way, the firmware is there) does not
/// use up the hello attempts, which count silence; a link garbling every hello is stuck.
#[test]
fn s23_a_garbled_hello_is_retried_without_using_up_an_attempt() {
    // Two silent hellos and two garbled ones: one silent attempt is left.
    let mut h = Host::new(SessionConfig::default());
    for _ in 0..2 {
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.rx("Error:checksum mismatch, Last Line: 0\nResend: 1\n");
        h.wait_ms(3000);
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.wait_ms(3000);
    }
    assert_eq!(h.s.fatal(), None);
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");

    let mut h = Host::new(SessionConfig::default());
    let limit = SessionConfig::default().max_consecutive_resends;
    for _ in 0..limit {
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.rx("Resend: 1\n");
        h.wait_ms(3000);
    }
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::ResendLoop {
            line: 1,
            times: limit
        })
    );
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

/// A doubled `ok` completed N3 early; the firmware then asked for N3 (its first copy was
/// corrupted) and reset before the copy ran. The reset names N2, the last line the firmware
/// confirmed, and N3 keeps its one outcome: completed, never abandoned as well.
#[test]
fn s27_reset_after_a_request_for_a_completed_line() {
    let mut h = Host::plain();
    h.send("G1 X1");
    let x2 = h.send("G1 X2");
    h.tx();
    h.rx("ok\n");
    assert!(h.tx().starts_with("N3 "));
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2, 3]);
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert!(h.tx().starts_with("N3 "));
    h.rx("start\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::FirmwareReset {
            last_acknowledged: Some(2),
            unfinished: 1
        })
    );
    assert!(!h.events().contains(&Event::Abandoned(x2)));
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
    // N2 was rewound by the resend request (it never ran) and G1 X2 was still queued: neither
    // will complete, so both are reported.
    assert_eq!(abandoned, 2, "the rewound G1 X1 and the queued G1 X2");
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

//! Firmware flavors and their quirk table entries.

use super::*;

/// Hello answered with a plain `ok`, then `m115` as the firmware's answer to `M115`.
fn handshake(config: SessionConfig, m115: &str) -> Host {
    let mut h = Host::new(config);
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");
    h.rx(m115);
    h
}

/// `FIRMWARE_VERSION` from the firmware's `M115` report.
fn version(h: &Host) -> Option<&str> {
    h.s.firmware().info.as_ref()?.field("FIRMWARE_VERSION")
}

/// Handshake with Klipper's serial host emulation: `M115` answered inside the `ok`.
fn klipper(config: SessionConfig) -> Host {
    let mut h = handshake(
        config,
        "ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-300-g1234abcd\n",
    );
    let ev = h.events();
    assert!(matches!(ev.last(), Some(Event::Connected { .. })), "{ev:?}");
    h
}

#[test]
fn flavors_are_detected_from_the_firmware_name() {
    for (name, flavor) in [
        (
            "Marlin 2.1.2.1 (Jun 11 2023 12:00:00)",
            FirmwareFlavor::Marlin,
        ),
        ("Marlin bugfix-2.1.x", FirmwareFlavor::Marlin),
        (
            "Prusa-Firmware 3.13.3 based on Marlin",
            FirmwareFlavor::Prusa,
        ),
        ("Repetier_1.0.4", FirmwareFlavor::Repetier),
        ("Klipper", FirmwareFlavor::Klipper),
        ("Smoothieware", FirmwareFlavor::Smoothieware),
        (
            "RepRapFirmware for Duet 3 MB6HC",
            FirmwareFlavor::RepRapFirmware,
        ),
        ("Sailfish", FirmwareFlavor::Other),
    ] {
        assert_eq!(FirmwareFlavor::detect(name), flavor, "{name}");
    }
}

#[test]
fn klipper_answers_m115_inside_its_ok() {
    let mut h = klipper(SessionConfig::default());
    assert_eq!(h.s.firmware().flavor(), FirmwareFlavor::Klipper);
    assert_eq!(version(&h), Some("v0.12.0-300-g1234abcd"));
    assert_eq!(h.s.quirks(), Quirks::KLIPPER);
    h.send("G28");
    assert_eq!(h.tx(), line(2, "G28"));
}

#[test]
fn a_klipper_error_belongs_to_its_command_and_is_not_fatal() {
    let mut h = klipper(SessionConfig::default());
    let id = h.send("G1 X500");
    h.tx();
    h.rx("!! Move out of range: 500.000 0.000 0.000 [0.000]\nok\n");
    let ev = h.events();
    assert!(h.s.fatal().is_none(), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Warning(Warning::FirmwareError(FirmwareError::Other(m))) if m.starts_with("Move out of range")
    )));
    let response = ev.iter().find_map(|e| match e {
        Event::Completed {
            id: done, response, ..
        } if *done == id => Some(response.clone()),
        _ => None,
    });
    assert_eq!(
        response,
        Some(vec![
            "!! Move out of range: 500.000 0.000 0.000 [0.000]".to_owned()
        ])
    );
}

#[test]
fn a_klipper_shutdown_is_fatal_with_its_reason() {
    let mut h = klipper(SessionConfig::default());
    h.send("G1 X1");
    h.tx();
    h.rx("!! MCU 'mcu' shutdown: Timer too close\n// Klipper state: Shutdown\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::Halted {
            reason: Some("MCU 'mcu' shutdown: Timer too close".to_owned())
        })
    );
}

#[test]
fn on_marlin_a_bang_line_is_fatal() {
    let mut h = Host::plain();
    assert_eq!(h.s.firmware().flavor(), FirmwareFlavor::Marlin);
    h.send("G1 X1");
    h.tx();
    h.rx("!! unexpected\n");
    assert_eq!(
        h.s.fatal(),
        Some(&FatalError::FirmwareFatal("unexpected".to_owned()))
    );
}

#[test]
fn the_config_overrides_the_table() {
    let config = SessionConfig {
        quirks: Some(Quirks::KLIPPER),
        ..SessionConfig::default()
    };
    let mut h = Host::connected(config, "ok", "");
    assert_eq!(h.s.firmware().flavor(), FirmwareFlavor::Marlin);
    h.send("G1 X1");
    h.tx();
    h.rx("!! not fatal here\nok\n");
    assert!(h.s.fatal().is_none());
    assert_eq!(h.completed(), vec![2]);
}

/// Handshake with Repetier: `M115`'s `ok 1` comes before its report (acknowledged on receipt).
fn repetier() -> Host {
    let mut h = handshake(SessionConfig::default(), "ok 1\nFIRMWARE_NAME:Repetier_1.0.4 COMPILED:Nov 23 2026 FIRMWARE_URL:https://github.com/repetier/Repetier-Firmware/ PROTOCOL_VERSION:1.0 MACHINE_TYPE:Mendel EXTRUDER_COUNT:1 REPETIER_PROTOCOL:3\n");
    let ev = h.events();
    assert!(
        matches!(ev.last(), Some(Event::Connected { .. })),
        "the report completes the handshake at once: {ev:?}"
    );
    assert_eq!(h.s.quirks(), Quirks::REPETIER);
    h.rx("Cap:AUTOREPORT_TEMP:1\n");
    assert!(h
        .s
        .firmware()
        .capabilities
        .contains(&("AUTOREPORT_TEMP".to_owned(), true)));
    h
}

#[test]
fn repetier_is_connected_by_its_m115_report_after_the_ok() {
    repetier();
}

/// Repetier with a credit window of four commands.
fn repetier_credit() -> Host {
    let config = SessionConfig {
        flow: FlowPolicy::Credit {
            slots: 4,
            rx_bytes: 128,
        },
        ..SessionConfig::default()
    };
    let mut h = handshake(config, "ok 1\nFIRMWARE_NAME:Repetier_1.0.4\n");
    for g in ["G1 X1", "G1 X2", "G1 X3"] {
        h.send(g);
    }
    assert_eq!(
        h.tx(),
        [line(2, "G1 X1"), line(3, "G1 X2"), line(4, "G1 X3")].concat()
    );
    h
}

#[test]
fn a_repetier_ok_names_the_line_it_acknowledges() {
    let mut h = repetier_credit();
    // `ok 2` was lost: `ok 3` proves lines 2 and 3 were stored.
    h.rx("ok 3\n");
    assert_eq!(h.completed(), vec![2, 3]);
    h.rx("ok 4\n");
    assert_eq!(h.completed(), vec![4]);
    // A duplicated `ok 4` acknowledges nothing; an unnumbered command's `ok` repeats 4.
    h.rx("ok 4\n");
    let ev = h.events();
    assert!(
        matches!(ev.as_slice(), [Event::Warning(Warning::UnexpectedOk)]),
        "{ev:?}"
    );
}

#[test]
fn a_repetier_skip_is_followed_by_its_own_ok() {
    let mut h = repetier_credit();
    // Line 2 arrived damaged; the host re-sends it at once.
    h.rx("\nResend:2\nok\n");
    assert_eq!(h.tx(), line(2, "G1 X1"));
    // The two lines behind it were skipped, each with a plain `ok`: they acknowledge nothing.
    h.rx("skip 3\nok\nskip 4\nok\n");
    assert_eq!(h.completed(), Vec::<i64>::new());
    h.rx("ok 2\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), [line(3, "G1 X2"), line(4, "G1 X3")].concat());
    h.rx("ok 3\nok 4\n");
    assert_eq!(h.completed(), vec![3, 4]);
}

#[test]
fn on_repetier_an_m105_is_acknowledged_before_its_report() {
    let mut h = repetier();
    let id = h.send("M105");
    h.tx();
    h.rx("ok 2\n");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Completed { id: done, .. } if *done == id)));
    h.rx("T:21.50 /0 B:20.10 /0 B@:0 @:0\n");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Temperatures(_))));
}

#[test]
fn a_plain_ok_on_receipt_answers_an_m105_too() {
    // Repetier built without `ACK_WITH_LINENUMBER`: plain `ok`s, still sent on receipt.
    let config = SessionConfig {
        quirks: Some(Quirks {
            ok_echoes_line: false,
            ..Quirks::REPETIER
        }),
        ..SessionConfig::default()
    };
    let mut h = handshake(config, "ok\nFIRMWARE_NAME:Repetier_1.0.4\n");
    assert!(h.s.is_ready());
    h.send("M105");
    h.send("G1 X1");
    assert_eq!(h.tx(), line(2, "M105"));
    // On Marlin this plain `ok` could not answer an M105 (its `ok T:` would).
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), line(3, "G1 X1"));
}

#[test]
fn repetier_fatal_stops_the_session() {
    let mut h = repetier();
    h.send("G1 X1");
    h.tx();
    h.rx("fatal:Heater decoupled during hold - Printer stopped and heaters disabled due to this error. Fix error and restart with M999.\n");
    assert!(matches!(
        h.s.fatal(),
        Some(FatalError::FirmwareFatal(m)) if m.starts_with("Heater decoupled during hold")
    ));
}

#[test]
fn smoothieware_resends_at_once_after_rs() {
    let mut h = handshake(SessionConfig::default(), "FIRMWARE_NAME:Smoothieware, FIRMWARE_URL:http%3A//smoothieware.org, FIRMWARE_VERSION:edge-bb41e99, PROTOCOL_VERSION:1.0\nok\n");
    assert_eq!(h.s.quirks(), Quirks::SMOOTHIEWARE);
    h.send("G1 X1");
    assert_eq!(h.tx(), line(2, "G1 X1"));
    // No `Error:` line and no `ok` come with it: the line goes again without waiting.
    h.rx("rs N2\n");
    assert_eq!(h.tx(), line(2, "G1 X1"));
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
}

#[test]
fn marlin_waits_for_the_ok_a_resend_may_bring() {
    let mut h = Host::plain();
    h.send("G1 X1");
    h.tx();
    h.rx("Error:checksum mismatch, Last Line: 1\nResend: 2\n");
    assert_eq!(h.tx(), "", "Marlin 2.1 still sends an ok");
    h.rx("ok\n");
    assert_eq!(h.tx(), line(2, "G1 X1"));
}

#[test]
fn smoothieware_halt_and_prusa_stop_are_fatal() {
    let mut h = Host::plain();
    h.rx("Temperature reading is unreliable on T HALT asserted - reset or M999 required\n");
    assert!(
        matches!(h.s.fatal(), Some(FatalError::FirmwareFatal(m)) if m.starts_with("Temperature reading"))
    );
    let mut h = Host::plain();
    h.rx("echo:Printer stopped due to errors. Supervision required.\n");
    assert_eq!(h.s.fatal(), Some(&FatalError::Stopped));
}

#[test]
fn reprapfirmware_is_named_with_a_space_after_the_colon() {
    let h = handshake(SessionConfig::default(), "FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.3 ELECTRONICS: Duet 3 MB6HC v1.01 or later\nok\n");
    assert_eq!(h.s.firmware().flavor(), FirmwareFlavor::RepRapFirmware);
    assert_eq!(version(&h), Some("3.5.3"));
}

//! Firmware flavors and their quirk table entries.

use super::*;

/// Handshake with Klipper's serial host emulation: `M115` answered inside the `ok`.
fn klipper(config: SessionConfig) -> Host {
    let mut h = Host::new(config);
    assert_eq!(h.tx(), "N0 M110 N0*125\n");
    h.rx("ok\n");
    assert_eq!(h.tx(), "N1 M115*39\n");
    h.rx("ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-300-g1234abcd\n");
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
    assert_eq!(
        h.s.firmware()
            .info
            .as_ref()
            .unwrap()
            .field("FIRMWARE_VERSION"),
        Some("v0.12.0-300-g1234abcd")
    );
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

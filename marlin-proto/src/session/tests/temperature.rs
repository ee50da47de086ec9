//! Temperature reporting: autoreport and polling.

use super::*;

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

//! Busy, `wait`, lost `ok`s, probes and the lost printer.

use super::*;

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

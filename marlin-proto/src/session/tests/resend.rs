//! `Resend:` handling: rewinds, duplicate requests, fatal requests.

use super::*;

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

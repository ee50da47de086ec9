//! Flow control and framing: ping-pong, the credit window, numbering.

use super::*;

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
    // Four slots, and short lines: N2..N7 go out at once (the two beyond the slots wait in
    // the receive buffer, see `window.rs`).
    let sent = h.tx();
    assert_eq!(sent.lines().count(), 6, "{sent}");
    assert_eq!(h.s.in_flight_len(), 6);
    h.send("G1 X6");
    h.rx("ok N2 P14 B3\n");
    assert_eq!(h.completed(), vec![2]);
    assert_eq!(h.tx(), line(8, "G1 X6"));
    // An ok naming a later line acknowledges the earlier ones (their oks were lost).
    h.rx("ok N4 P14 B3\n");
    let ev = h.events();
    assert!(ev.contains(&Event::Warning(Warning::SkippedOks { count: 1 })));
    // A stale or duplicate ok changes nothing.
    h.rx("ok N4 P14 B3\n");
    assert!(h.events().contains(&Event::Warning(Warning::UnexpectedOk)));
    assert_eq!(h.s.in_flight_len(), 4, "N5 to N8");
}

#[test]
fn credit_window_respects_receive_buffer_bytes() {
    let mut h = blind_credit(8, 64);
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
fn s40_m110_cannot_be_queued() {
    let mut h = Host::plain();
    assert_eq!(
        h.s.send("M110 N5"),
        Err(SendError::Payload(PayloadError::ContainsM110))
    );
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

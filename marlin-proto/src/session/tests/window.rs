//! The credit window beyond the command slots: with ADVANCED_OK, lines wait in the firmware's
//! receive buffer once its command queue is full, counted to the byte.

use super::*;

/// Bytes `N<n> <payload>*<c>\n` takes.
fn framed(n: i64, payload: &str) -> usize {
    line(n, payload).len()
}

#[test]
fn lines_wait_in_the_receive_buffer_beyond_the_slots() {
    let mut h = advanced();
    for i in 0..20 {
        h.send(&format!("G1 X{i}"));
    }
    // Nothing is known to be in the command queue yet: every byte in flight counts, and as
    // many lines go as fit in 127 bytes (Marlin's 128-byte ring keeps one byte free).
    let sent = h.tx();
    let mut expected = 0;
    let mut bytes = 0;
    for n in 2.. {
        let len = framed(n, &format!("G1 X{}", n - 2));
        if bytes + len >= 128 {
            break;
        }
        bytes += len;
        expected += 1;
    }
    assert!(expected > 4, "more than the 4 slots: {expected}");
    assert_eq!(sent.lines().count(), expected, "{sent}");
    assert_eq!(sent.len(), bytes);
    assert_eq!(h.s.rx_bytes_used(), bytes);
    // `ok N2 B0`: the command queue was full (N2..N5), so N3..N5 left the receive buffer.
    h.rx("ok N2 P14 B0\n");
    assert_eq!(h.completed(), vec![2]);
    let queued: usize = (3..=5).map(|n| framed(n, &format!("G1 X{}", n - 2))).sum();
    assert_eq!(h.s.rx_bytes_used(), bytes - framed(2, "G1 X0") - queued);
    let sent = h.tx();
    assert!(!sent.is_empty(), "freed bytes are used at once");
    assert!(h.s.rx_bytes_used() < 128);
    let in_flight = h.s.in_flight_len();
    assert!(in_flight > expected, "{in_flight} > {expected}");
}

#[test]
fn the_receive_buffer_is_never_overfilled() {
    let mut h = advanced();
    let long = "G1 X123.456 Y123.456 Z0.3 E0.12345 F1234";
    for _ in 0..40 {
        h.send(long);
    }
    let mut acked = 1;
    for _ in 0..30 {
        h.tx();
        // Whatever the firmware's queue holds, the bytes possibly in its receive buffer stay
        // below its size.
        assert!(h.s.rx_bytes_used() < 128, "{}", h.s.rx_bytes_used());
        acked += 1;
        h.rx(&format!("ok N{acked} P10 B0\n"));
        h.events();
    }
}

#[test]
fn without_advanced_ok_the_window_stays_at_the_slots() {
    let mut h = blind_credit(4, 1024);
    for i in 0..10 {
        h.send(&format!("G1 X{i}"));
    }
    assert_eq!(h.tx().lines().count(), 4);
}

#[test]
fn a_rewind_with_lines_waiting_in_the_receive_buffer_resends_one_at_a_time() {
    let mut h = advanced();
    let ids: Vec<CommandId> = (0..12).map(|i| h.send(&format!("G1 X{i}"))).collect();
    let first = h.tx();
    let window = first.lines().count();
    assert!(window > 4, "{first}");
    // N3 was corrupted: Marlin 2.1 flushes its receive buffer, asks for N3 and sends `ok`.
    h.rx("ok N2 P14 B3\n");
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert_eq!(h.tx(), line(3, "G1 X1"), "only the requested line, alone");
    assert_eq!(h.tx(), "");
    // Later lines still on the wire arrive after the flush: each is refused with the same
    // request (ignored as duplicates), the requested line is then acknowledged.
    for _ in 0..window - 2 {
        h.rx("Error:Line Number is not Last Line Number+1, Last Line: 2\nResend: 3\nok\n");
    }
    h.rx("ok N3 P14 B3\n");
    // The window opens again from N4.
    let resent = h.tx();
    assert!(resent.starts_with(&line(4, "G1 X2")), "{resent}");
    let mut last = 3;
    while h.s.in_flight_len() > 0 {
        last += 1;
        h.rx(&format!("ok N{last} P14 B3\n"));
        h.tx();
    }
    // Every command completed exactly once, in order.
    let done: Vec<CommandId> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Completed { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(done, ids, "N2..N13");
}

#[test]
fn a_blind_credit_window_backs_off_to_ping_pong_in_a_resend_storm() {
    let mut h = blind_credit(4, 128);
    for i in 0..40 {
        h.send(&format!("G1 X{i}"));
    }
    assert_eq!(h.tx().lines().count(), 4, "N2..N5");
    h.rx("ok\n");
    assert_eq!(h.completed(), vec![2]);
    // N3 is asked for once: a rewind, one line at a time until it is acknowledged.
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert_eq!(h.tx(), line(3, "G1 X1"));
    h.rx("ok\n");
    // Once N3 is acknowledged, the window opens again.
    assert!(h.tx().lines().count() > 1);
    let mut h = blind_credit(4, 128);
    for i in 0..40 {
        h.send(&format!("G1 X{i}"));
    }
    h.tx();
    h.rx("ok\n");
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert_eq!(h.tx(), line(3, "G1 X1"));
    // Asked for again (its copy was corrupted too): a storm.
    h.rx("Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n");
    assert_eq!(h.tx(), line(3, "G1 X1"));
    h.rx("ok\n");
    // Ping-pong now: the rest of the rewind, the sync M105 (after a rewind), then new lines,
    // each alone.
    assert_eq!(h.tx(), line(4, "G1 X2"));
    h.rx("ok\n");
    assert_eq!(h.tx(), line(5, "G1 X3"));
    h.rx("ok\n");
    assert_eq!(h.tx(), line(6, "M105"));
    h.rx("ok T:20.0 /0.0\n");
    for n in 7..=38 {
        let sent = h.tx();
        assert_eq!(sent.lines().count(), 1, "N{n}: {sent}");
        h.rx("ok\n");
    }
    // A sync's worth of lines after the storm (through N38) went through: the window opens
    // again.
    assert!(h.tx().lines().count() > 1);
}

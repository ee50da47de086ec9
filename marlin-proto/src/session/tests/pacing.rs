//! Reading acknowledgements in bursts (`read_deferral`): only with a full credit window, a
//! known pace and lines waiting, never longer than the configured bound nor than a quarter of
//! the work the firmware holds.

use super::*;

/// The default longest deferral.
fn bound() -> Duration {
    SessionConfig::default().ack_batching
}

/// A connected ADVANCED_OK host with `n` short moves queued and the first window sent.
fn streaming(config: SessionConfig, n: usize) -> Host {
    let mut h = Host::connected(config, "ok N0 P15 B3", "");
    for i in 0..n {
        h.send(&format!("G1 X{}", i % 10));
    }
    h.tx();
    h
}

/// Acknowledges the oldest line in flight `every` after the last one, with `P` as given and
/// `B0`, and refills the window.
fn ack_after(h: &mut Host, every: Duration, planner_free: u32) {
    h.t += every;
    let n = h.s.last_acknowledged().unwrap() + 1;
    h.rx(&format!("ok N{n} P{planner_free} B0\n"));
    h.events();
    h.tx();
}

/// A connected ADVANCED_OK host with `count` copies of `line` queued, after twelve
/// acknowledgements one millisecond apart, each ending in `tail` (`P… B…`).
fn acked_every_ms(line: &str, count: usize, tail: &str) -> Host {
    let mut h = Host::connected(SessionConfig::default(), "ok N0 P15 B3", "");
    for _ in 0..count {
        h.send(line);
    }
    for _ in 0..12 {
        h.tx();
        h.t += Duration::from_millis(1);
        let n = h.s.last_acknowledged().unwrap() + 1;
        h.rx(&format!("ok N{n} {tail}\n"));
        h.events();
    }
    h.tx();
    h
}

/// [`ack_after`] in whole milliseconds.
fn ack_next(h: &mut Host, every_ms: u64, planner_free: u32) {
    ack_after(h, Duration::from_millis(every_ms), planner_free);
}

#[test]
fn no_deferral_until_the_pace_is_known() {
    let mut h = streaming(SessionConfig::default(), 100);
    assert!(h.s.in_flight_len() >= 4);
    assert_eq!(h.s.read_deferral(h.t), None, "no acknowledgement seen yet");
    // The first ok starts a sample; eight more complete it.
    for _ in 0..8 {
        ack_next(&mut h, 1, 3);
        assert_eq!(h.s.read_deferral(h.t), None);
    }
    ack_next(&mut h, 1, 3);
    assert!(h.s.read_deferral(h.t).is_some());
}

#[test]
fn deferral_is_bounded_by_the_config_and_the_work_held() {
    let mut h = streaming(SessionConfig::default(), 100);
    for _ in 0..9 {
        // 2 ms per command, the planner holds 15 - 3 = 12 moves.
        ack_next(&mut h, 2, 3);
    }
    let held = h.s.in_flight_len() as u32;
    assert!(held >= 4, "{held}");
    // 2 × held ms of work in the window, 2 × (held + 12) ms in all: the first and a quarter
    // of the second are more than the bound.
    assert!(Duration::from_millis(2) * held > bound(), "{held}");
    assert!(
        Duration::from_millis(2) * (held + 12) / 4 > bound(),
        "{held}"
    );
    assert_eq!(h.s.read_deferral(h.t), Some(h.t + bound()));

    // Fast commands (0.1 ms each): a quarter of the work held.
    let mut h = streaming(SessionConfig::default(), 100);
    for _ in 0..9 {
        ack_after(&mut h, Duration::from_micros(100), 3);
    }
    // The planner holds 15 - 3 = 12 moves.
    let held = h.s.in_flight_len() as u32;
    assert_eq!(held, 12, "127 bytes of short lines");
    // A quarter of all 2.4 ms of work (the window alone holds 1.2 ms).
    assert_eq!(
        h.s.read_deferral(h.t),
        Some(h.t + Duration::from_micros(600))
    );
}

#[test]
fn deferral_is_bounded_by_the_time_the_window_lasts() {
    // 36-byte lines and `B2`: two lines in the firmware's command queue, two in its receive
    // buffer; the planner is full (`P0`). At 1 ms per command the window lasts 4 ms, less
    // than a quarter of all the work (19 ms / 4) and than the bound.
    let h = acked_every_ms("G1 X123.456 Y123.456 E0.1234", 60, "P0 B2");
    assert_eq!(h.s.in_flight_len(), 4);
    assert_eq!(h.s.read_deferral(h.t), Some(h.t + Duration::from_millis(4)));
}

#[test]
fn a_slowdown_counts_only_when_confirmed_a_speedup_at_once() {
    let mut h = streaming(SessionConfig::default(), 200);
    // First sample: 0.1 ms per command.
    for _ in 0..9 {
        ack_after(&mut h, Duration::from_micros(100), 3);
    }
    let fast = h.s.read_deferral(h.t).unwrap() - h.t;
    // One slow sample (1.5 ms per command) does not lengthen the deferral…
    let slow = |h: &mut Host| {
        for _ in 0..8 {
            ack_after(h, Duration::from_micros(1500), 3);
        }
    };
    slow(&mut h);
    assert_eq!(h.s.read_deferral(h.t).unwrap() - h.t, fast);
    // …a second one does (up to the bound).
    slow(&mut h);
    let held = h.s.in_flight_len() as u32;
    assert_eq!(held, 12);
    // The window's 12 × 1.5 ms is 18 ms: the 5 ms bound applies.
    assert_eq!(h.s.read_deferral(h.t).unwrap() - h.t, bound());
}

#[test]
fn no_deferral_when_a_burst_would_not_gather_oks() {
    // 10 ms per command: a burst of at most 5 ms would mostly gather nothing.
    let mut h = streaming(SessionConfig::default(), 100);
    for _ in 0..9 {
        ack_next(&mut h, 10, 3);
    }
    assert!(h.s.in_flight_len() >= 4);
    assert_eq!(h.s.read_deferral(h.t), None);
    // 2 ms per command: a 5 ms burst gathers two and a half on average.
    for _ in 0..16 {
        ack_next(&mut h, 2, 3);
    }
    assert_eq!(h.s.read_deferral(h.t), Some(h.t + bound()));
}

#[test]
fn no_deferral_when_the_window_runs_low_or_nothing_waits() {
    let mut h = streaming(SessionConfig::default(), 30);
    for _ in 0..9 {
        ack_next(&mut h, 1, 3);
    }
    assert!(h.s.read_deferral(h.t).is_some());
    // A planner less than three quarters full: the stream limits the printer, nothing may
    // wait.
    ack_next(&mut h, 1, 4);
    assert_eq!(h.s.read_deferral(h.t), None, "11 of 15 planner blocks used");
    ack_next(&mut h, 1, 3);
    assert!(h.s.read_deferral(h.t).is_some(), "12 of 15 used");
    // Let the queue run dry: once nothing waits to go out, answers are read at once.
    while h.s.queued_len() > 0 {
        ack_next(&mut h, 1, 3);
    }
    assert_eq!(h.s.read_deferral(h.t), None, "nothing left to send");
    // Paused: nothing would be sent either.
    let mut h = streaming(SessionConfig::default(), 30);
    for _ in 0..9 {
        ack_next(&mut h, 1, 3);
    }
    h.s.set_paused(true);
    assert_eq!(h.s.read_deferral(h.t), None);

    // A window below the command slots: long lines, and `B3` says the firmware's command
    // queue holds nothing but the acknowledged line, so only two lines fit in its buffer.
    let h = acked_every_ms("G1 X123.456 Y123.456 Z0.3 E0.12345 F1234", 40, "P15 B3");
    assert_eq!(h.s.in_flight_len(), 2);
    assert_eq!(
        h.s.read_deferral(h.t),
        None,
        "the firmware may be close to running dry"
    );
}

#[test]
fn no_deferral_during_a_resend() {
    let mut h = streaming(SessionConfig::default(), 50);
    for _ in 0..9 {
        ack_next(&mut h, 1, 3);
    }
    assert!(h.s.read_deferral(h.t).is_some());
    let next = h.s.last_acknowledged().unwrap() + 1;
    h.rx(&format!(
        "Error:checksum mismatch, Last Line: {}\nResend: {next}\n",
        next - 1
    ));
    assert_eq!(h.s.read_deferral(h.t), None, "waiting for the resend's ok");
    h.rx("ok\n");
    h.tx();
    assert_eq!(
        h.s.read_deferral(h.t),
        None,
        "re-sending one line at a time"
    );
}

#[test]
fn no_deferral_in_ping_pong_without_advanced_ok_or_when_turned_off() {
    let mut h = Host::plain();
    for i in 0..30 {
        h.send(&format!("G1 X{i}"));
    }
    for _ in 0..20 {
        h.tx();
        h.t += Duration::from_millis(1);
        h.rx("ok\n");
        assert_eq!(h.s.read_deferral(h.t), None);
    }
    // A forced credit window without ADVANCED_OK: the planner's fill is unknown.
    let mut h = blind_credit(4, 128);
    for i in 0..30 {
        h.send(&format!("G1 X{i}"));
    }
    for _ in 0..20 {
        h.tx();
        assert_eq!(h.s.in_flight_len(), 4);
        h.t += Duration::from_millis(1);
        h.rx("ok\n");
        assert_eq!(h.s.read_deferral(h.t), None);
    }
    let mut h = streaming(
        SessionConfig {
            ack_batching: Duration::ZERO,
            ..SessionConfig::default()
        },
        50,
    );
    for _ in 0..9 {
        ack_next(&mut h, 1, 3);
    }
    assert_eq!(h.s.read_deferral(h.t), None);
}

//! Without ADVANCED_OK: lost and duplicated `ok`s, lost `ok T:` answers, sync `M105`s.

use super::*;

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

/// Connected to a firmware without ADVANCED_OK, with a credit window of 4 slots and 128 bytes.
fn credit_host() -> Host {
    let config = SessionConfig {
        flow: FlowPolicy::Credit {
            slots: 4,
            rx_bytes: 128,
        },
        ..SessionConfig::default()
    };
    Host::connected(config, "ok", "")
}

/// A firmware without ADVANCED_OK that answers in order, once per line (`ok T:` for M105),
/// with one extra `ok` after the answer to line `duplicate_after`. Returns, for each `ok T:`
/// given, the highest line reported complete before it, and the M105 lines.
fn credit_without_advanced_ok(commands: usize, duplicate_after: i64) -> (Host, Vec<(i64, i64)>) {
    let mut h = credit_host();
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
    let mut h = credit_host();
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
    let mut h = credit_host();
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

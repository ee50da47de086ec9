//! The session fed arbitrary firmware bytes, commands and time steps: never panics, never
//! re-sends a line nobody asked for, never skips a line number.
#![no_main]

use std::time::{Duration, Instant};

use easyprint_marlin::{EmergencyCommand, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

/// Checks every numbered line the session writes.
struct Wire {
    max_sent: i64,
    resend_asked: bool,
}

impl Wire {
    fn check(&mut self, out: &[u8]) {
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Some(rest) = line.strip_prefix(b"N") else { continue };
            let end = rest.iter().position(|b| *b == b' ').expect("N<n> <payload>");
            let n: i64 = std::str::from_utf8(&rest[..end]).unwrap().parse().unwrap();
            let payload = &rest[end + 1..];
            if payload.starts_with(b"M110") {
                // A hello restarts the numbering.
                self.max_sent = n;
                continue;
            }
            if n <= self.max_sent {
                assert!(self.resend_asked, "line {n} re-sent unasked");
            } else {
                assert_eq!(n, self.max_sent + 1, "line number skipped");
                self.max_sent = n;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    let mut out = Vec::new();
    let mut wire = Wire { max_sent: -1, resend_asked: false };
    // Connect so that commands flow.
    s.poll_transmit(now, &mut out);
    s.handle_rx(now, b"ok\n");
    s.poll_transmit(now, &mut out);
    s.handle_rx(now, b"FIRMWARE_NAME:Marlin\nCap:EMERGENCY_PARSER:1\nok\n");
    wire.check(&out);
    for (i, chunk) in data.split(|&b| b == 0xff).enumerate() {
        let Some((&op, rest)) = chunk.split_first() else { continue };
        match op % 4 {
            0 => {
                let text = String::from_utf8_lossy(rest).to_ascii_lowercase();
                if text.contains("resend") || text.contains("rs") || text.contains("start") {
                    wire.resend_asked = true;
                }
                s.handle_rx(now, rest);
            }
            1 => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0)) * 100);
                s.handle_timeout(now);
            }
            2 => {
                let _ = s.send(&format!("G1 X{i}"));
            }
            _ => {
                let _ = s.send_emergency(now, EmergencyCommand::Continue);
            }
        }
        out.clear();
        s.poll_transmit(now, &mut out);
        wire.check(&out);
        while s.poll_event().is_some() {}
    }
});

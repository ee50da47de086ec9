//! The session fed arbitrary firmware bytes, commands and time steps: never panics, never
//! re-sends a line nobody asked for, never skips a line number.
#![no_main]

use std::time::{Duration, Instant};

use easyprint_marlin::sim::WireAudit;
use easyprint_marlin::{EmergencyCommand, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

/// Every numbered line is the next one, or one the firmware asked for again since its last
/// copy went out.
fn check(wire: &mut WireAudit, out: &[u8]) {
    if let Err(e) = wire.host_wrote(out) {
        panic!("{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    let mut out = Vec::new();
    let mut wire = WireAudit::default();
    // Connect so that commands flow.
    s.poll_transmit(now, &mut out);
    check(&mut wire, &out);
    s.handle_rx(now, b"ok\n");
    wire.firmware_said(b"ok\n");
    out.clear();
    s.poll_transmit(now, &mut out);
    check(&mut wire, &out);
    let hello = b"FIRMWARE_NAME:Marlin\nCap:EMERGENCY_PARSER:1\nok\n";
    s.handle_rx(now, hello);
    wire.firmware_said(hello);
    for (i, chunk) in data.split(|&b| b == 0xff).enumerate() {
        let Some((&op, rest)) = chunk.split_first() else { continue };
        match op % 4 {
            0 => {
                wire.firmware_said(rest);
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
        check(&mut wire, &out);
        while s.poll_event().is_some() {}
    }
});

//! Command intake: bytes reaching the UART (with injected line faults), the emergency
//! parser, the receive buffer, and Marlin's line reader with its line-number and checksum
//! checks, filling the command queue (also from the SD card).

use std::io::Write as _;
use std::time::Instant;

use super::{Block, Command, SimFlavor, SimPrinter};
use crate::line::checksum;
use crate::sim::config::MarlinVersion;

impl SimPrinter {
    /// Bytes arriving at the UART at `now`.
    pub fn handle_rx(&mut self, now: Instant, bytes: &[u8]) {
        if self.halted {
            return;
        }
        self.keepalive(now);
        if self.config.flavor == SimFlavor::Repetier {
            self.repetier_input(now);
        }
        for &b in bytes {
            self.arriving.push(b);
            if b == b'\n' {
                self.retire_planner(now);
                if let (Some(last), false) = (self.last_line_at, self.planner.is_empty()) {
                    self.stats.max_line_gap = self.stats.max_line_gap.max(now - last);
                }
                self.last_line_at = Some(now);
                let mut line = std::mem::take(&mut self.arriving);
                self.inject_line_faults(&mut line);
                for &c in &line {
                    self.uart_byte(now, c);
                }
                line.clear();
                self.arriving = line;
            }
        }
        self.pump(now);
    }

    pub(super) fn inject_line_faults(&mut self, line: &mut Vec<u8>) {
        let f = &self.config.faults;
        let (lose, corrupt, drop) = (f.lose_line, f.corrupt_line, f.drop_byte);
        if self.rng.chance(lose) {
            self.injected(|c| &mut c.lose_line);
            line.clear();
            return;
        }
        // Never the first byte (an `N` turned into something else would make the line run
        // unprotected) and never the terminator (merged lines have a 1/256 chance to pass
        // the 8-bit checksum), and at most one fault per line (a changed byte and a dropped
        // one can cancel out in the XOR checksum, e.g. `X`→`x` and a space dropped): all
        // real risks of the protocol, not of the host.
        //
        // Nor the `*` on firmware that runs a numbered line without a checksum (Repetier,
        // Smoothieware, RepRapFirmware): losing it leaves the line unprotected.
        let keep_star = matches!(
            self.config.flavor,
            SimFlavor::Repetier | SimFlavor::Smoothieware | SimFlavor::RepRapFirmware
        );
        let pick = |rng: &mut crate::sim::rng::Rng, line: &[u8]| {
            let i = 1 + rng.below(line.len() - 2);
            if keep_star && line[i] == b'*' {
                i - 1
            } else {
                i
            }
        };
        // Nor a change that turns the line into an emergency command (`M110` into `M112`):
        // the emergency parser acts on it before any checksum, on a real board too. Nor, on
        // Smoothieware, a change to or into a numbered `M110`, which it obeys unchecked.
        let parser = self.config.emergency_parser;
        let smoothie = self.config.flavor == SimFlavor::Smoothieware;
        let emergency = emergency_command(line);
        let renumbers = smoothie && super::smoothieware::sets_line_number(line);
        let forged = |line: &[u8]| {
            (parser && emergency_command(line) != emergency)
                || (smoothie && (renumbers || super::smoothieware::sets_line_number(line)))
        };
        if line.len() > 2 && self.rng.chance(corrupt) {
            let i = pick(&mut self.rng, line);
            let old = line[i];
            let mut new = b'!' + self.rng.below(90) as u8;
            // Not a `*` either: a second one turns the checksum into text Marlin reads as 0,
            // which matches one time in 256 (a risk of the protocol, not of the host).
            if new == old || new == b';' || new == b'\\' || new == b'(' || new == b'*' {
                new = if old == b'#' { b'$' } else { b'#' };
            }
            line[i] = new;
            if forged(line) {
                line[i] = old;
            } else {
                self.injected(|c| &mut c.corrupt_line);
            }
        } else if line.len() > 2 && self.rng.chance(drop) {
            let i = pick(&mut self.rng, line);
            let old = line.remove(i);
            if forged(line) {
                line.insert(i, old);
            } else {
                self.injected(|c| &mut c.drop_byte);
            }
        }
    }

    pub(super) fn uart_byte(&mut self, now: Instant, b: u8) {
        if self.config.emergency_parser {
            self.emergency_parser(now, b);
            if self.halted {
                return;
            }
        }
        if self.rx.len() >= self.config.rx_buffer {
            self.stats.rx_overflow_bytes += 1;
            return;
        }
        self.rx.push_back(b);
    }

    /// Marlin's emergency parser: acts on raw bytes, before line assembly or checksums.
    pub(super) fn emergency_parser(&mut self, now: Instant, b: u8) {
        if b != b'\n' && b != b'\r' {
            if self.estop_line.len() < 24 {
                self.estop_line.push(b);
            }
            return;
        }
        let line = std::mem::take(&mut self.estop_line);
        match emergency_command(&line) {
            Some(b"M112") => self.kill("Killed by M112"),
            Some(b"M108") if matches!(self.blocked, Some(Block::Heat(_) | Block::User)) => {
                self.blocked = Some(Block::Until(now));
            }
            // A prompt answer releases a wait for the user (M0, M600).
            Some(b"M876") if self.blocked == Some(Block::User) => {
                self.blocked = Some(Block::Until(now));
            }
            Some(b"M410") => self.halt_motion(),
            _ => {}
        }
    }

    /// Marlin's `get_serial_commands`: assemble lines from RX while there is a free slot.
    pub(super) fn read_serial(&mut self, now: Instant) {
        while self.ring.len() < self.config.command_slots {
            let Some(c) = self.rx.pop_front() else { return };
            if c == b'\n' || c == b'\r' {
                self.in_comment = false;
                self.in_paren = false;
                self.escape = false;
                if self.line_buf.is_empty() {
                    continue;
                }
                let line = std::mem::take(&mut self.line_buf);
                self.process_line(now, &line);
                self.line_buf = line;
                self.line_buf.clear();
                continue;
            }
            if self.in_comment {
                continue;
            }
            if self.escape {
                self.escape = false;
            } else if c == b';' {
                self.in_comment = true;
                continue;
            } else if c == b'\\' {
                self.escape = true;
                continue;
            } else if self.config.paren_comments && c == b'(' {
                self.in_paren = true;
                continue;
            } else if self.in_paren {
                if c == b')' {
                    self.in_paren = false;
                }
                continue;
            } else if c == 0x08 {
                self.line_buf.pop();
                continue;
            }
            // MAX_CMD_SIZE 96: the rest of a long line is silently lost.
            if self.line_buf.len() < 95 {
                self.line_buf.push(c);
            }
        }
    }

    /// Marlin's `get_sdcard_commands`: while printing from SD, fill free slots from the file.
    pub(super) fn read_sd(&mut self) {
        while self.sd.printing && self.ring.len() < self.config.command_slots {
            let text = match self.sd.next_command(&self.card) {
                Some(text) => text,
                None => {
                    // End of file: Marlin queues `M1001`, which reports the print done.
                    self.sd.printing = false;
                    self.sd.selected = None;
                    "M1001".to_owned()
                }
            };
            self.ring.push_back(Command {
                line: None,
                text,
                from_sd: true,
            });
        }
    }

    pub(super) fn process_line(&mut self, now: Instant, raw: &[u8]) {
        let s = raw.trim_ascii_start();
        match self.config.flavor {
            SimFlavor::Klipper => {
                let (line, text) = crate::sim::flavor::unchecked_line(s);
                return self.ring.push_back(Command {
                    line,
                    text,
                    from_sd: false,
                });
            }
            SimFlavor::Repetier => return self.repetier_line(s),
            SimFlavor::Smoothieware => return self.smoothie_line(s),
            SimFlavor::RepRapFirmware => return self.reprap_line(s),
            SimFlavor::Marlin | SimFlavor::Prusa => {}
        }
        if s.first() != Some(&b'N') {
            let text = String::from_utf8_lossy(s).trim().to_owned();
            if self.sd.saving.is_some() && !crate::sim::sd::is_m29(&text) {
                // While writing to SD only `M29` may come without a line number.
                return self.line_error(now, "No Checksum with line number, Last Line: ");
            }
            if self.prusa_takes(&text) {
                return;
            }
            self.ring.push_back(Command {
                line: None,
                text,
                from_sd: false,
            });
            return;
        }
        let text = String::from_utf8_lossy(s).into_owned();
        let is_m110 = text.contains("M110");
        let mut npos = 0;
        if is_m110 {
            if let Some(p) = text[4..].find('N') {
                npos = 4 + p;
            }
        }
        let n = strtol(&text[npos + 1..]);
        if n != self.last_n + 1 && !is_m110 {
            return self.line_error(now, "Line Number is not Last Line Number+1, Last Line: ");
        }
        let Some(apos) = text.rfind('*') else {
            return self.line_error(now, "No Checksum with line number, Last Line: ");
        };
        if strtol(&text[apos + 1..]) != i64::from(checksum(&s[..apos])) {
            return self.line_error(now, "checksum mismatch, Last Line: ");
        }
        if self.rng.chance(self.config.faults.spurious_resend) {
            self.injected(|c| &mut c.spurious_resend);
            return self.line_error(now, "checksum mismatch, Last Line: ");
        }
        let body = &text[..apos];
        let payload = body
            .trim_start_matches('N')
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .trim();
        if self.prusa_takes(payload) {
            return;
        }
        self.last_n = n;
        self.ring.push_back(Command {
            line: Some(strtol(&text[1..])),
            text: payload.to_owned(),
            from_sd: false,
        });
    }

    pub(super) fn line_error(&mut self, _now: Instant, text: &str) {
        self.stats.line_errors += 1;
        let _ = writeln!(self.out, "Error:{text}{}", self.last_n);
        // Prusa-Firmware's `FlushSerialRequestResend` always drains the receive buffer and
        // answers `Resend:` with one `ok`, whichever Marlin release `version` names.
        let prusa = self.config.flavor == SimFlavor::Prusa;
        if prusa || self.config.version != MarlinVersion::V1 {
            self.rx.clear();
        }
        self.line_buf.clear();
        let _ = writeln!(self.out, "Resend: {}", self.last_n + 1);
        if prusa || self.config.version != MarlinVersion::V2_0 {
            self.out.extend_from_slice(b"ok\n");
        }
    }
}

/// C's `strtol` on a decimal: leading spaces, optional sign, digits; 0 when none.
fn strtol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let v: i64 = digits[..end].parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// The command the emergency parser acts on in `line` (its `N<n>` skipped), if any.
fn emergency_command(line: &[u8]) -> Option<&'static [u8; 4]> {
    let mut s = line;
    if s.first() == Some(&b'N') {
        s = &s[1..];
        while s.first().is_some_and(|c| c.is_ascii_digit() || *c == b'-') {
            s = &s[1..];
        }
    }
    let s = s.trim_ascii_start();
    [b"M112", b"M108", b"M876", b"M410"]
        .into_iter()
        .find(|c| s.starts_with(*c))
}

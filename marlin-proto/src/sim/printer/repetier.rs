//! Repetier-Firmware 1.0's serial protocol (`gcode.cpp`: `checkAndPushCommand`,
//! `requestResend`, `readFromSerial`): `ok <n>` when a line is stored, `skip <n>` for lines
//! it will not store, `Resend:` without draining, `wait` when idle, `fatal:` until `M999`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::{Command, SimPrinter};
use crate::line::checksum;

/// After a resend request, this many lines with the wrong number are skipped quietly (14 in
/// ASCII mode) before another request.
const SKIP_AFTER_RESEND: i32 = 14;
/// `wait` after this long without input while the command buffer is empty.
const WAIT_AFTER: Duration = Duration::from_secs(1);

/// The fatal error the simulated halt reports (`Extruder.cpp`'s decoupled heater).
const HALT_MESSAGE: &str = "Heater decoupled during hold";

/// Repetier's receiving state.
#[derive(Debug)]
pub(super) struct Repetier {
    /// `waitingForResend`: negative when no resend is pending.
    waiting_for_resend: i32,
    /// `actLineNumber`: the last line number parsed, echoed by every `ok`.
    act_line: i64,
    /// Set by a fatal error until `M999`.
    fatal: Option<&'static str>,
    /// When `wait` is due (input resets it).
    pub(super) wait_due: Option<Instant>,
}

impl Default for Repetier {
    fn default() -> Self {
        Self {
            waiting_for_resend: -1,
            act_line: 0,
            fatal: None,
            wait_due: None,
        }
    }
}

impl SimPrinter {
    /// A complete line read from serial (Repetier's `parseAscii` + `checkAndPushCommand`).
    pub(super) fn repetier_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw).trim().to_owned();
        let (unsummed, sum_ok) = match text.rfind('*') {
            Some(a) => (
                &text[..a],
                text[a + 1..].trim().parse::<u8>().ok() == Some(checksum(&raw.trim_ascii()[..a])),
            ),
            None => (text.as_str(), true),
        };
        if !sum_ok {
            return self.repetier_resend();
        }
        let (number, body) = split_line_number(unsummed);
        let body = body.trim();
        if let Some(n) = number {
            self.repetier.act_line = n;
        }
        let code = body.split_ascii_whitespace().next().unwrap_or("");
        if code.eq_ignore_ascii_case("M110") {
            self.last_n = self.repetier.act_line;
            self.out.extend_from_slice(b"ok\n");
            self.repetier.waiting_for_resend = -1;
            return;
        }
        if let Some(n) = number {
            if (self.last_n + 1) & 0xffff != n & 0xffff {
                if ((self.last_n - n) as u16) < 40 {
                    // A line it already has: a repeated resend.
                    let _ = writeln!(self.out, "skip {n}\nok");
                } else if self.repetier.waiting_for_resend < 0 {
                    self.repetier_resend();
                } else {
                    // Garbage behind the line it asked for.
                    self.repetier.waiting_for_resend -= 1;
                    let _ = writeln!(self.out, "skip {n}\nok");
                }
                return;
            }
            if self.rng.chance(self.config.faults.spurious_resend) {
                self.injected(|c| &mut c.spurious_resend);
                return self.repetier_resend();
            }
            self.last_n = n;
        }
        match self.repetier.fatal {
            Some(message) if !code.eq_ignore_ascii_case("M999") => {
                report_fatal(&mut self.out, message)
            }
            _ => self.ring.push_back(Command {
                line: number,
                text: body.to_owned(),
                from_sd: false,
            }),
        }
        self.acknowledge(number);
        self.repetier.waiting_for_resend = -1;
    }

    /// `requestResend`: no drain, an empty line, `Resend:<n>` and `ok`.
    fn repetier_resend(&mut self) {
        self.stats.line_errors += 1;
        self.repetier.waiting_for_resend = SKIP_AFTER_RESEND;
        let _ = writeln!(self.out, "\nResend:{}\nok", self.last_n + 1);
    }

    /// `ok <actLineNumber>` (`ACK_WITH_LINENUMBER`).
    pub(super) fn repetier_ok(&mut self) {
        let _ = writeln!(self.out, "ok {}", self.repetier.act_line);
    }

    /// A heater fault: `fatalError` stops the print; commands are acknowledged, not run.
    pub(super) fn repetier_fatal(&mut self) {
        self.repetier.fatal = Some(HALT_MESSAGE);
        self.ring.clear();
        self.halt_motion();
        report_fatal(&mut self.out, HALT_MESSAGE);
    }

    /// `M999` clears the fatal state.
    pub(super) fn repetier_clear_fatal(&mut self) {
        self.repetier.fatal = None;
    }

    /// Input arrived: `wait` is due a second later.
    pub(super) fn repetier_input(&mut self, now: Instant) {
        self.repetier.wait_due = Some(now + WAIT_AFTER);
    }

    /// `wait` once a second while the command buffer is empty and nothing arrives. (Checked
    /// at each due time only: a buffer still busy then delays the next check by a second.)
    pub(super) fn repetier_wait(&mut self, now: Instant) {
        if self.repetier.wait_due.is_some_and(|t| t <= now) {
            if self.ring.is_empty() {
                self.out.extend_from_slice(b"wait\n");
            }
            self.repetier.wait_due = Some(now + WAIT_AFTER);
        }
    }
}

/// `reportFatalError`.
fn report_fatal(out: &mut Vec<u8>, message: &str) {
    let _ = writeln!(
        out,
        "fatal:{message} - Printer stopped and heaters disabled due to this error. Fix error and restart with M999."
    );
}

/// A leading `N<digits>` and the rest of the line.
pub(super) fn split_line_number(text: &str) -> (Option<i64>, &str) {
    let Some(rest) = text.strip_prefix(['N', 'n']) else {
        return (None, text);
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    match rest[..digits].parse() {
        Ok(n) => (Some(n), &rest[digits..]),
        Err(_) => (None, text),
    }
}

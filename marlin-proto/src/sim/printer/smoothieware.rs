//! Smoothieware's serial protocol (`GcodeDispatch::on_console_line_received`): `rs N<n>`
//! alone for a bad line, and the halt state in which commands are answered `!!`.

use std::io::Write as _;

use super::{Command, SimPrinter};
use crate::line::checksum;

/// M-codes answered while halted (`allowed_mcodes`).
const ALLOWED_WHEN_HALTED: [&str; 14] = [
    "M2", "M5", "M9", "M30", "M105", "M114", "M115", "M119", "M80", "M81", "M911", "M503", "M106",
    "M107",
];

/// Whether Smoothieware reads `raw` as a numbered `M110`: it takes the line number from its
/// `N` before checking anything, the checksum included.
pub(super) fn sets_line_number(raw: &[u8]) -> bool {
    let Some(after_n) = raw.trim_ascii().strip_prefix(b"N") else {
        return false;
    };
    let digits = after_n.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = &after_n[digits..];
    let body = rest
        .iter()
        .rposition(|&c| c == b'*')
        .map_or(rest, |a| &rest[..a]);
    body.split(u8::is_ascii_whitespace)
        .find(|w| !w.is_empty())
        .is_some_and(|w| w.eq_ignore_ascii_case(b"M110"))
}

impl SimPrinter {
    /// A complete line read from serial.
    pub(super) fn smoothie_line(&mut self, raw: &[u8]) {
        let raw = raw.trim_ascii();
        let text = String::from_utf8_lossy(raw).into_owned();
        let Some(after_n) = text.strip_prefix('N') else {
            // Unnumbered: no checks at all.
            return self.ring.push_back(Command {
                line: None,
                text: text.trim().to_owned(),
                from_sd: false,
            });
        };
        // `get_int('N')`: the digits after `N`, 0 when there are none.
        let digits = after_n.len()
            - after_n
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let n: i64 = after_n[..digits].parse().unwrap_or(0);
        let rest = &after_n[digits..];
        let (body, sum_ok) = match rest.rfind('*') {
            Some(a) => {
                let star = text.len() - rest.len() + a;
                let given = rest[a + 1..].trim().parse::<u8>().ok();
                (&rest[..a], given == Some(checksum(&raw[..star])))
            }
            // A numbered line without a checksum passes.
            None => (rest, true),
        };
        let body = body.trim();
        if sets_line_number(raw) {
            // `M110` sets the line number from its own `N`, checked before anything else.
            self.last_n = n;
            self.out.extend_from_slice(b"ok\n");
            return;
        }
        let spurious = sum_ok && self.rng.chance(self.config.faults.spurious_resend);
        if spurious {
            self.injected(|c| &mut c.spurious_resend);
        }
        if !sum_ok || n != self.last_n + 1 || spurious {
            self.stats.line_errors += 1;
            let _ = writeln!(self.out, "rs N{}", self.last_n + 1);
            return;
        }
        self.last_n = n;
        self.ring.push_back(Command {
            line: Some(n),
            text: body.to_owned(),
            from_sd: false,
        });
    }

    /// While halted, whether `code` is refused: answered `!!`, without `ok`. `M999` leaves
    /// the halt state.
    pub(super) fn smoothie_refuses(&mut self, code: &str) -> bool {
        if !self.stopped {
            return false;
        }
        if code == "M999" {
            self.stopped = false;
            self.out.extend_from_slice(
                b"WARNING: After HALT you should HOME as position is currently unknown\n",
            );
            return false;
        }
        if ALLOWED_WHEN_HALTED.contains(&code) {
            return false;
        }
        self.out.extend_from_slice(b"!!\n");
        true
    }

    /// `M112`, executed in order: acknowledged with the halt notice.
    pub(super) fn smoothie_emergency_stop(&mut self) {
        self.halt_motion();
        self.stopped = true;
        self.out.extend_from_slice(
            b"ok Emergency Stop Requested - reset or M999 required to exit HALT state\n",
        );
    }

    /// A temperature fault (`TemperatureControl`): halted until `M999`.
    pub(super) fn smoothie_halt(&mut self) {
        self.halt_motion();
        // The queue is flushed, the command that was running included (before, it stayed at
        // the front and ran again).
        self.ring.clear();
        self.stopped = true;
        self.out.extend_from_slice(
            b"Temperature reading is unreliable on T HALT asserted - reset or M999 required\n",
        );
    }
}

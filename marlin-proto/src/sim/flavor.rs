//! Firmware flavors of the simulator: stock Marlin, or another firmware's host-visible
//! behaviour (see [`Quirks`](crate::Quirks) for the sources), so the session's quirk table is
//! exercised end to end. Klipper's handling lives here; the others' in `printer/`.

/// Which firmware the simulator imitates. Use with [`SimConfig::flavored`](super::SimConfig::flavored),
/// which also sets the options that firmware has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SimFlavor {
    /// Marlin (every other [`SimConfig`](super::SimConfig) option applies).
    #[default]
    Marlin,
    /// Prusa-Firmware: Marlin's line checks and one `ok` after `Resend:`; `M115` names
    /// `Prusa-Firmware`; unknown commands answered `Unknown M code: …`; `M112` prints
    /// `Error:Printer halted. kill() called!` with the reason after it; a halt (thermal
    /// runaway) prints `Error: HOTEND THERMAL RUNAWAY` and
    /// `Error:Printer stopped due to errors. Supervision required.`, and every later command
    /// is dropped unanswered.
    Prusa,
    /// Repetier-Firmware 1.0: `ok <n>` as soon as a line is stored (before it runs, so `M105`'s
    /// report follows its `ok`); a bad line: an empty line, `Resend:<n>`, `ok`, no drain, and
    /// `skip <n>` + `ok` for each line in flight behind it and for copies of lines it has;
    /// `wait` after a second idle; `busy:processing` without `echo:`; a halt prints
    /// `fatal:Heater decoupled during hold - …` and later commands are acknowledged, not run;
    /// `M112` resets the board (`start`).
    Repetier,
    /// Smoothieware: no boot banner; a bad checksum or line number gets `rs N<n>` only (no
    /// error, no `ok`, no drain); `M112` (in order) answers `ok Emergency Stop Requested - …`
    /// and halts; a halt (`… HALT asserted - reset or M999 required`) makes it answer every
    /// later command `!!`, without `ok`, until `M999`, except the status queries of its
    /// `allowed_mcodes` (`M105`, `M114`, `M115`, …), which still run; no `busy:` lines.
    Smoothieware,
    /// RepRapFirmware in Marlin emulation (its USB default): no boot banner; `M115` as
    /// `FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: …`; line numbers are
    /// not checked and a line with a bad checksum is dropped without any answer. `M112` and
    /// halts behave as Marlin's (not modelled).
    RepRapFirmware,
    /// Klipper's `/tmp/printer` pseudo-terminal: no boot banner; line numbers and checksums
    /// skipped, never checked (no resends); `M115` answered inside the `ok`
    /// (`ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:…`); a command error (here: a move outside
    /// the 0–235 mm bed) reported as `!! …` and still followed by its `ok`; `M112` (acted on
    /// at once) or a halt: `// Klipper state: Shutdown`, and from then on every command is
    /// answered `!! <reason>` and `ok`. Use with [`SimConfig::klipper`](super::SimConfig::klipper).
    Klipper,
}

/// Bed size the Klipper flavor checks moves against (`position_max` of a 235 mm bed).
const BED_MM: f64 = 235.0;

/// What the Klipper flavor does instead of Marlin's handling of a command.
#[derive(Debug, Default)]
pub(super) struct Klipper {
    /// Why the printer shut down, once it did.
    shutdown: Option<String>,
}

/// A Klipper answer: these lines, then `ok` followed by `ok_text`; the command is not executed.
pub(super) struct Answer {
    pub(super) lines: Vec<String>,
    pub(super) ok_text: String,
}

impl Klipper {
    /// Klipper's own handling of `code` (upper case) with its `X`/`Y` targets, if it differs
    /// from Marlin's; `None`: execute it as Marlin would.
    pub(super) fn intercept(&self, code: &str, x: Option<f64>, y: Option<f64>) -> Option<Answer> {
        if let Some(reason) = &self.shutdown {
            if code == "M105" {
                // Temperature requests are answered even when not ready.
                return Some(Answer {
                    lines: Vec::new(),
                    ok_text: " T:0".to_owned(),
                });
            }
            return Some(Answer {
                lines: vec![format!("!! {reason}")],
                ok_text: String::new(),
            });
        }
        match code {
            "M115" => Some(Answer {
                lines: Vec::new(),
                ok_text: " FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-easyprint-sim".to_owned(),
            }),
            "G0" | "G1" => {
                let outside = |v: Option<f64>| v.is_some_and(|v| !(0.0..=BED_MM).contains(&v));
                (outside(x) || outside(y)).then(|| Answer {
                    lines: vec![format!(
                        "!! Move out of range: {:.3} {:.3} 0.000 [0.000]",
                        x.unwrap_or(0.0),
                        y.unwrap_or(0.0)
                    )],
                    ok_text: String::new(),
                })
            }
            _ => None,
        }
    }

    /// The printer shut down (`M112`, or a fault): the lines Klipper prints.
    pub(super) fn shut_down(&mut self, reason: &str) -> String {
        self.shutdown = Some(reason.to_owned());
        format!("!! {reason}\n// Klipper state: Shutdown\n")
    }
}

/// Klipper's reading of a line: a leading `N<n>` and a trailing `*<checksum>` are skipped,
/// never checked.
pub(super) fn unchecked_line(raw: &[u8]) -> (Option<i64>, String) {
    let text = String::from_utf8_lossy(raw);
    let mut text = text.trim();
    let mut line = None;
    if let Some(rest) = text.strip_prefix('N') {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            line = rest[..digits].parse().ok();
            text = rest[digits..].trim_start();
        }
    }
    if let Some((body, sum)) = text.rsplit_once('*') {
        if !sum.is_empty() && sum.bytes().all(|b| b.is_ascii_digit()) {
            text = body.trim_end();
        }
    }
    (line, text.to_owned())
}

//! Typed parsing of the lines a Marlin-family firmware writes to the host.
//!
//! [`FirmwareLine::parse`] never fails: whatever it does not recognise becomes
//! [`FirmwareLine::Unknown`]. It looks at one line at a time; gluing multi-line reports
//! together (two-line thermal errors, `M115` capability lists) is the session's job.

use std::fmt;

mod temperature;

pub use temperature::{Heater, HeaterPower, Reading, Temperatures};

/// One line from the firmware, classified.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FirmwareLine {
    /// An acknowledgement: `ok`, `ok T:…`, ADVANCED_OK `ok N12 P15 B3`, Repetier `ok 123`.
    Ok(OkLine),
    /// `Resend: 12`, `Resend:12`, `rs N12`, `Resend: N:12`; `line` is `None` when no number was given.
    Resend {
        /// The line the firmware asks for.
        line: Option<i64>,
    },
    /// An `Error:` line (or an old `Serial Error:`).
    Error(FirmwareError),
    /// `echo:busy: processing` and friends: the firmware is alive but blocked.
    Busy(BusyReason),
    /// `wait`: the firmware is idle (an `ok` the host still waits for was lost).
    Wait,
    /// Repetier's `skip <n>`: line `n` was thrown away unexecuted (a copy of a line it already
    /// has, or a line in flight behind one it asked to be re-sent); an `ok` follows for it.
    Skip {
        /// The line skipped.
        line: i64,
    },
    /// `start`: the firmware (re)booted.
    Start,
    /// A temperature report without `ok` (autoreport or `M109`/`M190` progress).
    Temperatures(Temperatures),
    /// An `M114` position report (the `Count` section is ignored).
    Position(Position),
    /// SD card status.
    Sd(SdStatus),
    /// The `M115` `FIRMWARE_NAME:` line.
    FirmwareInfo(FirmwareInfo),
    /// An `M115` `Cap:NAME:0|1` line.
    Capability {
        /// Capability name, as reported.
        name: String,
        /// Whether it is enabled.
        enabled: bool,
    },
    /// `//action:<name> <params>`.
    Action(HostAction),
    /// `echo:Unknown command: "G999"` (an `ok` follows; not an error).
    UnknownCommand(String),
    /// `!! …`: a STOP/KILL message (Marlin) or an error (Klipper).
    Fatal(String),
    /// Any other `echo:` line (text after the prefix).
    Echo(String),
    /// Any other `//` line (debug output).
    Comment(String),
    /// An empty line.
    Empty,
    /// A line nothing above matches; reported, never fatal.
    Unknown(String),
}

/// An `ok` line's parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OkLine {
    /// `N<n>` of ADVANCED_OK or Repetier's bare number.
    pub line: Option<i64>,
    /// ADVANCED_OK `P`: free planner blocks.
    pub planner_free: Option<u32>,
    /// ADVANCED_OK `B`: free command-queue slots.
    pub slots_free: Option<u32>,
    /// Temperatures reported on the same line (`ok T:…`, answer to `M105`).
    pub temperatures: Option<Temperatures>,
    /// The `M115` report given inside the `ok` (Klipper: `ok FIRMWARE_NAME:Klipper …`).
    pub firmware: Option<FirmwareInfo>,
}

/// What an `Error:` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirmwareError {
    /// The line number was not `last + 1` (also the Repetier and 2013-era wordings).
    LineNumber {
        /// The last line the firmware accepted, if stated.
        last: Option<i64>,
    },
    /// `checksum mismatch`.
    Checksum {
        /// The last line the firmware accepted, if stated.
        last: Option<i64>,
    },
    /// `No Checksum with line number`.
    NoChecksum {
        /// The last line the firmware accepted, if stated.
        last: Option<i64>,
    },
    /// `No Line Number with checksum` (Marlin 1.0/Prusa; no resend follows).
    NoLineNumber {
        /// The last line the firmware accepted, if stated.
        last: Option<i64>,
    },
    /// `Printer halted. kill() called!`: the firmware is dead until reset.
    Halted,
    /// `Printer stopped due to errors … M999`.
    Stopped,
    /// `<cause>, system stopped! Heater_ID: <id>` (thermal runaway, MAXTEMP, …).
    Thermal {
        /// `Thermal Runaway`, `MAXTEMP triggered`, …
        cause: String,
        /// `0`, `1`, `bed`, `chamber`, …
        heater: String,
    },
    /// The firmware stopped itself and ignores commands until `M999`: Repetier's
    /// `fatal:<message> - Printer stopped …` (later commands are acknowledged, not run),
    /// Smoothieware's `… HALT asserted - reset or M999 required` (later commands get `!!`).
    Fatal(String),
    /// Any other error text (after `Error:`).
    Other(String),
}

impl FirmwareError {
    /// Whether this error is one of the three a resend request follows.
    pub fn is_line_error(&self) -> bool {
        matches!(
            self,
            Self::LineNumber { .. } | Self::Checksum { .. } | Self::NoChecksum { .. }
        )
    }
}

impl fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineNumber { .. } => f.write_str("line number is not last line number + 1"),
            Self::Checksum { .. } => f.write_str("checksum mismatch"),
            Self::NoChecksum { .. } => f.write_str("no checksum with line number"),
            Self::NoLineNumber { .. } => f.write_str("no line number with checksum"),
            Self::Halted => f.write_str("printer halted, kill() called"),
            Self::Stopped => f.write_str("printer stopped due to errors, M999 required"),
            Self::Thermal { cause, heater } => write!(f, "{cause} on heater {heater}"),
            Self::Fatal(s) => write!(f, "fatal: {s}"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Why the firmware says it is busy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusyReason {
    /// `processing`: a blocking command (`G28`, `M109`, a move waiting for the planner).
    Processing,
    /// `paused for user` (`M0`, `M600`).
    PausedForUser,
    /// `paused for input`.
    PausedForInput,
    /// Any other reason text.
    Other(String),
}

/// The first X/Y/Z/E group of an `M114` report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Position {
    /// X in mm.
    pub x: f64,
    /// Y in mm.
    pub y: f64,
    /// Z in mm.
    pub z: f64,
    /// E (or E0) in mm, if reported.
    pub e: Option<f64>,
}

/// SD card status lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdStatus {
    /// `SD printing byte <done>/<total>`.
    Printing {
        /// Bytes done.
        done: u64,
        /// File size.
        total: u64,
    },
    /// `Not SD printing`.
    NotPrinting,
    /// `Done printing file`.
    DonePrinting,
    /// `Done saving file.` (often sent instead of the `ok` for `M29`).
    DoneSaving,
    /// `Begin file list` (`M20`).
    ListBegin,
    /// `End file list` (`M20`).
    ListEnd,
    /// `File opened: <name> Size: <bytes>` (`M23`).
    FileOpened {
        /// The name as the firmware reports it.
        name: String,
        /// File size in bytes.
        size: u64,
    },
    /// `File selected` (`M23` succeeded).
    FileSelected,
    /// `Writing to file: <name>` (`M28`).
    Writing {
        /// The file being written.
        name: String,
    },
    /// `open failed, File: <name>.` (`M23`, `M28`, `M30` on a missing or bad name).
    OpenFailed {
        /// The name the firmware could not open.
        name: String,
    },
}

/// The `M115` report line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// `FIRMWARE_NAME` value, e.g. `Marlin 2.1.2.1 (Jun 11 2023 12:00:00)`.
    pub name: String,
    /// Every `KEY:value` pair in order (values may contain spaces).
    pub fields: Vec<(String, String)>,
}

impl FirmwareInfo {
    /// The value of a field such as `MACHINE_TYPE`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A host action command (`//action:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostAction {
    /// The host should pause the print.
    Pause,
    /// The firmware paused by itself; change state only.
    Paused,
    /// The host should resume.
    Resume,
    /// The firmware resumed by itself.
    Resumed,
    /// The host should cancel the print.
    Cancel,
    /// The host should start a print.
    Start,
    /// A notification text for the user.
    Notification(String),
    /// A prompt begins, with its title.
    PromptBegin(String),
    /// A prompt button label (answer with `M876 S<index>`).
    PromptButton(String),
    /// Show the prompt built so far.
    PromptShow,
    /// The prompt is gone.
    PromptEnd,
    /// Any other action, with its parameters.
    Other {
        /// Action name.
        name: String,
        /// Everything after the name.
        params: String,
    },
}

impl FirmwareLine {
    /// Classifies one line (without its line terminator; surrounding whitespace is ignored).
    /// Invalid UTF-8 is decoded lossily.
    ///
    /// ```
    /// use easyprint_marlin::{FirmwareLine, OkLine};
    /// let line = FirmwareLine::parse(b"ok N12 P15 B3");
    /// assert_eq!(line, FirmwareLine::Ok(OkLine {
    ///     line: Some(12), planner_free: Some(15), slots_free: Some(3), temperatures: None,
    ///     firmware: None,
    /// }));
    /// ```
    pub fn parse(raw: &[u8]) -> Self {
        let raw = raw.trim_ascii();
        // The hot path (`ok`, `ok N.. P.. B..`) never allocates.
        if let Some(rest) = raw.strip_prefix(b"ok") {
            if rest.is_empty() || rest[0] == b' ' || rest[0] == b'\t' {
                return Self::Ok(parse_ok(&String::from_utf8_lossy(rest)));
            }
        }
        if raw.is_empty() {
            return Self::Empty;
        }
        let text = String::from_utf8_lossy(raw);
        parse_text(&text)
    }
}

fn parse_ok(rest: &str) -> OkLine {
    let mut ok = OkLine::default();
    if rest.trim_start().starts_with("FIRMWARE_NAME:") {
        ok.firmware = Some(parse_firmware_info(rest.trim()));
        return ok;
    }
    if rest.contains(':') {
        ok.temperatures = Temperatures::parse(rest);
    }
    for token in rest.split_ascii_whitespace() {
        if token.contains(':') {
            continue;
        }
        let (key, digits) = match token.as_bytes()[0] {
            b'N' | b'P' | b'B' => (token.as_bytes()[0], &token[1..]),
            _ => (b'#', token),
        };
        let Ok(v) = digits.parse::<i64>() else {
            continue;
        };
        match key {
            b'N' | b'#' => ok.line = ok.line.or(Some(v)),
            b'P' => ok.planner_free = u32::try_from(v).ok(),
            _ => ok.slots_free = u32::try_from(v).ok(),
        }
    }
    ok
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn parse_text(text: &str) -> FirmwareLine {
    if text == "start" {
        return FirmwareLine::Start;
    }
    if text == "wait" {
        return FirmwareLine::Wait;
    }
    if let Some(rest) = strip_prefix_ci(text, "resend").or_else(|| strip_prefix_ci(text, "rs")) {
        if rest.is_empty() || rest.starts_with([':', ' ']) {
            return FirmwareLine::Resend {
                line: first_integer(rest),
            };
        }
    }
    if let Some(rest) = text
        .strip_prefix("Error:")
        .or_else(|| text.strip_prefix("Serial Error:"))
    {
        return FirmwareLine::Error(parse_error(rest.trim()));
    }
    if text.starts_with("Printer stopped due to errors") {
        return FirmwareLine::Error(FirmwareError::Stopped);
    }
    if let Some(rest) = text.strip_prefix("fatal:") {
        return FirmwareLine::Error(FirmwareError::Fatal(rest.trim().to_owned()));
    }
    if text.ends_with("HALT asserted - reset or M999 required") {
        // Smoothieware halted (a temperature fault, the kill button).
        return FirmwareLine::Error(FirmwareError::Fatal(text.to_owned()));
    }
    if let Some(rest) = text.strip_prefix("skip ") {
        if let Ok(line) = rest.trim().parse() {
            return FirmwareLine::Skip { line };
        }
    }
    if let Some(cmd) = unknown_code(text) {
        return FirmwareLine::UnknownCommand(cmd);
    }
    if let Some(rest) = text.strip_prefix("!!") {
        return FirmwareLine::Fatal(rest.trim().to_owned());
    }
    if let Some(rest) = text.strip_prefix("//") {
        let rest = rest.trim_start();
        if let Some(action) = rest.strip_prefix("action:") {
            return FirmwareLine::Action(parse_action(action.trim()));
        }
        return FirmwareLine::Comment(rest.to_owned());
    }
    if let Some(rest) = text.strip_prefix("busy:") {
        return FirmwareLine::Busy(parse_busy(rest));
    }
    if let Some(rest) = text.strip_prefix("echo:") {
        let rest = rest.trim();
        if let Some(reason) = rest.strip_prefix("busy:") {
            return FirmwareLine::Busy(parse_busy(reason));
        }
        if let Some(sd) = parse_sd(rest) {
            return FirmwareLine::Sd(sd);
        }
        if let Some(cmd) = rest.strip_prefix("Unknown command:") {
            return FirmwareLine::UnknownCommand(cmd.trim().trim_matches('"').to_owned());
        }
        if rest.starts_with("Printer stopped due to errors") {
            // Prusa-Firmware, after a thermal error it can recover from: it paused the print
            // and drops every command unanswered until the user intervenes.
            return FirmwareLine::Error(FirmwareError::Stopped);
        }
        return FirmwareLine::Echo(rest.to_owned());
    }
    if let Some(rest) = text.strip_prefix("Cap:") {
        if let Some((name, value)) = rest.rsplit_once(':') {
            return FirmwareLine::Capability {
                name: name.trim().to_owned(),
                enabled: value.trim() == "1",
            };
        }
    }
    if text.starts_with("FIRMWARE_NAME:") || text.starts_with("NAME.") {
        return FirmwareLine::FirmwareInfo(parse_firmware_info(text));
    }
    if let Some(sd) = parse_sd(text) {
        return FirmwareLine::Sd(sd);
    }
    if text.starts_with("X:") {
        if let Some(pos) = parse_position(text) {
            return FirmwareLine::Position(pos);
        }
    }
    if let Some(t) = Temperatures::parse(text) {
        return FirmwareLine::Temperatures(t);
    }
    FirmwareLine::Unknown(text.to_owned())
}

/// Prusa-Firmware's `Unknown M code: M999x` (also `G`, `D`): the command that follows.
fn unknown_code(text: &str) -> Option<String> {
    let rest = text.strip_prefix("Unknown ")?;
    let (letter, cmd) = rest.split_once(" code:")?;
    (letter.len() == 1).then(|| cmd.trim().to_owned())
}

/// The first (optionally negative) integer in `s`.
fn first_integer(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let start = b.iter().position(|c| c.is_ascii_digit())?;
    let neg = start > 0 && b[start - 1] == b'-';
    let end = b[start..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |e| start + e);
    let v: i64 = s[start..end].parse().ok()?;
    Some(if neg { -v } else { v })
}

fn last_line(rest: &str) -> Option<i64> {
    let idx = rest.find("Last Line:")?;
    first_integer(&rest[idx..])
}

fn parse_error(rest: &str) -> FirmwareError {
    let lower = rest.to_ascii_lowercase();
    if lower.starts_with("line number is not last line number")
        || lower.starts_with("expected line")
        || lower.starts_with("line number out of sequence")
    {
        return FirmwareError::LineNumber {
            last: last_line(rest),
        };
    }
    if lower.starts_with("checksum mismatch") {
        return FirmwareError::Checksum {
            last: last_line(rest),
        };
    }
    if lower.starts_with("no checksum with line number") {
        return FirmwareError::NoChecksum {
            last: last_line(rest),
        };
    }
    if lower.starts_with("no line number with checksum") {
        return FirmwareError::NoLineNumber {
            last: last_line(rest),
        };
    }
    if lower.starts_with("printer halted") {
        return FirmwareError::Halted;
    }
    if lower.starts_with("printer stopped due to errors") {
        return FirmwareError::Stopped;
    }
    if let Some((cause, heater)) = rest.split_once(", system stopped! Heater_ID:") {
        return FirmwareError::Thermal {
            cause: cause.trim().to_owned(),
            heater: heater.trim().to_owned(),
        };
    }
    FirmwareError::Other(rest.to_owned())
}

fn parse_busy(reason: &str) -> BusyReason {
    match reason.trim() {
        "processing" => BusyReason::Processing,
        "paused for user" => BusyReason::PausedForUser,
        "paused for input" => BusyReason::PausedForInput,
        other => BusyReason::Other(other.to_owned()),
    }
}

fn parse_action(action: &str) -> HostAction {
    let (name, params) = action.split_once(' ').unwrap_or((action, ""));
    let params = params.trim();
    match name {
        "pause" => HostAction::Pause,
        "paused" => HostAction::Paused,
        "resume" => HostAction::Resume,
        "resumed" => HostAction::Resumed,
        "cancel" => HostAction::Cancel,
        "start" => HostAction::Start,
        "notification" => HostAction::Notification(params.to_owned()),
        "prompt_begin" => HostAction::PromptBegin(params.to_owned()),
        "prompt_button" | "prompt_choice" => HostAction::PromptButton(params.to_owned()),
        "prompt_show" => HostAction::PromptShow,
        "prompt_end" => HostAction::PromptEnd,
        _ => HostAction::Other {
            name: name.to_owned(),
            params: params.to_owned(),
        },
    }
}

/// Splits `KEY:value KEY2:value with spaces` on `(start|whitespace)[A-Z][A-Z0-9_]*:`.
fn parse_firmware_info(text: &str) -> FirmwareInfo {
    if let Some(rest) = text.strip_prefix("NAME.") {
        // Malyan: `NAME. Malyan VER: 3.8 MODEL: M100 HW: HB02`.
        let name = rest.split_whitespace().next().unwrap_or("").to_owned();
        return FirmwareInfo {
            fields: vec![("FIRMWARE_NAME".to_owned(), name.clone())],
            name,
        };
    }
    let b = text.as_bytes();
    let mut keys = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (i == 0 || b[i - 1].is_ascii_whitespace()) && b[i].is_ascii_uppercase() {
            let end = b[i..]
                .iter()
                .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'))
                .map_or(b.len(), |e| i + e);
            if end < b.len() && b[end] == b':' {
                keys.push((i, end));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut fields = Vec::with_capacity(keys.len());
    for (k, &(start, end)) in keys.iter().enumerate() {
        let value_end = keys.get(k + 1).map_or(b.len(), |&(s, _)| s);
        fields.push((
            text[start..end].to_owned(),
            text[end + 1..value_end].trim().to_owned(),
        ));
    }
    let name = fields
        .iter()
        .find(|(k, _)| k == "FIRMWARE_NAME")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    FirmwareInfo { name, fields }
}

fn parse_sd(text: &str) -> Option<SdStatus> {
    if let Some(rest) = text.strip_prefix("SD printing byte") {
        let (done, total) = rest.trim().split_once('/')?;
        return Some(SdStatus::Printing {
            done: done.trim().parse().ok()?,
            total: total.trim().parse().ok()?,
        });
    }
    // SD card workflow lines (`M20`–`M30`); Marlin writes them with or without `echo:`.
    if let Some(rest) = text.strip_prefix("File opened:") {
        let (name, size) = rest.rsplit_once("Size:")?;
        return Some(SdStatus::FileOpened {
            name: name.trim().to_owned(),
            size: size.trim().parse().ok()?,
        });
    }
    if let Some(name) = text.strip_prefix("Writing to file:") {
        return Some(SdStatus::Writing {
            name: name.trim().to_owned(),
        });
    }
    if let Some(name) = text.strip_prefix("open failed, File:") {
        let name = name.trim();
        return Some(SdStatus::OpenFailed {
            name: name.strip_suffix('.').unwrap_or(name).to_owned(),
        });
    }
    match text {
        "Not SD printing" => Some(SdStatus::NotPrinting),
        "Done printing file" => Some(SdStatus::DonePrinting),
        "Done saving file." => Some(SdStatus::DoneSaving),
        "Begin file list" => Some(SdStatus::ListBegin),
        "End file list" => Some(SdStatus::ListEnd),
        "File selected" => Some(SdStatus::FileSelected),
        _ => None,
    }
}

fn parse_position(text: &str) -> Option<Position> {
    let head = text.split(" Count").next().unwrap_or(text);
    let mut pos = Position::default();
    let (mut x, mut y, mut z) = (None, None, None);
    for token in head.split_ascii_whitespace() {
        let Some((key, value)) = token.split_once(':') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        match key {
            "X" => x = x.or(Some(v)),
            "Y" => y = y.or(Some(v)),
            "Z" => z = z.or(Some(v)),
            "E" | "E0" => pos.e = pos.e.or(Some(v)),
            _ => {}
        }
    }
    pos.x = x?;
    pos.y = y?;
    pos.z = z?;
    Some(pos)
}

#[cfg(test)]
mod tests;

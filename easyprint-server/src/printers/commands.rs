//! Commands for the serial line, built only from typed values or checked raw text.
//!
//! A [`Command`] is exactly one G-code command: printable ASCII, no line break, no `;` comment
//! (which could hide a checksum trick) and no `*` (the line checksum separator), at most
//! [`MAX_COMMAND_LEN`] bytes. Numbers come from JSON as `f64` and are checked to be finite and
//! within a sane range before they are formatted, so no request can put a second command (or
//! anything else) on the line.

use crate::error::ApiError;

/// Longest raw command accepted (Marlin's `MAX_CMD_SIZE` is 96 including the line number).
pub const MAX_COMMAND_LEN: usize = 80;

/// One validated command line (without line number or checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(String);

impl Command {
    /// Checks a raw command from a person or a client.
    ///
    /// ```
    /// use easyprint_server::printers::commands::Command;
    /// assert!(Command::raw("G28 X Y").is_ok());
    /// assert!(Command::raw("M104 S200\nM112").is_err());
    /// assert!(Command::raw("M117 hi;M112").is_err());
    /// ```
    pub fn raw(text: &str) -> Result<Command, ApiError> {
        let text = text.trim();
        let bad = |why: &str| {
            ApiError::bad_request(
                "invalid_command",
                format!("command {:?} rejected: {why}", truncate(text)),
            )
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.len() > MAX_COMMAND_LEN {
            return Err(bad("longer than 80 bytes"));
        }
        if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(bad(&format!(
                "contains {c:?} (only printable ASCII on one line)"
            )));
        }
        if text.contains([';', '*']) {
            return Err(bad("contains ';' or '*'"));
        }
        Ok(Command(text.to_owned()))
    }

    /// The command text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Most raw commands accepted in one request.
pub const MAX_BATCH: usize = 64;

/// Checks every command of a request before any is sent: 1 to [`MAX_BATCH`] valid commands.
pub fn raw_batch<S: AsRef<str>>(
    texts: impl IntoIterator<Item = S>,
) -> Result<Vec<Command>, ApiError> {
    let commands = texts
        .into_iter()
        .map(|t| Command::raw(t.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if commands.is_empty() || commands.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "invalid_command",
            format!("send 1 to {MAX_BATCH} commands"),
        ));
    }
    Ok(commands)
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A number from a request, checked to lie in `range`.
pub fn number(
    name: &str,
    value: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, ApiError> {
    if value.is_finite() && range.contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "{name} must be between {} and {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Formats a checked number compactly (`200`, `0.5`).
fn fmt(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// Highest hotend target accepted, °C.
pub const MAX_TOOL_C: f64 = 300.0;
/// Highest bed target accepted, °C.
pub const MAX_BED_C: f64 = 130.0;

/// `M104 T<tool> S<target>`.
pub fn tool_target(tool: u8, celsius: f64) -> Result<Command, ApiError> {
    let c = number("tool target", celsius, 0.0..=MAX_TOOL_C)?;
    Ok(Command(format!("M104 T{tool} S{}", fmt(c))))
}

/// `M140 S<target>`.
pub fn bed_target(celsius: f64) -> Result<Command, ApiError> {
    let c = number("bed target", celsius, 0.0..=MAX_BED_C)?;
    Ok(Command(format!("M140 S{}", fmt(c))))
}

/// `G28` with the given axes (all when empty).
pub fn home(axes: &[String]) -> Result<Command, ApiError> {
    let mut text = String::from("G28");
    for axis in axes {
        match axis.as_str() {
            "x" | "y" | "z" => {
                text.push(' ');
                text.push_str(&axis.to_ascii_uppercase());
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("unknown axis {:?} (x, y or z)", truncate(other)),
                ))
            }
        }
    }
    Ok(Command(text))
}

/// A jog: `G91`, `G1 X.. Y.. Z.. F..`, `G90` (relative) or the move alone (absolute).
pub fn jog(
    x: Option<f64>,
    y: Option<f64>,
    z: Option<f64>,
    absolute: bool,
    speed_mm_min: Option<f64>,
) -> Result<Vec<Command>, ApiError> {
    let mut mv = String::from("G1");
    for (name, value) in [("X", x), ("Y", y), ("Z", z)] {
        if let Some(v) = value {
            let v = number(name, v, -1000.0..=1000.0)?;
            mv.push_str(&format!(" {name}{}", fmt(v)));
        }
    }
    if mv == "G1" {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "jog needs at least one of x, y, z",
        ));
    }
    if let Some(f) = speed_mm_min {
        mv.push_str(&format!(" F{}", fmt(number("speed", f, 1.0..=30000.0)?)));
    }
    Ok(if absolute {
        vec![Command("G90".into()), Command(mv)]
    } else {
        vec![Command("G91".into()), Command(mv), Command("G90".into())]
    })
}

/// Extrude (or retract, when negative) `amount` mm relative: `M83`, `G1 E.. F..`, `M82`.
pub fn extrude(amount: f64, speed_mm_min: Option<f64>) -> Result<Vec<Command>, ApiError> {
    let e = number("amount", amount, -500.0..=500.0)?;
    let f = number("speed", speed_mm_min.unwrap_or(300.0), 1.0..=6000.0)?;
    Ok(vec![
        Command("M83".into()),
        Command(format!("G1 E{} F{}", fmt(e), fmt(f))),
        Command("M82".into()),
    ])
}

/// `M220 S<percent>` (feed rate factor).
pub fn feedrate(factor_percent: f64) -> Result<Command, ApiError> {
    let s = number("factor", factor_percent, 1.0..=500.0)?;
    Ok(Command(format!("M220 S{}", fmt(s))))
}

/// `M221 S<percent>` (flow rate factor).
pub fn flowrate(factor_percent: f64) -> Result<Command, ApiError> {
    let s = number("factor", factor_percent, 1.0..=500.0)?;
    Ok(Command(format!("M221 S{}", fmt(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_commands_are_one_printable_line() {
        for bad in [
            "",
            "M104 S200\nM112",
            "M104 S200\rM112",
            "M117 a;b",
            "N5 G1*33",
            "M117 \u{0}",
            "M117 é",
            &"G1 X1 ".repeat(20),
        ] {
            assert!(Command::raw(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Command::raw("  M105 ").unwrap().as_str(), "M105");
    }

    #[test]
    fn typed_commands_check_their_numbers() {
        assert_eq!(tool_target(0, 200.0).unwrap().as_str(), "M104 T0 S200");
        assert_eq!(bed_target(60.5).unwrap().as_str(), "M140 S60.5");
        assert!(tool_target(0, f64::NAN).is_err());
        assert!(tool_target(0, 1e9).is_err());
        assert!(bed_target(-1.0).is_err());
        assert_eq!(home(&["x".into(), "z".into()]).unwrap().as_str(), "G28 X Z");
        assert!(home(&["x\nM112".into()]).is_err());
        let moves = jog(Some(10.0), None, Some(-0.5), false, Some(3000.0)).unwrap();
        let text: Vec<_> = moves.iter().map(Command::as_str).collect();
        assert_eq!(text, ["G91", "G1 X10 Z-0.5 F3000", "G90"]);
        assert!(jog(None, None, None, false, None).is_err());
        assert!(jog(Some(f64::INFINITY), None, None, false, None).is_err());
    }
}

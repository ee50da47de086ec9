//! Temperature reports: ` T:201.23 /200.00 B:60.01 /60.00 @:80 B@:127` and their many variants.

/// A heater or sensor named in a temperature report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Heater {
    /// `T` (`None`: the active tool) or `T0`, `T1`, …
    Tool(Option<u8>),
    /// `B`.
    Bed,
    /// `C`.
    Chamber,
    /// `P`.
    Probe,
    /// `R`: redundant sensor.
    Redundant,
    /// `L`: cooler.
    Cooler,
    /// `M`: board.
    Board,
    /// `A`: ambient (Prusa).
    Ambient,
    /// Any other `NAME:` key with a numeric value (Klipper sensor names, …).
    Other(String),
}

/// One sensor's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Which sensor.
    pub heater: Heater,
    /// Current temperature in °C (negative: sensor disconnected).
    pub actual: f64,
    /// Target in °C, if reported.
    pub target: Option<f64>,
}

/// A heater's PWM power (`@:`, `B@:`, `@0:`, `C@:`), 0–127 on most boards.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaterPower {
    /// Which heater.
    pub heater: Heater,
    /// Raw power value.
    pub power: f64,
}

/// A parsed temperature report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Temperatures {
    /// Every reading, in report order.
    pub readings: Vec<Reading>,
    /// Heater powers.
    pub power: Vec<HeaterPower>,
    /// `W:` residency countdown while waiting in `M109`/`M190` (seconds; `None` for `W:?`).
    pub residency: Option<f64>,
}

impl Temperatures {
    /// The reading for `heater`, if present.
    pub fn get(&self, heater: &Heater) -> Option<&Reading> {
        self.readings.iter().find(|r| &r.heater == heater)
    }

    /// Parses a report; `None` unless it names a tool (`T:`, `T0:`) or the bed (`B:`).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let mut out = Self::default();
        let mut seen_heater = false;
        let mut i = 0;
        while let Some(off) = memchr::memchr(b':', &b[i..]) {
            let colon = i + off;
            i = colon + 1;
            let key_start = b[..colon]
                .iter()
                .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'@'))
                .map_or(0, |p| p + 1);
            if key_start == colon || (key_start > 0 && !b[key_start - 1].is_ascii_whitespace()) {
                continue;
            }
            let key = &text[key_start..colon];
            let (value, after) = number(text, colon + 1);
            if key == "W" {
                out.residency = value;
                continue;
            }
            let Some(value) = value else { continue };
            i = after;
            let mut target = None;
            let mut j = after;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && b[j] == b'/' {
                let (t, after_t) = number(text, j + 1);
                target = t;
                i = after_t;
            }
            if key.contains('@') {
                if let Some(heater) = power_heater(key) {
                    out.power.push(HeaterPower {
                        heater,
                        power: value,
                    });
                }
                continue;
            }
            if key == "E" {
                // `T:195.1 E:0 W:?`: E is the extruder index here, not a position.
                continue;
            }
            let heater = heater_for(key).unwrap_or_else(|| Heater::Other(key.to_owned()));
            seen_heater |= matches!(heater, Heater::Tool(_) | Heater::Bed);
            out.readings.push(Reading {
                heater,
                actual: value,
                target,
            });
        }
        seen_heater.then_some(out)
    }
}

/// `@` (active tool), `@0`, `B@`, `C@`.
fn power_heater(key: &str) -> Option<Heater> {
    if let Some(digits) = key.strip_prefix('@') {
        if digits.is_empty() {
            return Some(Heater::Tool(None));
        }
        return Some(Heater::Tool(Some(digits.parse().ok()?)));
    }
    heater_for(key.strip_suffix('@')?)
}

fn heater_for(key: &str) -> Option<Heater> {
    Some(match key {
        "T" => Heater::Tool(None),
        "B" => Heater::Bed,
        "C" => Heater::Chamber,
        "P" => Heater::Probe,
        "R" => Heater::Redundant,
        "L" => Heater::Cooler,
        "M" => Heater::Board,
        "A" => Heater::Ambient,
        _ => {
            let digits = key.strip_prefix('T')?;
            Heater::Tool(Some(digits.parse().ok()?))
        }
    })
}

/// Parses a float starting at byte `at` (spaces skipped); returns it and the index after it.
fn number(text: &str, at: usize) -> (Option<f64>, usize) {
    let b = text.as_bytes();
    let mut s = at;
    while s < b.len() && b[s] == b' ' {
        s += 1;
    }
    let mut e = s;
    while e < b.len() && (b[e].is_ascii_digit() || matches!(b[e], b'.' | b'-' | b'+')) {
        e += 1;
    }
    (text[s..e].parse().ok(), e)
}

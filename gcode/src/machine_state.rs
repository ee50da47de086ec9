//! The machine state a stream of G-code leaves behind, and the G-code that restores it.
//!
//! A host that streams a file line by line feeds each line the printer acknowledged to
//! [`MachineState::apply`] and can read, at any point, where the head is, which modes are in
//! force, the heater targets, fans and tool: everything needed to checkpoint a print and to
//! resume it after the host or the printer lost power. [`MachineState::resume_prelude`] turns a
//! state into a safe G-code prelude for a printer that lost everything (heaters off, position
//! unknown): it never homes Z onto the part.
//!
//! Sans-IO: no file, no clock; feed parsed lines, read state.
//!
//! ```
//! use easyprint_gcode::machine_state::{MachineState, ResumeOptions};
//! use easyprint_gcode::{Parser, ParseOptions};
//!
//! let gcode = b"M140 S60\nM104 S205\nG28\nG90\nM82\nG1 Z0.2 F600\nG1 X10 Y10 E1.5 F1800\nM106 S255\n";
//! let mut state = MachineState::new();
//! let mut parser = Parser::new(gcode, ParseOptions::lenient());
//! while let Some(line) = parser.next_line() {
//!     if let Ok(line) = line {
//!         state.apply(&line);
//!     }
//! }
//! assert_eq!(state.position(), [10.0, 10.0, 0.2, 1.5]);
//! assert_eq!(state.hotend_target(0), Some(205.0));
//! let prelude = state.resume_prelude(&ResumeOptions::default()).unwrap();
//! assert!(prelude.contains("G28 X Y\n") && prelude.contains("G92 E1.5\n"));
//! assert!(!prelude.lines().any(|l| l == "G28" || l.starts_with("G28 Z")));
//! ```

use std::fmt::Write as _;

use thiserror::Error;

use crate::Line;

/// Hotends tracked (`T0`..`T7`); commands for higher tools are ignored.
pub const MAX_TOOLS: usize = 8;
/// Fans tracked (`M106 P0`..`P3`).
pub const MAX_FANS: usize = 4;

const X: usize = 0;
const Y: usize = 1;
const Z: usize = 2;
const E: usize = 3;

/// The state of a Marlin-like printer after the lines applied so far.
///
/// Positions are in the file's logical coordinates (after `G92`), in millimetres whatever
/// `G20`/`G21` say; feedrates in mm/min.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineState {
    position: [f64; 4],
    /// Logical minus machine position of X, Y, Z (set by `G92`, cleared by homing).
    offset: [f64; 3],
    absolute: bool,
    /// `M82`/`M83` override of the extruder mode; `G90`/`G91` clear it (as Marlin does).
    absolute_e: Option<bool>,
    inches: bool,
    feedrate: Option<f64>,
    tool: u8,
    tool_selected: bool,
    hotend: [Option<f64>; MAX_TOOLS],
    bed: Option<f64>,
    fans: [Option<u8>; MAX_FANS],
    speed_factor: Option<f64>,
    flow_factor: Option<f64>,
    leveling: bool,
    retracted: bool,
    layer_z: Option<f64>,
    extruded: f64,
    lines: u64,
}

impl Default for MachineState {
    fn default() -> Self {
        Self::new()
    }
}

impl MachineState {
    /// The state of a printer that was just switched on: absolute millimetres at the origin,
    /// heaters and fans never set.
    pub fn new() -> Self {
        MachineState {
            position: [0.0; 4],
            offset: [0.0; 3],
            absolute: true,
            absolute_e: None,
            inches: false,
            feedrate: None,
            tool: 0,
            tool_selected: false,
            hotend: [None; MAX_TOOLS],
            bed: None,
            fans: [None; MAX_FANS],
            speed_factor: None,
            flow_factor: None,
            leveling: false,
            retracted: false,
            layer_z: None,
            extruded: 0.0,
            lines: 0,
        }
    }

    /// Applies one line (comments and unknown commands change nothing but the line count).
    pub fn apply(&mut self, line: &Line<'_>) {
        self.lines += 1;
        let Some(code) = line.command() else { return };
        if code.minor.is_some() {
            return;
        }
        match (code.letter, code.major) {
            (b'G', 0..=3) => self.motion(line),
            (b'G', 10) if !line.has_arg(b'P') && !line.has_arg(b'L') => self.retracted = true,
            (b'G', 11) => self.retracted = false,
            (b'G', 20) => self.inches = true,
            (b'G', 21) => self.inches = false,
            (b'G', 28) => self.home(line),
            (b'G', 29) => self.leveling = true,
            (b'G', 90) => (self.absolute, self.absolute_e) = (true, None),
            (b'G', 91) => (self.absolute, self.absolute_e) = (false, None),
            (b'G', 92) => self.set_position(line),
            (b'M', 82) => self.absolute_e = Some(true),
            (b'M', 83) => self.absolute_e = Some(false),
            (b'M', 104 | 109) => {
                let tool = line
                    .arg(b'T')
                    .map_or(Some(usize::from(self.tool)), tool_index);
                let target = line.arg(b'S').or_else(|| line.arg(b'R'));
                if let (Some(tool), Some(t)) = (tool, target.filter(|t| t.is_finite())) {
                    self.hotend[tool] = Some(t.max(0.0));
                }
            }
            (b'M', 140 | 190) => {
                if let Some(t) = line.arg(b'S').or_else(|| line.arg(b'R')) {
                    if t.is_finite() {
                        self.bed = Some(t.max(0.0));
                    }
                }
            }
            (b'M', 106) => {
                if let Some(fan) = fan_index(line) {
                    let speed = line.arg(b'S').unwrap_or(255.0);
                    if speed.is_finite() {
                        self.fans[fan] = Some(speed.clamp(0.0, 255.0).round() as u8);
                    }
                }
            }
            (b'M', 107) => {
                if let Some(fan) = fan_index(line) {
                    self.fans[fan] = Some(0);
                }
            }
            (b'M', 220) => {
                if let Some(s) = line.arg(b'S').filter(|s| s.is_finite() && *s > 0.0) {
                    self.speed_factor = Some(s);
                }
            }
            (b'M', 221) => {
                if let Some(s) = line.arg(b'S').filter(|s| s.is_finite() && *s > 0.0) {
                    self.flow_factor = Some(s);
                }
            }
            (b'M', 420) => {
                if let Some(s) = line.arg(b'S') {
                    self.leveling = s != 0.0;
                }
            }
            (b'T', tool) => {
                if let Some(tool) = usize::try_from(tool).ok().filter(|&t| t < MAX_TOOLS) {
                    self.tool = tool as u8;
                    self.tool_selected = true;
                }
            }
            _ => {}
        }
    }

    fn scale(&self) -> f64 {
        if self.inches {
            25.4
        } else {
            1.0
        }
    }

    fn absolute_axis(&self, axis: usize) -> bool {
        if axis == E {
            self.absolute_e.unwrap_or(self.absolute)
        } else {
            self.absolute
        }
    }

    /// `G0`–`G3`: the end point only (arcs end where their X/Y/Z/E say).
    fn motion(&mut self, line: &Line<'_>) {
        let scale = self.scale();
        let before = self.position;
        for w in line.args() {
            let Some(value) = w.number().filter(|v| v.is_finite()) else {
                continue;
            };
            match axis(w.letter) {
                // A repeated letter: the last one counts, relative to the start (as in Marlin).
                Some(a) if self.absolute_axis(a) => self.position[a] = value * scale,
                Some(a) => self.position[a] = before[a] + value * scale,
                None if w.letter == b'F' && value > 0.0 => self.feedrate = Some(value * scale),
                None => {}
            }
        }
        let de = self.position[E] - before[E];
        self.extruded += de;
        let moved_xy = self.position[X] != before[X] || self.position[Y] != before[Y];
        if de > 0.0 && (moved_xy || self.position[Z] != before[Z]) {
            self.layer_z = Some(self.position[Z]);
        }
    }

    /// `G28`: the named axes (all without any) go home, which also clears their `G92` offset.
    fn home(&mut self, line: &Line<'_>) {
        let named: Vec<usize> = [X, Y, Z]
            .into_iter()
            .filter(|&a| line.has_arg(b"XYZ"[a]))
            .collect();
        let axes: &[usize] = if named.is_empty() { &[X, Y, Z] } else { &named };
        for &a in axes {
            self.position[a] = 0.0;
            self.offset[a] = 0.0;
        }
    }

    /// `G92`: declares the named axes' current position (without words nothing, as in Marlin).
    fn set_position(&mut self, line: &Line<'_>) {
        let scale = self.scale();
        for w in line.args() {
            if let (Some(a), Some(v)) = (axis(w.letter), w.number()) {
                if v.is_finite() {
                    self.declare(a, v * scale);
                }
            }
        }
    }

    fn declare(&mut self, axis: usize, value: f64) {
        if axis != E {
            self.offset[axis] += value - self.position[axis];
        }
        self.position[axis] = value;
    }

    /// X, Y, Z, E in logical millimetres.
    pub fn position(&self) -> [f64; 4] {
        self.position
    }

    /// `G90` (true) or `G91` for X, Y and Z.
    pub fn absolute_positioning(&self) -> bool {
        self.absolute
    }

    /// Whether E values are positions (`M82`, or `G90` without `M83`).
    pub fn absolute_extrusion(&self) -> bool {
        self.absolute_e.unwrap_or(self.absolute)
    }

    /// `G20` in force.
    pub fn inches(&self) -> bool {
        self.inches
    }

    /// The modal feedrate in mm/min, once a move set one.
    pub fn feedrate_mm_min(&self) -> Option<f64> {
        self.feedrate
    }

    /// The active tool (`T`).
    pub fn tool(&self) -> u8 {
        self.tool
    }

    /// Target of hotend `tool` in °C, if a command set one (0 is off).
    pub fn hotend_target(&self, tool: u8) -> Option<f64> {
        self.hotend.get(usize::from(tool)).copied().flatten()
    }

    /// Bed target in °C, if a command set one.
    pub fn bed_target(&self) -> Option<f64> {
        self.bed
    }

    /// Speed of fan `index` (0–255), if a command set it.
    pub fn fan(&self, index: u8) -> Option<u8> {
        self.fans.get(usize::from(index)).copied().flatten()
    }

    /// `M220` speed factor in percent, if set.
    pub fn speed_factor(&self) -> Option<f64> {
        self.speed_factor
    }

    /// `M221` flow factor in percent, if set.
    pub fn flow_factor(&self) -> Option<f64> {
        self.flow_factor
    }

    /// Bed leveling switched on (`G29`, `M420 S1`).
    pub fn leveling(&self) -> bool {
        self.leveling
    }

    /// Firmware-retracted (`G10` without a following `G11`).
    pub fn retracted(&self) -> bool {
        self.retracted
    }

    /// Z of the last extruding move: the layer being printed.
    pub fn layer_z(&self) -> Option<f64> {
        self.layer_z
    }

    /// Net filament pushed by moves so far (mm; retractions count negative, `G92` resets do not
    /// count), the same sum as the analysis' `Filament::length_mm` without firmware retraction.
    pub fn extruded_mm(&self) -> f64 {
        self.extruded
    }

    /// Lines applied.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// G-code that brings a printer that lost power back to this state, ready for the file's
    /// next line. In order: start both heaters, wait for the bed; declare Z with `G92` (homing
    /// Z would drive the nozzle into the part) and lift; home X and Y only; restore `G92`
    /// offsets and leveling; wait for the hotends; select the tool; go to X/Y above the part,
    /// lower to Z, prime, declare E; then restore extrusion and positioning modes, fans,
    /// speed and flow factors, feedrate, firmware retraction and units. Newline-terminated
    /// lines, numbers in millimetres.
    pub fn resume_prelude(&self, options: &ResumeOptions) -> Result<String, ResumeError> {
        check("lift", options.lift_mm, 0.0, 100.0)?;
        check("prime length", options.prime_mm, 0.0, 200.0)?;
        check("z feedrate", options.z_feedrate_mm_min, 1.0, 100_000.0)?;
        check(
            "travel feedrate",
            options.travel_feedrate_mm_min,
            1.0,
            100_000.0,
        )?;
        for (a, name) in ["x", "y", "z", "e"].into_iter().enumerate() {
            check(name, self.position[a], -1e6, 1e6)?;
        }
        let tool = usize::from(self.tool);
        let hot = self.hotend[tool].unwrap_or(0.0);
        if hot <= 0.0 {
            return Err(ResumeError::HotendOff { tool: self.tool });
        }
        let heated: Vec<(usize, f64)> = self
            .hotend
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.filter(|&t| t > 0.0).map(|t| (i, t)))
            .collect();
        let [x, y, z, e] = self.position;
        let mut g = String::new();
        let mut line = |s: &str| {
            g.push_str(s);
            g.push('\n');
        };
        let bed = self.bed.filter(|&b| b > 0.0);
        if let Some(b) = bed {
            line(&format!("M140 S{}", num(b)));
        }
        for &(i, t) in &heated {
            line(&format!("M104 T{i} S{}", num(t)));
        }
        if let Some(b) = bed {
            line(&format!("M190 S{}", num(b)));
        }
        line("G21");
        line("G90");
        line(&format!("G92 Z{}", num(z)));
        line(&format!(
            "G1 Z{} F{}",
            num(z + options.lift_mm),
            num(options.z_feedrate_mm_min)
        ));
        line("G28 X Y");
        if self.offset[X] != 0.0 || self.offset[Y] != 0.0 {
            line(&format!(
                "G92 X{} Y{}",
                num(self.offset[X]),
                num(self.offset[Y])
            ));
        }
        if self.leveling {
            line("M420 S1");
        }
        for &(i, t) in &heated {
            line(&format!("M109 T{i} S{}", num(t)));
        }
        if self.tool_selected {
            line(&format!("T{tool}"));
        }
        line(&format!(
            "G1 X{} Y{} F{}",
            num(x),
            num(y),
            num(options.travel_feedrate_mm_min)
        ));
        line(&format!(
            "G1 Z{} F{}",
            num(z),
            num(options.z_feedrate_mm_min)
        ));
        if options.prime_mm > 0.0 {
            line("M83");
            line(&format!("G1 E{} F200", num(options.prime_mm)));
        }
        line(&format!("G92 E{}", num(e)));
        line(if self.absolute_extrusion() {
            "M82"
        } else {
            "M83"
        });
        if !self.absolute {
            // G91 would also make E relative; M82 after it keeps the file's extruder mode.
            line("G91");
            if self.absolute_extrusion() {
                line("M82");
            }
        }
        for (i, fan) in self.fans.iter().enumerate() {
            match fan {
                Some(0) => line(&format!("M107 P{i}")),
                Some(s) => line(&format!("M106 P{i} S{s}")),
                None => {}
            }
        }
        if let Some(s) = self.speed_factor {
            line(&format!("M220 S{}", num(s)));
        }
        if let Some(s) = self.flow_factor {
            line(&format!("M221 S{}", num(s)));
        }
        if let Some(f) = self.feedrate {
            line(&format!("G1 F{}", num(f)));
        }
        if self.retracted {
            line("G10");
        }
        if self.inches {
            line("G20");
        }
        Ok(g)
    }
}

/// Tunables of [`MachineState::resume_prelude`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResumeOptions {
    /// How far to lift above the declared Z before homing X and Y (mm).
    pub lift_mm: f64,
    /// Filament to extrude once hot, before the first file line (mm; 0 for none).
    pub prime_mm: f64,
    /// Feedrate of the Z moves (mm/min).
    pub z_feedrate_mm_min: f64,
    /// Feedrate of the move back above the part (mm/min).
    pub travel_feedrate_mm_min: f64,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions {
            lift_mm: 5.0,
            prime_mm: 0.0,
            z_feedrate_mm_min: 600.0,
            travel_feedrate_mm_min: 3000.0,
        }
    }
}

/// Why no resume prelude can be built.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The active tool's hotend was never heated: the print cannot have been extruding.
    #[error("hotend {tool} has no target temperature, nothing can be extruded")]
    HotendOff {
        /// The active tool.
        tool: u8,
    },
    /// A position or option is not finite or out of range.
    #[error("{name} is not a usable number: {value}")]
    BadValue {
        /// What was wrong.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

fn check(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), ResumeError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ResumeError::BadValue { name, value })
    }
}

/// Up to 5 decimals, no trailing zeros (`2.2`, `800`, `-0.0125`).
fn num(v: f64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{v:.5}");
    let trimmed = s.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// Index of an axis letter in `position`.
fn axis(letter: u8) -> Option<usize> {
    b"XYZE".iter().position(|&a| a == letter)
}

fn tool_index(t: f64) -> Option<usize> {
    (t >= 0.0 && t < MAX_TOOLS as f64 && t.fract() == 0.0).then_some(t as usize)
}

fn fan_index(line: &Line<'_>) -> Option<usize> {
    match line.arg(b'P') {
        None => Some(0),
        Some(p) => (p >= 0.0 && p < MAX_FANS as f64 && p.fract() == 0.0).then_some(p as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParseOptions, Parser};

    fn run(state: &mut MachineState, gcode: &str) {
        let mut parser = Parser::new(gcode.as_bytes(), ParseOptions::lenient());
        while let Some(line) = parser.next_line() {
            state.apply(&line.unwrap());
        }
    }

    fn state_of(gcode: &str) -> MachineState {
        let mut s = MachineState::new();
        run(&mut s, gcode);
        s
    }

    #[test]
    fn modes_offsets_and_units() {
        let s = state_of(
            "G91\nG1 X1 Y2 E1\nG1 X1 E1\nM82\nG1 E5\nG90\nG92 X100 E0\nG1 X101\nG20\nG1 Y1 F10\n",
        );
        assert_eq!(s.position(), [101.0, 25.4, 0.0, 0.0]);
        assert!(s.absolute_positioning() && s.absolute_extrusion() && s.inches());
        assert_eq!(s.feedrate_mm_min(), Some(254.0));
        // E: +1, +1, then absolute 5 (+3): 5 in total.
        assert_eq!(s.extruded_mm(), 5.0);
        let s = state_of("M83\nG91\nG90\n");
        assert!(s.absolute_extrusion(), "G90 clears M83 as in Marlin");
    }

    #[test]
    fn heaters_fans_and_tools() {
        let s = state_of("M104 S200\nT1\nM109 S210\nM104 T0 S190\nM190 R55\nM106 S128\nM106 P1\nM107 P1\nM221 S95\nM420 S1\nG10\n");
        assert_eq!(s.hotend_target(0), Some(190.0));
        assert_eq!(s.hotend_target(1), Some(210.0));
        assert_eq!(s.bed_target(), Some(55.0));
        assert_eq!((s.fan(0), s.fan(1), s.fan(2)), (Some(128), Some(0), None));
        assert_eq!(
            (s.tool(), s.flow_factor(), s.leveling()),
            (1, Some(95.0), true)
        );
        assert!(s.retracted());
        let s = state_of("M104 T9 S200\nT12\nM106 P7 S1\n");
        assert_eq!((s.tool(), s.hotend_target(0), s.fan(0)), (0, None, None));
    }

    #[test]
    fn homing_clears_offsets_and_layer_follows_extrusion() {
        let s = state_of("G92 X5 Y5 Z5\nG28 X\nG1 Z0.3 E1\nG1 X3 E2\nG1 Z0.6\n");
        assert_eq!(s.position(), [3.0, 5.0, 0.6, 2.0]);
        assert_eq!(s.offset, [0.0, 5.0, 5.0]);
        assert_eq!(s.layer_z(), Some(0.3), "travel to Z0.6 printed nothing yet");
    }

    #[test]
    fn prelude_never_homes_z_and_waits_before_extruding() {
        let s = state_of(
            "M140 S60\nM104 S210\nG28\nM83\nG1 Z0.4 F600\nG1 X20 Y30 E2 F1800\nM106 S200\n",
        );
        let p = s.resume_prelude(&ResumeOptions::default()).unwrap();
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(
            lines,
            [
                "M140 S60",
                "M104 T0 S210",
                "M190 S60",
                "G21",
                "G90",
                "G92 Z0.4",
                "G1 Z5.4 F600",
                "G28 X Y",
                "M109 T0 S210",
                "G1 X20 Y30 F3000",
                "G1 Z0.4 F600",
                "G92 E2",
                "M83",
                "M106 P0 S200",
                "G1 F1800",
            ]
        );
    }

    #[test]
    fn prelude_refuses_a_cold_hotend_and_bad_numbers() {
        let s = state_of("G1 X1\n");
        assert_eq!(
            s.resume_prelude(&ResumeOptions::default()),
            Err(ResumeError::HotendOff { tool: 0 })
        );
        let s = state_of("M104 S200\n");
        let bad = ResumeOptions {
            lift_mm: f64::NAN,
            ..ResumeOptions::default()
        };
        assert!(matches!(
            s.resume_prelude(&bad),
            Err(ResumeError::BadValue { name: "lift", .. })
        ));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(2.2), "2.2");
        assert_eq!(num(800.0), "800");
        assert_eq!(num(-0.0125), "-0.0125");
        assert_eq!(num(-0.000001), "0");
    }
}

//! Building the G-code that resumes an interrupted print (pure; never run automatically).
//!
//! After the host died the printer may have lost power: the firmware no longer knows where
//! the head is, the heaters may be off, and homing Z would drive the nozzle into the part.
//! The preamble therefore heats the bed then the nozzle, *declares* Z with `G92` instead of
//! homing it, lifts clear, homes X and Y only, lowers back to the layer height, sets E and
//! restores the file's modes and fan. The stores hand a plan out only from
//! [`crate::Store::confirm_resume`], which a person's explicit confirmation calls.

use thiserror::Error;

use crate::progress::{ExtrusionMode, Positioning, Progress};

/// Where in the file to pick up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeFrom {
    /// The first line of the layer the print was in (recommended: the printer's planner
    /// holds a few moves past the last `ok`, so the exact stop point is uncertain).
    LayerStart,
    /// Just after the last line the printer acknowledged.
    LastConfirmedLine,
}

/// Tunables of the preamble.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeOptions {
    /// How far to lift the nozzle above the declared Z before homing X/Y (mm).
    pub lift_mm: f64,
    /// Filament to extrude after heating, before the first move (mm; 0 for none).
    pub prime_mm: f64,
    /// Feedrate for the Z moves (mm/min).
    pub z_feedrate_mm_min: f64,
}

impl Default for ResumeOptions {
    fn default() -> ResumeOptions {
        ResumeOptions {
            lift_mm: 5.0,
            prime_mm: 0.0,
            z_feedrate_mm_min: 600.0,
        }
    }
}

/// The G-code to send before streaming the file again, and where to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePlan {
    /// Newline-terminated preamble lines.
    pub preamble: String,
    /// 1-based number of the first file line to send after the preamble.
    pub start_line: u64,
    /// Byte offset of that line.
    pub start_byte_offset: u64,
    /// The height printing continues at (mm).
    pub z: f64,
    /// The layer printing continues in, if the file marks layers.
    pub layer: Option<u32>,
}

/// Why no plan can be built from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// A layer start was requested but the file reported no layer.
    #[error("the progress record has no layer mark, so it cannot resume from a layer start")]
    NoLayerMark,
    /// A number in the record or options is not finite or out of range.
    #[error("{0} in the resume record is not a usable number")]
    BadValue(&'static str),
    /// The hotend target was off: resuming would extrude cold.
    #[error("the recorded hotend target is not above 0 °C, nothing can be extruded")]
    HotendOff,
}

/// Builds the resume preamble for `progress`.
///
/// ```
/// use easyprint_queue::{resume_plan, ExtrusionMode, LayerMark, Positioning, Progress,
///     ResumeFrom, ResumeOptions};
/// let progress = Progress {
///     line: 5000, byte_offset: 120_000, z: 2.2, e: 812.5, fan: 255,
///     layer: Some(LayerMark { number: 10, line: 4800, byte_offset: 115_000, z: 2.2, e: 800.0 }),
///     extrusion: ExtrusionMode::Absolute, positioning: Positioning::Absolute,
///     hotend_c: 205.0, bed_c: 60.0, feedrate_mm_min: Some(1800.0),
/// };
/// let plan = resume_plan(&progress, ResumeFrom::LayerStart, &ResumeOptions::default()).unwrap();
/// assert_eq!(plan.start_byte_offset, 115_000);
/// assert!(plan.preamble.lines().any(|l| l.starts_with("G92 Z2.2 ")));
/// assert!(plan.preamble.contains("G28 X Y\n"));
/// assert!(plan.preamble.contains("G92 E800\n"));
/// ```
pub fn resume_plan(
    progress: &Progress,
    from: ResumeFrom,
    options: &ResumeOptions,
) -> Result<ResumePlan, ResumeError> {
    let (start_line, start_byte_offset, z, e, layer) = match from {
        ResumeFrom::LayerStart => {
            let mark = progress.layer.ok_or(ResumeError::NoLayerMark)?;
            (
                mark.line,
                mark.byte_offset,
                mark.z,
                mark.e,
                Some(mark.number),
            )
        }
        ResumeFrom::LastConfirmedLine => (
            progress.line.saturating_add(1),
            progress.byte_offset,
            progress.z,
            progress.e,
            progress.layer.map(|l| l.number),
        ),
    };
    check("z", z, 0.0, 10_000.0)?;
    check("e", e, -1e9, 1e9)?;
    check("bed temperature", progress.bed_c, 0.0, 200.0)?;
    check("hotend temperature", progress.hotend_c, -1.0, 500.0)?;
    check("lift", options.lift_mm, 0.0, 100.0)?;
    check("prime length", options.prime_mm, 0.0, 200.0)?;
    check("z feedrate", options.z_feedrate_mm_min, 1.0, 100_000.0)?;
    if progress.hotend_c <= 0.0 {
        return Err(ResumeError::HotendOff);
    }
    if let Some(f) = progress.feedrate_mm_min {
        check("feedrate", f, 1.0, 1_000_000.0)?;
    }

    let mut g = String::new();
    let num = fmt_num;
    let mut line = |s: String| {
        g.push_str(&s);
        g.push('\n');
    };
    line(format!(
        "; easyprint resume: line {start_line}, byte {start_byte_offset}, z {}{}",
        num(z),
        layer.map(|l| format!(", layer {l}")).unwrap_or_default()
    ));
    line("M140 S".to_string() + &num(progress.bed_c));
    line("M104 S".to_string() + &num(progress.hotend_c));
    if progress.bed_c > 0.0 {
        line(format!(
            "M190 S{} ; bed first, for adhesion",
            num(progress.bed_c)
        ));
    }
    line(format!(
        "G92 Z{} ; declare Z: homing Z would hit the part",
        num(z)
    ));
    line("G90".into());
    line(format!(
        "G1 Z{} F{}",
        num(z + options.lift_mm),
        num(options.z_feedrate_mm_min)
    ));
    line("G28 X Y".into());
    line(format!("M109 S{}", num(progress.hotend_c)));
    line(format!(
        "G1 Z{} F{}",
        num(z),
        num(options.z_feedrate_mm_min)
    ));
    if options.prime_mm > 0.0 {
        line("M83".into());
        line(format!("G1 E{} F200", num(options.prime_mm)));
    }
    match progress.extrusion {
        ExtrusionMode::Absolute => {
            line("M82".into());
            line(format!("G92 E{}", num(e)));
        }
        ExtrusionMode::Relative => {
            line("M83".into());
            line("G92 E0".into());
        }
    }
    if progress.positioning == Positioning::Relative {
        line("G91".into());
    }
    if progress.fan == 0 {
        line("M107".into());
    } else {
        line(format!("M106 S{}", progress.fan));
    }
    if let Some(f) = progress.feedrate_mm_min {
        line(format!("G1 F{}", num(f)));
    }
    Ok(ResumePlan {
        preamble: g,
        start_line,
        start_byte_offset,
        z,
        layer,
    })
}

fn check(name: &'static str, v: f64, min: f64, max: f64) -> Result<(), ResumeError> {
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(ResumeError::BadValue(name))
    }
}

/// Up to 4 decimals, no trailing zeros (`2.2`, `800`, `0.0125`).
fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let trimmed = s.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::LayerMark;

    fn record(extrusion: ExtrusionMode) -> Progress {
        Progress {
            line: 5000,
            byte_offset: 120_000,
            layer: Some(LayerMark {
                number: 10,
                line: 4800,
                byte_offset: 115_000,
                z: 2.2,
                e: 800.0,
            }),
            z: 2.2,
            e: 812.5,
            extrusion,
            positioning: Positioning::Absolute,
            hotend_c: 205.0,
            bed_c: 60.0,
            fan: 0,
            feedrate_mm_min: None,
        }
    }

    fn commands(plan: &ResumePlan) -> Vec<&str> {
        plan.preamble
            .lines()
            .map(|l| l.split(';').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn layer_start_preamble_in_safe_order() {
        let plan = resume_plan(
            &record(ExtrusionMode::Absolute),
            ResumeFrom::LayerStart,
            &ResumeOptions::default(),
        )
        .unwrap();
        assert_eq!(
            commands(&plan),
            [
                "M140 S60",
                "M104 S205",
                "M190 S60",
                "G92 Z2.2",
                "G90",
                "G1 Z7.2 F600",
                "G28 X Y",
                "M109 S205",
                "G1 Z2.2 F600",
                "M82",
                "G92 E800",
                "M107"
            ]
        );
        assert_eq!((plan.start_line, plan.start_byte_offset), (4800, 115_000));
        assert_eq!(plan.layer, Some(10));
        // Never homes Z, never homes everything.
        assert!(!commands(&plan)
            .iter()
            .any(|c| *c == "G28" || c.contains("G28 Z")));
    }

    #[test]
    fn last_line_relative_extrusion() {
        let mut p = record(ExtrusionMode::Relative);
        p.fan = 128;
        p.feedrate_mm_min = Some(1500.0);
        p.positioning = Positioning::Relative;
        let plan =
            resume_plan(&p, ResumeFrom::LastConfirmedLine, &ResumeOptions::default()).unwrap();
        let cmds = commands(&plan);
        assert_eq!((plan.start_line, plan.start_byte_offset), (5001, 120_000));
        assert!(cmds.ends_with(&["M83", "G92 E0", "G91", "M106 S128", "G1 F1500"]));
    }

    #[test]
    fn refuses_bad_records() {
        let mut p = record(ExtrusionMode::Absolute);
        p.layer = None;
        let opts = ResumeOptions::default();
        assert_eq!(
            resume_plan(&p, ResumeFrom::LayerStart, &opts),
            Err(ResumeError::NoLayerMark)
        );
        p.z = f64::NAN;
        assert_eq!(
            resume_plan(&p, ResumeFrom::LastConfirmedLine, &opts),
            Err(ResumeError::BadValue("z"))
        );
        p.z = 1.0;
        p.hotend_c = 0.0;
        assert_eq!(
            resume_plan(&p, ResumeFrom::LastConfirmedLine, &opts),
            Err(ResumeError::HotendOff)
        );
    }

    #[test]
    fn extreme_line_numbers_do_not_overflow() {
        // Found by the fuzz target: a record read back from a damaged store.
        let mut p = record(ExtrusionMode::Absolute);
        p.line = u64::MAX;
        let plan =
            resume_plan(&p, ResumeFrom::LastConfirmedLine, &ResumeOptions::default()).unwrap();
        assert_eq!(plan.start_line, u64::MAX);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_num(2.2), "2.2");
        assert_eq!(fmt_num(800.0), "800");
        assert_eq!(fmt_num(0.0125), "0.0125");
        assert_eq!(fmt_num(-0.00001), "0");
    }
}

//! Where an interrupted print continues (pure; never acted on automatically).
//!
//! The queue stores the checkpoint ([`Progress`]) and answers *where* to pick up; it does not
//! write G-code. The prelude that brings a power-cycled printer back (heat, declare Z instead
//! of homing it onto the part, home X/Y, restore E, modes, fan and feedrate) is built by
//! `easyprint_gcode::machine_state::MachineState::resume_prelude` from the machine state the
//! file leaves at [`ResumePoint::start_byte_offset`]: replaying the file is exact where a
//! checkpoint taken every few seconds is not, and one property-tested implementation serves
//! every host. The stores hand a point out only from [`crate::Store::confirm_resume`], which a
//! person's explicit confirmation calls.

use thiserror::Error;

use crate::progress::Progress;

/// Where in the file to pick up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeFrom {
    /// The first line of the layer the print was in (recommended: the printer's planner
    /// holds a few moves past the last `ok`, so the exact stop point is uncertain).
    LayerStart,
    /// Just after the last line the printer acknowledged.
    LastConfirmedLine,
}

/// Where a resumed print continues, and the checkpoint it was computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResumePoint {
    /// 1-based number of the first file line to send after the prelude.
    pub start_line: u64,
    /// Byte offset of that line.
    pub start_byte_offset: u64,
    /// The height printing continues at, as recorded (mm).
    pub z: f64,
    /// E at that point, as recorded (mm, in the recorded extrusion mode).
    pub e: f64,
    /// The layer printing continues in, if the file marks layers.
    pub layer: Option<u32>,
    /// The checkpoint itself (temperatures, fan, modes), for display or for a host that
    /// cannot replay the file.
    pub checkpoint: Progress,
}

/// Why no resume point can be taken from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// A layer start was requested but the file reported no layer.
    #[error("the progress record has no layer mark, so it cannot resume from a layer start")]
    NoLayerMark,
    /// A number in the record is not finite or out of range (a damaged record).
    #[error("{0} in the resume record is not a usable number")]
    BadValue(&'static str),
}

/// Where to continue `progress` from.
///
/// ```
/// use easyprint_queue::{resume_point, ExtrusionMode, LayerMark, Positioning, Progress,
///     ResumeFrom};
/// let progress = Progress {
///     line: 5000, byte_offset: 120_000, z: 2.2, e: 812.5, fan: 255,
///     layer: Some(LayerMark { number: 10, line: 4800, byte_offset: 115_000, z: 2.2, e: 800.0 }),
///     extrusion: ExtrusionMode::Absolute, positioning: Positioning::Absolute,
///     hotend_c: 205.0, bed_c: 60.0, feedrate_mm_min: Some(1800.0),
/// };
/// let point = resume_point(&progress, ResumeFrom::LayerStart).unwrap();
/// assert_eq!((point.start_line, point.start_byte_offset), (4800, 115_000));
/// let point = resume_point(&progress, ResumeFrom::LastConfirmedLine).unwrap();
/// assert_eq!((point.start_line, point.start_byte_offset), (5001, 120_000));
/// // The prelude comes from easyprint-gcode: replay the file's first `start_byte_offset`
/// // bytes into a `MachineState`, then call its `resume_prelude`.
/// ```
pub fn resume_point(progress: &Progress, from: ResumeFrom) -> Result<ResumePoint, ResumeError> {
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
    Ok(ResumePoint {
        start_line,
        start_byte_offset,
        z,
        e,
        layer,
        checkpoint: *progress,
    })
}

fn check(name: &'static str, v: f64, min: f64, max: f64) -> Result<(), ResumeError> {
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(ResumeError::BadValue(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{ExtrusionMode, LayerMark, Positioning};

    fn record() -> Progress {
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
            z: 2.4,
            e: 812.5,
            extrusion: ExtrusionMode::Absolute,
            positioning: Positioning::Absolute,
            hotend_c: 205.0,
            bed_c: 60.0,
            fan: 0,
            feedrate_mm_min: None,
        }
    }

    #[test]
    fn layer_start_takes_the_layer_mark() {
        let point = resume_point(&record(), ResumeFrom::LayerStart).unwrap();
        assert_eq!((point.start_line, point.start_byte_offset), (4800, 115_000));
        assert_eq!((point.z, point.e, point.layer), (2.2, 800.0, Some(10)));
        assert_eq!(point.checkpoint, record());
    }

    #[test]
    fn last_line_continues_after_the_acknowledged_line() {
        let point = resume_point(&record(), ResumeFrom::LastConfirmedLine).unwrap();
        assert_eq!((point.start_line, point.start_byte_offset), (5001, 120_000));
        assert_eq!((point.z, point.e, point.layer), (2.4, 812.5, Some(10)));
    }

    #[test]
    fn refuses_bad_records() {
        let mut p = record();
        p.layer = None;
        assert_eq!(
            resume_point(&p, ResumeFrom::LayerStart),
            Err(ResumeError::NoLayerMark)
        );
        p.z = f64::NAN;
        assert_eq!(
            resume_point(&p, ResumeFrom::LastConfirmedLine),
            Err(ResumeError::BadValue("z"))
        );
        p.z = 1.0;
        p.e = f64::INFINITY;
        assert_eq!(
            resume_point(&p, ResumeFrom::LastConfirmedLine),
            Err(ResumeError::BadValue("e"))
        );
    }

    #[test]
    fn extreme_line_numbers_do_not_overflow() {
        // Found by the fuzz target: a record read back from a damaged store.
        let mut p = record();
        p.line = u64::MAX;
        let point = resume_point(&p, ResumeFrom::LastConfirmedLine).unwrap();
        assert_eq!(point.start_line, u64::MAX);
    }
}

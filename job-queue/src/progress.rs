//! Print progress as confirmed by the printer, and the policy deciding which reports are
//! worth a durable write.
//!
//! A host streams hundreds of lines a second; writing each acknowledgement to disk would
//! cost one fsync per line. [`ProgressCheckpointer`] coalesces: it persists a report when a
//! new layer starts or when `min_interval` has passed, and keeps only the latest report in
//! memory otherwise (bounded memory, bounded write rate: at most `1/min_interval + layers/s`
//! commits per printer). After a crash the resume record is at most one interval old, and a
//! resume from the start of the recorded layer never needs more.

use std::time::Duration;

use crate::model::Timestamp;

/// Absolute (`M82`) or relative (`M83`) extrusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExtrusionMode {
    /// `M82`: E values are positions.
    #[default]
    Absolute,
    /// `M83`: E values are distances.
    Relative,
}

/// Absolute (`G90`) or relative (`G91`) XYZ positioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Positioning {
    /// `G90`.
    #[default]
    Absolute,
    /// `G91`.
    Relative,
}

/// Where a layer began in the file and the machine state at that point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerMark {
    /// Layer number as the slicer counts it (`;LAYER:N`).
    pub number: u32,
    /// 1-based line number of the layer's first line.
    pub line: u64,
    /// Byte offset of the layer's first line.
    pub byte_offset: u64,
    /// Nozzle height for this layer (mm).
    pub z: f64,
    /// E position when the layer began (mm; 0 in relative mode).
    pub e: f64,
}

/// The latest progress the printer confirmed, and everything a resume needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based line number of the last line the printer acknowledged (`ok`).
    pub line: u64,
    /// Byte offset just past that line.
    pub byte_offset: u64,
    /// The layer that line belongs to, if the file marks layers.
    pub layer: Option<LayerMark>,
    /// Z after that line (mm).
    pub z: f64,
    /// E after that line (mm, in the current extrusion mode).
    pub e: f64,
    /// Extrusion mode in force.
    pub extrusion: ExtrusionMode,
    /// Positioning mode in force.
    pub positioning: Positioning,
    /// Hotend target temperature (°C).
    pub hotend_c: f64,
    /// Bed target temperature (°C).
    pub bed_c: f64,
    /// Part fan speed, 0..=255 (`M106 S`).
    pub fan: u8,
    /// Last commanded feedrate (mm/min), if known.
    pub feedrate_mm_min: Option<f64>,
}

/// Decides which progress reports to persist (see the module docs).
#[derive(Debug, Clone)]
pub struct ProgressCheckpointer {
    min_interval: Duration,
    last_saved: Option<(Timestamp, Option<u32>)>,
    pending: Option<Progress>,
}

impl ProgressCheckpointer {
    /// Persist at most every `min_interval`, plus once per new layer.
    pub fn new(min_interval: Duration) -> ProgressCheckpointer {
        ProgressCheckpointer {
            min_interval,
            last_saved: None,
            pending: None,
        }
    }

    /// Offers the newest report; returns it if it should be written now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use easyprint_queue::{Progress, ProgressCheckpointer, Timestamp};
    /// # let p = |line| Progress { line, byte_offset: line * 10, layer: None, z: 0.2, e: 0.0,
    /// #   extrusion: Default::default(), positioning: Default::default(), hotend_c: 200.0,
    /// #   bed_c: 60.0, fan: 0, feedrate_mm_min: None };
    /// let mut c = ProgressCheckpointer::new(Duration::from_secs(5));
    /// assert!(c.offer(p(1), Timestamp(0)).is_some()); // first report: write
    /// assert!(c.offer(p(2), Timestamp(1_000)).is_none()); // too soon: kept in memory
    /// assert_eq!(c.offer(p(3), Timestamp(5_000)).map(|p| p.line), Some(3));
    /// ```
    pub fn offer(&mut self, progress: Progress, now: Timestamp) -> Option<Progress> {
        let layer = progress.layer.map(|l| l.number);
        let due = match self.last_saved {
            None => true,
            Some((at, saved_layer)) => {
                layer != saved_layer
                    || u128::from(now.millis_since(at)) >= self.min_interval.as_millis()
            }
        };
        if due {
            self.last_saved = Some((now, layer));
            self.pending = None;
            Some(progress)
        } else {
            self.pending = Some(progress);
            None
        }
    }

    /// The report held back since the last write, if any (write it when pausing or stopping).
    pub fn take_pending(&mut self, now: Timestamp) -> Option<Progress> {
        let pending = self.pending.take()?;
        self.last_saved = Some((now, pending.layer.map(|l| l.number)));
        Some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(line: u64, layer: u32) -> Progress {
        Progress {
            line,
            byte_offset: line * 20,
            layer: Some(LayerMark {
                number: layer,
                line: 1,
                byte_offset: 0,
                z: 0.2,
                e: 0.0,
            }),
            z: 0.2,
            e: 1.0,
            extrusion: ExtrusionMode::Absolute,
            positioning: Positioning::Absolute,
            hotend_c: 200.0,
            bed_c: 60.0,
            fan: 255,
            feedrate_mm_min: None,
        }
    }

    #[test]
    fn writes_on_new_layer_and_interval_only() {
        let mut c = ProgressCheckpointer::new(Duration::from_secs(10));
        let mut written = Vec::new();
        // 300 lines/s for 60 s, a new layer every 1000 lines.
        for i in 0..18_000u64 {
            let now = Timestamp(i64::try_from(i * 1000 / 300).unwrap());
            if let Some(p) = c.offer(report(i, u32::try_from(i / 1000).unwrap()), now) {
                written.push(p.line);
            }
        }
        // A layer takes 3.3 s, less than the interval: only the 18 layer starts are written.
        assert_eq!(written.len(), 18, "{written:?}");
        assert!(written.iter().all(|l| l % 1000 == 0));
        assert_eq!(
            c.take_pending(Timestamp(60_000)).map(|p| p.line),
            Some(17_999)
        );
        assert_eq!(c.take_pending(Timestamp(60_000)), None);
    }
}

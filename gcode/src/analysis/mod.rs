//! One-pass analysis: layers, bounding boxes, filament, time estimate with per-line time offsets,
//! slicer metadata and thumbnails.
//!
//! Entry points: [`analyze`] for a buffer (or memory-mapped file), [`analyze_reader`] for any
//! `Read`, and [`Analyzer`] to feed chunks as they arrive (e.g. during an upload). All three give
//! the same [`Analysis`] for the same bytes, and streaming memory stays bounded by the line limit,
//! the planner window and the per-layer/per-checkpoint records.
//!
//! ```
//! use easyprint_gcode::analysis::{analyze, AnalysisConfig};
//! let gcode = b"G21\nG90\nM82\nG28\nG1 Z0.2 F600\n;LAYER:0\nG1 X10 Y10 F3000\nG1 X20 E1\nG1 Y20 E2\n\
//!               G1 Z0.4\n;LAYER:1\nG1 X10 E3\n";
//! let a = analyze(gcode, &AnalysisConfig::default());
//! assert_eq!(a.layers.len(), 2);
//! assert_eq!(a.layers[1].z, 0.4);
//! assert_eq!(a.filament[0].length_mm, 3.0);
//! let bbox = a.extrusion_bbox.unwrap();
//! assert_eq!((bbox.min[0], bbox.max[0], bbox.max[1]), (10.0, 20.0, 20.0));
//! assert!(a.estimated_time > 0.0);
//! // Remaining time from the first layer's start, e.g. for a host's ETA.
//! let eta = a.remaining_time_at_offset(a.layers[0].offset);
//! assert!(eta > 0.0 && eta <= a.estimated_time);
//! ```

mod config;
mod float;
mod machine;
mod metadata;
mod move_words;
mod planner;
mod timeline;

use std::io::Read;
use std::ops::ControlFlow;

pub use config::{AnalysisConfig, FirmwareRetract, MachineLimits};
pub use metadata::{SlicerMetadata, Thumbnail, ThumbnailFormat};
pub use timeline::Checkpoint;

use crate::{LineParser, LineSplitter, Mode, ParseError, ParseOptions, Parser};

/// An axis-aligned box, mm.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundingBox {
    /// Smallest X, Y, Z.
    pub min: [f64; 3],
    /// Largest X, Y, Z.
    pub max: [f64; 3],
}

impl BoundingBox {
    #[inline]
    fn add(&mut self, p: [f64; 3]) {
        // Points are finite (moves with a non-finite delta are skipped), so the one-instruction
        // minimum and maximum give what `f64::min`/`max` would.
        self.min = [
            float::min(self.min[0], p[0]),
            float::min(self.min[1], p[1]),
            float::min(self.min[2], p[2]),
        ];
        self.max = [
            float::max(self.max[0], p[0]),
            float::max(self.max[1], p[1]),
            float::max(self.max[2], p[2]),
        ];
    }

    /// Size along X, Y, Z.
    pub fn size(&self) -> [f64; 3] {
        [
            self.max[0] - self.min[0],
            self.max[1] - self.min[1],
            self.max[2] - self.min[2],
        ]
    }
}

/// A layer: a run of extrusion at one Z.
///
/// A layer starts at the first layer marker comment (`;LAYER:`, `;LAYER_CHANGE`) or Z change after
/// the previous layer's last extrusion, so resuming from `offset` re-runs the Z move.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Layer {
    /// Z of its extrusions, mm.
    pub z: f64,
    /// Byte offset where the layer starts.
    pub offset: u64,
    /// 1-based line where the layer starts.
    pub line: u64,
    /// Estimated seconds from the start of the print to the start of this layer.
    pub start_time: f64,
}

/// Filament pushed by one extruder.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Filament {
    /// Net length, mm: every extruder move, retractions included, start G-code purge lines too.
    pub length_mm: f64,
    /// Length extruded by moves under a slicer feature tag (`;TYPE:` other than `Custom`), mm:
    /// the printed object without start G-code, which is what slicers report as filament used.
    pub printed_mm: f64,
    /// Volume, mm³ (from [`AnalysisConfig::filament_diameter`]).
    pub volume_mm3: f64,
}

/// Counts of what the file contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counts {
    /// Lines with a command (including extended commands).
    pub commands: u64,
    /// Linear moves (`G0`/`G1`).
    pub moves: u64,
    /// Arcs (`G2`/`G3`).
    pub arcs: u64,
    /// Tool changes (`T`).
    pub tool_changes: u64,
    /// Retractions: `G10` and extruder-only moves backwards.
    pub retractions: u64,
    /// Lines whose only content is a comment.
    pub comment_lines: u64,
}

/// Something the analysis could not use, with where it was.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Diagnostic {
    /// A line did not parse (it was skipped).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An embedded thumbnail could not be decoded or was too large; it was dropped.
    #[error("line {line}: thumbnail dropped: {reason}")]
    Thumbnail {
        /// 1-based line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// An arc without a usable centre or radius; it was treated as a straight move.
    #[error("line {line}: arc has no usable centre or radius, treated as a straight move")]
    InvalidArc {
        /// 1-based line.
        line: u64,
    },
    /// A tool number beyond the supported range; the tool change was ignored.
    #[error("line {line}: tool {tool} out of range (at most {max})")]
    ToolOutOfRange {
        /// 1-based line.
        line: u64,
        /// The tool number.
        tool: u32,
        /// The largest supported tool number.
        max: u32,
    },
}

/// The result of an analysis. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Analysis {
    /// Bytes analysed.
    pub bytes: u64,
    /// Lines analysed.
    pub lines: u64,
    /// Layers in print order (at most [`AnalysisConfig::max_layers`]). When the file has slicer
    /// feature tags (`;TYPE:`), layers whose only extrusion is untagged (start G-code purge
    /// lines) are left out, so the count matches the slicer's.
    pub layers: Vec<Layer>,
    /// All layers seen, including any beyond the storage limit.
    pub layer_count: u64,
    /// Bounding box of all extruding moves (including purge lines in start G-code).
    pub extrusion_bbox: Option<BoundingBox>,
    /// Bounding box of extruding moves under a slicer feature tag (`;TYPE:` other than `Custom`):
    /// the printed object(s) without start G-code purge lines, like Cura's `;MINX:` header.
    pub print_bbox: Option<BoundingBox>,
    /// Filament per extruder, indexed by tool number.
    pub filament: Vec<Filament>,
    /// Estimated print time, seconds.
    pub estimated_time: f64,
    /// Time offsets every [`AnalysisConfig::checkpoint_every_lines`] lines, for
    /// [`remaining_time_at_line`](Self::remaining_time_at_line).
    pub checkpoints: Vec<Checkpoint>,
    /// What the file contains.
    pub counts: Counts,
    /// Slicer metadata from comments.
    pub metadata: SlicerMetadata,
    /// Embedded thumbnails, decoded.
    pub thumbnails: Vec<Thumbnail>,
    /// The first [`AnalysisConfig::max_diagnostics`] problems.
    pub diagnostics: Vec<Diagnostic>,
    /// All problems, including those not stored.
    pub diagnostic_count: u64,
    /// The limits in effect at the end of the file (after any `M201`/`M203`/`M204`/`M205`).
    pub final_limits: MachineLimits,
}

impl Analysis {
    /// Estimated seconds from the start of the print to the start of 1-based `line`.
    pub fn time_at_line(&self, line: u64) -> f64 {
        timeline::time_at(&self.checkpoints, self.end(), |c| c.line, line)
    }

    /// Estimated seconds from the start of `line` to the end of the print.
    pub fn remaining_time_at_line(&self, line: u64) -> f64 {
        (self.estimated_time - self.time_at_line(line)).max(0.0)
    }

    /// Estimated seconds from the start of the print to the line containing byte `offset`.
    pub fn time_at_offset(&self, offset: u64) -> f64 {
        timeline::time_at(&self.checkpoints, self.end(), |c| c.offset, offset)
    }

    /// Estimated seconds from byte `offset` to the end of the print (a host's ETA while streaming).
    pub fn remaining_time_at_offset(&self, offset: u64) -> f64 {
        (self.estimated_time - self.time_at_offset(offset)).max(0.0)
    }

    /// Index of the layer containing byte `offset` (`None` before the first layer).
    pub fn layer_at_offset(&self, offset: u64) -> Option<usize> {
        self.layers
            .partition_point(|l| l.offset <= offset)
            .checked_sub(1)
    }

    fn end(&self) -> (u64, u64, f64) {
        (self.lines, self.bytes, self.estimated_time)
    }
}

/// Analyses a whole buffer. Never fails: bad lines become [`Analysis::diagnostics`].
pub fn analyze(gcode: &[u8], config: &AnalysisConfig) -> Analysis {
    let mut analyzer = Analyzer::new(config.clone());
    let mut parser = Parser::new(gcode, parse_options(config));
    analyzer.machine.lines(&mut parser, &analyzer.config);
    analyzer.bytes = gcode.len() as u64;
    analyzer.finish()
}

/// The analysis parses leniently: a bad line is a diagnostic, not the end.
fn parse_options(config: &AnalysisConfig) -> ParseOptions {
    ParseOptions {
        mode: Mode::Lenient,
        max_line_len: config.max_line_len,
    }
}

/// Analyses everything a reader yields, in chunks, with bounded memory.
pub fn analyze_reader(mut reader: impl Read, config: &AnalysisConfig) -> std::io::Result<Analysis> {
    let mut analyzer = Analyzer::new(config.clone());
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => analyzer.feed(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(analyzer.finish())
}

/// Streaming analysis: [`feed`](Self::feed) chunks of any size, then [`finish`](Self::finish).
///
/// ```
/// use easyprint_gcode::analysis::{analyze, Analyzer, AnalysisConfig};
/// let gcode = b"G1 Z0.2\nG1 X10 E1 F1200\nG1 Y10 E2\n";
/// let mut analyzer = Analyzer::new(AnalysisConfig::default());
/// for chunk in gcode.chunks(5) {
///     analyzer.feed(chunk);
/// }
/// assert_eq!(analyzer.finish(), analyze(gcode, &AnalysisConfig::default()));
/// ```
#[derive(Debug)]
pub struct Analyzer {
    config: AnalysisConfig,
    splitter: LineSplitter,
    parser: LineParser,
    bytes: u64,
    machine: machine::Machine,
}

impl Analyzer {
    /// A fresh analyzer.
    pub fn new(config: AnalysisConfig) -> Self {
        Analyzer {
            splitter: LineSplitter::new(config.max_line_len.min(u32::MAX as usize)),
            parser: LineParser::new(Mode::Lenient),
            bytes: 0,
            machine: machine::Machine::new(&config),
            config,
        }
    }

    /// Feeds the next chunk of the file.
    ///
    /// The whole lines inside the chunk are parsed in place, as [`analyze`] does; only the lines
    /// that straddle chunk boundaries are assembled in the splitter's buffer.
    pub fn feed(&mut self, chunk: &[u8]) {
        let Analyzer {
            splitter,
            parser,
            machine,
            config,
            ..
        } = self;
        let mut whole_lines = None;
        if let Some(first) = memchr::memchr(b'\n', chunk) {
            // Up to the first newline: completes the line carried over from the last chunk.
            let _ = splitter.push(&chunk[..=first], |raw| {
                machine.line(parser.parse(raw), config);
                ControlFlow::Continue(())
            });
            let last = memchr::memrchr(b'\n', chunk).unwrap_or(first);
            whole_lines = Some((first + 1, last + 1));
        }
        let tail = match whole_lines {
            Some((start, end)) => {
                let body = &chunk[start..end];
                let options = parse_options(config);
                let mut lines =
                    Parser::continuing(body, options, splitter.lines(), splitter.bytes());
                machine.lines(&mut lines, config);
                splitter.skip_lines(body.len(), lines.line_number() - splitter.lines());
                &chunk[end..]
            }
            None => chunk,
        };
        let _ = splitter.push(tail, |raw| {
            machine.line(parser.parse(raw), config);
            ControlFlow::Continue(())
        });
        self.bytes = self.splitter.bytes();
    }

    /// Ends the stream and returns the analysis.
    pub fn finish(mut self) -> Analysis {
        let Analyzer {
            splitter,
            parser,
            machine,
            config,
            ..
        } = &mut self;
        let _ = splitter.finish(|raw| {
            machine.line(parser.parse(raw), config);
            ControlFlow::Continue(())
        });
        self.bytes = self.bytes.max(self.splitter.bytes());
        self.machine.finish(self.bytes, &self.config)
    }
}

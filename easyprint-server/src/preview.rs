//! Layer-by-layer G-code preview: which layers a file has, and one layer's extrusion and
//! travel moves as flat coordinate arrays a browser can draw directly.
//!
//! Layers are easyprint-gcode's analysis layers (the same numbering as print progress). One
//! streaming pass over the file ([`LayerIndex::build`], bounded memory) records where each
//! layer starts and the machine state there (position, absolute/relative modes, units), so a
//! layer request reads only that layer's bytes ([`LayerIndex::layer`]). Indexes are kept per
//! content hash ([`crate::cache::ContentCache`]).

use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

use easyprint_gcode::analysis::{Analysis, BoundingBox};
use easyprint_gcode::{parse_reader, Line, ParseOptions};
use serde::Serialize;

/// Most segments (extrusion and travel together) one layer answer carries; a denser layer is
/// cut short and says so (`truncated`), keeping a response under ~10 MB.
pub const MAX_SEGMENTS: usize = 200_000;

/// Coordinates are rounded to this many decimals (micrometres).
const DECIMALS: f64 = 1000.0;

/// Position and modes of the G-code interpreter at a point in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineState {
    /// X, Y, Z, E in mm.
    pub position: [f64; 4],
    /// `G91` not in effect.
    pub absolute_xyz: bool,
    /// `M83` (or `G91`) not in effect.
    pub absolute_e: bool,
    /// mm per G-code unit (25.4 after `G20`).
    pub unit: f64,
}

impl Default for MachineState {
    fn default() -> Self {
        MachineState {
            position: [0.0; 4],
            absolute_xyz: true,
            absolute_e: true,
            unit: 1.0,
        }
    }
}

/// A straight move in the XY plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start X, Y.
    pub from: [f64; 2],
    /// End X, Y.
    pub to: [f64; 2],
    /// Whether filament is pushed along it.
    pub extrudes: bool,
}

impl MachineState {
    /// Applies one line; returns the XY move it makes, if any. Arcs are drawn as their chord.
    pub fn apply(&mut self, line: &Line<'_>) -> Option<Segment> {
        let code = line.command()?;
        if code.letter == b'M' {
            match (code.major, code.minor) {
                (82, None) => self.absolute_e = true,
                (83, None) => self.absolute_e = false,
                _ => {}
            }
            return None;
        }
        if code.letter != b'G' || code.minor.is_some() {
            return None;
        }
        match code.major {
            0..=3 => self.motion(line),
            20 => {
                self.unit = 25.4;
                None
            }
            21 => {
                self.unit = 1.0;
                None
            }
            28 => {
                let all = !(line.has_arg(b'X') || line.has_arg(b'Y') || line.has_arg(b'Z'));
                for (axis, letter) in [b'X', b'Y', b'Z'].into_iter().enumerate() {
                    if all || line.has_arg(letter) {
                        self.position[axis] = 0.0;
                    }
                }
                None
            }
            90 => {
                self.absolute_xyz = true;
                self.absolute_e = true;
                None
            }
            91 => {
                self.absolute_xyz = false;
                self.absolute_e = false;
                None
            }
            92 => {
                for (axis, letter) in [b'X', b'Y', b'Z', b'E'].into_iter().enumerate() {
                    if let Some(v) = line.arg(letter) {
                        self.position[axis] = v * self.unit;
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn motion(&mut self, line: &Line<'_>) -> Option<Segment> {
        let before = self.position;
        for (axis, letter) in [b'X', b'Y', b'Z', b'E'].into_iter().enumerate() {
            if let Some(v) = line.arg(letter) {
                let v = v * self.unit;
                let absolute = if axis == 3 {
                    self.absolute_e
                } else {
                    self.absolute_xyz
                };
                if !v.is_finite() {
                    continue;
                }
                self.position[axis] = if absolute { v } else { before[axis] + v };
            }
        }
        let moved_xy = before[0] != self.position[0] || before[1] != self.position[1];
        moved_xy.then(|| Segment {
            from: [before[0], before[1]],
            to: [self.position[0], self.position[1]],
            extrudes: self.position[3] > before[3] + 1e-9,
        })
    }
}

/// One layer as the index knows it.
#[derive(Debug, Clone, Copy)]
struct LayerStart {
    z: f64,
    offset: u64,
    end: u64,
    moves: u64,
    state: MachineState,
}

/// A layer in the list.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LayerSummary {
    /// 0-based layer number (as in print progress).
    pub index: usize,
    /// Z of its extrusions, mm.
    pub z: f64,
    /// XY moves (extrusion and travel) in it.
    pub moves: u64,
}

/// One layer's moves: flat `[x0, y0, x1, y1, ...]` arrays, four numbers per segment.
#[derive(Debug, Clone, Serialize)]
pub struct LayerMoves {
    /// 0-based layer number.
    pub index: usize,
    /// Z of its extrusions, mm.
    pub z: f64,
    /// Segments that extrude.
    pub extrude: Vec<f64>,
    /// Segments that only travel.
    pub travel: Vec<f64>,
    /// More than [`MAX_SEGMENTS`] segments: the rest were left out.
    pub truncated: bool,
}

/// Where each layer of a file starts and the machine state there.
#[derive(Debug, Clone)]
pub struct LayerIndex {
    layers: Vec<LayerStart>,
    bounds: Option<BoundingBox>,
}

fn round(v: f64) -> f64 {
    (v * DECIMALS).round() / DECIMALS
}

impl LayerIndex {
    /// Reads `path` once (blocking: call from a blocking thread), with `analysis` giving the
    /// layer boundaries.
    pub fn build(path: &Path, analysis: &Analysis) -> std::io::Result<LayerIndex> {
        let file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        let mut layers: Vec<LayerStart> = analysis
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerStart {
                z: l.z,
                offset: l.offset,
                end: analysis.layers.get(i + 1).map_or(size, |next| next.offset),
                moves: 0,
                state: MachineState::default(),
            })
            .collect();
        let mut state = MachineState::default();
        // The layer the current line belongs to (`None` before the first).
        let mut current: Option<usize> = None;
        let mut next = 0;
        parse_reader(
            std::io::BufReader::new(file),
            ParseOptions::lenient(),
            |line| {
                let Ok(line) = line else {
                    return ControlFlow::Continue(());
                };
                while next < layers.len() && line.offset() >= layers[next].offset {
                    layers[next].state = state;
                    current = Some(next);
                    next += 1;
                }
                if state.apply(&line).is_some() {
                    if let Some(layer) = current.and_then(|i| layers.get_mut(i)) {
                        layer.moves += 1;
                    }
                }
                ControlFlow::Continue(())
            },
        )?;
        Ok(LayerIndex {
            layers,
            bounds: analysis.print_bbox.or(analysis.extrusion_bbox),
        })
    }

    /// The layers, in print order.
    pub fn layers(&self) -> Vec<LayerSummary> {
        self.layers
            .iter()
            .enumerate()
            .map(|(index, l)| LayerSummary {
                index,
                z: l.z,
                moves: l.moves,
            })
            .collect()
    }

    /// The bounding box of the printed object (without start G-code purge lines when the
    /// slicer tags features).
    pub fn bounds(&self) -> Option<BoundingBox> {
        self.bounds
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the file has no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `index`'s moves, read from `path` (blocking); `None` for a layer that does not
    /// exist.
    pub fn layer(&self, path: &Path, index: usize) -> std::io::Result<Option<LayerMoves>> {
        let Some(layer) = self.layers.get(index) else {
            return Ok(None);
        };
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(layer.offset))?;
        let reader = std::io::BufReader::new(file).take(layer.end.saturating_sub(layer.offset));
        let mut state = layer.state;
        let mut out = LayerMoves {
            index,
            z: layer.z,
            extrude: Vec::new(),
            travel: Vec::new(),
            truncated: false,
        };
        let mut segments = 0;
        parse_reader(reader, ParseOptions::lenient(), |line| {
            let Ok(line) = line else {
                return ControlFlow::Continue(());
            };
            let Some(s) = state.apply(&line) else {
                return ControlFlow::Continue(());
            };
            if segments == MAX_SEGMENTS {
                out.truncated = true;
                return ControlFlow::Break(());
            }
            segments += 1;
            let list = if s.extrudes {
                &mut out.extrude
            } else {
                &mut out.travel
            };
            list.extend([s.from[0], s.from[1], s.to[0], s.to[1]].map(round));
            ControlFlow::Continue(())
        })?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use easyprint_gcode::analysis::{analyze, AnalysisConfig};

    const GCODE: &str = "G21\nG90\nM82\nG28\nG92 E0\n\
        ;LAYER:0\nG1 Z0.2 F600\nG0 X10 Y10\nG1 X20 Y10 E1\nG1 X20 Y20 E2\nG1 E1.5\nG0 X30 Y30\n\
        ;LAYER:1\nG1 Z0.4\nG91\nG1 X-10 E0.5\nM83\nG90\nM83\nG1 X40 Y40 E1\nG1 X45 Y40 E0\n";

    fn index(dir: &tempfile::TempDir) -> (LayerIndex, std::path::PathBuf) {
        let path = dir.path().join("a.gcode");
        std::fs::write(&path, GCODE).unwrap();
        let analysis = analyze(GCODE.as_bytes(), &AnalysisConfig::default());
        (LayerIndex::build(&path, &analysis).unwrap(), path)
    }

    #[test]
    fn layers_carry_their_moves_and_start_state() {
        let dir = tempfile::tempdir().unwrap();
        let (index, path) = index(&dir);
        let layers = index.layers();
        assert_eq!(layers.len(), 2);
        assert_eq!((layers[0].z, layers[0].moves), (0.2, 4));
        assert_eq!((layers[1].z, layers[1].moves), (0.4, 3));

        let first = index.layer(&path, 0).unwrap().unwrap();
        assert_eq!(
            first.extrude,
            [10.0, 10.0, 20.0, 10.0, 20.0, 10.0, 20.0, 20.0]
        );
        assert_eq!(first.travel, [0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0, 30.0]);
        // Layer 1 starts where layer 0 ended, relative moves and E modes applied.
        let second = index.layer(&path, 1).unwrap().unwrap();
        assert_eq!(
            second.extrude,
            [30.0, 30.0, 20.0, 30.0, 20.0, 30.0, 40.0, 40.0]
        );
        assert_eq!(second.travel, [40.0, 40.0, 45.0, 40.0]);
        assert!(!second.truncated);
        assert!(index.layer(&path, 2).unwrap().is_none());
    }

    #[test]
    fn inches_and_set_position_are_honoured() {
        let gcode = b"G20\nG92 X1 Y1\nG1 X2 Y1 E1\n";
        let mut parsed = Vec::new();
        parse_reader(&gcode[..], ParseOptions::lenient(), |line| {
            let line = line.unwrap();
            let mut state = parsed.last().map_or(MachineState::default(), |(s, _)| *s);
            let segment = state.apply(&line);
            parsed.push((state, segment));
            ControlFlow::Continue(())
        })
        .unwrap();
        let (_, segment) = parsed[2];
        assert_eq!(
            segment,
            Some(Segment {
                from: [25.4, 25.4],
                to: [50.8, 25.4],
                extrudes: true
            })
        );
    }
}

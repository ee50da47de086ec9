//! The interpreter: tracks the machine state line by line (positions, modes, tool, limits) and turns
//! moves into filament, bounding boxes, layers and planner moves.

use super::metadata::{MetadataReader, ThumbnailIssue};
use super::move_words::{Slots, E, F, X, Y, Z};
use super::planner::Planner;
use super::timeline::Timeline;
use super::{Analysis, AnalysisConfig, BoundingBox, Counts, Diagnostic, Filament, Layer};
use crate::parse::line::ValueKind;
use crate::{Code, Line, ParseError, Parser};

/// Highest tool number tracked.
const MAX_TOOL: u32 = 63;
/// Longest chord of an arc segment, mm (Marlin's MM_PER_ARC_SEGMENT).
const MM_PER_ARC_SEGMENT: f64 = 1.0;
/// Most segments one arc is split into (bounds the work per line for absurd radii).
const MAX_ARC_SEGMENTS: usize = 4096;
/// Z differences below this are the same layer.
const LAYER_EPSILON: f64 = 1e-6;

/// Where the next layer would start, if extrusion follows at a new Z.
#[derive(Debug, Clone, Copy)]
struct LayerStart {
    offset: u64,
    line: u64,
    seq: u64,
}

/// Where a line is: its number and byte offset (what moves need of it, for layer starts).
#[derive(Debug, Clone, Copy)]
struct At {
    number: u64,
    offset: u64,
}

impl At {
    fn of(line: &Line<'_>) -> At {
        At {
            number: line.number(),
            offset: line.offset(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Machine {
    position: [f64; 4],
    absolute: bool,
    /// `M82`/`M83` override of the extruder mode; `G90`/`G91` clear it.
    absolute_e: Option<bool>,
    inches: bool,
    /// Modal feedrate, mm/s.
    feedrate: f64,
    tool: usize,
    /// Extruded per tool; the current tool's running sums are in `tool_filament`/`tool_printed`
    /// (stored back at a tool change and at the end: no indexing per move).
    filament: Vec<f64>,
    /// Extruded under feature tags, per tool.
    printed: Vec<f64>,
    tool_filament: f64,
    tool_printed: f64,
    retracted: bool,
    retract: super::FirmwareRetract,
    planner: Planner,
    timeline: Timeline,
    metadata: MetadataReader,
    /// Empty ([`EMPTY_BOX`]) until the first extrusion: growing it needs no check for a first point.
    extrusion_bbox: BoundingBox,
    print_bbox: BoundingBox,
    /// Under a slicer feature tag other than `Custom`.
    typed: bool,
    /// End of the last extruding move, and whether it was tagged.
    last_extrusion_end: [f64; 3],
    last_extrusion_typed: bool,
    layer_z: Option<f64>,
    layer_start: Option<LayerStart>,
    layer_count: u64,
    /// Per stored layer: has it extrusion under a feature tag?
    layer_printed: Vec<bool>,
    /// Layers (stored or not) with extrusion under a feature tag.
    printed_layer_count: u64,
    current_layer_printed: bool,
    layer_limit: usize,
    lines: u64,
    /// The next line that gets a time checkpoint.
    next_checkpoint: u64,
    counts: Counts,
    diagnostics: Vec<Diagnostic>,
    diagnostic_count: u64,
}

impl Machine {
    pub(crate) fn new(config: &AnalysisConfig) -> Self {
        Machine {
            position: [0.0; 4],
            absolute: true,
            absolute_e: None,
            inches: false,
            feedrate: 25.0,
            tool: 0,
            filament: vec![0.0],
            printed: vec![0.0],
            tool_filament: 0.0,
            tool_printed: 0.0,
            retracted: false,
            retract: config.firmware_retract,
            planner: Planner::new(config.limits),
            timeline: Timeline::default(),
            metadata: MetadataReader::default(),
            extrusion_bbox: EMPTY_BOX,
            print_bbox: EMPTY_BOX,
            typed: false,
            last_extrusion_end: [f64::NAN; 3],
            last_extrusion_typed: false,
            layer_z: None,
            layer_start: None,
            layer_count: 0,
            layer_printed: Vec::new(),
            printed_layer_count: 0,
            current_layer_printed: false,
            layer_limit: config.max_layers,
            lines: 0,
            next_checkpoint: 1,
            counts: Counts::default(),
            diagnostics: Vec::new(),
            diagnostic_count: 0,
        }
    }

    fn diagnose(&mut self, d: Diagnostic, config: &AnalysisConfig) {
        self.diagnostic_count += 1;
        if self.diagnostics.len() < config.max_diagnostics {
            self.diagnostics.push(d);
        }
    }

    fn checkpoint(&mut self, number: u64, offset: u64, config: &AnalysisConfig) {
        self.lines = number;
        // Lines 1, 1 + every, 1 + 2 * every, ... (a countdown: no division per line).
        if number >= self.next_checkpoint {
            self.next_checkpoint = number + u64::from(config.checkpoint_every_lines.max(1));
            self.timeline
                .checkpoint(number, offset, self.planner.next_seq());
        }
    }

    /// Every line of `parser`: the loop of whole-buffer and in-chunk analysis (one copy of it,
    /// so the per-line work is inlined into one place).
    pub(crate) fn lines(&mut self, parser: &mut Parser<'_>, config: &AnalysisConfig) {
        loop {
            // Plain `G0`/`G1` lines, most lines of a print, go straight from the bytes into the
            // move: their words are collected as they are read (see `Parser::next_move`).
            if !self.metadata.in_thumbnail() {
                let mut slots = Slots::new();
                if let Some((number, offset)) =
                    parser.next_move(|letter, value| slots.add(letter, value))
                {
                    self.checkpoint(number, offset, config);
                    self.counts.commands += 1;
                    self.counts.moves += 1;
                    let target = self.target(&slots);
                    self.move_to(target, self.feedrate, At { number, offset });
                    continue;
                }
            }
            let Some(line) = parser.next_line() else {
                break;
            };
            self.line(line, config);
        }
    }

    #[inline]
    pub(crate) fn line(&mut self, line: Result<Line<'_>, ParseError>, config: &AnalysisConfig) {
        match line {
            // `G0`/`G1`, most lines of a print, are dispatched here, inlined into the loop.
            Ok(line)
                if matches!(
                    line.command(),
                    Some(Code {
                        letter: b'G',
                        major: 0 | 1,
                        minor: None
                    })
                ) && !self.metadata.in_thumbnail() =>
            {
                self.checkpoint(line.number(), line.offset(), config);
                self.counts.commands += 1;
                self.counts.moves += 1;
                self.linear(&line);
            }
            Ok(line) => self.parsed_line(&line, config),
            Err(e) => {
                self.checkpoint(e.line, e.offset, config);
                self.diagnose(Diagnostic::Parse(e), config);
            }
        }
    }

    fn parsed_line(&mut self, line: &Line<'_>, config: &AnalysisConfig) {
        self.checkpoint(line.number(), line.offset(), config);
        if line.is_empty() {
            if let Some(c) = line.comment() {
                self.counts.comment_lines += 1;
                self.comment(c, line, config);
            }
            return;
        }
        if let Err(issue) = self.metadata.interrupt() {
            self.thumbnail_issue(issue, line.number(), config);
        }
        self.counts.commands += 1;
        let Some(code) = line.command() else {
            return;
        };
        let minor = code.minor.is_some();
        match (code.letter, code.major) {
            (b'G', 0 | 1) if !minor => {
                self.counts.moves += 1;
                self.linear(line);
            }
            (b'G', 2 | 3) if !minor => {
                self.counts.arcs += 1;
                self.arc(line, code.major == 2, config);
            }
            (b'G', 4) => {
                let seconds = line
                    .arg(b'S')
                    .or_else(|| line.arg(b'P').map(|ms| ms / 1000.0))
                    .unwrap_or(0.0);
                self.planner.dwell(seconds, &mut self.timeline);
            }
            (b'G', 10) if !line.has_arg(b'P') && !line.has_arg(b'L') => self.firmware_retract(true),
            (b'G', 11) => self.firmware_retract(false),
            (b'G', 20) => self.inches = true,
            (b'G', 21) => self.inches = false,
            (b'G', 28) if !minor => self.home(line),
            (b'G', 90) if !minor => {
                self.absolute = true;
                self.absolute_e = None;
            }
            (b'G', 91) if !minor => {
                self.absolute = false;
                self.absolute_e = None;
            }
            (b'G', 92) if !minor => {
                let scale = self.scale();
                for w in line.raw_args() {
                    if let (Some(axis), ValueKind::Number) = (axis(w.letter), w.kind) {
                        self.position[axis] = w.value() * scale;
                    }
                }
            }
            (b'M', 82) => self.absolute_e = Some(true),
            (b'M', 83) => self.absolute_e = Some(false),
            (b'M', 400) => self.planner.flush(&mut self.timeline),
            (b'M', 207) => {
                if let Some(s) = line.arg(b'S') {
                    self.retract.length = s;
                }
                if let Some(f) = line.arg(b'F') {
                    self.retract.feedrate = f / 60.0;
                }
            }
            (b'M', 208) => {
                if let Some(f) = line.arg(b'F') {
                    self.retract.recover_feedrate = f / 60.0;
                }
            }
            (b'M', 201 | 203 | 204 | 205 | 566) if config.use_file_limits => {
                self.set_limits(code.major, line)
            }
            (b'T', tool) => self.tool_change(tool, line.number(), config),
            _ => {}
        }
    }

    fn comment(&mut self, c: &[u8], line: &Line<'_>, config: &AnalysisConfig) {
        if !self.metadata.in_thumbnail() {
            if let Some(kind) = c.strip_prefix(b"TYPE:") {
                self.typed = kind != b"Custom";
                return;
            }
        }
        match self
            .metadata
            .comment(c, line.number(), config.max_thumbnail_bytes)
        {
            Ok(true) => self.mark_layer_start(At::of(line)),
            Ok(false) => {}
            Err(issue) => self.thumbnail_issue(issue, line.number(), config),
        }
    }

    fn thumbnail_issue(&mut self, issue: ThumbnailIssue, line: u64, config: &AnalysisConfig) {
        let reason = match issue {
            ThumbnailIssue::Invalid(e) => format!("invalid base64: {e}"),
            ThumbnailIssue::TooLarge => "larger than the thumbnail budget".to_string(),
            ThumbnailIssue::Unterminated => "no end marker before the next command".to_string(),
        };
        self.diagnose(Diagnostic::Thumbnail { line, reason }, config);
    }

    fn mark_layer_start(&mut self, at: At) {
        if self.layer_start.is_none() {
            let seq = self.planner.next_seq();
            self.layer_start = Some(LayerStart {
                offset: at.offset,
                line: at.number,
                seq,
            });
            self.timeline.watch_layer_start(seq);
        }
    }

    #[inline]
    fn scale(&self) -> f64 {
        if self.inches {
            25.4
        } else {
            1.0
        }
    }

    #[inline]
    fn absolute_axis(&self, axis: usize) -> bool {
        if axis == E {
            self.absolute_e.unwrap_or(self.absolute)
        } else {
            self.absolute
        }
    }

    /// The target of a move's X/Y/Z/E words, and sets the modal feedrate from `F`.
    #[inline(always)]
    fn target(&mut self, slots: &Slots) -> [f64; 4] {
        let seen = slots.seen;
        let scale = self.scale();
        if seen & 1 << F != 0 {
            self.feedrate = slots.get(F) * scale / 60.0;
        }
        // The modes are looked up once per line, not per word.
        let absolute = [
            self.absolute,
            self.absolute,
            self.absolute,
            self.absolute_axis(E),
        ];
        // Element by element into registers: a loop over a target array updating some of its
        // elements leaves it in memory as 8-byte stores, which the move then reloads 16 bytes at
        // a time, and the processor cannot forward such a load from the stores (a stall per move).
        let axis = |a: usize| {
            let v = slots.get(a) * scale;
            let moved = if absolute[a] { v } else { self.position[a] + v };
            if seen & 1 << a != 0 {
                moved
            } else {
                self.position[a]
            }
        };
        [axis(X), axis(Y), axis(Z), axis(E)]
    }

    #[inline(always)]
    fn linear(&mut self, line: &Line<'_>) {
        let target = self.target(&Slots::of(line.raw_args()));
        self.move_to(target, self.feedrate, At::of(line));
    }

    #[inline(always)]
    fn move_to(&mut self, target: [f64; 4], feedrate: f64, at: At) {
        let delta = [
            target[X] - self.position[X],
            target[Y] - self.position[Y],
            target[Z] - self.position[Z],
            target[E] - self.position[E],
        ];
        // Element by element (the array comparison goes through a slice loop).
        let still = delta[X] == 0.0 && delta[Y] == 0.0 && delta[Z] == 0.0 && delta[E] == 0.0;
        if still || !delta.iter().all(|d| d.is_finite()) {
            self.position = target;
            return;
        }
        self.tool_filament += delta[E];
        let moves_xyz = delta[X] != 0.0 || delta[Y] != 0.0 || delta[Z] != 0.0;
        if delta[Z] != 0.0 {
            self.mark_layer_start(at);
        }
        if moves_xyz && delta[E] > 0.0 {
            self.extrusion(target, at);
        } else if !moves_xyz && delta[E] < 0.0 {
            self.counts.retractions += 1;
        }
        self.planner.add_move(delta, feedrate, &mut self.timeline);
        self.position = target;
    }

    #[inline(always)]
    fn extrusion(&mut self, target: [f64; 4], at: At) {
        if self.typed {
            self.tool_printed += target[E] - self.position[E];
        }
        let from = [self.position[X], self.position[Y], self.position[Z]];
        let to = [target[X], target[Y], target[Z]];
        // Extrusions mostly chain end to start: then only the new end can grow the boxes.
        let last = self.last_extrusion_end;
        let chained = from[X] == last[X] && from[Y] == last[Y] && from[Z] == last[Z];
        grow(&mut self.extrusion_bbox, from, to, chained);
        if self.typed {
            grow(
                &mut self.print_bbox,
                from,
                to,
                chained && self.last_extrusion_typed,
            );
        }
        self.last_extrusion_end = to;
        self.last_extrusion_typed = self.typed;
        let z = target[Z];
        if self.layer_z.is_none_or(|lz| (z - lz).abs() > LAYER_EPSILON) {
            self.new_layer(z, at);
        }
        if self.typed && !self.current_layer_printed {
            self.layer_printed_now();
        }
        self.layer_start = None;
        self.timeline.unwatch();
    }

    /// Extrusion at a new Z: a layer starts (out of line: once per layer, not per move).
    #[cold]
    #[inline(never)]
    fn new_layer(&mut self, z: f64, at: At) {
        let start = self.layer_start.take().unwrap_or(LayerStart {
            offset: at.offset,
            line: at.number,
            seq: self.planner.next_seq(),
        });
        self.layer_count += 1;
        self.layer_z = Some(z);
        let layer = Layer {
            z,
            offset: start.offset,
            line: start.line,
            start_time: f64::NAN,
        };
        self.current_layer_printed = false;
        if self.timeline.layers.len() < self.layer_limit {
            self.timeline.push_layer(layer, start.seq);
            self.layer_printed.push(false);
        }
    }

    /// The first tagged extrusion of the current layer: it is a layer of the print.
    #[cold]
    #[inline(never)]
    fn layer_printed_now(&mut self) {
        self.current_layer_printed = true;
        self.printed_layer_count += 1;
        if self.layer_printed.len() as u64 == self.layer_count {
            if let Some(p) = self.layer_printed.last_mut() {
                *p = true;
            }
        }
    }
}

impl Machine {
    /// `G2` (clockwise) / `G3` in the XY plane, with `I`/`J` centre offsets or `R` radius, split into
    /// chords like Marlin does.
    fn arc(&mut self, line: &Line<'_>, clockwise: bool, config: &AnalysisConfig) {
        let scale = self.scale();
        let start = self.position;
        let target = self.target(&Slots::of(line.raw_args()));
        let at = At::of(line);
        let (i, j) = (line.arg(b'I'), line.arg(b'J'));
        let centre_offset = if i.is_some() || j.is_some() {
            Some((i.unwrap_or(0.0) * scale, j.unwrap_or(0.0) * scale))
        } else {
            line.arg(b'R')
                .and_then(|r| centre_from_radius(start, target, r * scale, clockwise))
        };
        let Some((ci, cj)) = centre_offset.filter(|&(i, j)| i.hypot(j) > 1e-9) else {
            self.diagnose(
                Diagnostic::InvalidArc {
                    line: line.number(),
                },
                config,
            );
            self.move_to(target, self.feedrate, at);
            return;
        };
        let (cx, cy) = (start[X] + ci, start[Y] + cj);
        let radius = ci.hypot(cj);
        let (sx, sy) = (-ci, -cj);
        let (ex, ey) = (target[X] - cx, target[Y] - cy);
        let mut angle = (sx * ey - sy * ex).atan2(sx * ex + sy * ey);
        if angle < 0.0 {
            angle += core::f64::consts::TAU;
        }
        if clockwise {
            angle -= core::f64::consts::TAU;
        }
        if angle == 0.0 && start[X] == target[X] && start[Y] == target[Y] {
            angle = if clockwise {
                -core::f64::consts::TAU
            } else {
                core::f64::consts::TAU
            };
        }
        let length = (radius * angle).abs();
        let segments = ((length / MM_PER_ARC_SEGMENT) as usize).clamp(1, MAX_ARC_SEGMENTS);
        let start_angle = sy.atan2(sx);
        let feedrate = self.feedrate;
        for k in 1..=segments {
            let t = k as f64 / segments as f64;
            let mut p = if k == segments {
                target
            } else {
                let a = start_angle + angle * t;
                [
                    cx + radius * a.cos(),
                    cy + radius * a.sin(),
                    start[Z] + (target[Z] - start[Z]) * t,
                    start[E] + (target[E] - start[E]) * t,
                ]
            };
            if !p.iter().all(|v| v.is_finite()) {
                p = target;
            }
            self.move_to(p, feedrate, at);
        }
    }

    fn firmware_retract(&mut self, retract: bool) {
        if retract == self.retracted {
            return;
        }
        self.retracted = retract;
        let (length, feedrate) = if retract {
            self.counts.retractions += 1;
            (-self.retract.length, self.retract.feedrate)
        } else {
            (self.retract.length, self.retract.recover_feedrate)
        };
        self.tool_filament += length;
        self.planner
            .add_move([0.0, 0.0, 0.0, length], feedrate, &mut self.timeline);
    }

    /// `G28`: the named axes (all if none) go to 0. Homing time is not modelled; the machine stops.
    fn home(&mut self, line: &Line<'_>) {
        self.planner.flush(&mut self.timeline);
        let named: Vec<usize> = [X, Y, Z]
            .into_iter()
            .filter(|&a| line.has_arg(b"XYZ"[a]))
            .collect();
        let axes = if named.is_empty() {
            vec![X, Y, Z]
        } else {
            named
        };
        for a in axes {
            if a == Z && self.position[Z] != 0.0 {
                self.mark_layer_start(At::of(line));
            }
            self.position[a] = 0.0;
        }
    }

    fn set_limits(&mut self, code: u32, line: &Line<'_>) {
        let mut limits = *self.planner.limits();
        let l = &mut limits;
        let axes = |l: &mut [f64; 4], divisor: f64| {
            for w in line.raw_args() {
                if let (Some(a), ValueKind::Number) = (axis(w.letter), w.kind) {
                    if w.value() >= 0.0 {
                        l[a] = w.value() / divisor;
                    }
                }
            }
        };
        match code {
            201 => axes(&mut l.max_acceleration, 1.0),
            203 => axes(&mut l.max_feedrate, 1.0),
            566 => axes(&mut l.jerk, 60.0),
            204 => {
                if let Some(s) = line.arg(b'S') {
                    l.acceleration = s;
                    l.travel_acceleration = s;
                }
                if let Some(p) = line.arg(b'P') {
                    l.acceleration = p;
                }
                if let Some(r) = line.arg(b'R') {
                    l.retract_acceleration = r;
                }
                if let Some(t) = line.arg(b'T') {
                    l.travel_acceleration = t;
                }
            }
            205 => {
                axes(&mut l.jerk, 1.0);
                if let Some(s) = line.arg(b'S') {
                    l.min_feedrate = s;
                }
                if let Some(t) = line.arg(b'T') {
                    l.min_travel_feedrate = t;
                }
                if let Some(j) = line.arg(b'J') {
                    l.junction_deviation = (j > 0.0).then_some(j);
                }
            }
            _ => {}
        }
        self.planner.set_limits(limits, &mut self.timeline);
    }

    fn tool_change(&mut self, tool: u32, line: u64, config: &AnalysisConfig) {
        if tool > MAX_TOOL {
            self.diagnose(
                Diagnostic::ToolOutOfRange {
                    line,
                    tool,
                    max: MAX_TOOL,
                },
                config,
            );
            return;
        }
        self.counts.tool_changes += 1;
        self.store_tool_sums();
        self.tool = tool as usize;
        if self.filament.len() <= self.tool {
            self.filament.resize(self.tool + 1, 0.0);
            self.printed.resize(self.tool + 1, 0.0);
        }
        self.tool_filament = self.filament[self.tool];
        self.tool_printed = self.printed[self.tool];
    }

    /// Stores the current tool's running sums in the per-tool lists.
    fn store_tool_sums(&mut self) {
        self.filament[self.tool] = self.tool_filament;
        self.printed[self.tool] = self.tool_printed;
    }

    pub(crate) fn finish(mut self, bytes: u64, config: &AnalysisConfig) -> Analysis {
        if let Err(issue) = self.metadata.interrupt() {
            self.thumbnail_issue(issue, self.lines, config);
        }
        self.planner.flush(&mut self.timeline);
        self.store_tool_sums();
        let total = self.planner.time();
        self.timeline.finish(total);
        // With slicer feature tags, layers of untagged extrusion only (start G-code purge lines)
        // are not layers of the print.
        let mut layers = self.timeline.layers;
        let mut layer_count = self.layer_count;
        if self.printed_layer_count > 0 {
            let mut printed = self.layer_printed.iter();
            layers.retain(|_| printed.next().copied().unwrap_or(false));
            layer_count = self.printed_layer_count;
        }
        let area = core::f64::consts::PI * (config.filament_diameter / 2.0).powi(2);
        let filament = self
            .filament
            .iter()
            .zip(&self.printed)
            .map(|(&length_mm, &printed_mm)| Filament {
                length_mm,
                printed_mm,
                volume_mm3: length_mm * area,
            })
            .collect();
        Analysis {
            bytes,
            lines: self.lines,
            layers,
            layer_count,
            extrusion_bbox: non_empty(self.extrusion_bbox),
            print_bbox: non_empty(self.print_bbox),
            filament,
            estimated_time: total,
            checkpoints: self.timeline.checkpoints,
            counts: self.counts,
            metadata: self.metadata.metadata,
            thumbnails: self.metadata.thumbnails,
            diagnostics: self.diagnostics,
            diagnostic_count: self.diagnostic_count,
            final_limits: *self.planner.limits(),
        }
    }
}

/// The centre offset (I, J) of an `R` arc, as Marlin computes it (negative R: the longer arc).
fn centre_from_radius(
    start: [f64; 4],
    target: [f64; 4],
    r: f64,
    clockwise: bool,
) -> Option<(f64, f64)> {
    let (dx, dy) = (target[X] - start[X], target[Y] - start[Y]);
    let d = dx.hypot(dy);
    if d == 0.0 || !d.is_finite() {
        return None;
    }
    let h2 = (r.abs() - d / 2.0) * (r.abs() + d / 2.0);
    let h = h2.max(0.0).sqrt();
    let e = if clockwise ^ (r < 0.0) { -1.0 } else { 1.0 };
    let (mx, my) = ((start[X] + target[X]) / 2.0, (start[Y] + target[Y]) / 2.0);
    let (sx, sy) = (-dy / d, dx / d);
    let (cx, cy) = (mx + e * h * sx, my + e * h * sy);
    Some((cx - start[X], cy - start[Y]))
}

/// A box no point is in: adding a point to it gives the box of that point (the minimum of
/// infinity and a finite value is that value), so the first extrusion needs no special case.
const EMPTY_BOX: BoundingBox = BoundingBox {
    min: [f64::INFINITY; 3],
    max: [f64::NEG_INFINITY; 3],
};

/// The box, or `None` if nothing was added to it (points are finite: see [`Machine::move_to`]).
fn non_empty(bbox: BoundingBox) -> Option<BoundingBox> {
    (bbox.min[X] <= bbox.max[X]).then_some(bbox)
}

/// Adds a segment to a bounding box (`from` is already in it when `chained`).
#[inline]
fn grow(bbox: &mut BoundingBox, from: [f64; 3], to: [f64; 3], chained: bool) {
    if !chained {
        bbox.add(from);
    }
    bbox.add(to);
}

/// Axis index of each byte (`X`, `Y`, `Z`, `E`), [`NO_AXIS`] for the others. A table rather than a
/// `match`: the letters of a move's words alternate, and the jump table a `match` compiles to
/// mispredicts on almost every word.
const AXIS_OF: [u8; 256] = {
    let mut table = [NO_AXIS; 256];
    table[b'X' as usize] = X as u8;
    table[b'Y' as usize] = Y as u8;
    table[b'Z' as usize] = Z as u8;
    table[b'E' as usize] = E as u8;
    table
};
const NO_AXIS: u8 = u8::MAX;

/// Index of an axis letter.
#[inline]
fn axis(letter: u8) -> Option<usize> {
    let a = AXIS_OF[usize::from(letter)];
    (a != NO_AXIS).then_some(usize::from(a))
}

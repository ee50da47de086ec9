//! Time offsets per line and per layer, resolved as the planner finalises moves.

use std::collections::VecDeque;

use super::planner::TimeSink;
use super::Layer;

/// The estimated time at which a line starts, recorded every
/// [`checkpoint_every_lines`](super::AnalysisConfig::checkpoint_every_lines) lines.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Checkpoint {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// Estimated seconds from the start of the print to the start of this line.
    pub time: f64,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Checkpoint(usize),
    Layer(usize),
}

/// Collects checkpoints and layer start times. A time mark names the planner sequence number of the
/// next move at the moment it was made; its time is known once that move is finalised.
#[derive(Debug)]
pub(crate) struct Timeline {
    pub(crate) checkpoints: Vec<Checkpoint>,
    pub(crate) layers: Vec<Layer>,
    /// Unresolved marks, sorted by sequence number.
    pending: VecDeque<(u64, Target)>,
    /// Sequence number of the first pending mark (`u64::MAX` when none): one comparison per
    /// finalised move instead of a look into the queue.
    next_pending: u64,
    /// The candidate start of the next layer (at most one at a time), watched so its time is known
    /// even if the layer is only confirmed after its first moves were finalised.
    watch: Option<(u64, Option<f64>)>,
}

impl TimeSink for Timeline {
    #[inline]
    fn move_starts(&mut self, seq: u64, time: f64) {
        if seq >= self.next_pending {
            while let Some(&(s, target)) = self.pending.front() {
                if s > seq {
                    break;
                }
                self.set(target, time);
                self.pending.pop_front();
            }
            self.next_pending = self.pending.front().map_or(u64::MAX, |&(s, _)| s);
        }
        if let Some((s, t @ None)) = &mut self.watch {
            if *s <= seq {
                *t = Some(time);
            }
        }
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            checkpoints: Vec::new(),
            layers: Vec::new(),
            pending: VecDeque::new(),
            next_pending: u64::MAX,
            watch: None,
        }
    }
}

impl Timeline {
    fn set(&mut self, target: Target, time: f64) {
        match target {
            Target::Checkpoint(i) => self.checkpoints[i].time = time,
            Target::Layer(i) => self.layers[i].start_time = time,
        }
    }

    fn insert(&mut self, seq: u64, target: Target) {
        let at = self.pending.partition_point(|&(s, _)| s <= seq);
        self.pending.insert(at, (seq, target));
        self.next_pending = self.next_pending.min(seq);
    }

    pub(crate) fn checkpoint(&mut self, line: u64, offset: u64, seq: u64) {
        self.checkpoints.push(Checkpoint {
            line,
            offset,
            time: f64::NAN,
        });
        let target = Target::Checkpoint(self.checkpoints.len() - 1);
        self.insert(seq, target);
    }

    /// Remembers `seq` as the possible start of the next layer.
    pub(crate) fn watch_layer_start(&mut self, seq: u64) {
        self.watch = Some((seq, None));
    }

    /// Stores a layer whose start was watched at `seq`.
    pub(crate) fn push_layer(&mut self, mut layer: Layer, seq: u64) {
        let resolved = match self.watch.take() {
            Some((s, Some(t))) if s == seq => Some(t),
            _ => None,
        };
        layer.start_time = resolved.unwrap_or(f64::NAN);
        self.layers.push(layer);
        if resolved.is_none() {
            let target = Target::Layer(self.layers.len() - 1);
            self.insert(seq, target);
        }
    }

    /// Forgets the watched layer start.
    pub(crate) fn unwatch(&mut self) {
        self.watch = None;
    }

    /// After the planner's final flush: marks past the last move get the total time.
    pub(crate) fn finish(&mut self, total: f64) {
        while let Some((_, target)) = self.pending.pop_front() {
            self.set(target, total);
        }
        self.next_pending = u64::MAX;
        self.watch = None;
    }
}

/// Estimated time at `line` by interpolating between checkpoints (`end` is the line count and the
/// total time).
pub(crate) fn time_at(
    checkpoints: &[Checkpoint],
    end: (u64, u64, f64),
    key: impl Fn(&Checkpoint) -> u64,
    at: u64,
) -> f64 {
    let (end_line, end_offset, total) = end;
    let end_cp = Checkpoint {
        line: end_line + 1,
        offset: end_offset,
        time: total,
    };
    let i = checkpoints.partition_point(|c| key(c) <= at);
    if i == 0 {
        return 0.0;
    }
    let a = checkpoints[i - 1];
    let b = checkpoints.get(i).copied().unwrap_or(end_cp);
    let (ka, kb) = (key(&a), key(&b));
    if kb <= ka || at >= kb {
        return b.time.min(total);
    }
    let frac = (at - ka) as f64 / (kb - ka) as f64;
    (a.time + (b.time - a.time) * frac).clamp(0.0, total)
}

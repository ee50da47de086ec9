//! A Marlin-like motion planner used only to estimate time: trapezoidal velocity profiles, per-axis
//! feedrate and acceleration limits, classic jerk or junction deviation at the junctions, and a
//! look-ahead that recomputes entry speeds backwards and forwards over a window of moves.
//!
//! It follows the structure of Marlin's planner (and of PrusaSlicer's estimator, which mirrors it):
//! moves are queued; once `4 * LOOKAHEAD` are waiting, all but the newest `LOOKAHEAD` are planned
//! and their time is final. Memory is bounded by that window. New moves wait in batches of
//! `BATCH` before they are turned into queued blocks (see [`Planner::add_move`]); limits, dwells
//! and flushes take the waiting moves first, so the batching changes no result.

mod batch;

use super::config::MachineLimits;
use super::float::{max, min};
use batch::{Accelerations, Columns, InverseLimits, Pending};

/// Moves kept back for look-ahead (Marlin's block buffer is 16; PrusaSlicer plans over 64).
const LOOKAHEAD: usize = 64;
/// Plan when this many moves are queued (amortises the passes to O(1) per move).
const REPLAN_AT: usize = 4 * LOOKAHEAD;
/// Moves planned together (see [`Planner::add_move`]).
const BATCH: usize = 64;
/// Feedrates below this are treated as a stop at the junction.
const MIN_PREVIOUS_FEEDRATE: f64 = 1e-4;
/// Marlin's MINIMUM_PLANNER_SPEED, mm/s (junction deviation mode).
const MIN_PLANNER_SPEED: f64 = 0.05;

/// A queued move: only what the look-ahead passes and the final time need.
#[derive(Debug, Clone, Copy)]
struct Block {
    distance: f64,
    acceleration: f64,
    /// `2 * acceleration * distance`: the change of the squared speed over the whole move.
    two_a_d: f64,
    entry: f64,
    cruise: f64,
    max_entry: f64,
    safe_feedrate: f64,
    nominal_length: bool,
}

impl Block {
    /// Time of the move from its entry speed to `exit`: a trapezoid (accelerate, cruise,
    /// decelerate), or a triangle when the move is too short to reach its cruise speed.
    ///
    /// Computed once, when the move is finalised. The trapezoid needs no square root (its speeds
    /// are the entry, cruise and exit speeds) and two divisions; only a triangle's peak speed needs
    /// roots. Both are computed and one is picked, without a branch: which one applies is data
    /// (mispredicted), and the moves of a window are timed in one loop (see [`durations`]), where
    /// the roots of consecutive moves overlap, or run in SIMD lanes.
    #[inline(always)]
    fn time(&self, exit: f64) -> f64 {
        let (entry, cruise, a) = (self.entry, self.cruise, self.acceleration);
        let inv_a = 1.0 / a;
        let h = 0.5 * inv_a;
        let (entry2, exit2, cruise2) = (entry * entry, exit * exit, cruise * cruise);
        let accelerate = max(0.0, (cruise2 - entry2) * h);
        let decelerate = max(0.0, (cruise2 - exit2) * h);
        let cruise_distance = self.distance - accelerate - decelerate;
        // Speeds above the cruise speed at either end are left as they are (no ramp), as the
        // firmware's trapezoid does.
        let ramps = max(0.0, cruise - entry) + max(0.0, cruise - exit);
        let cruise_time = cruise_distance / cruise;
        let cruise_time = if cruise > 0.0 { cruise_time } else { 0.0 };
        let trapezoid = ramps * inv_a + cruise_time;
        // Not enough room to reach the cruise speed: accelerate to a peak, then decelerate.
        let accelerate = min(
            self.distance,
            max(0.0, 0.5 * self.distance + 0.5 * (exit2 - entry2) * h),
        );
        let peak = max(0.0, entry2 + 2.0 * a * accelerate).sqrt();
        let end = max(0.0, peak * peak - 2.0 * a * (self.distance - accelerate)).sqrt();
        let triangle = (peak - entry + (peak - end)) * inv_a;
        if cruise_distance >= 0.0 {
            trapezoid
        } else {
            triangle
        }
    }
}

/// The times of `blocks[..out.len()]`, each ending at the next block's entry speed (the last
/// block of `blocks` at its safe speed).
fn durations(blocks: &[Block], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe {
                durations_avx2(blocks, out)
            };
            return;
        }
    }
    durations_portable(blocks, out);
}

/// [`durations`] compiled for AVX2 (no FMA, see [`batch`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn durations_avx2(blocks: &[Block], out: &mut [f64]) {
    durations_portable(blocks, out);
}

#[inline(always)]
fn durations_portable(blocks: &[Block], out: &mut [f64]) {
    let with_next = out.len().min(blocks.len().saturating_sub(1));
    for (t, pair) in out.iter_mut().zip(blocks.windows(2)).take(with_next) {
        *t = pair[0].time(pair[1].entry);
    }
    if let (Some(t), Some(last)) = (out.get_mut(with_next), blocks.get(with_next)) {
        *t = last.time(last.safe_feedrate);
    }
}

/// The accelerations by move type of `limits`.
#[inline(always)]
fn accelerations(limits: &MachineLimits) -> Accelerations {
    [
        limits.acceleration,
        limits.travel_acceleration,
        limits.retract_acceleration,
    ]
}

/// Whether `a` and `b` are the same limits, bit for bit, except the accelerations by move type.
fn same_but_accelerations(a: &MachineLimits, b: &MachineLimits) -> bool {
    // Destructured: a new field must be added here.
    let MachineLimits {
        max_feedrate,
        max_acceleration,
        acceleration: _,
        retract_acceleration: _,
        travel_acceleration: _,
        jerk,
        junction_deviation,
        min_feedrate,
        min_travel_feedrate,
    } = *a;
    let same = |x: &[f64], y: &[f64]| {
        x.iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits()))
    };
    same(&max_feedrate, &b.max_feedrate)
        && same(&max_acceleration, &b.max_acceleration)
        && same(&jerk, &b.jerk)
        && junction_deviation.map(f64::to_bits) == b.junction_deviation.map(f64::to_bits)
        && same(
            &[min_feedrate, min_travel_feedrate],
            &[b.min_feedrate, b.min_travel_feedrate],
        )
}

/// The forward look-ahead pass: an accelerating move too short to reach the next entry speed
/// limits it, `next.entry = min(next.entry, max_allowable_speed(entry, two_a_d))` where the move
/// is not of nominal length and enters slower than the next one.
///
/// Written as two loops for the processor's sake. Usually (about 90 % of the moves on sliced
/// files) a move's entry speed is left as it was, and the next step reads it from the block: its
/// square root depends on nothing computed just before, so consecutive steps overlap. Only after
/// an entry speed was lowered does the next step need the new value, carried in a register (the
/// inner loop), where each step waits for the previous one's square root. One loop carrying the
/// speed from step to step made every step after a computed one wait, lowered or not.
fn forward_pass(blocks: &mut [Block]) {
    let n = blocks.len();
    let mut i = 0;
    while i + 1 < n {
        // Here `blocks[i].entry` is what the pass left for move `i`.
        let (prev, next_entry) = (&blocks[i], blocks[i + 1].entry);
        i += 1;
        let Some(mut speed) =
            forward_limit(prev.nominal_length, prev.entry, prev.two_a_d, next_entry)
        else {
            continue;
        };
        blocks[i].entry = speed;
        while i + 1 < n {
            let (prev, next_entry) = (&blocks[i], blocks[i + 1].entry);
            let (nominal_length, two_a_d) = (prev.nominal_length, prev.two_a_d);
            i += 1;
            // If not lowered, `blocks[i].entry` is left as it was: back to the outer loop.
            let Some(lowered) = forward_limit(nominal_length, speed, two_a_d, next_entry) else {
                break;
            };
            speed = lowered;
            blocks[i].entry = speed;
        }
    }
}

/// One step of [`forward_pass`]: the next move's entry speed if a move entered at `entry` lowers
/// it, `None` if it stays (`min(next_entry, speed)` is `next_entry` unless the speed is lower).
#[inline(always)]
fn forward_limit(nominal_length: bool, entry: f64, two_a_d: f64, next_entry: f64) -> Option<f64> {
    if !nominal_length && entry < next_entry {
        let speed = max_allowable_speed(entry, two_a_d);
        if speed < next_entry {
            return Some(speed);
        }
    }
    None
}

/// The highest speed from which a move of `two_a_d` (see [`Block::two_a_d`]) can end at `speed`
/// (or, forwards, the highest speed it can reach from `speed`).
#[inline]
fn max_allowable_speed(speed: f64, two_a_d: f64) -> f64 {
    max(0.0, speed * speed + two_a_d).sqrt()
}

/// State of the previous move, for junction speeds (all zero after a stop).
#[derive(Debug, Clone, Copy, Default)]
struct Previous {
    /// Cruise speed; 0 after a stop (no junction to plan).
    feedrate: f64,
    safe_feedrate: f64,
    axis_feedrate: [f64; 4],
    /// Direction (junction deviation mode only).
    unit: [f64; 3],
}

/// What the caller learns when moves are finalised: the start time of move `seq`.
pub(crate) trait TimeSink {
    /// Move `seq` starts at `time` seconds (all moves before it are final).
    fn move_starts(&mut self, seq: u64, time: f64);
}

/// The planner; see the module docs.
#[derive(Debug)]
pub(crate) struct Planner {
    limits: MachineLimits,
    /// Inverses of the per-axis limits.
    inverse: InverseLimits,
    blocks: Vec<Block>,
    previous: Previous,
    /// Time of all finalised moves.
    time: f64,
    next_seq: u64,
    /// Sequence number of the next block pushed to `blocks`.
    block_seq: u64,
    /// Moves accepted but not yet turned into blocks (see [`Planner::add_move`]).
    pending: Pending,
    /// The per-move quantities of the batch being turned into blocks (kept to reuse the memory).
    columns: Columns,
    /// The times of the moves being finalised (kept to reuse the memory).
    durations: Box<[f64]>,
}

impl Planner {
    pub(crate) fn new(limits: MachineLimits) -> Self {
        let mut planner = Planner {
            limits,
            inverse: InverseLimits {
                max_feedrate: [0.0; 4],
                max_acceleration: [0.0; 4],
            },
            blocks: Vec::with_capacity(REPLAN_AT + 1),
            previous: Previous::default(),
            time: 0.0,
            next_seq: 0,
            block_seq: 0,
            pending: Pending::new(),
            columns: Columns::new(),
            durations: vec![0.0; REPLAN_AT].into_boxed_slice(),
        };
        planner.apply_limits(limits);
        planner
    }

    /// The limits in effect.
    pub(crate) fn limits(&self) -> &MachineLimits {
        &self.limits
    }

    /// Changes the limits for the moves that follow (the firmware applies M201 & co. the same way).
    pub(crate) fn set_limits(&mut self, limits: MachineLimits, sink: &mut impl TimeSink) {
        // The waiting moves keep their accelerations (see `Accelerations`): a change of those
        // alone, PrusaSlicer's `M204` before every feature, leaves them waiting.
        if !same_but_accelerations(&limits, &self.limits) {
            self.drain_pending(sink);
            self.apply_limits(limits);
        }
        self.limits = limits;
    }

    fn apply_limits(&mut self, limits: MachineLimits) {
        let inverse = |v: f64| {
            if v > 0.0 && v.is_finite() {
                1.0 / v
            } else {
                0.0
            }
        };
        self.inverse = InverseLimits {
            max_feedrate: limits.max_feedrate.map(inverse),
            max_acceleration: limits.max_acceleration.map(inverse),
        };
        self.limits = limits;
    }

    /// Sequence number the next move will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Queues a move of `delta` (mm, XYZE) at `feedrate` (mm/s).
    ///
    /// Moves are planned in batches of [`BATCH`]: in a loop over moves only, the long chains of
    /// dependent square roots and divisions of consecutive moves overlap in the processor, while
    /// between the parsing of lines they stall it.
    pub(crate) fn add_move(&mut self, delta: [f64; 4], feedrate: f64, sink: &mut impl TimeSink) {
        let xyz2 = delta[0] * delta[0] + delta[1] * delta[1] + delta[2] * delta[2];
        let length2 = if xyz2 > 0.0 {
            xyz2
        } else {
            delta[3] * delta[3]
        };
        // Moves shorter than 1e-9 mm, infinite or without a speed are skipped (NaN compares
        // false): one branch for all.
        if !((1e-18..f64::INFINITY).contains(&length2) && feedrate > 0.0) {
            return;
        }
        self.next_seq += 1;
        self.pending
            .push(delta, feedrate, accelerations(&self.limits));
        if self.pending.len >= BATCH {
            self.drain_pending(sink);
        }
    }

    /// Turns the pending moves into blocks (see the [`batch`] module).
    fn drain_pending(&mut self, sink: &mut impl TimeSink) {
        let n = self.pending.len;
        if n == 0 {
            return;
        }
        batch::compute(
            &self.pending,
            &self.previous,
            &self.limits,
            &self.inverse,
            &mut self.columns,
        );
        for i in 0..n {
            let c = &self.columns;
            let (cruise, v_allowable, max_entry) =
                (c.cruise[i + 1], c.v_allowable[i], c.max_entry[i]);
            self.blocks.push(Block {
                distance: c.distance[i],
                acceleration: c.acceleration[i],
                two_a_d: c.two_a_d[i],
                entry: min(max_entry, v_allowable),
                cruise,
                max_entry,
                safe_feedrate: c.safe_feedrate[i + 1],
                nominal_length: cruise <= v_allowable,
            });
            self.block_seq += 1;
            if self.blocks.len() >= REPLAN_AT {
                self.plan(LOOKAHEAD, sink);
            }
        }
        self.previous = self.columns.previous_after(
            n - 1,
            &self.previous,
            self.limits.junction_deviation.is_some(),
        );
        self.pending.len = 0;
    }

    /// A pause of `seconds` (G4): the machine stops, then waits.
    pub(crate) fn dwell(&mut self, seconds: f64, sink: &mut impl TimeSink) {
        self.flush(sink);
        if seconds > 0.0 && seconds.is_finite() {
            sink.move_starts(self.next_seq, self.time);
            self.next_seq += 1;
            self.block_seq += 1;
            self.time += seconds;
        }
    }

    /// Plans and finalises every queued move; the next move starts from rest.
    pub(crate) fn flush(&mut self, sink: &mut impl TimeSink) {
        self.drain_pending(sink);
        self.plan(0, sink);
        self.previous = Previous::default();
    }

    /// Total time of finalised moves (all moves after [`flush`](Self::flush)).
    pub(crate) fn time(&self) -> f64 {
        self.time
    }

    /// Look-ahead passes over the queue, then finalise all but the newest `keep` moves.
    fn plan(&mut self, keep: usize, sink: &mut impl TimeSink) {
        let blocks = &mut self.blocks;
        if blocks.is_empty() {
            return;
        }
        forward_pass(blocks);
        // Reverse pass: each move must be able to decelerate to the next one's entry speed.
        // It carries the entry speed it just set to the next step in a register: read back from
        // the block, it would wait for the store.
        let mut next_entry = blocks[blocks.len() - 1].entry;
        let last = blocks.len() - 1;
        for cur in blocks[..last].iter_mut().rev() {
            if cur.entry != cur.max_entry {
                cur.entry = if !cur.nominal_length && cur.max_entry > next_entry {
                    min(cur.max_entry, max_allowable_speed(next_entry, cur.two_a_d))
                } else {
                    cur.max_entry
                };
            }
            next_entry = cur.entry;
        }
        // Finalise: each move ends at the next one's entry speed, the newest at its safe speed.
        // The times are independent of each other; only their sum is a chain.
        let done = blocks.len() - keep.min(blocks.len());
        let first_seq = self.block_seq - blocks.len() as u64;
        let durations_of_done = &mut self.durations[..done];
        durations(blocks, durations_of_done);
        for (i, &t) in durations_of_done.iter().enumerate() {
            sink.move_starts(first_seq + i as u64, self.time);
            self.time += t;
        }
        blocks.drain(..done);
    }
}

#[cfg(test)]
mod tests;

//! A Marlin-like motion planner used only to estimate time: trapezoidal velocity profiles, per-axis
//! feedrate and acceleration limits, classic jerk or junction deviation at the junctions, and a
//! look-ahead that recomputes entry speeds backwards and forwards over a window of moves.
//!
//! It follows the structure of Marlin's planner (and of PrusaSlicer's estimator, which mirrors it):
//! moves are queued; once `4 * LOOKAHEAD` are waiting, all but the newest `LOOKAHEAD` are planned
//! and their time is final. Memory is bounded by that window. New moves wait in batches of
//! `BATCH` before they are turned into queued blocks (see [`Planner::add_move`]); limits, dwells
//! and flushes take the waiting moves first, so the batching changes no result.

use super::config::MachineLimits;
use super::float::{max, min};

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
    /// roots.
    #[inline]
    fn time(&self, exit: f64) -> f64 {
        let (entry, cruise, a) = (self.entry, self.cruise, self.acceleration);
        let inv_a = 1.0 / a;
        let h = 0.5 * inv_a;
        let (entry2, exit2, cruise2) = (entry * entry, exit * exit, cruise * cruise);
        let accelerate = max(0.0, (cruise2 - entry2) * h);
        let decelerate = max(0.0, (cruise2 - exit2) * h);
        let cruise_distance = self.distance - accelerate - decelerate;
        if cruise_distance >= 0.0 {
            // Speeds above the cruise speed at either end are left as they are (no ramp), as the
            // firmware's trapezoid does.
            let ramps = max(0.0, cruise - entry) + max(0.0, cruise - exit);
            let cruise_time = if cruise > 0.0 {
                cruise_distance / cruise
            } else {
                0.0
            };
            return ramps * inv_a + cruise_time;
        }
        // Not enough room to reach the cruise speed: accelerate to a peak, then decelerate.
        let accelerate = min(
            self.distance,
            max(0.0, 0.5 * self.distance + 0.5 * (exit2 - entry2) * h),
        );
        let peak = max(0.0, entry2 + 2.0 * a * accelerate).sqrt();
        let end = max(0.0, peak * peak - 2.0 * a * (self.distance - accelerate)).sqrt();
        (peak - entry + (peak - end)) * inv_a
    }
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
    /// `1 / limits.max_feedrate` per axis (0 for no limit), so the per-move check multiplies.
    inverse_max_feedrate: [f64; 4],
    /// `1 / limits.max_acceleration` per axis (0 for no limit).
    inverse_max_acceleration: [f64; 4],
    blocks: Vec<Block>,
    previous: Previous,
    /// Time of all finalised moves.
    time: f64,
    next_seq: u64,
    /// Sequence number of the next block pushed to `blocks`.
    block_seq: u64,
    /// Moves accepted but not yet turned into blocks (see [`Planner::add_move`]).
    pending: Vec<([f64; 4], f64)>,
}

impl Planner {
    pub(crate) fn new(limits: MachineLimits) -> Self {
        let mut planner = Planner {
            limits,
            inverse_max_feedrate: [0.0; 4],
            inverse_max_acceleration: [0.0; 4],
            blocks: Vec::with_capacity(REPLAN_AT + 1),
            previous: Previous::default(),
            time: 0.0,
            next_seq: 0,
            block_seq: 0,
            pending: Vec::with_capacity(BATCH),
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
        self.drain_pending(sink);
        self.apply_limits(limits);
    }

    fn apply_limits(&mut self, limits: MachineLimits) {
        let inverse = |v: f64| {
            if v > 0.0 && v.is_finite() {
                1.0 / v
            } else {
                0.0
            }
        };
        self.inverse_max_feedrate = limits.max_feedrate.map(inverse);
        self.inverse_max_acceleration = limits.max_acceleration.map(inverse);
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
        self.pending.push((delta, feedrate));
        if self.pending.len() >= BATCH {
            self.drain_pending(sink);
        }
    }

    /// Turns the pending moves into blocks.
    fn drain_pending(&mut self, sink: &mut impl TimeSink) {
        let mut pending = std::mem::take(&mut self.pending);
        for &(delta, feedrate) in &pending {
            self.add_block(delta, feedrate, sink);
        }
        pending.clear();
        self.pending = pending;
    }

    fn add_block(&mut self, delta: [f64; 4], feedrate: f64, sink: &mut impl TimeSink) {
        let xyz2 = delta[0] * delta[0] + delta[1] * delta[1] + delta[2] * delta[2];
        let distance = if xyz2 > 0.0 {
            xyz2.sqrt()
        } else {
            delta[3].abs()
        };
        let l = &self.limits;
        let extruder_only = xyz2 == 0.0;
        let travel = !extruder_only && delta[3] <= 0.0;
        let min_feedrate = if delta[3] == 0.0 {
            l.min_travel_feedrate
        } else {
            l.min_feedrate
        };
        let mut cruise = max(feedrate, min_feedrate);
        let inv_distance = 1.0 / distance;

        // Per-axis feedrate limits: scale down by the axis that exceeds its limit the most.
        let mut scale = cruise * inv_distance;
        let mut worst: f64 = 0.0;
        for (d, inv_max) in delta.iter().zip(self.inverse_max_feedrate) {
            worst = max(worst, (d * scale).abs() * inv_max);
        }
        if worst > 1.0 {
            cruise /= worst;
            scale /= worst;
        }
        let axis_feedrate = delta.map(|d| d * scale);

        // Acceleration by move type, then per-axis limits.
        let mut acceleration = if travel {
            l.travel_acceleration
        } else if extruder_only {
            l.retract_acceleration
        } else {
            l.acceleration
        };
        let mut worst: f64 = 0.0;
        for (d, inv_max) in delta.iter().zip(self.inverse_max_acceleration) {
            worst = max(worst, d.abs() * inv_max);
        }
        let worst = worst * inv_distance;
        // `acceleration > 1 / worst` without the division when no axis limit binds.
        if worst * acceleration > 1.0 {
            acceleration = 1.0 / worst;
        }
        if acceleration.is_nan() || acceleration <= 0.0 {
            acceleration = 1.0;
        }

        // Exit speed that is always safe: within every axis's jerk.
        let mut safe_feedrate = cruise;
        for (v, jerk) in axis_feedrate.iter().zip(l.jerk) {
            let cap = if v.abs() > jerk { jerk } else { f64::INFINITY };
            safe_feedrate = min(safe_feedrate, cap);
        }

        let prev = &self.previous;
        let mut unit = prev.unit;
        let vmax_junction = match l.junction_deviation {
            Some(jd) => {
                unit = [
                    delta[0] * inv_distance,
                    delta[1] * inv_distance,
                    delta[2] * inv_distance,
                ];
                if prev.feedrate > MIN_PREVIOUS_FEEDRATE {
                    junction_deviation_speed(jd, acceleration, prev, unit, cruise)
                } else {
                    safe_feedrate
                }
            }
            None if prev.feedrate > MIN_PREVIOUS_FEEDRATE => {
                jerk_junction_speed(l, prev, cruise, &axis_feedrate, safe_feedrate)
            }
            None => safe_feedrate,
        };
        let two_a_d = 2.0 * acceleration * distance;
        let v_allowable = max_allowable_speed(safe_feedrate, two_a_d);
        self.blocks.push(Block {
            distance,
            acceleration,
            two_a_d,
            entry: min(vmax_junction, v_allowable),
            cruise,
            max_entry: vmax_junction,
            safe_feedrate,
            nominal_length: cruise <= v_allowable,
        });
        self.block_seq += 1;
        self.previous = Previous {
            feedrate: cruise,
            safe_feedrate,
            axis_feedrate,
            unit,
        };
        if self.blocks.len() >= REPLAN_AT {
            self.plan(LOOKAHEAD, sink);
        }
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
        // Forward pass: an accelerating move too short to reach the next entry speed limits it.
        for i in 0..blocks.len().saturating_sub(1) {
            let prev = &blocks[i];
            let (nominal_length, entry, two_a_d) = (prev.nominal_length, prev.entry, prev.two_a_d);
            let next = &mut blocks[i + 1];
            if !nominal_length && entry < next.entry {
                next.entry = min(next.entry, max_allowable_speed(entry, two_a_d));
            }
        }
        // Reverse pass: each move must be able to decelerate to the next one's entry speed.
        for i in (1..blocks.len()).rev() {
            let next_entry = blocks[i].entry;
            let cur = &mut blocks[i - 1];
            if cur.entry != cur.max_entry {
                cur.entry = if !cur.nominal_length && cur.max_entry > next_entry {
                    min(cur.max_entry, max_allowable_speed(next_entry, cur.two_a_d))
                } else {
                    cur.max_entry
                };
            }
        }
        // Finalise: each move ends at the next one's entry speed, the newest at its safe speed.
        let done = blocks.len() - keep.min(blocks.len());
        let first_seq = self.block_seq - blocks.len() as u64;
        for (i, b) in blocks[..done].iter().enumerate() {
            let exit = blocks.get(i + 1).map_or(b.safe_feedrate, |next| next.entry);
            sink.move_starts(first_seq + i as u64, self.time);
            self.time += b.time(exit);
        }
        blocks.drain(..done);
    }
}

/// Classic (Marlin 1.x / Prusa) jerk: the junction speed at which no axis changes speed by more
/// than its jerk.
fn jerk_junction_speed(
    l: &MachineLimits,
    prev: &Previous,
    cruise: f64,
    axis_feedrate: &[f64; 4],
    safe_feedrate: f64,
) -> f64 {
    let prev_larger = prev.feedrate > cruise;
    // Only used when the previous move was faster.
    let smaller_factor = if prev_larger {
        cruise / prev.feedrate
    } else {
        1.0
    };
    let mut vmax = if prev_larger { cruise } else { prev.feedrate };
    // Marlin scales the speeds by the factor found so far before checking the next axis. A jerk
    // scales with the speeds, so that sequence ends at the smallest `max_jerk / jerk` over the
    // axes (at most 1). It is found here as a fraction `num / den`, compared by
    // cross-multiplication: no branch per axis (which axes exceed is data, and mispredicted) and
    // one division instead of one per axis.
    let (mut num, mut den): (f64, f64) = (1.0, 1.0);
    for ((&exit, &v_entry), &max_jerk) in prev.axis_feedrate.iter().zip(axis_feedrate).zip(&l.jerk)
    {
        let v_exit = exit * smaller_factor;
        // Same direction: the change of speed; through zero (or from/to rest): the larger speed.
        let jerk = if v_exit * v_entry > 0.0 {
            (v_exit - v_entry).abs()
        } else {
            max(v_exit.abs(), v_entry.abs())
        };
        // `max_jerk / jerk < num / den`, for `jerk`, `den` >= 0 (false for a jerk of 0).
        let smaller = max_jerk * den < num * jerk;
        num = if smaller { max_jerk } else { num };
        den = if smaller { jerk } else { den };
    }
    vmax *= num / den;
    // Not coasting: both moves would start and stop at their safe speeds anyway.
    let threshold = vmax * 0.99;
    if prev.safe_feedrate > threshold && safe_feedrate > threshold {
        vmax = safe_feedrate;
    }
    vmax
}

/// Marlin 2's junction deviation: the speed of a virtual arc through the corner.
fn junction_deviation_speed(
    jd: f64,
    acceleration: f64,
    prev: &Previous,
    unit: [f64; 3],
    cruise: f64,
) -> f64 {
    let cos_theta = -(prev.unit[0] * unit[0] + prev.unit[1] * unit[1] + prev.unit[2] * unit[2]);
    let vmax = if cos_theta > 0.999_999 {
        // A full reversal.
        MIN_PLANNER_SPEED
    } else if cos_theta < -0.999_999 {
        // Straight on.
        f64::INFINITY
    } else {
        let sin_half = max(0.0, 0.5 * (1.0 - cos_theta)).sqrt();
        (acceleration * jd * sin_half / (1.0 - sin_half)).sqrt()
    };
    min(min(vmax, cruise), prev.feedrate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Starts(Vec<(u64, f64)>);
    impl TimeSink for Starts {
        fn move_starts(&mut self, seq: u64, time: f64) {
            self.0.push((seq, time));
        }
    }

    fn limits() -> MachineLimits {
        MachineLimits {
            max_feedrate: [1000.0; 4],
            max_acceleration: [1e6; 4],
            acceleration: 1000.0,
            retract_acceleration: 1000.0,
            travel_acceleration: 1000.0,
            jerk: [0.0; 4],
            junction_deviation: None,
            min_feedrate: 0.0,
            min_travel_feedrate: 0.0,
        }
    }

    #[test]
    fn single_move_is_a_trapezoid() {
        // 100 mm at 50 mm/s with 1000 mm/s², from and to rest:
        // accelerate 0.05 s over 1.25 mm, cruise 97.5 mm in 1.95 s, decelerate 0.05 s.
        let mut p = Planner::new(limits());
        let mut s = Starts::default();
        p.add_move([100.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        p.flush(&mut s);
        assert!((p.time() - 2.05).abs() < 1e-9, "{}", p.time());
        assert_eq!(s.0, [(0, 0.0)]);
    }

    #[test]
    fn short_move_is_a_triangle() {
        // 1 mm at 100 mm/s, 1000 mm/s²: peak sqrt(1000) mm/s after 0.5 mm; t = 2*sqrt(2*0.5/1000).
        let mut p = Planner::new(limits());
        let mut s = Starts::default();
        p.add_move([1.0, 0.0, 0.0, 0.0], 100.0, &mut s);
        p.flush(&mut s);
        let expected = 2.0 * (2.0 * 0.5 / 1000.0f64).sqrt();
        assert!((p.time() - expected).abs() < 1e-9, "{}", p.time());
    }

    #[test]
    fn collinear_moves_cruise_through_with_jerk() {
        // Two collinear 50 mm moves: with generous jerk they join at full speed, so the time is
        // the same as one 100 mm move.
        let mut l = limits();
        l.jerk = [10.0; 4];
        let mut p = Planner::new(l);
        let mut s = Starts::default();
        p.add_move([50.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        p.add_move([50.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        p.flush(&mut s);
        // Entry/exit at the 10 mm/s jerk: accelerate 10->50 takes 0.04 s over 1.2 mm, both ends.
        let expected = 2.0 * 0.04 + (100.0 - 2.4) / 50.0;
        assert!(
            (p.time() - expected).abs() < 1e-9,
            "{} vs {expected}",
            p.time()
        );
        assert_eq!(s.0.len(), 2);
        assert!((s.0[1].1 - (0.04 + 48.8 / 50.0)).abs() < 1e-9, "{:?}", s.0);
    }

    #[test]
    fn reversal_stops() {
        let mut l = limits();
        l.jerk = [10.0; 4];
        let mut p = Planner::new(l);
        let mut s = Starts::default();
        p.add_move([10.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        p.add_move([-10.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        p.flush(&mut s);
        let mut single = Planner::new(l);
        single.add_move([10.0, 0.0, 0.0, 0.0], 50.0, &mut s);
        single.flush(&mut s);
        // A reversal at 50 mm/s exceeds the 10 mm/s jerk: both halves start/end near the safe speed.
        assert!((p.time() - 2.0 * single.time()).abs() < 1e-6);
    }

    #[test]
    fn feedrate_limit_per_axis() {
        let mut l = limits();
        l.max_feedrate[2] = 5.0;
        let mut p = Planner::new(l);
        let mut s = Starts::default();
        p.add_move([0.0, 0.0, 10.0, 0.0], 100.0, &mut s);
        p.flush(&mut s);
        assert!(p.time() > 2.0 && p.time() < 2.01, "{}", p.time());
    }

    #[test]
    fn dwell_adds_time() {
        let mut p = Planner::new(limits());
        let mut s = Starts::default();
        p.dwell(1.5, &mut s);
        assert_eq!(p.time(), 1.5);
    }

    #[test]
    fn long_runs_are_planned_in_windows() {
        let mut p = Planner::new(limits());
        let mut s = Starts::default();
        for i in 0..10_000 {
            let d = if i % 2 == 0 { 1.0 } else { -1.0 };
            p.add_move([d, 0.0, 0.0, 0.0], 100.0, &mut s);
        }
        p.flush(&mut s);
        assert_eq!(s.0.len(), 10_000);
        assert!(s
            .0
            .windows(2)
            .all(|w| w[0].0 + 1 == w[1].0 && w[0].1 < w[1].1));
        let one = 2.0 * (2.0 * 0.5 / 1000.0f64).sqrt();
        assert!((p.time() - 10_000.0 * one).abs() < 1e-6);
    }
}

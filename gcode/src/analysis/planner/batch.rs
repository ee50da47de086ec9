//! The per-move quantities of a batch of moves, computed column by column.
//!
//! Everything a block needs except the look-ahead depends only on the move itself and the
//! previous move's per-move quantities. So a batch is turned into blocks in passes over arrays (one
//! per quantity): first the per-move values, then the junction speeds from neighbouring pairs. Each
//! pass is a loop without branches (selects only) over independent elements, which the compiler
//! turns into SIMD code: the square roots and divisions of two (SSE2) or four (AVX2) moves run
//! together instead of one long dependent chain per move. The arithmetic is exactly that of a move
//! at a time (same operations in the same order, no fused multiply-adds), so the results are
//! bit-identical.

use super::super::config::MachineLimits;
use super::super::float::{max, min};
use super::{Previous, BATCH, MIN_PLANNER_SPEED, MIN_PREVIOUS_FEEDRATE};

/// Moves waiting to be planned: their deltas (mm, XYZE), feedrates (mm/s) and the accelerations
/// in effect when they came (mm/s², see [`Accelerations`]), one column each.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) len: usize,
    pub(super) delta: [[f64; BATCH]; 4],
    pub(super) feedrate: [f64; BATCH],
    pub(super) acceleration: [[f64; BATCH]; 3],
}

/// The accelerations by move type (`M204 P`, `T`, `R`): printing, travel, extruder only.
/// PrusaSlicer changes them before every feature; kept per move, a change needs no early planning
/// of the waiting moves (unlike the other limits, which the batch computation reads).
pub(super) type Accelerations = [f64; 3];

impl Pending {
    pub(super) fn new() -> Self {
        Pending {
            len: 0,
            delta: [[0.0; BATCH]; 4],
            feedrate: [0.0; BATCH],
            acceleration: [[0.0; BATCH]; 3],
        }
    }

    /// Adds a move; the caller drains a full batch first.
    #[inline]
    pub(super) fn push(&mut self, delta: [f64; 4], feedrate: f64, acceleration: Accelerations) {
        let i = self.len;
        for (column, d) in self.delta.iter_mut().zip(delta) {
            column[i] = d;
        }
        self.feedrate[i] = feedrate;
        for (column, a) in self.acceleration.iter_mut().zip(acceleration) {
            column[i] = a;
        }
        self.len += 1;
    }
}

/// The per-move quantities of a batch. The columns that junctions read from the previous move have
/// one more slot: slot 0 is the move before the batch, slot `i + 1` is move `i`.
#[derive(Debug, Clone)]
pub(super) struct Columns {
    pub(super) distance: [f64; BATCH],
    pub(super) acceleration: [f64; BATCH],
    pub(super) two_a_d: [f64; BATCH],
    /// Highest entry speed from which the move can still end at its safe speed.
    pub(super) v_allowable: [f64; BATCH],
    /// Highest entry speed the junction with the previous move allows.
    pub(super) max_entry: [f64; BATCH],
    pub(super) cruise: [f64; BATCH + 1],
    pub(super) safe_feedrate: [f64; BATCH + 1],
    pub(super) axis_feedrate: [[f64; BATCH + 1]; 4],
    pub(super) unit: [[f64; BATCH + 1]; 3],
}

impl Columns {
    pub(super) fn new() -> Self {
        Columns {
            distance: [0.0; BATCH],
            acceleration: [0.0; BATCH],
            two_a_d: [0.0; BATCH],
            v_allowable: [0.0; BATCH],
            max_entry: [0.0; BATCH],
            cruise: [0.0; BATCH + 1],
            safe_feedrate: [0.0; BATCH + 1],
            axis_feedrate: [[0.0; BATCH + 1]; 4],
            unit: [[0.0; BATCH + 1]; 3],
        }
    }

    /// Slot 0: the move before the batch.
    fn set_previous(&mut self, prev: &Previous) {
        self.cruise[0] = prev.feedrate;
        self.safe_feedrate[0] = prev.safe_feedrate;
        for (column, v) in self.axis_feedrate.iter_mut().zip(prev.axis_feedrate) {
            column[0] = v;
        }
        for (column, v) in self.unit.iter_mut().zip(prev.unit) {
            column[0] = v;
        }
    }

    /// The state after move `i` of the batch, for the next junction. Without junction deviation
    /// the direction is not tracked (it stays that of the last move planned with it).
    pub(super) fn previous_after(
        &self,
        i: usize,
        prev: &Previous,
        junction_deviation: bool,
    ) -> Previous {
        let s = i + 1;
        Previous {
            feedrate: self.cruise[s],
            safe_feedrate: self.safe_feedrate[s],
            axis_feedrate: self.axis_feedrate.map(|c| c[s]),
            unit: if junction_deviation {
                self.unit.map(|c| c[s])
            } else {
                prev.unit
            },
        }
    }
}

/// Per-axis inverse limits (0 for no limit), so the per-move checks multiply.
#[derive(Debug, Clone, Copy)]
pub(super) struct InverseLimits {
    pub(super) max_feedrate: [f64; 4],
    pub(super) max_acceleration: [f64; 4],
}

/// Fills `columns` for the `pending` moves that follow `prev`.
pub(super) fn compute(
    pending: &Pending,
    prev: &Previous,
    limits: &MachineLimits,
    inverse: &InverseLimits,
    columns: &mut Columns,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe {
                compute_avx2(pending, prev, limits, inverse, columns)
            };
            return;
        }
    }
    compute_portable(pending, prev, limits, inverse, columns);
}

/// [`compute`] compiled for AVX2: four moves per instruction instead of two. No FMA: a fused
/// multiply-add rounds differently, and the results must not depend on the CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn compute_avx2(
    pending: &Pending,
    prev: &Previous,
    limits: &MachineLimits,
    inverse: &InverseLimits,
    columns: &mut Columns,
) {
    compute_portable(pending, prev, limits, inverse, columns);
}

#[inline(always)]
fn compute_portable(
    pending: &Pending,
    prev: &Previous,
    limits: &MachineLimits,
    inverse: &InverseLimits,
    columns: &mut Columns,
) {
    let n = pending.len.min(BATCH);
    columns.set_previous(prev);
    per_move(pending, n, limits, inverse, columns);
    match limits.junction_deviation {
        Some(jd) => junction_deviation_speeds(n, jd, columns),
        None => jerk_junction_speeds(n, limits, columns),
    }
}

/// The quantities of each move on its own: length, cruise speed and axis speeds under the
/// feedrate limits, acceleration, safe (jerk-free) speed, direction.
#[inline(always)]
fn per_move(
    pending: &Pending,
    n: usize,
    l: &MachineLimits,
    inverse: &InverseLimits,
    c: &mut Columns,
) {
    for i in 0..n {
        let d = [
            pending.delta[0][i],
            pending.delta[1][i],
            pending.delta[2][i],
            pending.delta[3][i],
        ];
        let xyz2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        let root = xyz2.sqrt();
        let distance = if xyz2 > 0.0 { root } else { d[3].abs() };
        let extruder_only = xyz2 == 0.0;
        let travel = !extruder_only && d[3] <= 0.0;
        let min_feedrate = if d[3] == 0.0 {
            l.min_travel_feedrate
        } else {
            l.min_feedrate
        };
        let cruise = max(pending.feedrate[i], min_feedrate);
        let inv_distance = 1.0 / distance;

        // Per-axis feedrate limits: scale down by the axis that exceeds its limit the most
        // (dividing by 1 when none does is exact, and needs no branch).
        let scale = cruise * inv_distance;
        let mut worst: f64 = 0.0;
        for (d, inv_max) in d.iter().zip(inverse.max_feedrate) {
            worst = max(worst, (d * scale).abs() * inv_max);
        }
        let divisor = if worst > 1.0 { worst } else { 1.0 };
        let cruise = cruise / divisor;
        let scale = scale / divisor;
        let axis_feedrate = d.map(|d| d * scale);

        // Acceleration by move type, then per-axis limits.
        let [printing, travel_moves, extruder_only_moves] = &pending.acceleration;
        let by_type = if travel {
            travel_moves[i]
        } else if extruder_only {
            extruder_only_moves[i]
        } else {
            printing[i]
        };
        let mut worst: f64 = 0.0;
        for (d, inv_max) in d.iter().zip(inverse.max_acceleration) {
            worst = max(worst, d.abs() * inv_max);
        }
        let worst = worst * inv_distance;
        let limited = 1.0 / worst;
        // `by_type > 1 / worst` without relying on the division when no axis limit binds.
        let acceleration = if worst * by_type > 1.0 {
            limited
        } else {
            by_type
        };
        let acceleration = if acceleration.is_nan() || acceleration <= 0.0 {
            1.0
        } else {
            acceleration
        };

        // Exit speed that is always safe: within every axis's jerk.
        let mut safe_feedrate = cruise;
        for (v, jerk) in axis_feedrate.iter().zip(l.jerk) {
            let cap = if v.abs() > jerk { jerk } else { f64::INFINITY };
            safe_feedrate = min(safe_feedrate, cap);
        }
        let two_a_d = 2.0 * acceleration * distance;

        c.distance[i] = distance;
        c.acceleration[i] = acceleration;
        c.two_a_d[i] = two_a_d;
        c.v_allowable[i] = super::max_allowable_speed(safe_feedrate, two_a_d);
        c.cruise[i + 1] = cruise;
        c.safe_feedrate[i + 1] = safe_feedrate;
        for (column, v) in c.axis_feedrate.iter_mut().zip(axis_feedrate) {
            column[i + 1] = v;
        }
        for (column, d) in c.unit.iter_mut().zip(d) {
            column[i + 1] = d * inv_distance;
        }
    }
}

/// Classic (Marlin 1.x / Prusa) jerk: the junction speed at which no axis changes speed by more
/// than its jerk; the safe speed after a stop.
#[inline(always)]
fn jerk_junction_speeds(n: usize, l: &MachineLimits, c: &mut Columns) {
    for i in 0..n {
        let (prev_feedrate, cruise) = (c.cruise[i], c.cruise[i + 1]);
        let (prev_safe, safe) = (c.safe_feedrate[i], c.safe_feedrate[i + 1]);
        let prev_larger = prev_feedrate > cruise;
        // Only used when the previous move was faster (then it is not 0).
        let ratio = cruise / prev_feedrate;
        let smaller_factor = if prev_larger { ratio } else { 1.0 };
        let vmax = if prev_larger { cruise } else { prev_feedrate };
        // Marlin scales the speeds by the factor found so far before checking the next axis. A
        // jerk scales with the speeds, so that sequence ends at the smallest `max_jerk / jerk`
        // over the axes (at most 1). It is found here as a fraction `num / den`, compared by
        // cross-multiplication: one division instead of one per axis.
        let (mut num, mut den): (f64, f64) = (1.0, 1.0);
        for (axis, &max_jerk) in l.jerk.iter().enumerate() {
            let v_exit = c.axis_feedrate[axis][i] * smaller_factor;
            let v_entry = c.axis_feedrate[axis][i + 1];
            // Same direction: the change of speed; through zero (or from/to rest): the larger.
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
        let vmax = vmax * (num / den);
        // Not coasting: both moves would start and stop at their safe speeds anyway.
        let threshold = vmax * 0.99;
        let vmax = if prev_safe > threshold && safe > threshold {
            safe
        } else {
            vmax
        };
        c.max_entry[i] = if prev_feedrate > MIN_PREVIOUS_FEEDRATE {
            vmax
        } else {
            safe
        };
    }
}

/// Marlin 2's junction deviation: the speed of a virtual arc through the corner; the safe speed
/// after a stop.
#[inline(always)]
fn junction_deviation_speeds(n: usize, jd: f64, c: &mut Columns) {
    for i in 0..n {
        let (prev_feedrate, cruise) = (c.cruise[i], c.cruise[i + 1]);
        let dot = c.unit[0][i] * c.unit[0][i + 1]
            + c.unit[1][i] * c.unit[1][i + 1]
            + c.unit[2][i] * c.unit[2][i + 1];
        let cos_theta = -dot;
        let sin_half = max(0.0, 0.5 * (1.0 - cos_theta)).sqrt();
        let arc = (c.acceleration[i] * jd * sin_half / (1.0 - sin_half)).sqrt();
        let vmax = if cos_theta > 0.999_999 {
            // A full reversal.
            MIN_PLANNER_SPEED
        } else if cos_theta < -0.999_999 {
            // Straight on.
            f64::INFINITY
        } else {
            arc
        };
        let vmax = min(min(vmax, cruise), prev_feedrate);
        c.max_entry[i] = if prev_feedrate > MIN_PREVIOUS_FEEDRATE {
            vmax
        } else {
            c.safe_feedrate[i + 1]
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns as bit patterns, to compare NaN and signed zeros too.
    fn bits(c: &Columns) -> Vec<u64> {
        let mut all: Vec<f64> = Vec::new();
        for column in [
            &c.distance,
            &c.acceleration,
            &c.two_a_d,
            &c.v_allowable,
            &c.max_entry,
        ] {
            all.extend_from_slice(column);
        }
        for column in [&c.cruise, &c.safe_feedrate] {
            all.extend_from_slice(column);
        }
        for column in c.axis_feedrate.iter().chain(&c.unit) {
            all.extend_from_slice(column);
        }
        all.into_iter().map(f64::to_bits).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The SIMD build this CPU dispatches to gives the same bits as the portable code.
        #[test]
        fn dispatched_and_portable_columns_are_identical(
            moves in proptest::collection::vec(
                (proptest::array::uniform4(-50.0..50.0f64), 0.01..300.0f64),
                1..=BATCH,
            ),
            jerk in proptest::array::uniform4(0.0..20.0f64),
            junction_deviation in proptest::option::of(0.001..0.1f64),
            max_feedrate in proptest::array::uniform4(0.0..400.0f64),
        ) {
            let limits = MachineLimits {
                jerk,
                junction_deviation,
                max_feedrate,
                ..MachineLimits::default()
            };
            let inverse = InverseLimits {
                max_feedrate: max_feedrate.map(|v| if v > 0.0 { 1.0 / v } else { 0.0 }),
                max_acceleration: limits.max_acceleration.map(|v| if v > 0.0 { 1.0 / v } else { 0.0 }),
            };
            let mut pending = Pending::new();
            for &(d, f) in &moves {
                pending.push(d, f, super::super::accelerations(&limits));
            }
            let prev = Previous {
                feedrate: 40.0,
                safe_feedrate: 10.0,
                axis_feedrate: [30.0, -20.0, 0.0, 1.5],
                unit: [0.6, -0.8, 0.0],
            };
            let (mut dispatched, mut portable) = (Columns::new(), Columns::new());
            compute(&pending, &prev, &limits, &inverse, &mut dispatched);
            compute_portable(&pending, &prev, &limits, &inverse, &mut portable);
            proptest::prop_assert_eq!(bits(&dispatched), bits(&portable));
        }
    }
}

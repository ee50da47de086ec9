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

/// A plain reference of the same model: one move at a time, straight from the formulas (Marlin's
/// and PrusaSlicer's planner), with the same look-ahead windows. The planner must agree with it.
// Axis loops by index, as the firmware writes them.
#[allow(clippy::needless_range_loop)]
mod reference {
    use super::super::{LOOKAHEAD, MIN_PLANNER_SPEED, MIN_PREVIOUS_FEEDRATE, REPLAN_AT};
    use crate::analysis::config::MachineLimits;

    #[derive(Clone, Copy)]
    struct Block {
        distance: f64,
        acceleration: f64,
        entry: f64,
        max_entry: f64,
        cruise: f64,
        safe: f64,
        nominal_length: bool,
        seq: u64,
    }

    #[derive(Clone, Copy, Default)]
    struct Previous {
        feedrate: f64,
        safe: f64,
        axis: [f64; 4],
        unit: [f64; 3],
    }

    pub(super) struct Reference {
        pub(super) limits: MachineLimits,
        blocks: Vec<Block>,
        previous: Previous,
        pub(super) time: f64,
        next_seq: u64,
        pub(super) starts: Vec<(u64, f64)>,
    }

    fn v_from(speed: f64, a: f64, d: f64) -> f64 {
        (speed * speed + 2.0 * a * d).max(0.0).sqrt()
    }

    impl Reference {
        pub(super) fn new(limits: MachineLimits) -> Self {
            Reference {
                limits,
                blocks: Vec::new(),
                previous: Previous::default(),
                time: 0.0,
                next_seq: 0,
                starts: Vec::new(),
            }
        }

        pub(super) fn add_move(&mut self, d: [f64; 4], feedrate: f64) {
            let l = self.limits;
            let xyz = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            let distance = if xyz > 0.0 { xyz } else { d[3].abs() };
            if distance.is_nan()
                || distance < 1e-9
                || !distance.is_finite()
                || feedrate.is_nan()
                || feedrate <= 0.0
            {
                return;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let min_feedrate = if d[3] == 0.0 {
                l.min_travel_feedrate
            } else {
                l.min_feedrate
            };
            let mut cruise = feedrate.max(min_feedrate);
            let mut factor: f64 = 1.0;
            for a in 0..4 {
                let limit = l.max_feedrate[a];
                let v = (d[a] * cruise / distance).abs();
                if limit > 0.0 && limit.is_finite() && v > limit {
                    factor = factor.min(limit / v);
                }
            }
            cruise *= factor;
            let axis = d.map(|x| x * cruise / distance);
            let mut acceleration = if xyz == 0.0 {
                l.retract_acceleration
            } else if d[3] <= 0.0 {
                l.travel_acceleration
            } else {
                l.acceleration
            };
            for a in 0..4 {
                let limit = l.max_acceleration[a];
                if limit > 0.0 && limit.is_finite() && acceleration * d[a].abs() / distance > limit
                {
                    acceleration = limit * distance / d[a].abs();
                }
            }
            if acceleration.is_nan() || acceleration <= 0.0 {
                acceleration = 1.0;
            }
            let mut safe = cruise;
            for a in 0..4 {
                if axis[a].abs() > l.jerk[a] {
                    safe = safe.min(l.jerk[a]);
                }
            }
            let unit = [d[0] / distance, d[1] / distance, d[2] / distance];
            let prev = self.previous;
            let max_entry = if prev.feedrate <= MIN_PREVIOUS_FEEDRATE {
                safe
            } else if let Some(jd) = l.junction_deviation {
                let cos =
                    -(prev.unit[0] * unit[0] + prev.unit[1] * unit[1] + prev.unit[2] * unit[2]);
                let v = if cos > 0.999_999 {
                    MIN_PLANNER_SPEED
                } else if cos < -0.999_999 {
                    f64::INFINITY
                } else {
                    let sin_half = (0.5 * (1.0 - cos)).max(0.0).sqrt();
                    (acceleration * jd * sin_half / (1.0 - sin_half)).sqrt()
                };
                v.min(cruise).min(prev.feedrate)
            } else {
                // Marlin's classic jerk, axis by axis.
                let (mut vmax, factor) = if prev.feedrate > cruise {
                    (cruise, cruise / prev.feedrate)
                } else {
                    (prev.feedrate, 1.0)
                };
                let mut scale = 1.0;
                for a in 0..4 {
                    let (exit, entry) = (prev.axis[a] * factor * scale, axis[a] * scale);
                    let jerk = if exit * entry > 0.0 {
                        (exit - entry).abs()
                    } else {
                        exit.abs().max(entry.abs())
                    };
                    if jerk > l.jerk[a] {
                        let s = l.jerk[a] / jerk;
                        scale *= s;
                        vmax *= s;
                    }
                }
                if prev.safe > vmax * 0.99 && safe > vmax * 0.99 {
                    safe
                } else {
                    vmax
                }
            };
            let v_allowable = v_from(safe, acceleration, distance);
            self.blocks.push(Block {
                distance,
                acceleration,
                entry: max_entry.min(v_allowable),
                max_entry,
                cruise,
                safe,
                nominal_length: cruise <= v_allowable,
                seq,
            });
            self.previous = Previous {
                feedrate: cruise,
                safe,
                axis,
                unit: if l.junction_deviation.is_some() {
                    unit
                } else {
                    prev.unit
                },
            };
            if self.blocks.len() >= REPLAN_AT {
                self.plan(LOOKAHEAD);
            }
        }

        pub(super) fn set_limits(&mut self, limits: MachineLimits) {
            self.limits = limits;
        }

        pub(super) fn dwell(&mut self, seconds: f64) {
            self.flush();
            if seconds > 0.0 && seconds.is_finite() {
                self.starts.push((self.next_seq, self.time));
                self.next_seq += 1;
                self.time += seconds;
            }
        }

        pub(super) fn flush(&mut self) {
            self.plan(0);
            self.previous = Previous::default();
        }

        fn plan(&mut self, keep: usize) {
            let b = &mut self.blocks;
            for i in 1..b.len() {
                let prev = b[i - 1];
                if !prev.nominal_length && prev.entry < b[i].entry {
                    let reachable = v_from(prev.entry, prev.acceleration, prev.distance);
                    b[i].entry = b[i].entry.min(reachable);
                }
            }
            for i in (1..b.len()).rev() {
                let next_entry = b[i].entry;
                let cur = &mut b[i - 1];
                if cur.entry != cur.max_entry {
                    cur.entry = if !cur.nominal_length && cur.max_entry > next_entry {
                        cur.max_entry
                            .min(v_from(next_entry, cur.acceleration, cur.distance))
                    } else {
                        cur.max_entry
                    };
                }
            }
            let done = b.len().saturating_sub(keep);
            for i in 0..done {
                let exit = b.get(i + 1).map_or(b[i].safe, |n| n.entry);
                self.starts.push((b[i].seq, self.time));
                self.time += trapezoid_time(&b[i], exit);
            }
            b.drain(..done);
        }
    }

    /// Accelerate, cruise, decelerate; or accelerate to a peak and decelerate.
    fn trapezoid_time(b: &Block, exit: f64) -> f64 {
        let (entry, cruise, a, d) = (b.entry, b.cruise, b.acceleration, b.distance);
        let accelerate = ((cruise * cruise - entry * entry) / (2.0 * a)).max(0.0);
        let decelerate = ((cruise * cruise - exit * exit) / (2.0 * a)).max(0.0);
        if accelerate + decelerate <= d {
            let ramps = (cruise - entry).max(0.0) + (cruise - exit).max(0.0);
            let cruise_time = if cruise > 0.0 {
                (d - accelerate - decelerate) / cruise
            } else {
                0.0
            };
            return ramps / a + cruise_time;
        }
        let accelerate = (0.5 * d + (exit * exit - entry * entry) / (4.0 * a))
            .max(0.0)
            .min(d);
        let peak = (entry * entry + 2.0 * a * accelerate).max(0.0).sqrt();
        let end = (peak * peak - 2.0 * a * (d - accelerate)).max(0.0).sqrt();
        (peak - entry + peak - end) / a
    }
}

/// One step of a random planner session.
#[derive(Debug, Clone)]
enum Step {
    Move([f64; 4], f64),
    Dwell(f64),
    Flush,
    Limits(MachineLimits),
    /// `M204 P T R`: only the accelerations by move type change.
    Accelerations(Accelerations),
}

fn arb_limits() -> impl Strategy<Value = MachineLimits> {
    use proptest::prelude::*;
    let axis = prop_oneof![
        3 => 1.0..500.0f64,
        1 => Just(0.0),
        1 => Just(f64::INFINITY),
    ];
    (
        proptest::array::uniform4(axis.clone()),
        proptest::array::uniform4(axis),
        (1.0..5000.0f64, 1.0..5000.0f64, 1.0..5000.0f64),
        proptest::array::uniform4(0.0..20.0f64),
        proptest::option::of(0.001..0.1f64),
        (0.0..5.0f64, 0.0..5.0f64),
    )
        .prop_map(
            |(max_feedrate, max_acceleration, (a, r, t), jerk, jd, (mf, mt))| MachineLimits {
                max_feedrate,
                max_acceleration,
                acceleration: a,
                retract_acceleration: r,
                travel_acceleration: t,
                jerk,
                junction_deviation: jd,
                min_feedrate: mf,
                min_travel_feedrate: mt,
            },
        )
}

fn arb_step() -> impl Strategy<Value = Step> {
    use proptest::prelude::*;
    let coordinate = prop_oneof![
        4 => -20.0..20.0f64,
        2 => Just(0.0),
        1 => -1e-6..1e-6f64,
        1 => -300.0..300.0f64,
    ];
    let feedrate = prop_oneof![8 => 0.5..300.0f64, 1 => Just(0.0), 1 => 1e-6..0.1f64];
    prop_oneof![
        200 => (proptest::array::uniform4(coordinate), feedrate)
            .prop_map(|(d, f)| Step::Move(d, f)),
        2 => (0.0..3.0f64).prop_map(Step::Dwell),
        1 => Just(Step::Flush),
        2 => arb_limits().prop_map(Step::Limits),
        4 => proptest::array::uniform3(1.0..5000.0f64).prop_map(Step::Accelerations),
    ]
}

/// Agreement of two formulations of the same model. Not 1e-9: a triangle's end speed is the root
/// of a difference that cancels to about 0 when the move ends near rest, so a rounding of 1e-16 in
/// the reference's other order of operations becomes about 1e-8 there (seen: 4e-9 relative).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-7 * a.abs().max(b.abs()).max(1.0)
}

use proptest::prelude::Strategy;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// The batched, column-wise planner gives the reference's times for every move.
    #[test]
    fn batched_planner_matches_the_reference(
        limits in arb_limits(),
        steps in proptest::collection::vec(arb_step(), 0..900),
    ) {
        let mut planner = Planner::new(limits);
        let mut starts = Starts::default();
        let mut reference = reference::Reference::new(limits);
        for step in &steps {
            match *step {
                Step::Move(d, f) => {
                    planner.add_move(d, f, &mut starts);
                    reference.add_move(d, f);
                }
                Step::Dwell(s) => {
                    planner.dwell(s, &mut starts);
                    reference.dwell(s);
                }
                Step::Flush => {
                    planner.flush(&mut starts);
                    reference.flush();
                }
                Step::Limits(l) => {
                    planner.set_limits(l, &mut starts);
                    reference.set_limits(l);
                }
                Step::Accelerations(a) => {
                    let l = with_accelerations(planner.limits(), a);
                    planner.set_limits(l, &mut starts);
                    reference.set_limits(l);
                }
            }
        }
        planner.flush(&mut starts);
        reference.flush();
        proptest::prop_assert!(close(planner.time(), reference.time), "{} vs {}", planner.time(), reference.time);
        proptest::prop_assert_eq!(starts.0.len(), reference.starts.len());
        for (&(seq, t), &(rseq, rt)) in starts.0.iter().zip(&reference.starts) {
            proptest::prop_assert_eq!(seq, rseq);
            proptest::prop_assert!(close(t, rt), "move {}: {} vs {}", seq, t, rt);
        }
    }
}

fn with_accelerations(limits: &MachineLimits, [p, t, r]: Accelerations) -> MachineLimits {
    MachineLimits {
        acceleration: p,
        travel_acceleration: t,
        retract_acceleration: r,
        ..*limits
    }
}

impl Planner {
    /// [`Planner::set_limits`] as it was before accelerations were kept per move: the waiting
    /// moves are always planned first.
    fn set_limits_draining(&mut self, limits: MachineLimits, sink: &mut impl TimeSink) {
        self.drain_pending(sink);
        self.apply_limits(limits);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// A change of the accelerations alone leaves the waiting moves waiting, with bit for bit the
    /// times of planning them first.
    #[test]
    fn acceleration_changes_keep_the_batch_with_identical_times(
        limits in arb_limits(),
        steps in proptest::collection::vec(arb_step(), 0..900),
    ) {
        let mut kept = Planner::new(limits);
        let mut drained = Planner::new(limits);
        let (mut kept_starts, mut drained_starts) = (Starts::default(), Starts::default());
        for step in &steps {
            match *step {
                Step::Move(d, f) => {
                    kept.add_move(d, f, &mut kept_starts);
                    drained.add_move(d, f, &mut drained_starts);
                }
                Step::Dwell(s) => {
                    kept.dwell(s, &mut kept_starts);
                    drained.dwell(s, &mut drained_starts);
                }
                Step::Flush => {
                    kept.flush(&mut kept_starts);
                    drained.flush(&mut drained_starts);
                }
                Step::Limits(l) => {
                    kept.set_limits(l, &mut kept_starts);
                    drained.set_limits_draining(l, &mut drained_starts);
                }
                Step::Accelerations(a) => {
                    let l = with_accelerations(kept.limits(), a);
                    kept.set_limits(l, &mut kept_starts);
                    drained.set_limits_draining(l, &mut drained_starts);
                }
            }
        }
        kept.flush(&mut kept_starts);
        drained.flush(&mut drained_starts);
        proptest::prop_assert_eq!(kept.time().to_bits(), drained.time().to_bits());
        let bits = |s: &Starts| s.0.iter().map(|&(seq, t)| (seq, t.to_bits())).collect::<Vec<_>>();
        proptest::prop_assert_eq!(bits(&kept_starts), bits(&drained_starts));
        proptest::prop_assert_eq!(kept.limits(), drained.limits());
    }
}

/// The forward pass as one loop carrying the speed from step to step (its first formulation).
fn forward_pass_one_loop(blocks: &mut [Block]) {
    let mut entry = blocks[0].entry;
    for i in 0..blocks.len() - 1 {
        let prev = &blocks[i];
        let (nominal_length, two_a_d) = (prev.nominal_length, prev.two_a_d);
        let next = &mut blocks[i + 1];
        if !nominal_length && entry < next.entry {
            next.entry = min(next.entry, max_allowable_speed(entry, two_a_d));
        }
        entry = next.entry;
    }
}

fn arb_block() -> impl Strategy<Value = Block> {
    use proptest::prelude::*;
    // Few distinct speeds, so that equal neighbours and long chains of lowered speeds occur.
    let speed = prop_oneof![
        3 => (0u32..8).prop_map(|k| f64::from(k) * 5.0),
        3 => 0.0..60.0f64,
        1 => Just(0.0),
    ];
    (speed.clone(), speed, 0.0..400.0f64, any::<bool>()).prop_map(
        |(entry, max_entry, two_a_d, nominal_length)| Block {
            distance: 1.0,
            acceleration: 1000.0,
            two_a_d,
            entry: entry.min(max_entry),
            cruise: max_entry,
            max_entry,
            safe_feedrate: 0.0,
            nominal_length,
        },
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// The two-loop forward pass sets the entry speeds of the one-loop formulation, bit for bit.
    #[test]
    fn forward_pass_equals_the_one_loop_pass(
        blocks in proptest::collection::vec(arb_block(), 1..300),
    ) {
        let (mut two_loops, mut one_loop) = (blocks.clone(), blocks);
        forward_pass(&mut two_loops);
        forward_pass_one_loop(&mut one_loop);
        let bits = |b: &[Block]| b.iter().map(|b| b.entry.to_bits()).collect::<Vec<_>>();
        proptest::prop_assert_eq!(bits(&two_loops), bits(&one_loop));
    }
}

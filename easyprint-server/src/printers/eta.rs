//! The time a running print has left: the analysis' estimate from the acknowledged position,
//! scaled by the pace this printer has really kept against that estimate so far.
//!
//! Why: a printer's own limits (acceleration, jerk, a feedrate override) often differ from
//! those the analysis assumed, which puts a pure model estimate off by a roughly constant
//! factor for the whole print. OctoPrint blends the observed pace into its analysis estimate
//! ("mixed-analysis"); so do we. Heat-up, pauses and waits for a person (`M0`, a filament
//! change) are time the model counts as zero: they are left out of the pace instead of
//! stretching every later estimate.
//!
//! Sans-IO: [`PaceTracker::observe`] takes the time and the model's elapsed seconds at the
//! acknowledged position, so tests drive it step by step.

use std::time::Instant;

/// A stretch between two observations longer than this, in which the model advanced less
/// than a quarter of it ([`STALL_FACTOR`]), is a stall (heating, paused, waiting): it does
/// not count towards the pace. Ordinary moves last well under 10 s.
const STALL_SECS: f64 = 10.0;
const STALL_FACTOR: f64 = 4.0;
/// Model seconds observed before the pace is used at all (the first acknowledgements run
/// ahead of the motion by the firmware's planner buffer).
const MIN_MODEL_SECS: f64 = 30.0;
/// Model seconds observed at which the pace has its full weight.
const FULL_WEIGHT_MODEL_SECS: f64 = 300.0;
/// The pace is clamped to this range: a wildly different printer is more likely a stall the
/// rule above missed than a printer four times slower than its own file says.
const PACE_RANGE: (f64, f64) = (0.25, 4.0);

/// Wall time against model time over a print's active stretches.
#[derive(Debug, Clone, Default)]
pub struct PaceTracker {
    last: Option<(Instant, f64)>,
    wall_secs: f64,
    model_secs: f64,
}

/// Where an estimate came from, in OctoPrint's words (`printTimeLeftOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimateOrigin {
    /// The analysis alone: too little of the print seen yet.
    Analysis,
    /// The analysis scaled by the observed pace.
    MixedAnalysis,
}

impl EstimateOrigin {
    /// OctoPrint's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateOrigin::Analysis => "analysis",
            EstimateOrigin::MixedAnalysis => "mixed-analysis",
        }
    }
}

impl PaceTracker {
    /// Records that at `now` the printer had acknowledged the file up to where the model
    /// says `model_elapsed` seconds of printing have passed.
    pub fn observe(&mut self, now: Instant, model_elapsed: f64) {
        if let Some((at, model)) = self.last {
            let wall = now.saturating_duration_since(at).as_secs_f64();
            let advanced = (model_elapsed - model).max(0.0);
            let stalled = wall > STALL_SECS && wall > STALL_FACTOR * advanced;
            if !stalled {
                self.wall_secs += wall;
                self.model_secs += advanced;
            }
        }
        self.last = Some((now, model_elapsed));
    }

    /// How much longer than the model the printer takes (1.0 until enough is seen), and
    /// whether the observation was used.
    pub fn pace(&self) -> (f64, EstimateOrigin) {
        if self.model_secs < MIN_MODEL_SECS {
            return (1.0, EstimateOrigin::Analysis);
        }
        let observed = (self.wall_secs / self.model_secs).clamp(PACE_RANGE.0, PACE_RANGE.1);
        let weight = (self.model_secs / FULL_WEIGHT_MODEL_SECS).min(1.0);
        (
            1.0 + weight * (observed - 1.0),
            EstimateOrigin::MixedAnalysis,
        )
    }

    /// Seconds left, given the model's seconds left from the acknowledged position.
    pub fn time_left(&self, model_remaining: f64) -> (f64, EstimateOrigin) {
        let (pace, origin) = self.pace();
        (model_remaining * pace, origin)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Feeds one observation per second of wall time, the model advancing `model_per_sec`.
    fn run(
        tracker: &mut PaceTracker,
        start: Instant,
        from: u64,
        secs: u64,
        model: &mut f64,
        rate: f64,
    ) {
        for s in from..from + secs {
            *model += rate;
            tracker.observe(start + Duration::from_secs(s + 1), *model);
        }
    }

    #[test]
    fn a_printer_on_the_model_pace_gets_the_model_estimate() {
        let start = Instant::now();
        let mut t = PaceTracker::default();
        t.observe(start, 0.0);
        let mut model = 0.0;
        run(&mut t, start, 0, 600, &mut model, 1.0);
        let (left, origin) = t.time_left(1000.0);
        assert_eq!(origin, EstimateOrigin::MixedAnalysis);
        assert!((left - 1000.0).abs() < 1e-6, "{left}");
    }

    #[test]
    fn a_slower_printer_stretches_the_estimate_gradually() {
        let start = Instant::now();
        let mut t = PaceTracker::default();
        t.observe(start, 0.0);
        let mut model = 0.0;
        // 20 s of wall time, 16 s of model time: too little to judge.
        run(&mut t, start, 0, 20, &mut model, 0.8);
        assert_eq!(t.time_left(100.0), (100.0, EstimateOrigin::Analysis));
        // 100 s of model time seen: a third of the full weight of a 1.25 pace.
        run(&mut t, start, 20, 105, &mut model, 0.8);
        let (pace, _) = t.pace();
        assert!(
            (pace - (1.0 + (100.0 / 300.0) * 0.25)).abs() < 1e-9,
            "{pace}"
        );
        // Past 300 model seconds the observed pace is used as is.
        run(&mut t, start, 125, 400, &mut model, 0.8);
        let (left, origin) = t.time_left(100.0);
        assert_eq!(origin, EstimateOrigin::MixedAnalysis);
        assert!((left - 125.0).abs() < 1e-6, "{left}");
    }

    #[test]
    fn heat_up_and_pauses_do_not_count_towards_the_pace() {
        let start = Instant::now();
        let mut t = PaceTracker::default();
        t.observe(start, 0.0);
        // Heating for 4 minutes: no acknowledgement until the M109 completes, then the
        // planner fills at once (5 model seconds in no time).
        t.observe(start + Duration::from_secs(240), 0.0);
        t.observe(start + Duration::from_secs(240), 5.0);
        let mut model = 5.0;
        run(&mut t, start, 240, 300, &mut model, 1.0);
        // A 10-minute pause in which the planner drains 3 s of moves.
        t.observe(start + Duration::from_secs(1140), model + 3.0);
        model += 3.0;
        run(&mut t, start, 1140, 300, &mut model, 1.0);
        let (pace, _) = t.pace();
        assert!((pace - 1.0).abs() < 0.02, "{pace}");
    }

    #[test]
    fn a_pace_far_out_of_range_is_clamped() {
        let start = Instant::now();
        let mut t = PaceTracker::default();
        t.observe(start, 0.0);
        let mut model = 0.0;
        run(&mut t, start, 0, 4000, &mut model, 0.1);
        assert_eq!(t.pace().0, PACE_RANGE.1);
    }
}

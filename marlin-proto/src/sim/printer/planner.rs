//! The motion planner: moves become timed blocks, retired as time passes, with underrun
//! accounting.

use std::time::{Duration, Instant};

use super::execute::Words;
use super::SimPrinter;
use crate::sim::config::MoveTiming;

impl SimPrinter {
    pub(super) fn retire_planner(&mut self, now: Instant) {
        while let Some(end) = self.head_end.filter(|e| *e <= now) {
            self.planner.pop_front();
            match self.planner.front() {
                Some(d) => self.head_end = Some(end + *d),
                None => {
                    self.head_end = None;
                    self.empty_since = Some(end);
                }
            }
        }
    }

    pub(super) fn push_block(&mut self, now: Instant, d: Duration) {
        if self.planner.is_empty() {
            self.head_end = Some(now + d);
            if let Some(since) = self.empty_since.take() {
                if now > since {
                    self.stats.underruns += 1;
                    self.stats.starved += now - since;
                }
            }
        }
        self.planner.push_back(d);
    }

    pub(super) fn plan_move(&mut self, words: &Words<'_>) -> Option<Duration> {
        if let Some(f) = words.get('F') {
            if f > 0.0 {
                self.feedrate = f;
            }
        }
        let mut delta = [0.0; 4];
        for (i, axis) in ['X', 'Y', 'Z', 'E'].into_iter().enumerate() {
            if let Some(v) = words.get(axis) {
                let relative = if axis == 'E' {
                    self.relative_e.unwrap_or(self.relative)
                } else {
                    self.relative
                };
                let target = if relative { self.position[i] + v } else { v };
                delta[i] = target - self.position[i];
                self.position[i] = target;
            }
        }
        let xyz = (delta[0].powi(2) + delta[1].powi(2) + delta[2].powi(2)).sqrt();
        let length = if xyz > 0.0 { xyz } else { delta[3].abs() };
        if length == 0.0 {
            return None;
        }
        Some(match self.config.moves {
            MoveTiming::Kinematic => Duration::from_secs_f64(length / (self.feedrate / 60.0)),
            MoveTiming::Fixed(d) => d,
            MoveTiming::Instant => Duration::ZERO,
        })
    }
}

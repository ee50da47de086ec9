//! The motion planner: moves become timed blocks, retired as time passes, with underrun
//! accounting.
//!
//! Like Marlin's `Planner::get_current_block`, a move queued while the planner is empty (no
//! block running either) does not start at once: it waits until three moves are queued or
//! [`SimConfig::first_move_delay`](crate::sim::SimConfig::first_move_delay) has passed
//! (`BLOCK_DELAY_FOR_1ST_MOVE`, 100 ms counted by the idle stepper interrupt's 1 ms ticks;
//! modelled without the ticks). So a print's first move, or the first after the planner ran
//! dry, waits for the host's next lines instead of running alone.

use std::time::{Duration, Instant};

use super::execute::Words;
use super::{Block, SimPrinter};
use crate::sim::config::MoveTiming;

/// Marlin delivers a first move at once when this many moves are queued.
const FIRST_MOVE_COMPANIONS: usize = 3;

impl SimPrinter {
    pub(super) fn retire_planner(&mut self, now: Instant) {
        if let Some(due) = self.first_move_due.filter(|d| *d <= now) {
            self.start_motion(due);
        }
        while let Some(end) = self.head_end.filter(|e| *e <= now) {
            self.planner.pop_front();
            match self.planner.front() {
                Some(d) => self.head_end = Some(end + *d),
                None => {
                    self.head_end = None;
                    // Running dry while a command waits on purpose (`G4`, `G28`, `M400`,
                    // `M109`, `M0`) is no underrun: the host could not have helped it.
                    let asked = matches!(
                        self.blocked,
                        Some(Block::Drain(_) | Block::Until(_) | Block::Heat(_) | Block::User)
                    );
                    self.empty_since = (!asked).then_some(end);
                }
            }
        }
    }

    pub(super) fn push_block(&mut self, now: Instant, d: Duration) {
        let was_empty = self.planner.is_empty();
        self.planner.push_back(d);
        let delay = match self.config.moves {
            MoveTiming::Instant => Duration::ZERO,
            _ => self.config.first_move_delay,
        };
        if was_empty {
            if delay.is_zero() {
                self.start_motion(now);
            } else {
                self.first_move_due = Some(now + delay);
            }
        } else if self.first_move_due.is_some() && self.planner.len() >= FIRST_MOVE_COMPANIONS {
            self.start_motion(now);
        }
    }

    /// The front block starts running at `at`; if the planner had run dry during the print,
    /// that was an underrun lasting until now.
    fn start_motion(&mut self, at: Instant) {
        self.first_move_due = None;
        let Some(d) = self.planner.front() else {
            return;
        };
        self.head_end = Some(at + *d);
        if let Some(since) = self.empty_since.take() {
            if at > since {
                self.stats.underruns += 1;
                self.stats.starved += at - since;
            }
        }
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

#[cfg(test)]
mod tests;

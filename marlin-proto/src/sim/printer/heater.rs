//! Heaters: a linear heating curve toward the target, and the temperature report line.

use std::time::{Duration, Instant};

use super::SimPrinter;

impl SimPrinter {
    /// The ` T:… B:… @:… B@:…` report for `now` (after `ok` for `M105`, alone for `M155`).
    pub(super) fn temperature_line(&self, now: Instant) -> String {
        let rate = self.config.heating_rate;
        format!(
            " T:{:.2} /{:.2} B:{:.2} /{:.2} @:{} B@:{}",
            self.hotend.temp_at(now, rate),
            self.hotend.target,
            self.bed.temp_at(now, rate / 4.0),
            self.bed.target,
            if self.hotend.target > 0.0 { 127 } else { 0 },
            if self.bed.target > 0.0 { 127 } else { 0 },
        )
    }
}

/// A heater warming at a fixed rate toward its target, cooling four times slower.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heater {
    temp: f64,
    /// The target temperature (0: off).
    pub(super) target: f64,
    /// When `temp` was measured (`None`: never heated).
    at: Option<Instant>,
}

impl Heater {
    const AMBIENT: f64 = 22.0;

    pub(super) fn new() -> Self {
        Self {
            temp: Self::AMBIENT,
            target: 0.0,
            at: None,
        }
    }

    pub(super) fn temp_at(&self, now: Instant, rate: f64) -> f64 {
        let Some(at) = self.at else { return self.temp };
        let dt = now.saturating_duration_since(at).as_secs_f64();
        let goal = self.target.max(Self::AMBIENT);
        if goal >= self.temp {
            (self.temp + rate * dt).min(goal)
        } else {
            (self.temp - rate / 4.0 * dt).max(goal)
        }
    }

    pub(super) fn set_target(&mut self, now: Instant, target: f64, rate: f64) {
        self.temp = self.temp_at(now, rate);
        self.at = Some(now);
        self.target = target;
    }

    pub(super) fn reached_at(&self, now: Instant, rate: f64) -> Instant {
        let t = self.temp_at(now, rate);
        if t >= self.target - 0.5 {
            return now;
        }
        now + Duration::from_secs_f64((self.target - t) / rate)
    }
}

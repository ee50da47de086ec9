//! Keeping temperature reports coming: `M155` autoreport or polled `M105`s.

use super::*;

impl Session {
    /// Chooses how temperatures keep coming, once connected: `M155` first in line when the
    /// firmware autoreports, else polls from now on.
    pub(super) fn arm_temperature_reports(&mut self, now: Instant) {
        self.next_temperature_poll = None;
        let Some(interval) = self.config.temperature_interval else {
            self.temperatures = TemperatureReporting::Off;
            return;
        };
        if self.firmware.has("AUTOREPORT_TEMP") {
            // Marlin takes whole seconds, at most 60.
            let secs = interval.as_secs_f64().round().clamp(1.0, 60.0) as u64;
            self.queue.push_front(Queued {
                id: None,
                payload: Payload::internal(&format!("M155 S{secs}")),
            });
            self.temperatures = TemperatureReporting::Autoreport {
                interval: Duration::from_secs(secs),
            };
        } else {
            self.temperatures = TemperatureReporting::Polled { interval };
            self.next_temperature_poll = Some(now);
        }
    }

    /// Queues an `M105` poll when one is due and none is queued or outstanding.
    pub(super) fn poll_temperatures(&mut self, now: Instant) {
        let TemperatureReporting::Polled { interval } = self.temperatures else {
            return;
        };
        if self.phase != Phase::Ready || self.next_temperature_poll.is_none_or(|t| t > now) {
            return;
        }
        self.next_temperature_poll = Some(now + interval);
        if !self.host_commands {
            return;
        }
        let asked = self.in_flight.iter().any(|f| f.m105)
            || self
                .queue
                .iter()
                .any(|q| q.payload.code().eq_ignore_ascii_case("M105"));
        if !asked {
            self.queue.push_back(Queued {
                id: None,
                payload: Payload::internal("M105"),
            });
        }
    }
}

//! `Resend:`/`rs`: rewinding to a line from the history, ignoring the duplicate requests
//! lines already in flight cause, and giving up on requests that cannot be met.

use super::transmit::SYNC_EVERY;
use super::*;

impl Session {
    pub(super) fn on_resend(&mut self, now: Instant, line: Option<i64>) {
        let reason = self.last_error.take();
        if matches!(self.phase, Phase::Connecting | Phase::Failed) {
            if self.phase == Phase::Connecting {
                self.hello_answered = line.or(Some(0));
            }
            self.events
                .push_back(Event::Warning(Warning::IgnoredResend {
                    line,
                    why: "not connected yet",
                }));
            return;
        }
        if self.resend_ok() != ResendOk::Never {
            self.awaiting_resend_ok = Some(now + self.config.resend_ok_timeout);
        }
        let Some(n) = line else {
            self.events
                .push_back(Event::Warning(Warning::IgnoredResend {
                    line,
                    why: "no line number given",
                }));
            return;
        };
        let checksum_error = matches!(
            reason,
            Some(FirmwareError::Checksum { .. } | FirmwareError::NoChecksum { .. })
        );
        if let Some((l, left)) = self.duplicates {
            if l == n && left > 0 && !checksum_error {
                self.duplicates = Some((l, left - 1));
                self.events
                    .push_back(Event::Warning(Warning::IgnoredResend {
                        line,
                        why: "duplicate request caused by lines sent before the first request",
                    }));
                return;
            }
        }
        if n == self.next_line {
            // The firmware has every line sent so far: nothing to re-send, and lines a rewind
            // took out of flight (their `ok`s may have been taken for a resend's) are done.
            self.resend_cursor = None;
            if self.retransmitted.take() == Some(n - 1) {
                // The copy was refused: the firmware had the line, its `ok` was lost.
                if let Some(pos) = self.in_flight.iter().position(|f| f.line == Some(n - 1)) {
                    self.remove_in_flight(pos);
                }
            }
            self.acknowledge_through(n - 1);
            self.events
                .push_back(Event::Warning(Warning::IgnoredResend {
                    line,
                    why: "the requested line has not been sent yet",
                }));
            return;
        }
        if n > self.next_line || n < 0 {
            self.fail(FatalError::ResendNotSent {
                requested: n,
                next: self.next_line,
            });
            return;
        }
        let oldest = self.history.front().map(|s| s.line);
        if oldest.is_none_or(|o| n < o) {
            self.fail(FatalError::ResendOutOfHistory {
                requested: n,
                oldest,
            });
            return;
        }
        let times = match self.resend_streak {
            Some((l, c)) if l == n => c + 1,
            _ => 1,
        };
        if times > self.config.max_consecutive_resends {
            self.fail(FatalError::ResendLoop { line: n, times });
            return;
        }
        self.resend_streak = Some((n, times));
        if times >= 2
            && !self.firmware.advanced_ok
            && matches!(self.policy(), ActivePolicy::Credit { .. })
        {
            // A storm: back off to ping-pong, where an `ok` can only be the one line's and
            // each sync `M105` goes alone, until a sync's worth of lines went through.
            let until = self.next_line + i64::from(SYNC_EVERY);
            self.ping_pong_until = Some(self.ping_pong_until.map_or(until, |l| l.max(until)));
        }
        self.acknowledge_through(n - 1);
        if self.last_acked.is_some_and(|a| a >= n) {
            // An `ok` taken for `n` was not its own (a doubled one): the firmware holds only
            // the lines before `n`. `n` keeps its `Completed`; its copy is not reported again.
            self.last_acked = Some(n - 1);
        }
        // Everything from `n` on is lost: forget it and send it again from the history.
        let lost = self.take_back_from(n);
        // Every transmission the firmware has not answered yet may still come back as the same
        // request (old Marlin answers each line behind a bad one; newer ones drain the receive
        // buffer but lines still on the wire arrive later). This request answers one of them.
        let pending = self.duplicates.map_or(0, |(_, d)| d);
        let ghosts = (pending + lost as u32).saturating_sub(1);
        self.duplicates = (ghosts > 0).then_some((n, ghosts));
        self.rewind_from(n);
        self.recovering = Some(n);
        // A rewind may leave stale `ok`s on their way (old Marlin answers every line in flight
        // behind a bad one): without ADVANCED_OK, resynchronise with an M105 right after,
        // unless an M105 is among the lines re-sent (it is the sync then).
        if !self.history.iter().any(|h| h.line >= n && h.m105) {
            self.since_sync = SYNC_EVERY;
        }
        self.events.push_back(Event::Resending { from: n, reason });
    }

    /// Re-sends the lines from `n` up to the newest sent so far, from the history.
    pub(super) fn rewind_from(&mut self, n: i64) {
        self.resend_cursor = Some(n);
        self.resend_end = self.next_line;
    }

    /// The first line the rewind in progress does not re-send (`next_line` may have gone back
    /// since it began: a new hello renumbers).
    pub(super) fn rewind_end(&self) -> i64 {
        self.resend_end.min(self.next_line)
    }

    /// The cursor's next line after `line`, `None` past the rewind's end.
    pub(super) fn rewind_after(&self, line: i64) -> Option<i64> {
        (line + 1 < self.rewind_end()).then_some(line + 1)
    }

    /// Takes every line from `n` on out of flight, to be sent again from the history; returns
    /// how many there were.
    pub(super) fn take_back_from(&mut self, n: i64) -> usize {
        let cut = self
            .in_flight
            .iter()
            .position(|f| f.line.is_some_and(|l| l >= n))
            .unwrap_or(self.in_flight.len());
        let lost: Vec<InFlight> = self.in_flight.drain(cut..).collect();
        self.in_ring = 0;
        for f in &lost {
            self.forget(f);
        }
        lost.len()
    }
}

//! Deadlines: the hello's, the `ok` timeout, `M105` probes into silence, and the lost
//! printer.

use super::*;

/// Probes sent into silence before the printer is declared lost: at the default 5 s apart
/// that is one every 5 s until `lost_after` (30 s), so a lost `ok` followed by lost probes
/// (line noise) is not mistaken for a lost printer. About 60 bytes, well inside Marlin's
/// 128-byte receive buffer.
const MAX_SILENT_PROBES: usize = 4;

impl Session {
    /// When [`handle_timeout`](Self::handle_timeout) must be called next. Changes after any
    /// input, command or `poll_transmit`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.fatal.is_some() {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.phase == Phase::Connecting {
            if let Some(d) = self.hello_deadline {
                consider(d);
            }
        }
        if let Some(d) = self.awaiting_resend_ok {
            consider(d);
        }
        if let (Some(d), Phase::Ready) = (self.next_temperature_poll, self.phase) {
            consider(d);
        }
        if !self.in_flight.is_empty() && self.phase != Phase::Connecting {
            let (ok_limit, lost_limit) = self.limits();
            consider(self.next_probe(lost_limit));
            consider(self.last_rx + lost_limit);
            if self.last_rx > self.last_progress && !self.in_flight.is_empty() {
                consider(self.last_progress + ok_limit);
            }
        }
        next
    }

    /// Acts on deadlines that passed (see [`poll_timeout`](Self::poll_timeout)).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.fatal.is_some() {
            return;
        }
        if self.phase == Phase::Connecting {
            if let Some(d) = self.hello_deadline.filter(|d| now >= *d) {
                let _ = d;
                self.hello_deadline = None;
                if let Some(line) = self.hello_answered.take() {
                    // The firmware answered this hello with a resend request: it is there
                    // and the line was garbled on the way. Only silence uses up
                    // `hello_attempts`; a link that garbles hello after hello is stuck.
                    self.hello_garbled += 1;
                    if self.hello_garbled >= self.config.max_consecutive_resends {
                        let times = self.hello_garbled;
                        self.fail(FatalError::ResendLoop { line, times });
                        return;
                    }
                    self.hello_attempts -= 1;
                }
                if self.hello_attempts >= self.config.hello_attempts {
                    let attempts = self.hello_attempts;
                    let err = if self.rx_total > 0 && !self.rx_understood {
                        FatalError::Garbled {
                            bytes: self.rx_total,
                            attempts,
                        }
                    } else {
                        FatalError::NoResponse { attempts }
                    };
                    self.fail(err);
                    return;
                }
                self.hello_due = true;
            }
            return;
        }
        if self.awaiting_resend_ok.is_some_and(|d| now >= d) {
            self.awaiting_resend_ok = None;
        }
        self.poll_temperatures(now);
        if self.in_flight.is_empty() {
            return;
        }
        let (ok_limit, lost_limit) = self.limits();
        let silent = now.saturating_duration_since(self.last_rx);
        if silent >= lost_limit {
            self.fail(FatalError::PrinterLost { silent_for: silent });
            return;
        }
        // No `ok` for too long while the printer is heard from (autoreports), or silence:
        // send a numbered M105. Its answer proves every earlier line ran (the firmware checks
        // numbering), and a lost earlier line makes the firmware ask for it instead.
        let ok_overdue = self.last_rx > self.last_progress
            && now.saturating_duration_since(self.last_progress) >= ok_limit;
        if ok_overdue || now >= self.next_probe(lost_limit) {
            self.last_progress = now;
            self.probe(now);
        }
    }

    /// Sends a numbered `M105` outside the window, unless [`MAX_SILENT_PROBES`] went out since
    /// the firmware last said anything (two while a long command runs: more would only fill a
    /// blocked firmware's receive buffer), or the receive-buffer budget is used up.
    pub(super) fn probe(&mut self, now: Instant) {
        self.last_probe = Some(now);
        let probes = self
            .in_flight
            .iter()
            .filter(|f| f.kind == Kind::Probe && f.sent_at >= self.last_rx)
            .count();
        let long = self.in_flight.front().is_some_and(|f| f.long);
        // Only a firmware blocked in a long command keeps lines in its receive buffer for
        // seconds; otherwise the window's lines (at most its command slots) have moved to its
        // command queue, and a probe always fits.
        let room = match self.policy() {
            ActivePolicy::PingPong => true,
            ActivePolicy::Credit { rx_bytes, .. } => !long || self.in_flight_bytes + 16 <= rx_bytes,
        };
        let most = if long { 2 } else { MAX_SILENT_PROBES };
        if self.phase == Phase::Connecting || probes >= most || !room {
            return;
        }
        if !self.host_commands {
            self.retransmit_oldest();
            return;
        }
        if !long {
            // The firmware answers an M105 as soon as it reaches it, and nothing long is
            // ahead of it: an M105 out this long without an answer lost its `ok T:…` (line
            // noise). Matching the probe's answer to it instead would leave every later
            // `ok T:…` one M105 behind for good.
            let patience = self.config.probe_after.min(self.config.ok_timeout);
            for f in self.in_flight.iter_mut().filter(|f| f.m105) {
                if now.saturating_duration_since(f.sent_at) >= patience {
                    f.answer_lost = true;
                }
            }
        }
        let mut urgent = std::mem::take(&mut self.urgent);
        self.transmit_new(
            now,
            None,
            Payload::internal("M105"),
            Kind::Probe,
            &mut urgent,
        );
        self.urgent = urgent;
        self.events.push_back(Event::Warning(Warning::Probed));
    }

    /// The probe while the firmware writes received lines to a file (`M28`), where an `M105`
    /// would be stored: the oldest unanswered line goes out again. A firmware that stored it
    /// (its `ok` was lost) refuses the copy with a line-number error and `Resend:` of the line
    /// after it, which acknowledges it ([`on_resend`](Self::on_resend)); one that lost it
    /// stores it now. Either way nothing is stored twice.
    fn retransmit_oldest(&mut self) {
        let Some(n) = self.in_flight.iter().find_map(|f| f.line) else {
            return;
        };
        self.take_back_from(n);
        self.rewind_from(n);
        self.retransmitted = Some(n);
        self.events.push_back(Event::Warning(Warning::Probed));
    }

    pub(super) fn next_probe(&self, lost_limit: Duration) -> Instant {
        let from = self
            .last_probe
            .map_or(self.last_rx, |p| p.max(self.last_rx));
        from + self.config.probe_after.min(lost_limit)
    }

    pub(super) fn limits(&self) -> (Duration, Duration) {
        if self.in_flight.front().is_some_and(|f| f.long) {
            let l = self.config.long_command_timeout;
            (l, l)
        } else {
            (self.config.ok_timeout, self.config.lost_after)
        }
    }

    pub(super) fn on_wait(&mut self, now: Instant) {
        match self.phase {
            Phase::Connecting => self.on_ok(now, OkLine::default(), b"wait"),
            Phase::Identifying | Phase::Ready => {
                // `wait` means the firmware's queue is empty: an outstanding `ok` was lost,
                // unless the line is still on its way.
                let old = self.in_flight.front().is_some_and(|f| {
                    now.saturating_duration_since(f.sent_at) >= self.config.resend_ok_timeout
                });
                let probing = self.in_flight.iter().any(|f| f.kind == Kind::Probe);
                if old && !probing && self.awaiting_resend_ok.is_none() {
                    self.probe(now);
                }
            }
            Phase::Failed => {}
        }
    }
}

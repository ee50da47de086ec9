//! Matching `ok`s to the lines in flight (by ADVANCED_OK's `N`, by `ok T:` for `M105`s, or
//! in order) and reporting completions.

use super::*;

impl Session {
    pub(super) fn on_ok(&mut self, now: Instant, ok: OkLine, raw: &[u8]) {
        self.last_progress = now;
        if let Some(t) = ok.temperatures.clone() {
            self.keep_response(raw);
            self.events.push_back(Event::Temperatures(t));
        }
        let advanced = ok.planner_free.is_some() || ok.slots_free.is_some();
        if let Some(b) = ok.slots_free {
            // `B` is counted while the acknowledged command still holds its slot.
            self.learned_slots = self.learned_slots.max(b + 1);
        }
        if let Some(p) = ok.planner_free {
            // The most free planner blocks ever reported is (nearly) the planner's size.
            self.learned_planner = self.learned_planner.max(p);
            self.planner_free = Some(p);
        }
        match self.phase {
            Phase::Failed => return,
            Phase::Connecting => {
                self.rx_understood = true;
                if self
                    .in_flight
                    .front()
                    .is_some_and(|f| f.kind == Kind::Hello)
                {
                    self.firmware.advanced_ok = advanced;
                    self.hello_accepted();
                }
                return;
            }
            Phase::Identifying | Phase::Ready => {}
        }
        if advanced && self.phase == Phase::Identifying {
            self.firmware.advanced_ok = true;
        }
        if self.awaiting_resend_ok.is_some() {
            // Never `ok T:…`: that answers an M105.
            let numbered = self.firmware.advanced_ok || self.quirks().ok_echoes_line;
            let plain = (!numbered || ok.line.is_none()) && ok.temperatures.is_none();
            if plain && self.resend_ok() != ResendOk::Never {
                self.awaiting_resend_ok = None;
                return;
            }
        }
        if let (Some(info), Phase::Identifying) = (&ok.firmware, self.phase) {
            // Klipper answers `M115` inside its `ok`.
            self.firmware.info = Some(info.clone());
        }
        if self.phase == Phase::Identifying
            && self.firmware.info.is_none()
            && self.response.is_empty()
        {
            // Every firmware answers `M115` with text (its report or "Unknown command") before
            // the `ok`; a bare `ok` here belongs to a repeated hello the firmware also got.
            return;
        }
        if ok.temperatures.is_some() && !self.in_flight.iter().any(|f| f.m105) {
            // `ok T:…` only ever answers an M105. With none in flight, it can still answer the
            // M105 a rewind is about to re-send: the firmware ran the copy that was on the
            // wire when it asked (a request caused by an earlier duplicate, not by this line).
            // Re-sending it would be rejected as a duplicate and never answered, leaving an
            // M105 outstanding for good (every later `ok T:` matched one M105 too early).
            if !self.rewound_m105_answered() {
                self.events.push_back(Event::Warning(Warning::UnexpectedOk));
            }
            return;
        }
        let taken = if let (true, Some(n)) = (self.quirks().ok_echoes_line, ok.line) {
            self.take_echoed(n)
        } else if let (true, Some(n)) = (self.firmware.advanced_ok, ok.line) {
            match self.in_flight.iter().position(|f| f.line == Some(n)) {
                Some(pos) => {
                    let taken = self.ack_through(pos);
                    if let (Some(b), None, None) =
                        (ok.slots_free, self.resend_cursor, self.recovering)
                    {
                        // `B` was counted with the acknowledged line still in its slot: the
                        // rest of the command queue holds the lines sent right after it.
                        let queued = (self.learned_slots as usize).saturating_sub(b as usize + 1);
                        self.in_ring = queued.min(self.in_flight.len());
                    }
                    taken
                }
                None => {
                    if n < self.next_line && self.resend_cursor.is_some_and(|c| n >= c) {
                        // A line a rewind took out of flight ran after all.
                        self.acknowledge_through(n);
                    }
                    None
                }
            }
        } else if let Some(pos) = ok.temperatures.as_ref().and_then(|_| self.answering_m105()) {
            // `ok T:…` answers an M105. The firmware checks numbering and works in order, so
            // every line sent before it ran too: a sync point that repairs a miscounted `ok`.
            self.ack_through(pos)
        } else if self.firmware.advanced_ok && advanced {
            // An unnumbered command's `ok P.. B..`.
            self.in_flight
                .iter()
                .position(|f| f.line.is_none())
                .map(|pos| self.remove_in_flight(pos))
        } else {
            // A plain `ok` never answers an M105 (whose answer carries temperatures), nor a
            // line sent after an unanswered M105: the firmware works in order, so that M105's
            // `ok T:` comes first. A plain `ok` meeting one is surplus (a duplicate) and is
            // dropped: every M105 in flight is a barrier that absorbs duplicated `ok`s.
            let barrier = self.in_flight.iter().position(|f| f.m105 && !f.answer_lost);
            let before = barrier.unwrap_or(self.in_flight.len());
            match self.in_flight.iter().take(before).position(|f| !f.m105) {
                Some(0) => self.pop_front_in_flight(),
                Some(pos) => Some(self.remove_in_flight(pos)),
                None => None,
            }
        };
        match taken {
            Some(f) => {
                if f.kind == Kind::Command {
                    self.note_ack(now);
                }
                self.complete(f)
            }
            None => {
                self.response.clear();
                self.events.push_back(Event::Warning(Warning::UnexpectedOk));
            }
        }
    }

    /// The firmware proved it holds every line through `k` (it acknowledged `k`, or asked for
    /// `k + 1`): lines up to `k` that a rewind took out of flight are acknowledged now, since
    /// their own `ok`s may already have been discarded.
    pub(super) fn acknowledge_through(&mut self, k: i64) {
        let from = self.last_acked.map_or(i64::MIN, |a| a + 1);
        if k < from {
            return;
        }
        let mut done = Vec::new();
        for sent in self
            .history
            .iter_mut()
            .filter(|s| s.line >= from && s.line <= k)
        {
            if sent.reported || self.in_flight.iter().any(|f| f.line == Some(sent.line)) {
                continue;
            }
            sent.reported = true;
            if let (Kind::Command, Some(id)) = (sent.kind, sent.id) {
                done.push(Event::Completed {
                    id,
                    line: sent.line,
                    response: Vec::new(),
                });
            }
        }
        self.events.extend(done);
        if !self
            .in_flight
            .iter()
            .any(|f| f.line.is_some_and(|l| l <= k))
        {
            self.last_acked = Some(k);
        }
    }

    /// An `ok T:…` came with no M105 in flight: if the rewind's next line is an M105, that
    /// answer is its (see `on_ok`). Completes it, moves the cursor past it; false otherwise.
    ///
    /// Only the cursor's own line: a duplicated `ok T:` taken for it skips nothing but an
    /// M105 (no side effects), and if the firmware lacks it, it asks for it again.
    pub(super) fn rewound_m105_answered(&mut self) -> bool {
        let Some(cursor) = self.resend_cursor else {
            return false;
        };
        let Some(sent) = self.history_index(cursor).map(|i| &self.history[i]) else {
            return false;
        };
        if !sent.m105 {
            return false;
        }
        let (id, kind) = (sent.id, sent.kind);
        self.resend_cursor = self.rewind_after(cursor);
        self.complete(InFlight {
            line: Some(cursor),
            id,
            kind,
            long: false,
            m105: true,
            answer_lost: false,
            bytes: 0,
            sent_at: self.last_rx,
        });
        true
    }

    /// The in-flight M105 an `ok T:…` answers: the oldest one whose answer is not presumed
    /// lost, else the oldest (its answer was late, not lost).
    pub(super) fn answering_m105(&self) -> Option<usize> {
        self.in_flight
            .iter()
            .position(|f| f.m105 && !f.answer_lost)
            .or_else(|| self.in_flight.iter().position(|f| f.m105))
    }

    /// Marks `line` reported; false if it already was.
    pub(super) fn mark_reported(&mut self, line: i64) -> bool {
        match self.history_index(line).map(|i| &mut self.history[i]) {
            Some(sent) if sent.reported => false,
            Some(sent) => {
                sent.reported = true;
                true
            }
            None => true,
        }
    }

    /// Completes the `pos` oldest outstanding commands (their `ok`s were lost: a later
    /// acknowledgement proves they ran) and takes the one at `pos`.
    pub(super) fn ack_through(&mut self, pos: usize) -> Option<InFlight> {
        // A later line answered while `M115` never was: a firmware checking line numbers
        // would have asked for `M115` again, so this one may drop lines silently
        // (RepRapFirmware drops a line with a bad checksum) and is not identified yet.
        let unidentified = self.firmware.info.is_none()
            && self
                .in_flight
                .iter()
                .take(pos)
                .any(|f| f.kind == Kind::Identify);
        if pos > 0 && (unidentified || !self.quirks().checks_line_numbers) {
            // The proof rests on the firmware rejecting a line after a missing one.
            let line = self.in_flight.front().and_then(|f| f.line);
            self.fail(FatalError::Unconfirmed { line });
            return None;
        }
        if pos > 0 {
            self.events
                .push_back(Event::Warning(Warning::SkippedOks { count: pos }));
        }
        for _ in 0..pos {
            let f = self.pop_front_in_flight().expect("in range");
            self.complete(f);
        }
        self.pop_front_in_flight()
    }

    pub(super) fn hello_accepted(&mut self) {
        let _ = self.pop_front_in_flight();
        self.last_acked = Some(0);
        self.hello_deadline = None;
        self.hello_garbled = 0;
        self.phase = Phase::Identifying;
        self.response.clear();
        // M115 goes first, numbered 1, before anything the application queued.
        self.identify_due = true;
    }

    pub(super) fn complete(&mut self, f: InFlight) {
        if let Some(n) = f.line {
            self.last_acked = Some(self.last_acked.map_or(n, |a| a.max(n)));
            if self.duplicates.is_some_and(|(l, _)| n >= l) {
                self.duplicates = None;
            }
            if self.recovering.is_some_and(|l| n >= l) {
                self.recovering = None;
            }
            if self.ping_pong_until.is_some_and(|l| n >= l) {
                self.ping_pong_until = None;
            }
            if self.resend_streak.is_some_and(|(l, _)| n >= l) {
                self.resend_streak = None;
            }
        }
        let response = std::mem::take(&mut self.response);
        match f.kind {
            Kind::Command => {
                if let (Some(id), Some(line)) = (f.id, f.line) {
                    if self.mark_reported(line) {
                        self.events
                            .push_back(Event::Completed { id, line, response });
                    }
                }
            }
            Kind::OutOfBand => {
                if let Some(id) = f.id {
                    self.events.push_back(Event::Completed {
                        id,
                        line: -1,
                        response,
                    });
                }
            }
            Kind::Identify => {
                self.phase = Phase::Ready;
                self.arm_temperature_reports(self.last_rx);
                self.events.push_back(Event::Connected {
                    firmware: self.firmware.clone(),
                    policy: self.policy(),
                    temperatures: self.temperatures,
                });
            }
            Kind::Hello | Kind::Probe => {}
        }
    }
}

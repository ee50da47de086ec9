//! What goes out: the flow-control window (ping-pong or credit), numbering, the history
//! of sent lines, re-sends from a rewind's cursor and the sync `M105`s.

use super::*;

/// Without ADVANCED_OK, a numbered `M105` goes out after this many commands (about 3 % more
/// lines) so duplicated `ok`s cannot accumulate: alone in ping-pong, among the lines in a
/// credit window.
pub(super) const SYNC_EVERY: u32 = 32;

impl Session {
    /// Appends every byte that may be written now to `out`; returns how many.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.append(&mut self.urgent);
        if self.fatal.is_some() {
            return out.len() - start;
        }
        if self.phase == Phase::Connecting {
            if self.hello_due {
                self.hello_due = false;
                self.hello_attempts += 1;
                self.hello_answered = None;
                self.hello_deadline = Some(now + self.config.hello_timeout);
                self.reset_numbering();
                self.transmit_new(now, None, Payload::internal("M110 N0"), Kind::Hello, out);
                self.next_line = 1;
            }
            return out.len() - start;
        }
        if self.awaiting_resend_ok.is_some() {
            return out.len() - start;
        }
        loop {
            if let Some(line) = self.resend_cursor {
                let Some(sent) = self.history_index(line).map(|i| &self.history[i]) else {
                    // Nothing left to re-send (the cursor passed the newest line).
                    self.resend_cursor = None;
                    continue;
                };
                if sent.kind != Kind::Probe && !self.window_allows(sent.bytes.len()) {
                    break;
                }
                out.extend_from_slice(&sent.bytes);
                let (id, kind, long, len) = (sent.id, sent.kind, sent.long, sent.bytes.len());
                let m105 = sent.m105;
                self.push_in_flight(now, Some(line), id, kind, long, m105, len as u32);
                self.resend_cursor = self.rewind_after(line);
                continue;
            }
            if self.identify_due {
                self.identify_due = false;
                self.transmit_new(now, None, Payload::internal("M115"), Kind::Identify, out);
                continue;
            }
            if self.phase != Phase::Ready || self.paused {
                break;
            }
            let Some(next) = self.queue.front() else {
                if self.barrier_due && self.gated == 0 && self.host_commands {
                    self.barrier_due = false;
                    self.transmit_new(now, None, Payload::internal("M105"), Kind::Probe, out);
                }
                break;
            };
            if self.sync_due() {
                // The M105 absorbs any surplus plain `ok` (a plain `ok` never answers an M105
                // or a line after it), and its `ok T:` acknowledges everything before it.
                if !self.window_allows(numbered_len(self.next_line, "M105".len())) {
                    break;
                }
                self.since_sync = 0;
                self.transmit_new(now, None, Payload::internal("M105"), Kind::Command, out);
                continue;
            }
            if !self.window_allows(numbered_len(self.next_line, next.payload.len())) {
                break;
            }
            let q = self.queue.pop_front().expect("front exists");
            self.since_sync = if q.payload.code().eq_ignore_ascii_case("M105") {
                0
            } else {
                self.since_sync + 1
            };
            // A numbered M105 is its own barrier: its `ok T:` acknowledges every line before it.
            self.barrier_due =
                !self.firmware.advanced_ok && !q.payload.code().eq_ignore_ascii_case("M105");
            self.transmit_new(now, q.id, q.payload, Kind::Command, out);
        }
        out.len() - start
    }

    /// Without ADVANCED_OK an `ok` names no line, so a duplicated `ok` (line noise) that
    /// arrives after the next line went out is taken for that line's: the count runs one ahead
    /// (early completions, and more lines in the firmware than the window allows). A numbered
    /// `M105` every [`SYNC_EVERY`] commands bounds that drift: in ping-pong it goes alone, so
    /// surplus `ok`s meet only the M105 and are dropped as unexpected.
    ///
    /// A credit window sends it among the other lines (its window permitting): while it is
    /// unanswered, plain `ok`s only acknowledge lines sent before it (see `on_ok`), so the
    /// surplus ones are dropped when they reach it, and its `ok T:` resynchronises the count.
    pub(super) fn sync_due(&self) -> bool {
        if self.since_sync < SYNC_EVERY || self.firmware.advanced_ok || !self.host_commands {
            return false;
        }
        match self.policy() {
            ActivePolicy::Credit { .. } if self.ping_pong_until.is_none() => true,
            _ => self.gated == 0,
        }
    }

    pub(super) fn window_allows(&self, len: usize) -> bool {
        if self.gated == 0 {
            return true;
        }
        if let Some(from) = self.recovering {
            // One re-sent line at a time. Lines before `from` do not count: the firmware asked
            // for `from`, so it holds them already (in its command queue, not its RX buffer).
            return !self
                .in_flight
                .iter()
                .any(|f| f.line.is_some_and(|l| l >= from));
        }
        if self.ping_pong_until.is_some() {
            return false;
        }
        match self.policy() {
            ActivePolicy::PingPong => false,
            ActivePolicy::Credit { slots, rx_bytes } => {
                self.gated < self.max_lines(slots) && self.rx_bytes_used() + len < rx_bytes as usize
            }
        }
    }

    /// How many lines a credit window may hold. Marlin moves a line from its receive buffer
    /// to its command queue whenever a slot is free (`get_serial_commands`), so lines beyond
    /// the slots simply wait in the receive buffer: the bytes alone bound the window. That
    /// needs ADVANCED_OK, whose `B` tells which lines left the buffer (see `in_ring`);
    /// without it every line in flight counts against the buffer, and the window stays at
    /// the slots (a duplicated `ok` miscounts by a line, one slot's worth of slack).
    /// Either way, no more than the history can re-send.
    pub(super) fn max_lines(&self, slots: u32) -> u32 {
        let history = u32::try_from(self.config.history_len.saturating_sub(8)).unwrap_or(u32::MAX);
        if self.firmware.advanced_ok {
            history
        } else {
            slots.min(history)
        }
    }

    /// Bytes that may still sit in the firmware's receive buffer: every unacknowledged line
    /// except those known to be in its command queue. The window keeps them strictly below
    /// `rx_bytes`: Marlin's receive ring leaves one byte unused (head == tail means empty).
    pub(super) fn rx_bytes_used(&self) -> usize {
        let in_queue: u32 = self
            .in_flight
            .iter()
            .take(self.in_ring)
            .map(|f| f.bytes)
            .sum();
        (self.in_flight_bytes - in_queue) as usize
    }

    pub(super) fn reset_numbering(&mut self) {
        self.history.clear();
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.in_ring = 0;
        self.gated = 0;
        self.resend_cursor = None;
        self.duplicates = None;
        self.recovering = None;
        self.ping_pong_until = None;
        self.resend_streak = None;
        self.awaiting_resend_ok = None;
        self.next_line = 0;
        self.since_sync = 0;
        self.last_acked = None;
    }

    /// Where `line` is in the history of sent lines, if it is still there.
    pub(super) fn history_index(&self, line: i64) -> Option<usize> {
        let oldest = self.history.front()?.line;
        usize::try_from(line - oldest)
            .ok()
            .filter(|&i| i < self.history.len())
    }

    pub(super) fn transmit_new(
        &mut self,
        now: Instant,
        id: Option<CommandId>,
        payload: Payload,
        kind: Kind,
        out: &mut Vec<u8>,
    ) {
        let line = self.next_line;
        self.next_line += 1;
        let start = out.len();
        frame_numbered(line, payload.as_str(), out);
        let bytes: Box<[u8]> = out[start..].into();
        let long = config::is_long_running(payload.code());
        // Whether its `ok` carries the temperature report (not on firmware that acknowledges
        // lines on receipt).
        let m105 = payload.code().eq_ignore_ascii_case("M105") && !self.quirks().ok_on_receipt;
        self.push_in_flight(now, Some(line), id, kind, long, m105, bytes.len() as u32);
        if self.history.len() == self.config.history_len {
            self.history.pop_front();
        }
        self.history.push_back(Sent {
            line,
            reported: false,
            id,
            kind,
            long,
            m105,
            bytes,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_in_flight(
        &mut self,
        now: Instant,
        line: Option<i64>,
        id: Option<CommandId>,
        kind: Kind,
        long: bool,
        m105: bool,
        bytes: u32,
    ) {
        if self.in_flight.is_empty() {
            self.last_progress = now;
        }
        if !matches!(kind, Kind::OutOfBand | Kind::Probe) {
            self.gated += 1;
        }
        self.in_flight_bytes += bytes;
        self.in_flight.push_back(InFlight {
            line,
            id,
            kind,
            long,
            m105,
            answer_lost: false,
            bytes,
            sent_at: now,
        });
    }

    pub(super) fn forget(&mut self, f: &InFlight) {
        self.in_flight_bytes -= f.bytes;
        if !matches!(f.kind, Kind::OutOfBand | Kind::Probe) {
            self.gated -= 1;
        }
    }

    pub(super) fn pop_front_in_flight(&mut self) -> Option<InFlight> {
        let f = self.in_flight.pop_front()?;
        self.in_ring = self.in_ring.saturating_sub(1);
        self.forget(&f);
        Some(f)
    }

    /// Takes an in-flight entry out of order; what is known about the queue is dropped.
    pub(super) fn remove_in_flight(&mut self, pos: usize) -> InFlight {
        let f = self.in_flight.remove(pos).expect("in range");
        self.in_ring = 0;
        self.forget(&f);
        f
    }
}

/// The most bytes `N<line> <payload>*<checksum>\n` takes.
fn numbered_len(line: i64, payload: usize) -> usize {
    "N ".len() + digits(line) + payload + "*255\n".len()
}

fn digits(n: i64) -> usize {
    let mut d = if n < 0 { 2 } else { 1 };
    let mut v = n.unsigned_abs();
    while v >= 10 {
        v /= 10;
        d += 1;
    }
    d
}

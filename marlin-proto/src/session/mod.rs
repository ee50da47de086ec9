//! The host protocol state machine.
//!
//! ```text
//!             hello ok             M115 ok
//!  Connecting ────────▶ Identifying ──────▶ Ready ──┐ ok / Resend / busy / timeout
//!   ▲   │ no answer                          │  ▲ ◀─┘
//!   │   └──────────────▶ Failed ◀────────────┘  │   halt, reset with work outstanding,
//!   │                      (sticky)             │   unrecoverable resend, printer lost, M112
//!   └──────── start (nothing outstanding) ──────┘
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::line::{frame_numbered, frame_unnumbered, Dialect, Payload, PayloadError};
use crate::response::{FirmwareError, FirmwareLine, OkLine};

mod acknowledge;
mod config;
mod event;
mod keepalive;
mod pacing;
mod quirks;
mod receive;
mod resend;
mod temperature;
mod transmit;

pub use config::{FlowPolicy, ResendOk, SessionConfig};
pub use event::{
    ActivePolicy, CommandId, Event, FatalError, Firmware, TemperatureReporting, Warning,
};
pub use quirks::{FirmwareFlavor, Quirks};

/// Why [`Session::send`] refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The command text cannot be framed safely.
    #[error("invalid command: {0}")]
    Payload(#[from] PayloadError),
    /// The session has failed; nothing more is sent.
    #[error("session failed: {0}")]
    Failed(FatalError),
}

/// Commands the firmware's emergency parser acts on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmergencyCommand {
    /// `M108`: break out of a heating or user wait.
    Continue,
    /// `M410`: quick stop, flush the planner.
    QuickStop,
    /// `M876 S<n>`: answer a host prompt with button `n` (0–9).
    PromptResponse(u8),
}

impl EmergencyCommand {
    fn text(self) -> String {
        match self {
            Self::Continue => "M108".into(),
            Self::QuickStop => "M410".into(),
            Self::PromptResponse(n) => format!("M876 S{}", n.min(9)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Identifying,
    Ready,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hello,
    Identify,
    Command,
    /// Unnumbered, sent outside the window (emergency commands).
    OutOfBand,
    /// A numbered `M105` keepalive, sent outside the window.
    Probe,
}

#[derive(Debug)]
struct Queued {
    /// `None` for the session's own commands (`M155`, temperature polls).
    id: Option<CommandId>,
    payload: Payload,
}

#[derive(Debug)]
struct Sent {
    line: i64,
    /// `Completed` was reported for it (a line can be re-sent after that).
    reported: bool,
    id: Option<CommandId>,
    kind: Kind,
    long: bool,
    m105: bool,
    bytes: Box<[u8]>,
}

#[derive(Debug)]
struct InFlight {
    line: Option<i64>,
    id: Option<CommandId>,
    kind: Kind,
    long: bool,
    /// An `M105`, answered by `ok T:…`.
    m105: bool,
    /// An `M105` whose answer is presumed lost (see `probe`): `ok T:…` is matched to a later
    /// M105 first, and plain `ok`s may pass it.
    answer_lost: bool,
    bytes: u32,
    sent_at: Instant,
}

/// The longest firmware line kept; longer ones are cut (the rest is reported as another line).
pub(crate) const MAX_RX_LINE: usize = 1024;

/// Cuts bytes received from the firmware into lines, as the session reads them: at `\n` or
/// `\r`, and at most [`MAX_RX_LINE`] bytes each (a longer run is handed out in pieces).
/// `partial` holds an unfinished line between calls; a line that arrives whole is handed out
/// without a copy.
pub(crate) fn cut_rx_lines(partial: &mut Vec<u8>, bytes: &[u8], mut on_line: impl FnMut(&[u8])) {
    let mut rest = bytes;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
        if partial.is_empty() {
            on_line(&rest[..i]);
        } else {
            partial.extend_from_slice(&rest[..i]);
            on_line(partial);
            partial.clear();
        }
        rest = &rest[i + 1..];
    }
    for chunk in rest.chunks(MAX_RX_LINE) {
        if partial.len() + chunk.len() > MAX_RX_LINE {
            on_line(partial);
            partial.clear();
        }
        partial.extend_from_slice(chunk);
    }
}

/// The host side of one connection to a Marlin printer, without any I/O.
///
/// Methods fall into four groups, as in `quinn-proto`:
/// - **input**: [`handle_rx`](Self::handle_rx) (bytes read from the port),
///   [`handle_timeout`](Self::handle_timeout) (the deadline from
///   [`poll_timeout`](Self::poll_timeout) passed);
/// - **commands**: [`send`](Self::send), [`send_emergency`](Self::send_emergency),
///   [`emergency_stop`](Self::emergency_stop), [`set_paused`](Self::set_paused);
/// - **output**: [`poll_transmit`](Self::poll_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout),
///   [`read_deferral`](Self::read_deferral);
/// - **state**: [`fatal`](Self::fatal), [`is_ready`](Self::is_ready),
///   [`queued_len`](Self::queued_len), [`is_idle`](Self::is_idle), [`firmware`](Self::firmware).
///
/// After any input or command, call `poll_transmit`, then drain `poll_event`, then re-arm the
/// timer from `poll_timeout`. `now` must never go backwards. A spurious `handle_timeout` is
/// harmless.
///
/// Errors are sticky: once [`fatal`](Self::fatal) is `Some`, every queued command is reported
/// [`Event::Abandoned`] and the session sends nothing but emergency commands.
///
/// ```
/// use std::time::{Duration, Instant};
/// use easyprint_marlin::{Event, Session, SessionConfig};
///
/// let t0 = Instant::now();
/// let mut s = Session::new(SessionConfig::default(), t0);
/// let mut out = Vec::new();
/// s.poll_transmit(t0, &mut out);
/// assert_eq!(out, b"N0 M110 N0*125\n");
/// s.handle_rx(t0, b"ok\n");
/// out.clear();
/// s.poll_transmit(t0, &mut out);
/// assert_eq!(out, b"N1 M115*39\n");
/// s.handle_rx(t0, b"FIRMWARE_NAME:Marlin 2.1.2\nCap:EMERGENCY_PARSER:1\nok\n");
/// assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
/// let id = s.send("G28 ; home").unwrap().unwrap();
/// out.clear();
/// s.poll_transmit(t0, &mut out);
/// assert_eq!(out, b"N2 G28*17\n");
/// s.handle_rx(t0 + Duration::from_secs(9), b"echo:busy: processing\nok\n");
/// while let Some(ev) = s.poll_event() {
///     if let Event::Completed { id: done, line, .. } = ev {
///         assert_eq!((done, line), (id, 2));
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    fatal: Option<FatalError>,
    firmware: Firmware,
    dialect: Dialect,
    paused: bool,
    /// Off while the firmware stores lines instead of running them (SD upload, `M28`): the
    /// session then writes no lines of its own (`M105` syncs, barriers, polls, probes).
    host_commands: bool,

    next_line: i64,
    next_id: u64,
    queue: VecDeque<Queued>,
    history: VecDeque<Sent>,
    in_flight: VecDeque<InFlight>,
    in_flight_bytes: u32,
    /// In-flight entries that use a window slot (everything but out-of-band lines).
    gated: u32,
    learned_slots: u32,
    /// How many of the oldest in-flight lines are known to have left the firmware's receive
    /// buffer for its command queue (from ADVANCED_OK's `B`): their bytes no longer count
    /// against `rx_bytes`.
    in_ring: usize,
    resend_cursor: Option<i64>,
    /// The first line a rewind does not re-send: `next_line` when it began. A line first sent
    /// after that (a probe while the rewind waited) was never asked for again.
    resend_end: i64,
    urgent: Vec<u8>,
    /// The firmware's pace, for [`read_deferral`](Self::read_deferral).
    pace: pacing::AckPace,
    /// ADVANCED_OK's `P` in the last `ok`, and the most ever reported.
    planner_free: Option<u32>,
    learned_planner: u32,

    hello_due: bool,
    identify_due: bool,
    hello_attempts: u32,
    hello_deadline: Option<Instant>,
    /// The line a resend request asked for in answer to the current hello (it was garbled on
    /// the way: the firmware is there).
    hello_answered: Option<i64>,
    /// Hellos in a row answered that way.
    hello_garbled: u32,
    awaiting_resend_ok: Option<Instant>,
    /// Stale duplicate requests still expected for this line.
    duplicates: Option<(i64, u32)>,
    /// Without ADVANCED_OK a stray `ok` cannot be told from a real one, so a lost tail could
    /// pass for acknowledged: before going idle, a numbered `M105` proves every line ran.
    barrier_due: bool,
    /// Numbered commands sent since the last numbered `M105`: without ADVANCED_OK, one goes
    /// out every [`SYNC_EVERY`](transmit::SYNC_EVERY) commands (see `sync_due`).
    since_sync: u32,
    /// After a rewind to this line, lines go one at a time until it is acknowledged: the
    /// lines it replaced may still be in (or on their way to) the firmware's receive buffer.
    recovering: Option<i64>,
    /// The line the probe sent again while host commands are off (an upload): `Resend:` of
    /// the line after it says the firmware had stored it and its `ok` was lost.
    retransmitted: Option<i64>,
    /// Without ADVANCED_OK, after the same line was requested twice in a row (a resend storm:
    /// several copies of lines on the wire, and `ok`s that cannot be matched to a copy), a
    /// credit window sends one line at a time until this line is acknowledged.
    ping_pong_until: Option<i64>,
    resend_streak: Option<(i64, u32)>,
    last_error: Option<FirmwareError>,
    /// The last `echo:` text, which explains a following halt.
    last_message: Option<String>,
    /// `Error:<digits>` waiting for its `: … triggered` continuation (old two-line thermal error).
    split_error: Option<String>,
    last_acked: Option<i64>,
    temperatures: TemperatureReporting,
    /// When the next `M105` poll is due ([`TemperatureReporting::Polled`]).
    next_temperature_poll: Option<Instant>,

    last_rx: Instant,
    last_progress: Instant,
    /// When the last probe went out (probes repeat while the line stays silent).
    last_probe: Option<Instant>,
    rx_total: usize,
    rx_understood: bool,

    rx_partial: Vec<u8>,
    response: Vec<String>,
    events: VecDeque<Event>,
}
impl Session {
    /// A session that will say hello on the first [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let mut config = config;
        let max_window = match config.flow {
            FlowPolicy::Credit { slots, .. } => slots as usize,
            _ => 64,
        };
        config.history_len = config.history_len.max(max_window + 8);
        Self {
            config,
            phase: Phase::Connecting,
            fatal: None,
            firmware: Firmware::default(),
            dialect: Dialect::default(),
            paused: false,
            host_commands: true,
            next_line: 0,
            next_id: 0,
            queue: VecDeque::new(),
            history: VecDeque::new(),
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            gated: 0,
            learned_slots: 0,
            in_ring: 0,
            resend_cursor: None,
            resend_end: 0,
            urgent: Vec::new(),
            pace: pacing::AckPace::default(),
            planner_free: None,
            learned_planner: 0,
            hello_due: true,
            identify_due: false,
            hello_attempts: 0,
            hello_deadline: None,
            hello_answered: None,
            hello_garbled: 0,
            awaiting_resend_ok: None,
            duplicates: None,
            recovering: None,
            retransmitted: None,
            ping_pong_until: None,
            barrier_due: false,
            since_sync: 0,
            resend_streak: None,
            last_error: None,
            last_message: None,
            split_error: None,
            last_acked: None,
            temperatures: TemperatureReporting::Off,
            next_temperature_poll: None,
            last_rx: now,
            last_progress: now,
            last_probe: None,
            rx_total: 0,
            rx_understood: false,
            rx_partial: Vec::new(),
            response: Vec::new(),
            events: VecDeque::new(),
        }
    }

    // ----- state -------------------------------------------------------------------------

    /// Why the session failed, if it did (sticky).
    pub fn fatal(&self) -> Option<&FatalError> {
        self.fatal.as_ref()
    }

    /// Whether the handshake finished and commands flow.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// What the firmware reported about itself so far.
    pub fn firmware(&self) -> &Firmware {
        &self.firmware
    }

    /// Commands accepted by [`send`](Self::send) and not yet written.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Commands written and not yet acknowledged.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Nothing queued, nothing to re-send, nothing unacknowledged.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty() && self.resend_cursor.is_none()
    }

    /// The policy in force now.
    pub fn policy(&self) -> ActivePolicy {
        match self.config.flow {
            FlowPolicy::PingPong => ActivePolicy::PingPong,
            FlowPolicy::Credit { slots, rx_bytes } => ActivePolicy::Credit { slots, rx_bytes },
            FlowPolicy::Auto { rx_bytes } => {
                if self.firmware.advanced_ok && self.learned_slots > 1 {
                    ActivePolicy::Credit {
                        slots: self.learned_slots,
                        rx_bytes,
                    }
                } else {
                    ActivePolicy::PingPong
                }
            }
        }
    }

    /// How temperature reports keep coming (decided when the handshake completes).
    pub fn temperature_reporting(&self) -> TemperatureReporting {
        self.temperatures
    }

    /// The firmware behaviours assumed now: [`SessionConfig::quirks`], else the table entry
    /// of the detected flavor.
    pub fn quirks(&self) -> Quirks {
        self.config
            .quirks
            .unwrap_or_else(|| Quirks::for_flavor(self.firmware.flavor()))
    }

    /// The last line number the firmware acknowledged.
    pub fn last_acknowledged(&self) -> Option<i64> {
        self.last_acked
    }

    // ----- commands ----------------------------------------------------------------------

    /// Queues a command (comments are stripped; empty and comment-only lines return `Ok(None)`
    /// and are never sent). Commands go out numbered, in order, as flow control allows.
    pub fn send(&mut self, text: &str) -> Result<Option<CommandId>, SendError> {
        if let Some(err) = &self.fatal {
            return Err(SendError::Failed(err.clone()));
        }
        let Some(payload) = Payload::new(text, self.dialect)? else {
            return Ok(None);
        };
        if payload.code().eq_ignore_ascii_case("M112") {
            self.emergency_stop();
            return Err(SendError::Failed(FatalError::EmergencyStop));
        }
        let id = CommandId(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Queued {
            id: Some(id),
            payload,
        });
        Ok(Some(id))
    }

    /// Sends `M112` at once, unnumbered, ahead of everything, and fails the session with
    /// [`FatalError::EmergencyStop`].
    pub fn emergency_stop(&mut self) {
        frame_unnumbered("M112", &mut self.urgent);
        self.fail(FatalError::EmergencyStop);
    }

    /// Sends `M108`/`M410`/`M876`. With `Cap:EMERGENCY_PARSER:1` it goes out at once, unnumbered,
    /// ahead of any queue (its `ok` still comes later and is accounted for); otherwise it is
    /// queued first in line, numbered.
    pub fn send_emergency(
        &mut self,
        now: Instant,
        command: EmergencyCommand,
    ) -> Result<CommandId, SendError> {
        if let Some(err) = &self.fatal {
            return Err(SendError::Failed(err.clone()));
        }
        let text = command.text();
        let id = CommandId(self.next_id);
        self.next_id += 1;
        if self.phase == Phase::Ready && self.firmware.has("EMERGENCY_PARSER") {
            let before = self.urgent.len();
            frame_unnumbered(&text, &mut self.urgent);
            let bytes = (self.urgent.len() - before) as u32;
            self.push_in_flight(now, None, Some(id), Kind::OutOfBand, false, false, bytes);
        } else {
            self.queue.push_front(Queued {
                id: Some(id),
                payload: Payload::internal(&text),
            });
        }
        Ok(id)
    }

    /// While paused, queued commands stay queued (resends and emergency commands still go out).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether the session may write lines of its own (numbered `M105` syncs, barriers,
    /// temperature polls and keepalive probes; on by default). Turn it off while the firmware
    /// writes received lines to a file (`M28` … `M29`): those lines would end up in the file.
    /// A lost `ok` is then recovered by sending the unanswered line again instead of an
    /// `M105` probe: the firmware refuses the copy as a duplicate (`Resend:` of the next line)
    /// if it had the line, or stores it if it had lost it.
    pub fn set_host_commands(&mut self, on: bool) {
        self.host_commands = on;
    }

    /// Drops every queued (unsent) command, reporting each as [`Event::Abandoned`]. Lines
    /// already written still complete.
    pub fn clear_queue(&mut self) {
        for q in self.queue.drain(..) {
            if let Some(id) = q.id {
                self.events.push_back(Event::Abandoned(id));
            }
        }
    }

    // ----- output (also `transmit`, `keepalive`) --------------------------------------------

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- input (also `keepalive`) ----------------------------------------------------------

    /// Feeds bytes read from the port.
    pub fn handle_rx(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.last_rx = now;
        self.last_probe = None;
        self.rx_total += bytes.len();
        let mut partial = std::mem::take(&mut self.rx_partial);
        cut_rx_lines(&mut partial, bytes, |line| self.handle_line(now, line));
        self.rx_partial = partial;
    }

    // ----- internals ---------------------------------------------------------------------

    fn fail(&mut self, err: FatalError) {
        if self.fatal.is_some() {
            return;
        }
        self.phase = Phase::Failed;
        for f in std::mem::take(&mut self.in_flight) {
            // A copy of a line already reported complete (a resend request came after its
            // `ok`) keeps that report: one outcome per command.
            let settled = f
                .line
                .and_then(|l| self.history_index(l))
                .is_some_and(|i| self.history[i].reported);
            if let (Some(id), Kind::Command, false) = (f.id, f.kind, settled) {
                self.events.push_back(Event::Abandoned(id));
            }
        }
        // Lines a resend request took back wait only in the history (never in flight again
        // until re-sent): they are unfinished too.
        if let Some(cursor) = self.resend_cursor {
            for h in self
                .history
                .iter()
                .filter(|h| h.line >= cursor && h.line < self.resend_end && !h.reported)
            {
                if let (Some(id), Kind::Command) = (h.id, h.kind) {
                    self.events.push_back(Event::Abandoned(id));
                }
            }
        }
        self.in_flight_bytes = 0;
        self.in_ring = 0;
        self.gated = 0;
        self.resend_cursor = None;
        self.clear_queue();
        self.fatal = Some(err.clone());
        self.events.push_back(Event::Fatal(err));
    }
}

#[cfg(test)]
mod tests;

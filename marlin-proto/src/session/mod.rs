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

mod config;
mod event;

pub use config::{FlowPolicy, ResendOk, SessionConfig};
pub use event::{
    ActivePolicy, CommandId, Event, FatalError, Firmware, TemperatureReporting, Warning,
};

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
    bytes: u32,
    sent_at: Instant,
}

/// Ping-pong without ADVANCED_OK sends a numbered `M105` alone after this many commands
/// (about 3 % more lines) so duplicated `ok`s cannot accumulate.
const SYNC_EVERY: u32 = 32;

/// The longest firmware line kept; longer ones are cut (the rest is reported as another line).
const MAX_RX_LINE: usize = 1024;

/// The host side of one connection to a Marlin printer, without any I/O.
///
/// Methods fall into four groups, as in `quinn-proto`:
/// - **input**: [`handle_rx`](Self::handle_rx) (bytes read from the port),
///   [`handle_timeout`](Self::handle_timeout) (the deadline from
///   [`poll_timeout`](Self::poll_timeout) passed);
/// - **commands**: [`send`](Self::send), [`send_emergency`](Self::send_emergency),
///   [`emergency_stop`](Self::emergency_stop), [`set_paused`](Self::set_paused);
/// - **output**: [`poll_transmit`](Self::poll_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout);
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
    urgent: Vec<u8>,

    hello_due: bool,
    identify_due: bool,
    hello_attempts: u32,
    hello_deadline: Option<Instant>,
    awaiting_resend_ok: Option<Instant>,
    /// Stale duplicate requests still expected for this line.
    duplicates: Option<(i64, u32)>,
    /// Without ADVANCED_OK a stray `ok` cannot be told from a real one, so a lost tail could
    /// pass for acknowledged: before going idle, a numbered `M105` proves every line ran.
    barrier_due: bool,
    /// Numbered commands sent since the last numbered `M105`: without ADVANCED_OK, ping-pong
    /// sends one alone every [`SYNC_EVERY`] commands (see `poll_transmit`).
    since_sync: u32,
    /// After a rewind to this line, lines go one at a time until it is acknowledged: the
    /// lines it replaced may still be in (or on their way to) the firmware's receive buffer.
    recovering: Option<i64>,
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
            urgent: Vec::new(),
            hello_due: true,
            identify_due: false,
            hello_attempts: 0,
            hello_deadline: None,
            awaiting_resend_ok: None,
            duplicates: None,
            recovering: None,
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
    /// A lost `ok` is then only recovered by a later acknowledgement (or reported as
    /// [`FatalError::PrinterLost`]).
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

    // ----- output ------------------------------------------------------------------------

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
                let oldest = self.history.front().map_or(line, |s| s.line);
                let Some(sent) = usize::try_from(line - oldest)
                    .ok()
                    .and_then(|i| self.history.get(i))
                else {
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
                self.resend_cursor = (line + 1 < self.next_line).then_some(line + 1);
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
                // Alone in flight, the M105 absorbs any surplus plain `ok` (a plain `ok` never
                // answers an M105), and its `ok T:` acknowledges everything before it.
                self.since_sync = 0;
                self.transmit_new(now, None, Payload::internal("M105"), Kind::Command, out);
                continue;
            }
            let len = "N ".len() + digits(self.next_line) + next.payload.len() + "*255\n".len();
            if !self.window_allows(len) {
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

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

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

    // ----- input -------------------------------------------------------------------------

    /// Feeds bytes read from the port.
    pub fn handle_rx(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.last_rx = now;
        self.last_probe = None;
        self.rx_total += bytes.len();
        let mut rest = bytes;
        while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
            if self.rx_partial.is_empty() {
                self.handle_line(now, &rest[..i]);
            } else {
                self.rx_partial.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.rx_partial);
                self.handle_line(now, &line);
                self.rx_partial = line;
                self.rx_partial.clear();
            }
            rest = &rest[i + 1..];
        }
        for chunk in rest.chunks(MAX_RX_LINE) {
            if self.rx_partial.len() + chunk.len() > MAX_RX_LINE {
                let line = std::mem::take(&mut self.rx_partial);
                self.handle_line(now, &line);
            }
            self.rx_partial.extend_from_slice(chunk);
        }
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

    /// Without ADVANCED_OK an `ok` names no line, so a duplicated `ok` (line noise) that
    /// arrives after the next line went out is taken for that line's: the count runs one ahead
    /// (early completions, and more lines in the firmware than the window allows). In
    /// ping-pong, a numbered `M105` sent alone every [`SYNC_EVERY`] commands bounds that drift:
    /// surplus `ok`s meet only the M105 and are dropped as unexpected.
    fn sync_due(&self) -> bool {
        self.since_sync >= SYNC_EVERY
            && self.host_commands
            && self.gated == 0
            && !self.firmware.advanced_ok
            && self.policy() == ActivePolicy::PingPong
    }

    /// Sends a numbered `M105` outside the window, unless two probes went out since the firmware last said anything
    /// (a third would only fill a blocked firmware's receive buffer; two cover one probe lost
    /// on the wire), or the receive-buffer budget is used up.
    fn probe(&mut self, now: Instant) {
        self.last_probe = Some(now);
        let probes = self
            .in_flight
            .iter()
            .filter(|f| f.kind == Kind::Probe && f.sent_at >= self.last_rx)
            .count();
        let room = match self.policy() {
            ActivePolicy::PingPong => true,
            ActivePolicy::Credit { rx_bytes, .. } => self.in_flight_bytes + 16 <= rx_bytes,
        };
        if self.phase == Phase::Connecting || probes >= 2 || !room || !self.host_commands {
            return;
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

    // ----- internals ---------------------------------------------------------------------

    /// Chooses how temperatures keep coming, once connected: `M155` first in line when the
    /// firmware autoreports, else polls from now on.
    fn arm_temperature_reports(&mut self, now: Instant) {
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
    fn poll_temperatures(&mut self, now: Instant) {
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

    fn next_probe(&self, lost_limit: Duration) -> Instant {
        let from = self
            .last_probe
            .map_or(self.last_rx, |p| p.max(self.last_rx));
        from + self.config.probe_after.min(lost_limit)
    }

    fn limits(&self) -> (Duration, Duration) {
        if self.in_flight.front().is_some_and(|f| f.long) {
            let l = self.config.long_command_timeout;
            (l, l)
        } else {
            (self.config.ok_timeout, self.config.lost_after)
        }
    }

    fn window_allows(&self, len: usize) -> bool {
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
        match self.policy() {
            ActivePolicy::PingPong => false,
            ActivePolicy::Credit { slots, rx_bytes } => {
                self.gated < slots && self.rx_bytes_used() + len <= rx_bytes as usize
            }
        }
    }

    /// Bytes that may still sit in the firmware's receive buffer: every unacknowledged line
    /// except those known to be in its command queue.
    fn rx_bytes_used(&self) -> usize {
        let in_queue: u32 = self
            .in_flight
            .iter()
            .take(self.in_ring)
            .map(|f| f.bytes)
            .sum();
        (self.in_flight_bytes - in_queue) as usize
    }

    fn reset_numbering(&mut self) {
        self.history.clear();
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.in_ring = 0;
        self.gated = 0;
        self.resend_cursor = None;
        self.duplicates = None;
        self.recovering = None;
        self.resend_streak = None;
        self.awaiting_resend_ok = None;
        self.next_line = 0;
        self.since_sync = 0;
        self.last_acked = None;
    }

    fn transmit_new(
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
        let m105 = payload.code().eq_ignore_ascii_case("M105");
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
    fn push_in_flight(
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
            bytes,
            sent_at: now,
        });
    }

    fn forget(&mut self, f: &InFlight) {
        self.in_flight_bytes -= f.bytes;
        if !matches!(f.kind, Kind::OutOfBand | Kind::Probe) {
            self.gated -= 1;
        }
    }

    fn pop_front_in_flight(&mut self) -> Option<InFlight> {
        let f = self.in_flight.pop_front()?;
        self.in_ring = self.in_ring.saturating_sub(1);
        self.forget(&f);
        Some(f)
    }

    /// Takes an in-flight entry out of order; what is known about the queue is dropped.
    fn remove_in_flight(&mut self, pos: usize) -> InFlight {
        let f = self.in_flight.remove(pos).expect("in range");
        self.in_ring = 0;
        self.forget(&f);
        f
    }

    fn fail(&mut self, err: FatalError) {
        if self.fatal.is_some() {
            return;
        }
        self.phase = Phase::Failed;
        for f in std::mem::take(&mut self.in_flight) {
            if let (Some(id), Kind::Command) = (f.id, f.kind) {
                self.events.push_back(Event::Abandoned(id));
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

    fn handle_line(&mut self, now: Instant, raw: &[u8]) {
        let parsed = FirmwareLine::parse(raw);
        if !matches!(
            parsed,
            FirmwareLine::Ok(_)
                | FirmwareLine::Empty
                | FirmwareLine::Temperatures(_)
                | FirmwareLine::Busy(_)
                | FirmwareLine::Unknown(_)
        ) {
            self.rx_understood = true;
            // Detect: a resend's `ok` comes right after it; any other line means none is coming.
            if self.config.resend_ok == ResendOk::Detect
                && !matches!(parsed, FirmwareLine::Resend { .. })
            {
                self.awaiting_resend_ok = None;
            }
        }
        if !matches!(
            parsed,
            FirmwareLine::Unknown(_) | FirmwareLine::Empty | FirmwareLine::Error(_)
        ) {
            self.split_error = None;
        }
        match parsed {
            FirmwareLine::Ok(ok) => self.on_ok(now, ok, raw),
            FirmwareLine::Resend { line } => self.on_resend(now, line),
            FirmwareLine::Error(e) => self.on_error(e, raw),
            FirmwareLine::Busy(reason) => {
                self.last_progress = now;
                self.events.push_back(Event::Busy(reason));
            }
            FirmwareLine::Wait => self.on_wait(now),
            FirmwareLine::Start => self.on_start(),
            FirmwareLine::Temperatures(t) => self.events.push_back(Event::Temperatures(t)),
            FirmwareLine::Position(p) => {
                self.keep_response(raw);
                self.events.push_back(Event::Position(p));
            }
            FirmwareLine::Sd(s) => {
                self.keep_response(raw);
                self.events.push_back(Event::Sd(s));
            }
            FirmwareLine::FirmwareInfo(info) => {
                self.keep_response(raw);
                self.firmware.info = Some(info);
            }
            FirmwareLine::Capability { name, enabled } => {
                self.keep_response(raw);
                if name == "PAREN_COMMENTS" {
                    self.dialect.paren_comments = enabled;
                }
                self.firmware.capabilities.push((name, enabled));
            }
            FirmwareLine::Action(a) => self.events.push_back(Event::Action(a)),
            FirmwareLine::UnknownCommand(c) => {
                self.keep_response(raw);
                self.events
                    .push_back(Event::Warning(Warning::UnknownCommand(c)));
            }
            FirmwareLine::Fatal(text) => self.fail(FatalError::FirmwareFatal(text)),
            FirmwareLine::Echo(text) => {
                self.keep_response(raw);
                self.last_message = Some(text.clone());
                self.events.push_back(Event::Message(text));
            }
            FirmwareLine::Comment(text) => self.events.push_back(Event::Message(text)),
            FirmwareLine::Empty => {}
            FirmwareLine::Unknown(text) => self.on_unknown(text),
        }
    }

    fn keep_response(&mut self, raw: &[u8]) {
        if self.response.len() < 256 {
            self.response
                .push(String::from_utf8_lossy(raw.trim_ascii()).into_owned());
        }
    }

    fn on_unknown(&mut self, text: String) {
        if let Some(heater) = self.split_error.take() {
            // Old Marlin: `Error:0` then `: Extruder switched off. MAXTEMP triggered !`.
            if let Some(cause) = text.strip_prefix(':') {
                self.fail(FatalError::Thermal {
                    cause: cause.trim().to_owned(),
                    heater,
                });
                return;
            }
        }
        if self.response.len() < 256 {
            self.response.push(text.clone());
        }
        self.events
            .push_back(Event::Warning(Warning::UnknownLine(text)));
    }

    fn on_ok(&mut self, now: Instant, ok: OkLine, raw: &[u8]) {
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
            let plain =
                (!self.firmware.advanced_ok || ok.line.is_none()) && ok.temperatures.is_none();
            if plain && self.config.resend_ok != ResendOk::Never {
                self.awaiting_resend_ok = None;
                return;
            }
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
            // `ok T:…` only ever answers an M105.
            self.events.push_back(Event::Warning(Warning::UnexpectedOk));
            return;
        }
        let taken = if let (true, Some(n)) = (self.firmware.advanced_ok, ok.line) {
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
        } else if let Some(pos) = ok
            .temperatures
            .as_ref()
            .and_then(|_| self.in_flight.iter().position(|f| f.m105))
        {
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
            // A plain `ok` never answers an M105 (whose answer carries temperatures).
            match self.in_flight.iter().position(|f| !f.m105) {
                Some(0) => self.pop_front_in_flight(),
                Some(pos) => Some(self.remove_in_flight(pos)),
                None => None,
            }
        };
        match taken {
            Some(f) => self.complete(f),
            None => {
                self.response.clear();
                self.events.push_back(Event::Warning(Warning::UnexpectedOk));
            }
        }
    }

    /// The firmware proved it holds every line through `k` (it acknowledged `k`, or asked for
    /// `k + 1`): lines up to `k` that a rewind took out of flight are acknowledged now, since
    /// their own `ok`s may already have been discarded.
    fn acknowledge_through(&mut self, k: i64) {
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

    /// Marks `line` reported; false if it already was.
    fn mark_reported(&mut self, line: i64) -> bool {
        let oldest = self.history.front().map_or(line, |s| s.line);
        match usize::try_from(line - oldest)
            .ok()
            .and_then(|i| self.history.get_mut(i))
        {
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
    fn ack_through(&mut self, pos: usize) -> Option<InFlight> {
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

    fn hello_accepted(&mut self) {
        let _ = self.pop_front_in_flight();
        self.last_acked = Some(0);
        self.hello_deadline = None;
        self.phase = Phase::Identifying;
        self.response.clear();
        // M115 goes first, numbered 1, before anything the application queued.
        self.identify_due = true;
    }

    fn complete(&mut self, f: InFlight) {
        if let Some(n) = f.line {
            self.last_acked = Some(self.last_acked.map_or(n, |a| a.max(n)));
            if self.duplicates.is_some_and(|(l, _)| n >= l) {
                self.duplicates = None;
            }
            if self.recovering.is_some_and(|l| n >= l) {
                self.recovering = None;
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

    fn on_resend(&mut self, now: Instant, line: Option<i64>) {
        let reason = self.last_error.take();
        if matches!(self.phase, Phase::Connecting | Phase::Failed) {
            self.events
                .push_back(Event::Warning(Warning::IgnoredResend {
                    line,
                    why: "not connected yet",
                }));
            return;
        }
        if self.config.resend_ok != ResendOk::Never {
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
            // The firmware has every line sent so far: nothing to re-send.
            self.resend_cursor = None;
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
        self.acknowledge_through(n - 1);
        // Everything from `n` on is lost: forget it and send it again from the history.
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
        // Every transmission the firmware has not answered yet may still come back as the same
        // request (old Marlin answers each line behind a bad one; newer ones drain the receive
        // buffer but lines still on the wire arrive later). This request answers one of them.
        let pending = self.duplicates.map_or(0, |(_, d)| d);
        let ghosts = (pending + lost.len() as u32).saturating_sub(1);
        self.duplicates = (ghosts > 0).then_some((n, ghosts));
        self.resend_cursor = Some(n);
        self.recovering = Some(n);
        // A rewind may leave stale `ok`s on their way (old Marlin answers every line in flight
        // behind a bad one): without ADVANCED_OK, resynchronise with an M105 right after,
        // unless an M105 is among the lines re-sent (it is the sync then).
        if !self.history.iter().any(|h| h.line >= n && h.m105) {
            self.since_sync = SYNC_EVERY;
        }
        self.events.push_back(Event::Resending { from: n, reason });
    }

    fn on_error(&mut self, e: FirmwareError, raw: &[u8]) {
        match e {
            FirmwareError::Halted => {
                let reason = self.last_message.take();
                self.fail(FatalError::Halted { reason });
            }
            FirmwareError::Stopped => self.fail(FatalError::Stopped),
            FirmwareError::Thermal { cause, heater } => {
                self.fail(FatalError::Thermal { cause, heater })
            }
            e if e.is_line_error() => self.last_error = Some(e),
            FirmwareError::Other(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
                self.split_error = Some(text);
            }
            e => {
                self.keep_response(raw);
                self.last_message = Some(e.to_string());
                self.events
                    .push_back(Event::Warning(Warning::FirmwareError(e)));
            }
        }
    }

    fn on_wait(&mut self, now: Instant) {
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

    fn on_start(&mut self) {
        match self.phase {
            Phase::Failed => {}
            Phase::Connecting | Phase::Identifying => {
                self.phase = Phase::Connecting;
                self.hello_due = true;
            }
            Phase::Ready => {
                let unfinished = self
                    .in_flight
                    .iter()
                    .filter(|f| f.kind == Kind::Command)
                    .count()
                    + self.queue.len()
                    + self
                        .resend_cursor
                        .map_or(0, |c| (self.next_line - c) as usize);
                if unfinished > 0 {
                    self.fail(FatalError::FirmwareReset {
                        last_acknowledged: self.last_acked,
                        unfinished,
                    });
                } else {
                    self.phase = Phase::Connecting;
                    self.hello_due = true;
                    self.hello_attempts = 0;
                    self.firmware = Firmware::default();
                    // Autoreports stopped with the reset; they are re-armed once connected.
                    self.temperatures = TemperatureReporting::Off;
                    self.next_temperature_poll = None;
                    self.events.push_back(Event::FirmwareReset);
                }
            }
        }
    }
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

#[cfg(test)]
mod tests;

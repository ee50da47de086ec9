//! The simulated Marlin firmware, following the data flow: bytes arrive at the UART and are
//! read into lines ([`intake`]), the front command runs ([`execute`]) through the motion
//! [`planner`] and the [`heater`]s, and the firmware talks by itself ([`output`]). This file
//! holds the state and the main loop ([`SimPrinter::pump`]). Other firmwares' line handling
//! and answers, where they differ: [`prusa`], [`repetier`], [`smoothieware`],
//! [`reprapfirmware`] (Klipper's is in `sim/flavor.rs`).

mod execute;
mod heater;
mod intake;
mod output;
mod planner;
mod prusa;
mod repetier;
mod reprapfirmware;
mod smoothieware;

use std::collections::VecDeque;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::config::SimConfig;
use super::flavor::{Klipper, SimFlavor};
use super::rng::Rng;
use super::sd::{SdCard, SdSession};
use heater::Heater;
use repetier::Repetier;

/// One command the firmware executed, in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Its line number, if it came numbered.
    pub line: Option<i64>,
    /// The command as stored (comments and the `N`/checksum removed).
    pub command: String,
}

/// Counters a test or benchmark reads after a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimStats {
    /// Commands executed.
    pub executed: u64,
    /// Bytes lost because the receive buffer was full.
    pub rx_overflow_bytes: u64,
    /// Line errors (each followed by a resend request).
    pub line_errors: u64,
    /// Faults injected, all kinds together.
    pub faults_injected: u64,
    /// Faults injected, by kind (a schedule can be checked to have exercised each).
    pub faults: FaultCounts,
    /// Times the planner ran empty while more moves followed (not counting the print's start,
    /// nor a wait the firmware asked for: `G4`, `G28`, `M400`, `M109`, `M190`).
    pub underruns: u64,
    /// Total time motion stood still in those underruns: from the planner running empty until
    /// the next move started (its first-move delay included, see
    /// [`SimConfig::first_move_delay`]).
    pub starved: Duration,
    /// Resets performed.
    pub resets: u64,
    /// The longest time between two lines arriving while the planner still had moves (how
    /// long the host left a printing firmware without data).
    pub max_line_gap: Duration,
}

/// How many faults of each kind [`Faults`](super::Faults) injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Host lines that arrived with one byte changed.
    pub corrupt_line: u64,
    /// Host lines that arrived with one byte missing.
    pub drop_byte: u64,
    /// Host lines lost entirely.
    pub lose_line: u64,
    /// `ok`s never sent.
    pub lost_ok: u64,
    /// `ok`s sent twice.
    pub duplicate_ok: u64,
    /// Good lines rejected as a checksum mismatch anyway.
    pub spurious_resend: u64,
    /// Resets mid-stream ([`Faults::reset_after`](super::Faults::reset_after)).
    pub reset: u64,
    /// Halts ([`Faults::halt_after`](super::Faults::halt_after)).
    pub halt: u64,
}

impl FaultCounts {
    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.corrupt_line
            + self.drop_byte
            + self.lose_line
            + self.lost_ok
            + self.duplicate_ok
            + self.spurious_resend
            + self.reset
            + self.halt
    }
}

impl std::ops::AddAssign for FaultCounts {
    fn add_assign(&mut self, other: Self) {
        self.corrupt_line += other.corrupt_line;
        self.drop_byte += other.drop_byte;
        self.lose_line += other.lose_line;
        self.lost_ok += other.lost_ok;
        self.duplicate_ok += other.duplicate_ok;
        self.spurious_resend += other.spurious_resend;
        self.reset += other.reset;
        self.halt += other.halt;
    }
}

#[derive(Debug, Clone)]
struct Command {
    line: Option<i64>,
    text: String,
    /// Read from the SD card (executed without an `ok`).
    from_sd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Block {
    /// Parsing/planning the front command until then.
    Cpu(Instant),
    /// A move waits for a free planner block.
    Planner(Duration),
    /// Waits for the planner to empty, then for this long (`G28`, `G4`, `M400`).
    Drain(Duration),
    /// Blocked until then (homing, dwell).
    Until(Instant),
    /// `M109`/`M190` until the heater reaches its target.
    Heat(Instant),
    /// `M0`/`M1` until `M108`.
    User,
}

/// A simulated Marlin printer, sans-IO like the session: feed it the bytes that reach its
/// UART with [`handle_rx`](Self::handle_rx), call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout), and collect its output with
/// [`poll_transmit`](Self::poll_transmit).
///
/// ```
/// use std::time::{Duration, Instant};
/// use easyprint_marlin::sim::{SimConfig, SimPrinter};
///
/// let mut now = Instant::now();
/// let mut printer = SimPrinter::new(SimConfig::default());
/// printer.handle_rx(now, b"M104 S200\nG1 X5 F600\nM105\n");
/// // Virtual time: jump from one of the printer's own deadlines to the next.
/// while let Some(next) = printer.poll_timeout().filter(|_| !printer.is_idle()) {
///     now = now.max(next);
///     printer.handle_timeout(now);
/// }
/// let executed: Vec<&str> = printer.ledger().iter().map(|e| e.command.as_str()).collect();
/// assert_eq!(executed, ["M104 S200", "G1 X5 F600", "M105"]);
/// assert_eq!(printer.position()[0], 5.0);
/// let mut output = Vec::new();
/// printer.poll_transmit(&mut output);
/// let output = String::from_utf8(output).unwrap();
/// assert_eq!(output.lines().filter(|l| l.starts_with("ok")).count(), 3, "{output}");
/// assert!(output.contains("T:"), "{output}");
/// ```
#[derive(Debug)]
pub struct SimPrinter {
    config: SimConfig,
    rng: Rng,
    /// Bytes of the line arriving now (faults are decided per line).
    arriving: Vec<u8>,
    /// When the last complete line arrived.
    last_line_at: Option<Instant>,
    rx: VecDeque<u8>,
    estop_line: Vec<u8>,
    line_buf: Vec<u8>,
    in_comment: bool,
    in_paren: bool,
    escape: bool,
    ring: VecDeque<Command>,
    last_n: i64,
    blocked: Option<Block>,
    blocked_since: Option<Instant>,
    next_busy: Option<Instant>,
    next_report: Option<Instant>,
    /// `M155`: the interval and when the next unsolicited report is due.
    autoreport: Option<(Duration, Instant)>,
    planner: VecDeque<Duration>,
    /// When the running (front) block ends; `None` while none runs.
    head_end: Option<Instant>,
    /// A first move waiting for more (`BLOCK_DELAY_FOR_1ST_MOVE`): when it starts anyway.
    first_move_due: Option<Instant>,
    empty_since: Option<Instant>,
    hotend: Heater,
    bed: Heater,
    position: [f64; 4],
    relative: bool,
    /// `M83` (`Some(true)`) / `M82` override of the extruder mode; `G90`/`G91` clear it.
    relative_e: Option<bool>,
    feedrate: f64,
    card: SdCard,
    sd: SdSession,
    halted: bool,
    out: Vec<u8>,
    ledger: Vec<Executed>,
    stats: SimStats,
    /// The Klipper flavor's state (`None`: another flavor).
    klipper: Option<Klipper>,
    /// The Repetier flavor's receiving state.
    repetier: Repetier,
    /// Halted but still reading: Smoothieware answers `!!`, Prusa-Firmware drops commands.
    stopped: bool,
    /// Commands whose next `ok` is still to be lost ([`Faults::lose_ok_of`](super::Faults)).
    lose_ok_of: Vec<String>,
}

impl SimPrinter {
    /// A printer that has just booted (its `start` banner is waiting in the output).
    pub fn new(config: SimConfig) -> Self {
        let mut p = Self {
            card: SdCard::with_config(config.sd),
            rng: Rng::new(config.faults.seed),
            config,
            arriving: Vec::new(),
            last_line_at: None,
            rx: VecDeque::new(),
            estop_line: Vec::new(),
            line_buf: Vec::new(),
            in_comment: false,
            in_paren: false,
            escape: false,
            ring: VecDeque::new(),
            last_n: 0,
            blocked: None,
            blocked_since: None,
            next_busy: None,
            next_report: None,
            autoreport: None,
            planner: VecDeque::new(),
            head_end: None,
            first_move_due: None,
            empty_since: None,
            hotend: Heater::new(),
            bed: Heater::new(),
            position: [0.0; 4],
            relative: false,
            relative_e: None,
            feedrate: 1500.0,
            sd: SdSession::default(),
            halted: false,
            out: Vec::new(),
            ledger: Vec::new(),
            stats: SimStats::default(),
            klipper: None,
            repetier: Repetier::default(),
            stopped: false,
            lose_ok_of: Vec::new(),
        };
        p.lose_ok_of = p.config.faults.lose_ok_of.clone();
        if p.config.flavor == SimFlavor::Klipper {
            p.klipper = Some(Klipper::default());
        }
        p.boot_banner();
        p
    }

    /// Every command executed so far, in order.
    pub fn ledger(&self) -> &[Executed] {
        &self.ledger
    }

    /// Forgets the ledger (long benchmark runs).
    pub fn clear_ledger(&mut self) {
        self.ledger.clear();
    }

    /// Counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The logical X, Y, Z, E position after the commands executed so far.
    pub fn position(&self) -> [f64; 4] {
        self.position
    }

    /// Whether X/Y/Z moves are relative (`G91`) and whether E moves are (`G91` or `M83`).
    pub fn relative_modes(&self) -> (bool, bool) {
        (self.relative, self.relative_e.unwrap_or(self.relative))
    }

    /// The feed rate moves without `F` use, in mm/min.
    pub fn feedrate(&self) -> f64 {
        self.feedrate
    }

    /// The hotend and bed target temperatures (0: off).
    pub fn heater_targets(&self) -> (f64, f64) {
        (self.hotend.target, self.bed.target)
    }

    /// The SD card.
    pub fn sd_card(&self) -> &SdCard {
        &self.card
    }

    /// The SD card, to put files on it before a test.
    pub fn sd_card_mut(&mut self) -> &mut SdCard {
        &mut self.card
    }

    /// Whether an SD print is running (`M24` until the end of the file, `M25` or `M524`).
    pub fn is_sd_printing(&self) -> bool {
        self.sd.printing
    }

    /// Whether `kill()` was called.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Nothing received, queued, blocked or moving.
    pub fn is_idle(&self) -> bool {
        self.rx.is_empty()
            && self.ring.is_empty()
            && self.blocked.is_none()
            && self.planner.is_empty()
            && !self.sd.printing
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Appends the firmware's output to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// The next time something happens inside the printer by itself.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.halted {
            return None;
        }
        [
            match self.blocked {
                Some(Block::Cpu(t) | Block::Until(t) | Block::Heat(t)) => Some(t),
                _ => None,
            },
            self.head_end,
            self.first_move_due,
            self.next_busy,
            self.next_report,
            self.autoreport.map(|(_, t)| t),
            self.sd.autoreport.map(|(_, t)| t),
            self.repetier.wait_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs everything due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.halted {
            return;
        }
        self.keepalive(now);
        self.pump(now);
    }

    fn kill(&mut self, reason: &str) {
        if let Some(k) = &mut self.klipper {
            // Klipper keeps answering, every command with an error.
            let text = k.shut_down(reason);
            self.out.extend_from_slice(text.as_bytes());
            self.halt_motion();
            return;
        }
        match self.config.flavor {
            // `KILL_METHOD 1`: the board resets.
            SimFlavor::Repetier => return self.reset(),
            SimFlavor::Prusa => self.prusa_kill(reason),
            _ => {
                let _ = writeln!(self.out, "echo:{reason}");
                self.out
                    .extend_from_slice(b"Error:Printer halted. kill() called!\n");
            }
        }
        self.halted = true;
        self.blocked = None;
        self.next_busy = None;
        self.next_report = None;
        self.autoreport = None;
        self.halt_motion();
    }

    /// Motion stops: the planner is flushed.
    pub(super) fn halt_motion(&mut self) {
        self.planner.clear();
        self.head_end = None;
        self.first_move_due = None;
    }

    /// Counts one injected fault of the kind `kind` picks.
    fn injected(&mut self, kind: fn(&mut FaultCounts) -> &mut u64) {
        self.stats.faults_injected += 1;
        *kind(&mut self.stats.faults) += 1;
    }

    fn reset(&mut self) {
        self.stats.resets += 1;
        self.rx.clear();
        self.line_buf.clear();
        self.ring.clear();
        self.halt_motion();
        self.empty_since = None;
        self.blocked = None;
        self.next_busy = None;
        self.next_report = None;
        self.autoreport = None;
        self.last_n = 0;
        self.repetier = Repetier::default();
        self.stopped = false;
        self.sd = SdSession::default();
        self.hotend = Heater::new();
        self.bed = Heater::new();
        self.out.clear();
        self.boot_banner();
    }

    fn set_blocked(&mut self, now: Instant, block: Block) {
        if !matches!(block, Block::Cpu(_)) && self.blocked_since.is_none() {
            self.blocked_since = Some(now);
            self.next_busy = self.config.keepalive.map(|k| now + k);
        }
        self.blocked = Some(block);
    }

    /// The firmware's main loop, run until it has to wait for time or bytes.
    fn pump(&mut self, now: Instant) {
        loop {
            if self.halted {
                return;
            }
            self.retire_planner(now);
            if let Some(block) = self.blocked {
                let done = match block {
                    Block::Cpu(t) => {
                        if t > now {
                            return;
                        }
                        self.blocked = None;
                        self.execute_front(t);
                        continue;
                    }
                    Block::Planner(d) => {
                        if self.planner.len() >= self.config.planner_blocks {
                            return;
                        }
                        self.push_block(now, d);
                        true
                    }
                    Block::Drain(d) => {
                        if !self.planner.is_empty() {
                            return;
                        }
                        self.blocked = Some(Block::Until(now + d));
                        continue;
                    }
                    Block::Until(t) | Block::Heat(t) => t <= now,
                    Block::User => false,
                };
                if !done {
                    return;
                }
                self.blocked = None;
                self.blocked_since = None;
                self.next_busy = None;
                self.next_report = None;
                self.finish_front();
                continue;
            }
            self.read_serial(now);
            self.read_sd();
            if self.ring.is_empty() {
                return;
            }
            self.blocked = Some(Block::Cpu(now + self.config.command_time));
        }
    }
}

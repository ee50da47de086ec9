//! The simulated Marlin firmware: receive buffer, line reader, command queue, planner, heaters.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::config::{MarlinVersion, MoveTiming, SimConfig};
use super::flavor::{Klipper, SimFlavor};
use super::rng::Rng;
use super::sd::{SdCard, SdSession};
use crate::line::checksum;

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
    /// Times the planner ran empty while more moves followed.
    pub underruns: u64,
    /// Total time the planner sat empty before such a move arrived.
    pub starved: Duration,
    /// Resets performed.
    pub resets: u64,
    /// The longest time between two lines arriving while the planner still had moves (how
    /// long the host left a printing firmware without data).
    pub max_line_gap: Duration,
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

#[derive(Debug, Clone, Copy)]
struct Heater {
    temp: f64,
    target: f64,
    at: Option<Instant>,
}

impl Heater {
    const AMBIENT: f64 = 22.0;

    fn new() -> Self {
        Self {
            temp: Self::AMBIENT,
            target: 0.0,
            at: None,
        }
    }

    fn temp_at(&self, now: Instant, rate: f64) -> f64 {
        let Some(at) = self.at else { return self.temp };
        let dt = now.saturating_duration_since(at).as_secs_f64();
        let goal = self.target.max(Self::AMBIENT);
        if goal >= self.temp {
            (self.temp + rate * dt).min(goal)
        } else {
            (self.temp - rate / 4.0 * dt).max(goal)
        }
    }

    fn set_target(&mut self, now: Instant, target: f64, rate: f64) {
        self.temp = self.temp_at(now, rate);
        self.at = Some(now);
        self.target = target;
    }

    fn reached_at(&self, now: Instant, rate: f64) -> Instant {
        let t = self.temp_at(now, rate);
        if t >= self.target - 0.5 {
            return now;
        }
        now + Duration::from_secs_f64((self.target - t) / rate)
    }
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
    head_end: Option<Instant>,
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
    /// The Klipper flavor's state (`None`: Marlin).
    klipper: Option<Klipper>,
}

impl SimPrinter {
    /// A printer that has just booted (its `start` banner is waiting in the output).
    pub fn new(config: SimConfig) -> Self {
        let mut p = Self {
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
            empty_since: None,
            hotend: Heater::new(),
            bed: Heater::new(),
            position: [0.0; 4],
            relative: false,
            relative_e: None,
            feedrate: 1500.0,
            card: SdCard::new(),
            sd: SdSession::default(),
            halted: false,
            out: Vec::new(),
            ledger: Vec::new(),
            stats: SimStats::default(),
            klipper: None,
        };
        if p.config.flavor == SimFlavor::Klipper {
            p.klipper = Some(Klipper::default());
        } else {
            p.boot_banner();
        }
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
            self.next_busy,
            self.next_report,
            self.autoreport.map(|(_, t)| t),
            self.sd.autoreport.map(|(_, t)| t),
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

    /// Bytes arriving at the UART at `now`.
    pub fn handle_rx(&mut self, now: Instant, bytes: &[u8]) {
        if self.halted {
            return;
        }
        self.keepalive(now);
        for &b in bytes {
            self.arriving.push(b);
            if b == b'\n' {
                self.retire_planner(now);
                if let (Some(last), false) = (self.last_line_at, self.planner.is_empty()) {
                    self.stats.max_line_gap = self.stats.max_line_gap.max(now - last);
                }
                self.last_line_at = Some(now);
                let mut line = std::mem::take(&mut self.arriving);
                self.inject_line_faults(&mut line);
                for &c in &line {
                    self.uart_byte(now, c);
                }
                line.clear();
                self.arriving = line;
            }
        }
        self.pump(now);
    }

    fn inject_line_faults(&mut self, line: &mut Vec<u8>) {
        let f = &self.config.faults;
        let (lose, corrupt, drop) = (f.lose_line, f.corrupt_line, f.drop_byte);
        if self.rng.chance(lose) {
            self.stats.faults_injected += 1;
            line.clear();
            return;
        }
        // Never the first byte (an `N` turned into something else would make the line run
        // unprotected) and never the terminator (merged lines have a 1/256 chance to pass
        // the 8-bit checksum), and at most one fault per line (a changed byte and a dropped
        // one can cancel out in the XOR checksum, e.g. `X`→`x` and a space dropped): all
        // real risks of the protocol, not of the host.
        if line.len() > 2 && self.rng.chance(corrupt) {
            self.stats.faults_injected += 1;
            let i = 1 + self.rng.below(line.len() - 2);
            let old = line[i];
            let mut new = b'!' + self.rng.below(90) as u8;
            // Not a `*` either: a second one turns the checksum into text Marlin reads as 0,
            // which matches one time in 256 (a risk of the protocol, not of the host).
            if new == old || new == b';' || new == b'\\' || new == b'(' || new == b'*' {
                new = if old == b'#' { b'$' } else { b'#' };
            }
            line[i] = new;
        } else if line.len() > 2 && self.rng.chance(drop) {
            self.stats.faults_injected += 1;
            let i = 1 + self.rng.below(line.len() - 2);
            line.remove(i);
        }
    }

    fn uart_byte(&mut self, now: Instant, b: u8) {
        if self.config.emergency_parser {
            self.emergency_parser(now, b);
            if self.halted {
                return;
            }
        }
        if self.rx.len() >= self.config.rx_buffer {
            self.stats.rx_overflow_bytes += 1;
            return;
        }
        self.rx.push_back(b);
    }

    /// Marlin's emergency parser: acts on raw bytes, before line assembly or checksums.
    fn emergency_parser(&mut self, now: Instant, b: u8) {
        if b != b'\n' && b != b'\r' {
            if self.estop_line.len() < 24 {
                self.estop_line.push(b);
            }
            return;
        }
        let line = std::mem::take(&mut self.estop_line);
        let mut s = line.as_slice();
        if s.first() == Some(&b'N') {
            s = &s[1..];
            while s.first().is_some_and(|c| c.is_ascii_digit() || *c == b'-') {
                s = &s[1..];
            }
        }
        let s = s.trim_ascii_start();
        if s.starts_with(b"M112") {
            self.kill("Killed by M112");
        } else if s.starts_with(b"M108") {
            if matches!(self.blocked, Some(Block::Heat(_) | Block::User)) {
                self.blocked = Some(Block::Until(now));
            }
        } else if s.starts_with(b"M876") {
            // A prompt answer releases a wait for the user (M0, M600).
            if self.blocked == Some(Block::User) {
                self.blocked = Some(Block::Until(now));
            }
        } else if s.starts_with(b"M410") {
            self.planner.clear();
            self.head_end = None;
        }
    }

    fn kill(&mut self, reason: &str) {
        if let Some(k) = &mut self.klipper {
            // Klipper keeps answering, every command with an error.
            let text = k.shut_down(reason);
            self.out.extend_from_slice(text.as_bytes());
            self.planner.clear();
            self.head_end = None;
            return;
        }
        let _ = writeln!(self.out, "echo:{reason}");
        self.out
            .extend_from_slice(b"Error:Printer halted. kill() called!\n");
        self.halted = true;
        self.blocked = None;
        self.next_busy = None;
        self.next_report = None;
        self.autoreport = None;
        self.head_end = None;
    }

    fn boot_banner(&mut self) {
        self.out
            .extend_from_slice(b"start\necho: External Reset\nMarlin 2.1.2.1\necho:SD card ok\n");
    }

    fn reset(&mut self) {
        self.stats.resets += 1;
        self.rx.clear();
        self.line_buf.clear();
        self.ring.clear();
        self.planner.clear();
        self.head_end = None;
        self.empty_since = None;
        self.blocked = None;
        self.next_busy = None;
        self.next_report = None;
        self.autoreport = None;
        self.last_n = 0;
        self.sd = SdSession::default();
        self.hotend = Heater::new();
        self.bed = Heater::new();
        self.out.clear();
        self.boot_banner();
    }

    fn keepalive(&mut self, now: Instant) {
        // Marlin's autoreport runs from `idle()`, so it continues inside blocking commands;
        // the line starts with a space and carries no `ok`.
        if let Some((every, t)) = self.autoreport.filter(|(_, t)| *t <= now) {
            let line = self.temperature_line(t);
            let _ = writeln!(self.out, "{line}");
            // A late wake-up reports once, then keeps the cadence from now.
            let next = t + every;
            self.autoreport = Some((every, if next <= now { now + every } else { next }));
        }
        if let Some((every, t)) = self.sd.autoreport.filter(|(_, t)| *t <= now) {
            if self.sd.selected.is_some() {
                let line = self.sd.status_line(&self.card);
                let _ = writeln!(self.out, "{line}");
            }
            self.sd.autoreport = Some((every, (t + every).max(now)));
        }
        if let Some(t) = self.next_report.filter(|t| *t <= now) {
            let line = self.temperature_line(t);
            let _ = writeln!(self.out, "{line} W:?");
            self.next_report = Some(t + Duration::from_secs(1));
        }
        if let Some(t) = self.next_busy.filter(|t| *t <= now) {
            let reason = if self.blocked == Some(Block::User) {
                "paused for user"
            } else {
                "processing"
            };
            let _ = writeln!(self.out, "echo:busy: {reason}");
            self.next_busy = self.config.keepalive.map(|k| t + k);
        }
    }

    fn retire_planner(&mut self, now: Instant) {
        while let Some(end) = self.head_end.filter(|e| *e <= now) {
            self.planner.pop_front();
            match self.planner.front() {
                Some(d) => self.head_end = Some(end + *d),
                None => {
                    self.head_end = None;
                    self.empty_since = Some(end);
                }
            }
        }
    }

    fn push_block(&mut self, now: Instant, d: Duration) {
        if self.planner.is_empty() {
            self.head_end = Some(now + d);
            if let Some(since) = self.empty_since.take() {
                if now > since {
                    self.stats.underruns += 1;
                    self.stats.starved += now - since;
                }
            }
        }
        self.planner.push_back(d);
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

    /// Marlin's `get_serial_commands`: assemble lines from RX while there is a free slot.
    fn read_serial(&mut self, now: Instant) {
        while self.ring.len() < self.config.command_slots {
            let Some(c) = self.rx.pop_front() else { return };
            if c == b'\n' || c == b'\r' {
                self.in_comment = false;
                self.in_paren = false;
                self.escape = false;
                if self.line_buf.is_empty() {
                    continue;
                }
                let line = std::mem::take(&mut self.line_buf);
                self.process_line(now, &line);
                self.line_buf = line;
                self.line_buf.clear();
                continue;
            }
            if self.in_comment {
                continue;
            }
            if self.escape {
                self.escape = false;
            } else if c == b';' {
                self.in_comment = true;
                continue;
            } else if c == b'\\' {
                self.escape = true;
                continue;
            } else if self.config.paren_comments && c == b'(' {
                self.in_paren = true;
                continue;
            } else if self.in_paren {
                if c == b')' {
                    self.in_paren = false;
                }
                continue;
            } else if c == 0x08 {
                self.line_buf.pop();
                continue;
            }
            // MAX_CMD_SIZE 96: the rest of a long line is silently lost.
            if self.line_buf.len() < 95 {
                self.line_buf.push(c);
            }
        }
    }

    /// Marlin's `get_sdcard_commands`: while printing from SD, fill free slots from the file.
    fn read_sd(&mut self) {
        while self.sd.printing && self.ring.len() < self.config.command_slots {
            let text = match self.sd.next_command(&self.card) {
                Some(text) => text,
                None => {
                    // End of file: Marlin queues `M1001`, which reports the print done.
                    self.sd.printing = false;
                    self.sd.selected = None;
                    "M1001".to_owned()
                }
            };
            self.ring.push_back(Command {
                line: None,
                text,
                from_sd: true,
            });
        }
    }

    fn process_line(&mut self, now: Instant, raw: &[u8]) {
        let s = raw.trim_ascii_start();
        if self.klipper.is_some() {
            let (line, text) = super::flavor::unchecked_line(s);
            return self.ring.push_back(Command {
                line,
                text,
                from_sd: false,
            });
        }
        if s.first() != Some(&b'N') {
            let text = String::from_utf8_lossy(s).trim().to_owned();
            if self.sd.saving.is_some() && !super::sd::is_m29(&text) {
                // While writing to SD only `M29` may come without a line number.
                return self.line_error(now, "No Checksum with line number, Last Line: ");
            }
            self.ring.push_back(Command {
                line: None,
                text,
                from_sd: false,
            });
            return;
        }
        let text = String::from_utf8_lossy(s).into_owned();
        let is_m110 = text.contains("M110");
        let mut npos = 0;
        if is_m110 {
            if let Some(p) = text[4..].find('N') {
                npos = 4 + p;
            }
        }
        let n = strtol(&text[npos + 1..]);
        if n != self.last_n + 1 && !is_m110 {
            return self.line_error(now, "Line Number is not Last Line Number+1, Last Line: ");
        }
        let Some(apos) = text.rfind('*') else {
            return self.line_error(now, "No Checksum with line number, Last Line: ");
        };
        if strtol(&text[apos + 1..]) != i64::from(checksum(&s[..apos])) {
            return self.line_error(now, "checksum mismatch, Last Line: ");
        }
        if self.rng.chance(self.config.faults.spurious_resend) {
            self.stats.faults_injected += 1;
            return self.line_error(now, "checksum mismatch, Last Line: ");
        }
        self.last_n = n;
        let body = &text[..apos];
        let payload = body
            .trim_start_matches('N')
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .trim();
        self.ring.push_back(Command {
            line: Some(strtol(&text[1..])),
            text: payload.to_owned(),
            from_sd: false,
        });
    }

    fn line_error(&mut self, _now: Instant, text: &str) {
        self.stats.line_errors += 1;
        let _ = writeln!(self.out, "Error:{text}{}", self.last_n);
        if self.config.version != MarlinVersion::V1 {
            self.rx.clear();
        }
        self.line_buf.clear();
        let _ = writeln!(self.out, "Resend: {}", self.last_n + 1);
        if self.config.version != MarlinVersion::V2_0 {
            self.out.extend_from_slice(b"ok\n");
        }
    }

    fn execute_front(&mut self, now: Instant) {
        let Some(cmd) = self.ring.front().cloned() else {
            return;
        };
        if !cmd.from_sd {
            if let Some(name) = self.sd.saving.clone() {
                // Marlin's `GCodeQueue::advance` while saving: lines are written, not run.
                if super::sd::is_m29(&cmd.text) {
                    self.sd.saving = None;
                    self.out.extend_from_slice(b"Done saving file.\n");
                } else {
                    self.card.append_line(&name, &cmd.text);
                }
                self.finish_front();
                return;
            }
        }
        self.ledger.push(Executed {
            line: cmd.line,
            command: cmd.text.clone(),
        });
        self.stats.executed += 1;
        let faults = &self.config.faults;
        if faults.halt_after == Some(self.stats.executed) {
            if self.klipper.is_none() {
                let _ = writeln!(
                    self.out,
                    "Error:Thermal Runaway, system stopped! Heater_ID: bed"
                );
            }
            self.kill("THERMAL RUNAWAY");
            return;
        }
        if faults.reset_after == Some(self.stats.executed) {
            self.reset();
            return;
        }
        let words = Words::new(&cmd.text);
        let code = words.code.to_ascii_uppercase();
        if let Some(k) = &self.klipper {
            if let Some(answer) = k.intercept(&code, words.get('X'), words.get('Y')) {
                for line in answer.lines {
                    let _ = writeln!(self.out, "{line}");
                }
                let _ = writeln!(self.out, "ok{}", answer.ok_text);
                self.ring.pop_front();
                return;
            }
        }
        match code.as_str() {
            "G0" | "G1" | "G2" | "G3" => {
                if let Some(d) = self.plan_move(&words) {
                    if self.planner.len() >= self.config.planner_blocks {
                        self.set_blocked(now, Block::Planner(d));
                        return;
                    }
                    self.push_block(now, d);
                }
            }
            "G28" => {
                self.position = [0.0; 4];
                self.drain_then(now, self.config.homing_time);
                return;
            }
            "G4" => {
                let d = words
                    .get('P')
                    .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
                    .or_else(|| words.get('S').map(|s| Duration::from_secs_f64(s.max(0.0))))
                    .unwrap_or_default();
                self.drain_then(now, d);
                return;
            }
            "M400" => {
                self.drain_then(now, Duration::ZERO);
                return;
            }
            "G90" => (self.relative, self.relative_e) = (false, None),
            "G91" => (self.relative, self.relative_e) = (true, None),
            "M82" => self.relative_e = Some(false),
            "M83" => self.relative_e = Some(true),
            "G92" => {
                for (i, axis) in ['X', 'Y', 'Z', 'E'].into_iter().enumerate() {
                    if let Some(v) = words.get(axis) {
                        self.position[i] = v;
                    }
                }
            }
            "M104" | "M109" => {
                let rate = self.config.heating_rate;
                if let Some(s) = words.get('S').or_else(|| words.get('R')) {
                    self.hotend.set_target(now, s, rate);
                }
                if code == "M109" {
                    let until = self.hotend.reached_at(now, rate);
                    self.heat_wait(now, until);
                    return;
                }
            }
            "M140" | "M190" => {
                let rate = self.config.heating_rate / 4.0;
                if let Some(s) = words.get('S').or_else(|| words.get('R')) {
                    self.bed.set_target(now, s, rate);
                }
                if code == "M190" {
                    let until = self.bed.reached_at(now, rate);
                    self.heat_wait(now, until);
                    return;
                }
            }
            "M0" | "M1" => {
                self.set_blocked(now, Block::User);
                return;
            }
            "M600" => {
                // ADVANCED_PAUSE_FEATURE: park, then wait for the user (`M108`/`M876`); the
                // host hears `//action:paused` now and `//action:resumed` at the end.
                self.out.extend_from_slice(b"//action:paused\n");
                self.set_blocked(now, Block::User);
                return;
            }
            "M20" | "M21" | "M22" | "M23" | "M24" | "M25" | "M26" | "M27" | "M28" | "M30"
            | "M524" | "M1001" => {
                let (card, out) = (&mut self.card, &mut self.out);
                self.sd.command(card, &code, &cmd.text, now, out);
            }
            "M105" => {
                let line = self.temperature_line(now);
                let _ = writeln!(self.out, "ok{line}");
                self.ring.pop_front();
                return;
            }
            "M114" => {
                let [x, y, z, e] = self.position;
                let _ = writeln!(
                    self.out,
                    "X:{x:.2} Y:{y:.2} Z:{z:.2} E:{e:.2} Count X:{} Y:{} Z:{}",
                    (x * 80.0) as i64,
                    (y * 80.0) as i64,
                    (z * 400.0) as i64
                );
            }
            "M115" => self.report_capabilities(),
            "M110" => {
                if let Some(n) = words.get('N') {
                    self.last_n = n as i64;
                }
            }
            "M112" => {
                self.kill("Killed by M112");
                return;
            }
            "M410" => {
                self.planner.clear();
                self.head_end = None;
            }
            "M155" if self.config.autoreport_temp => {
                // Marlin: `S` seconds, 0 stops, at most 60; no `S` leaves the interval as is.
                if let Some(secs) = words.get('S') {
                    let secs = secs.clamp(0.0, 60.0) as u64;
                    self.autoreport = (secs > 0).then(|| {
                        let every = Duration::from_secs(secs);
                        (every, now + every)
                    });
                }
            }
            "M84" | "M18" | "M106" | "M107" | "M108" | "M117" | "M201" | "M203" | "M204"
            | "M205" | "M220" | "M221" | "M73" | "M876" | "M999" | "G21" | "M300" | "T0"
            | "M413" | "M900" | "M907" => {}
            _ => {
                let _ = writeln!(self.out, "echo:Unknown command: \"{}\"", cmd.text);
            }
        }
        self.finish_front();
    }

    fn drain_then(&mut self, now: Instant, d: Duration) {
        self.empty_since = None;
        self.set_blocked(now, Block::Drain(d));
    }

    fn heat_wait(&mut self, now: Instant, until: Instant) {
        self.set_blocked(now, Block::Heat(until));
        self.next_report = Some(now + Duration::from_secs(1));
        self.empty_since = None;
    }

    /// The front command is done: acknowledge it and free its slot.
    fn finish_front(&mut self) {
        let Some(cmd) = self.ring.front() else { return };
        let line = cmd.line;
        if self.blocked_since.is_some() {
            self.blocked_since = None;
        }
        if cmd.from_sd {
            // Commands read from SD are never acknowledged.
            self.ring.pop_front();
            return;
        }
        if Words::new(&cmd.text).code.eq_ignore_ascii_case("M600") {
            self.out.extend_from_slice(b"//action:resumed\n");
        }
        if self.rng.chance(self.config.faults.lost_ok) {
            self.stats.faults_injected += 1;
        } else {
            let copies = if self.rng.chance(self.config.faults.duplicate_ok) {
                self.stats.faults_injected += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                self.write_ok(line);
            }
        }
        self.ring.pop_front();
        if self.planner.is_empty() && matches!(self.config.moves, MoveTiming::Instant) {
            self.empty_since = None;
        }
    }

    fn write_ok(&mut self, line: Option<i64>) {
        if !self.config.advanced_ok {
            self.out.extend_from_slice(b"ok\n");
            return;
        }
        self.out.extend_from_slice(b"ok");
        if let Some(n) = line {
            let _ = write!(self.out, " N{n}");
        }
        let planner_free = self.config.planner_blocks - self.planner.len();
        let slots_free = self.config.command_slots - self.ring.len();
        let _ = writeln!(self.out, " P{planner_free} B{slots_free}");
    }

    fn plan_move(&mut self, words: &Words<'_>) -> Option<Duration> {
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

    fn temperature_line(&self, now: Instant) -> String {
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

    fn report_capabilities(&mut self) {
        let c = &self.config;
        let caps = [
            ("EMERGENCY_PARSER", c.emergency_parser),
            ("PAREN_COMMENTS", c.paren_comments),
            ("AUTOREPORT_TEMP", c.autoreport_temp),
            ("HOST_ACTION_COMMANDS", true),
            ("PROMPT_SUPPORT", false),
            ("SDCARD", true),
            ("AUTOREPORT_SD_STATUS", true),
            ("LONG_FILENAME", true),
            ("EEPROM", true),
        ];
        let mut text = String::from(
            "FIRMWARE_NAME:Marlin 2.1.2.1 (easyprint simulator) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated EXTRUDER_COUNT:1\n",
        );
        for (name, on) in caps {
            let _ = writeln!(text, "Cap:{name}:{}", u8::from(on));
        }
        self.out.extend_from_slice(text.as_bytes());
    }
}

/// C's `strtol` on a decimal: leading spaces, optional sign, digits; 0 when none.
fn strtol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let v: i64 = digits[..end].parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// The words of a stored command: its code and `X10.5`-style parameters.
struct Words<'a> {
    code: &'a str,
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.trim();
        let (code, rest) = text.split_once(' ').unwrap_or((text, ""));
        Self { code, rest }
    }

    fn get(&self, letter: char) -> Option<f64> {
        self.rest.split_ascii_whitespace().find_map(|w| {
            let mut chars = w.chars();
            let first = chars.next()?;
            if first.eq_ignore_ascii_case(&letter) {
                chars.as_str().parse().ok()
            } else {
                None
            }
        })
    }
}

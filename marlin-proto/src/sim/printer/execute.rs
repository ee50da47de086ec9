//! Command execution: the front command of the queue runs (motion, heaters, reports, SD),
//! and is acknowledged with `ok` when done.

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::{Block, Executed, SimFlavor, SimPrinter};
use crate::sim::config::MoveTiming;

impl SimPrinter {
    pub(super) fn execute_front(&mut self, now: Instant) {
        let Some(cmd) = self.ring.front().cloned() else {
            return;
        };
        if !cmd.from_sd {
            if let Some(name) = self.sd.saving.clone() {
                // Marlin's `GCodeQueue::advance` while saving: lines are written, not run.
                if crate::sim::sd::is_m29(&cmd.text) {
                    self.sd.saving = None;
                    self.out.extend_from_slice(b"Done saving file.\n");
                } else {
                    self.card.append_line(&name, &cmd.text);
                }
                self.finish_front();
                return;
            }
        }
        if self.config.flavor == SimFlavor::Smoothieware {
            let code = Words::new(&cmd.text).code.to_ascii_uppercase();
            if self.smoothie_refuses(&code) {
                // Answered `!!` without `ok`, and not run (so not in the ledger).
                self.ring.pop_front();
                return;
            }
        }
        self.ledger.push(Executed {
            line: cmd.line,
            command: cmd.text.clone(),
        });
        self.stats.executed += 1;
        let (halt_after, reset_after) = (
            self.config.faults.halt_after,
            self.config.faults.reset_after,
        );
        if halt_after == Some(self.stats.executed) {
            self.injected(|c| &mut c.halt);
            return self.halt_fault();
        }
        if reset_after == Some(self.stats.executed) {
            self.injected(|c| &mut c.reset);
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
        if self.config.flavor == SimFlavor::Smoothieware && code == "M112" {
            self.smoothie_emergency_stop();
            // Answered already, without another `ok`.
            self.ring.pop_front();
            return;
        }
        match self.config.flavor {
            SimFlavor::Repetier if code == "M105" => {
                // The `ok` went out when the line was stored; the report follows alone.
                let line = self.temperature_line(now);
                let _ = writeln!(self.out, "{}", line.trim_start());
                return self.finish_front();
            }
            SimFlavor::Repetier if code == "M999" => self.repetier_clear_fatal(),
            _ => {}
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
            "M20" | "M21" | "M22" | "M23" | "M24" | "M25" | "M26" | "M27" | "M28" | "M29"
            | "M30" | "M524" | "M1001" => {
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
                self.halt_motion();
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
            _ if self.config.flavor == SimFlavor::Prusa => {
                let letter = cmd.text.chars().next().unwrap_or('?');
                let _ = writeln!(self.out, "Unknown {letter} code: {}", cmd.text);
            }
            _ => {
                let _ = writeln!(self.out, "echo:Unknown command: \"{}\"", cmd.text);
            }
        }
        self.finish_front();
    }

    pub(super) fn drain_then(&mut self, now: Instant, d: Duration) {
        self.empty_since = None;
        self.set_blocked(now, Block::Drain(d));
    }

    pub(super) fn heat_wait(&mut self, now: Instant, until: Instant) {
        self.set_blocked(now, Block::Heat(until));
        self.next_report = Some(now + Duration::from_secs(1));
        self.empty_since = None;
    }

    /// The front command is done: acknowledge it and free its slot.
    pub(super) fn finish_front(&mut self) {
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
        let code = Words::new(&cmd.text).code;
        let targeted = (self.lose_ok_of.iter())
            .position(|c| c.eq_ignore_ascii_case(code))
            .map(|i| self.lose_ok_of.swap_remove(i));
        if targeted.is_some() {
            self.injected(|c| &mut c.lost_ok);
        } else if self.config.flavor != SimFlavor::Repetier {
            // (Repetier acknowledged it when it was stored.)
            self.acknowledge(line);
        }
        self.ring.pop_front();
        if self.planner.is_empty() && matches!(self.config.moves, MoveTiming::Instant) {
            self.empty_since = None;
        }
    }

    /// Sends a command's `ok`, or loses or doubles it (injected faults).
    pub(super) fn acknowledge(&mut self, line: Option<i64>) {
        if self.rng.chance(self.config.faults.lost_ok) {
            self.injected(|c| &mut c.lost_ok);
        } else {
            let copies = if self.rng.chance(self.config.faults.duplicate_ok) {
                self.injected(|c| &mut c.duplicate_ok);
                2
            } else {
                1
            };
            for _ in 0..copies {
                self.write_ok(line);
            }
        }
    }

    /// The injected halt (a thermal fault), as the flavor reports it.
    fn halt_fault(&mut self) {
        match self.config.flavor {
            SimFlavor::Klipper => self.kill("THERMAL RUNAWAY"),
            SimFlavor::Prusa => self.prusa_thermal_stop(),
            SimFlavor::Repetier => self.repetier_fatal(),
            SimFlavor::Smoothieware => self.smoothie_halt(),
            _ => {
                let _ = writeln!(
                    self.out,
                    "Error:Thermal Runaway, system stopped! Heater_ID: bed"
                );
                self.kill("THERMAL RUNAWAY");
            }
        }
    }

    pub(super) fn write_ok(&mut self, line: Option<i64>) {
        if self.config.flavor == SimFlavor::Repetier {
            return self.repetier_ok();
        }
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
}

/// The words of a stored command: its code and `X10.5`-style parameters.
pub(super) struct Words<'a> {
    code: &'a str,
    rest: &'a str,
}

impl<'a> Words<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let text = text.trim();
        let (code, rest) = text.split_once(' ').unwrap_or((text, ""));
        Self { code, rest }
    }

    pub(super) fn get(&self, letter: char) -> Option<f64> {
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

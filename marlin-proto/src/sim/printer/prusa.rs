//! Where Prusa-Firmware (`Marlin_main.cpp`, `cmdqueue.cpp`) answers differently from Marlin
//! 2.1: `M112` acted on when the line is read, `kill()`'s reason after its error line, and
//! the thermal stop that drops every later command unanswered.

use std::io::Write as _;

use super::{SimFlavor, SimPrinter};

impl SimPrinter {
    /// A line that passed the checks, before it is queued: Prusa acts on `M112` here, and
    /// while stopped drops every other line unanswered (its number not counted). True when
    /// the line was taken.
    pub(super) fn prusa_takes(&mut self, payload: &str) -> bool {
        if self.config.flavor != SimFlavor::Prusa {
            return false;
        }
        if payload == "M112" {
            self.kill("M112 called. Emergency Stop.");
            return true;
        }
        self.stopped
    }

    /// `kill()`: the error line, then the reason on a line of its own.
    pub(super) fn prusa_kill(&mut self, reason: &str) {
        let _ = writeln!(self.out, "Error:Printer halted. kill() called!\n{reason}");
    }

    /// `ThermalStop` after a thermal runaway with no recovery: from now on commands are
    /// dropped without an answer (`Stopped`), and so are those already queued.
    pub(super) fn prusa_thermal_stop(&mut self) {
        self.out.extend_from_slice(
            b"Error: HOTEND THERMAL RUNAWAY\nError:Printer stopped due to errors. Supervision required.\n",
        );
        self.halt_motion();
        // The command that was running and those queued behind it are dropped too (before,
        // the running one stayed at the front and ran again).
        self.ring.clear();
        self.stopped = true;
    }
}

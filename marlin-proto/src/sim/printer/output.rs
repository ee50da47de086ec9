//! What the firmware says by itself: the boot banner, `M115` capabilities, and `idle()`'s
//! keepalive output (`busy:`, temperature autoreport, SD status autoreport).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::{Block, SimPrinter};

impl SimPrinter {
    pub(super) fn keepalive(&mut self, now: Instant) {
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

    pub(super) fn report_capabilities(&mut self) {
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

    pub(super) fn boot_banner(&mut self) {
        self.out
            .extend_from_slice(b"start\necho: External Reset\nMarlin 2.1.2.1\necho:SD card ok\n");
    }
}

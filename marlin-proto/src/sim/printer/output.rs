//! What the firmware says by itself: the boot banner, `M115` capabilities, and `idle()`'s
//! keepalive output (`busy:`, temperature autoreport, SD status autoreport).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::{Block, SimFlavor, SimPrinter};

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
            let user = self.blocked == Some(Block::User);
            if self.config.flavor == SimFlavor::Repetier {
                // `GCode::keepAlive`: no `echo:`, no space.
                let reason = match self.blocked {
                    Some(Block::User) => "paused for user interaction",
                    Some(Block::Heat(_)) => "heating",
                    _ => "processing",
                };
                let _ = writeln!(self.out, "busy:{reason}");
            } else {
                let reason = if user {
                    "paused for user"
                } else {
                    "processing"
                };
                let _ = writeln!(self.out, "echo:busy: {reason}");
            }
            self.next_busy = self.config.keepalive.map(|k| t + k);
        }
        if self.config.flavor == SimFlavor::Repetier {
            self.repetier_wait(now);
        }
    }

    /// `M115`'s report, as the flavor words it.
    pub(super) fn report_capabilities(&mut self) {
        let c = &self.config;
        let marlin_caps = [
            ("EMERGENCY_PARSER", c.emergency_parser),
            ("PAREN_COMMENTS", c.paren_comments),
            ("AUTOREPORT_TEMP", c.autoreport_temp),
            ("HOST_ACTION_COMMANDS", true),
            ("PROMPT_SUPPORT", false),
            ("SDCARD", true),
            ("AUTOREPORT_SD_STATUS", c.sd.autoreport),
            ("LONG_FILENAME", true),
            ("LFN_WRITE", c.sd.long_name_write),
            ("EEPROM", true),
        ];
        let (name, caps): (&str, &[(&str, bool)]) = match c.flavor {
            SimFlavor::Prusa => (
                "FIRMWARE_NAME:Prusa-Firmware 3.13.3+7652_deadbeef based on Marlin FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1",
                &[("AUTOREPORT_TEMP", true), ("AUTOREPORT_FANS", true), ("AUTOREPORT_POSITION", true), ("EXTENDED_M20", true), ("PRUSA_MMU2", true)],
            ),
            SimFlavor::Repetier => (
                "FIRMWARE_NAME:Repetier_1.0.4 COMPILED:Nov 23 2026 FIRMWARE_URL:https://github.com/repetier/Repetier-Firmware/ PROTOCOL_VERSION:1.0 MACHINE_TYPE:Mendel EXTRUDER_COUNT:1 REPETIER_PROTOCOL:3",
                &[("PROGRESS", false), ("AUTOREPORT_TEMP", true), ("HOST_RESCUE", false), ("EEPROM", true), ("AUTOLEVEL", false), ("Z_PROBE", false)],
            ),
            SimFlavor::Smoothieware => (
                "FIRMWARE_NAME:Smoothieware, FIRMWARE_URL:http%3A//smoothieware.org, X-SOURCE_CODE_URL:https://github.com/Smoothieware/Smoothieware, FIRMWARE_VERSION:edge-bb41e99, PROTOCOL_VERSION:1.0, X-FIRMWARE_BUILD_DATE:Jul 31 2023 15:25:57, X-SYSTEM_CLOCK:100MHz, X-AXES:5, X-GRBL_MODE:0, X-ARCS:1",
                &[],
            ),
            SimFlavor::RepRapFirmware => (
                "FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.3 ELECTRONICS: Duet 3 MB6HC v1.01 or later",
                &[],
            ),
            _ => (
                "FIRMWARE_NAME:Marlin 2.1.2.1 (easyprint simulator) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated EXTRUDER_COUNT:1",
                &marlin_caps,
            ),
        };
        let mut text = format!("{name}\n");
        for (cap, on) in caps {
            let _ = writeln!(text, "Cap:{cap}:{}", u8::from(*on));
        }
        self.out.extend_from_slice(text.as_bytes());
    }

    /// What the firmware prints when it boots (nothing where the board does not reset when
    /// the port opens).
    pub(super) fn boot_banner(&mut self) {
        let banner: &[u8] = match self.config.flavor {
            SimFlavor::Marlin | SimFlavor::Prusa => {
                b"start\necho: External Reset\nMarlin 2.1.2.1\necho:SD card ok\n"
            }
            SimFlavor::Repetier => b"start\n",
            _ => b"",
        };
        self.out.extend_from_slice(banner);
    }
}

//! Firmware flavors and the behaviours that differ between them, as a table.
//!
//! The flavor comes from `M115`'s `FIRMWARE_NAME`; [`Quirks::for_flavor`] gives its table
//! entry, and [`SessionConfig::quirks`](super::SessionConfig::quirks) overrides it. Entries
//! differ from Marlin's only where a firmware's source shows it:
//!
//! | flavor | `!!` line | shutdown announced as | `ok` after a resend request | `ok` sent | line numbers checked |
//! |---|---|---|---|---|---|
//! | Marlin, other | fatal (the firmware halted) | — | zero or one, by version ([`ResendOk::Detect`](super::ResendOk)) | when the command ran | yes |
//! | Prusa-Firmware | fatal | — | always one | when the command ran | yes |
//! | Repetier | fatal | — | always one | `ok <n>` when the line is stored, before it runs | yes |
//! | Smoothieware | fatal (halted until `M999`/`$X`) | — | never | when the command ran | yes |
//! | RepRapFirmware | fatal | — | — (never asks) | when the command ran | no: a bad line is dropped silently |
//! | Klipper | an error for the running command, whose `ok` still follows | `// Klipper state: Shutdown` (fatal) | — (never asks) | when the command ran | no |
//!
//! Lines only one firmware writes are understood whatever the flavor: Repetier's `skip <n>`
//! and `fatal:`, Prusa's `Unknown M code:` and `echo:Printer stopped due to errors`.
//!
//! What each firmware does differently from Marlin, for a host (sources read at the commits
//! named; the simulator's [`SimFlavor`](crate::sim::SimFlavor)s reproduce the rows above):
//!
//! - **Prusa-Firmware** ([`Firmware/cmdqueue.cpp`], [`Firmware/Marlin_main.cpp`] at
//!   `0c9bf5d`, 3.14): `M115` answers `FIRMWARE_NAME:Prusa-Firmware 3.13.3+… based on Marlin
//!   FIRMWARE_URL:…`. A line error (line number, checksum, missing checksum, and also
//!   `No Line Number with checksum`) drains the receive buffer and prints `Resend: <n>` and
//!   `ok` together (`FlushSerialRequestResend`): always exactly one `ok`. Unknown codes print
//!   `Unknown M code: <command>` (no `echo:`), then `ok`. `kill()` prints
//!   `Error:Printer halted. kill() called!` with the reason on the line after it. A thermal
//!   error it can recover from (during a print) pauses the print and prints
//!   `echo:Printer stopped due to errors. Supervision required.`; from then on every serial
//!   command except `M112`/`M310` is dropped without any answer, line numbers not advanced,
//!   so the stream must stop there.
//! - **Repetier-Firmware** ([`src/ArduinoAVR/Repetier/gcode.cpp`] at `7cb3741`, 1.0.4): `ok`
//!   is written when a line is stored in the command buffer, before it runs (so `M105`'s `ok`
//!   is plain and the ` T:… B:…` report follows on its own line); with the shipped
//!   `ACK_WITH_LINENUMBER` it reads `ok <n>`, where `n` is the last line number *received*
//!   (an unnumbered command repeats the previous one), so it cannot be matched like
//!   ADVANCED_OK's `N`. A bad line gets an empty line, `Resend:<n>` and `ok` (always one),
//!   and the receive buffer is *not* drained: each line in flight behind it is answered
//!   `skip <n>` and `ok`, as is a line it already has (`n` up to 40 below the last). With
//!   `WAITING_IDENTIFIER` it writes `wait` after a second with an empty buffer and no input.
//!   Keepalive lines are `busy:processing`, `busy:heating`, `busy:paused for user
//!   interaction`, without `echo:`. A fatal error prints `fatal:<message> - Printer stopped
//!   and heaters disabled due to this error. Fix error and restart with M999.`; every later
//!   command is acknowledged but only answered with that line again. `M112` resets the board
//!   (`KILL_METHOD 1`), so `start` follows. `M115`: `FIRMWARE_NAME:Repetier_1.0.4 COMPILED:…
//!   REPETIER_PROTOCOL:3`.
//! - **Smoothieware** ([`src/modules/communication/GcodeDispatch.cpp`] at `bb41e99`): a line
//!   with a bad checksum or line number gets `rs N<n>` and nothing else: no `Error:` line, no
//!   `ok`, no drain (each line in flight behind it asks again). Checksums are optional, checked
//!   only on numbered lines. After `M112` (`ok Emergency Stop Requested - reset or M999
//!   required to exit HALT state`) or an error (`Entering Alarm/Halt state`) it is halted:
//!   every command but a few M-codes is answered `!!` with no `ok` until `M999` or `$X`. `M115`:
//!   `FIRMWARE_NAME:Smoothieware, FIRMWARE_URL:…, FIRMWARE_VERSION:…`.
//! - **RepRapFirmware** ([`src/GCodes/GCodeBuffer/StringParser.cpp`], [`src/GCodes/GCodes.cpp`],
//!   [`src/GCodes/GCodes2.cpp`] at `fc1cd16`, 3.6-dev): the USB port defaults to Marlin
//!   emulation, where a command's reply comes before its `ok` (`M105`: `ok <report>`). `M115`:
//!   `FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.3 ELECTRONICS: …`
//!   (a space after each colon). Line numbers are recorded but never checked for sequence,
//!   and a line with a bad or (when required) missing checksum is dropped silently: no error,
//!   no resend request, no `ok`. A corrupted line therefore only shows as a missing `ok`, and
//!   the host cannot tell it from a lost `ok`.
//! - **Klipper** (`klippy/gcode.py`): every command gets its `ok` even after an error, which is
//!   reported as `!! <message>`; `M115` is answered inside the `ok`
//!   (`ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:…`, handled for every flavor); line numbers
//!   and checksums are skipped, never checked, so it never asks for a resend; after `M112` or
//!   an internal error it announces `// Klipper state: Shutdown` and answers every later
//!   command with `!!`.
//!
//! OctoPrint's `serial_comm.py` (`744c835`) agrees where it special-cases them: `fatal:` is
//! Repetier's error prefix and fatal, Repetier's `ok` may carry a number, `wait` stands for a
//! lost `ok` while printing.
//!
//! [`Firmware/cmdqueue.cpp`]: https://github.com/prusa3d/Prusa-Firmware/blob/0c9bf5d4355d956036bce603d87f740972eb49f7/Firmware/cmdqueue.cpp
//! [`Firmware/Marlin_main.cpp`]: https://github.com/prusa3d/Prusa-Firmware/blob/0c9bf5d4355d956036bce603d87f740972eb49f7/Firmware/Marlin_main.cpp
//! [`src/ArduinoAVR/Repetier/gcode.cpp`]: https://github.com/repetier/Repetier-Firmware/blob/7cb3741323ba45537eceb4d54e99b1cbdedf2739/src/ArduinoAVR/Repetier/gcode.cpp
//! [`src/modules/communication/GcodeDispatch.cpp`]: https://github.com/Smoothieware/Smoothieware/blob/bb41e992e02be433f58a2162c15193f5def77aaa/src/modules/communication/GcodeDispatch.cpp
//! [`src/GCodes/GCodeBuffer/StringParser.cpp`]: https://github.com/Duet3D/RepRapFirmware/blob/fc1cd16cee3b5c5fa3a0992cf1b483423e4381a1/src/GCodes/GCodeBuffer/StringParser.cpp
//! [`src/GCodes/GCodes.cpp`]: https://github.com/Duet3D/RepRapFirmware/blob/fc1cd16cee3b5c5fa3a0992cf1b483423e4381a1/src/GCodes/GCodes.cpp
//! [`src/GCodes/GCodes2.cpp`]: https://github.com/Duet3D/RepRapFirmware/blob/fc1cd16cee3b5c5fa3a0992cf1b483423e4381a1/src/GCodes/GCodes2.cpp

/// Which firmware the printer runs, from `M115`'s `FIRMWARE_NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirmwareFlavor {
    /// Marlin (`FIRMWARE_NAME:Marlin …`).
    Marlin,
    /// Prusa's Marlin fork (`FIRMWARE_NAME:Prusa-Firmware …`).
    Prusa,
    /// Repetier-Firmware.
    Repetier,
    /// Klipper's serial host emulation (`/tmp/printer`).
    Klipper,
    /// Smoothieware.
    Smoothieware,
    /// RepRapFirmware (Duet) speaking this protocol.
    RepRapFirmware,
    /// Anything else, or no `M115` answer yet.
    Other,
}

impl FirmwareFlavor {
    /// Recognises a `FIRMWARE_NAME` value (case-insensitive prefix).
    ///
    /// ```
    /// use easyprint_marlin::FirmwareFlavor;
    /// assert_eq!(FirmwareFlavor::detect("Marlin 2.1.2.1 (Jun 11 2023)"), FirmwareFlavor::Marlin);
    /// assert_eq!(FirmwareFlavor::detect("Klipper"), FirmwareFlavor::Klipper);
    /// assert_eq!(FirmwareFlavor::detect("Prusa-Firmware 3.13.3"), FirmwareFlavor::Prusa);
    /// ```
    pub fn detect(name: &str) -> Self {
        // Called for every line the session handles (through `Session::quirks`): no
        // allocation, a case-insensitive prefix match.
        let name = name.trim_start().as_bytes();
        let table = [
            ("prusa-firmware", Self::Prusa),
            ("marlin", Self::Marlin),
            ("repetier", Self::Repetier),
            ("klipper", Self::Klipper),
            ("smoothieware", Self::Smoothieware),
            ("reprapfirmware", Self::RepRapFirmware),
        ];
        table
            .into_iter()
            .find(|(prefix, _)| {
                name.get(..prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
            })
            .map_or(Self::Other, |(_, flavor)| flavor)
    }
}

/// Behaviours that differ between firmwares; [`Quirks::for_flavor`] gives each
/// [`FirmwareFlavor`]'s entry, each read from that firmware's source (the differences and
/// the links are in the crate README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirks {
    /// A `!!` line means the firmware halted (fatal). `false`: it reports an error for the
    /// command being executed, whose `ok` still follows.
    pub bang_is_fatal: bool,
    /// A `//` message that announces the firmware shut down (fatal).
    pub shutdown_message: Option<&'static str>,
    /// Whether an `ok` follows every resend request: `Some(true)` always one, `Some(false)`
    /// never, `None` it depends on the version
    /// ([`SessionConfig::resend_ok`](super::SessionConfig::resend_ok) decides). Used when
    /// that setting is [`ResendOk::Detect`](super::ResendOk::Detect).
    pub ok_after_resend: Option<bool>,
    /// The `ok` comes when a line is stored, before it runs: an `M105`'s `ok` is plain and
    /// its temperature report follows on a line of its own.
    pub ok_on_receipt: bool,
    /// `ok <n>` names the last line number received (Repetier's `ACK_WITH_LINENUMBER`): the
    /// numbered line it acknowledges, or for an unnumbered command the line before it.
    pub ok_echoes_line: bool,
    /// The firmware rejects a line whose number is not the last one + 1, so an answer to a
    /// later line proves every earlier one ran. `false`: a line without its `ok` when a later
    /// one is acknowledged stops the session ([`FatalError::Unconfirmed`](super::FatalError)).
    pub checks_line_numbers: bool,
}

impl Quirks {
    /// Marlin's behaviour, also the default of flavors without an entry of their own.
    pub const MARLIN: Self = Self {
        bang_is_fatal: true,
        shutdown_message: None,
        ok_after_resend: None,
        ok_on_receipt: false,
        ok_echoes_line: false,
        checks_line_numbers: true,
    };

    /// Klipper's serial host emulation.
    pub const KLIPPER: Self = Self {
        bang_is_fatal: false,
        shutdown_message: Some("Klipper state: Shutdown"),
        checks_line_numbers: false,
        ..Self::MARLIN
    };

    /// Prusa-Firmware: one `ok` after every resend request.
    pub const PRUSA: Self = Self {
        ok_after_resend: Some(true),
        ..Self::MARLIN
    };

    /// Repetier-Firmware: `ok <n>` on receipt, one `ok` after every resend request.
    pub const REPETIER: Self = Self {
        ok_after_resend: Some(true),
        ok_on_receipt: true,
        ok_echoes_line: true,
        ..Self::MARLIN
    };

    /// Smoothieware: no `ok` after a resend request.
    pub const SMOOTHIEWARE: Self = Self {
        ok_after_resend: Some(false),
        ..Self::MARLIN
    };

    /// RepRapFirmware in Marlin emulation: line numbers not checked, bad lines dropped
    /// silently.
    pub const REPRAPFIRMWARE: Self = Self {
        checks_line_numbers: false,
        ..Self::MARLIN
    };

    /// The table entry for `flavor`.
    pub fn for_flavor(flavor: FirmwareFlavor) -> Self {
        match flavor {
            FirmwareFlavor::Klipper => Self::KLIPPER,
            FirmwareFlavor::Prusa => Self::PRUSA,
            FirmwareFlavor::Repetier => Self::REPETIER,
            FirmwareFlavor::Smoothieware => Self::SMOOTHIEWARE,
            FirmwareFlavor::RepRapFirmware => Self::REPRAPFIRMWARE,
            _ => Self::MARLIN,
        }
    }
}

impl super::Session {
    /// [`SessionConfig::resend_ok`](super::SessionConfig::resend_ok), with `Detect` settled
    /// by the quirk table where it knows the firmware.
    pub(super) fn resend_ok(&self) -> super::ResendOk {
        use super::ResendOk;
        match (self.config.resend_ok, self.quirks().ok_after_resend) {
            (ResendOk::Detect, Some(true)) => ResendOk::Always,
            (ResendOk::Detect, Some(false)) => ResendOk::Never,
            (setting, _) => setting,
        }
    }

    /// On firmware that acknowledges lines on receipt, `M115`'s `ok` came before its report
    /// (and was taken for a repeated hello's): the report completes the identification.
    /// Capability lines that follow are still recorded in [`Firmware`](super::Firmware).
    pub(super) fn identified_after_ok(&mut self) {
        if self.phase != super::Phase::Identifying || !self.quirks().ok_on_receipt {
            return;
        }
        if let Some(pos) = self
            .in_flight
            .iter()
            .position(|f| f.kind == super::Kind::Identify)
        {
            let f = self.remove_in_flight(pos);
            self.complete(f);
        }
    }

    /// The line an `ok <n>` acknowledges on firmware that echoes the last number received:
    /// line `n` (every line before it was stored too: the firmware checks numbering), else an
    /// unnumbered command (its `ok` repeats a number already acknowledged), else nothing (a
    /// duplicated `ok`).
    pub(super) fn take_echoed(&mut self, n: i64) -> Option<super::InFlight> {
        if let Some(pos) = self.in_flight.iter().position(|f| f.line == Some(n)) {
            return self.ack_through(pos);
        }
        let repeated = self.last_acked.is_some_and(|a| n <= a);
        match self.in_flight.iter().position(|f| f.line.is_none()) {
            Some(pos) if repeated => Some(self.remove_in_flight(pos)),
            _ => None,
        }
    }

    /// Repetier's `skip <line>`: the line was thrown away unexecuted and an `ok` for it follows
    /// (taken like a resend request's, so it acknowledges nothing). Whether the line ran
    /// before (a copy) or must come again (behind a bad line), the rewind already in progress
    /// covers it.
    pub(super) fn on_skip(&mut self, now: std::time::Instant) {
        if matches!(self.phase, super::Phase::Connecting | super::Phase::Failed) {
            return;
        }
        self.awaiting_resend_ok = Some(now + self.config.resend_ok_timeout);
        if let Some((l, left)) = self.duplicates {
            // A line in flight behind a bad one answered with `skip`, not with another request.
            self.duplicates = (left > 1).then(|| (l, left - 1));
        }
    }
}

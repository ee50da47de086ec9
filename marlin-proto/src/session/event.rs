//! What the session reports: events, warnings and the sticky fatal error.

use std::time::Duration;

use crate::response::{BusyReason, FirmwareError, FirmwareInfo, HostAction, Position, SdStatus};
use crate::Temperatures;

/// Identifies a command given to [`Session::send`](crate::Session::send), in submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(pub u64);

/// The flow-control policy in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActivePolicy {
    /// One command outstanding at a time (what OctoPrint does).
    PingPong,
    /// Several commands outstanding, bounded by command slots and receive-buffer bytes.
    Credit {
        /// Most unacknowledged commands at once.
        slots: u32,
        /// Most unacknowledged bytes at once.
        rx_bytes: u32,
    },
}

/// How temperature reports keep coming (see
/// [`SessionConfig::temperature_interval`](crate::SessionConfig::temperature_interval)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TemperatureReporting {
    /// The session asks for nothing; reports come only when a command asks for them.
    #[default]
    Off,
    /// The firmware reports by itself every `interval` (`M155`, `Cap:AUTOREPORT_TEMP:1`):
    /// unsolicited ` T:… B:…` lines, which answer no command.
    Autoreport {
        /// Report interval (whole seconds, 1–60).
        interval: Duration,
    },
    /// The firmware cannot autoreport: the session sends a numbered `M105` every `interval`.
    Polled {
        /// Poll interval.
        interval: Duration,
    },
}

/// What the firmware said about itself during the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firmware {
    /// The `M115` report, if the firmware answered it.
    pub info: Option<FirmwareInfo>,
    /// `Cap:` lines, in order.
    pub capabilities: Vec<(String, bool)>,
    /// Whether acknowledgements carry ADVANCED_OK's `P`/`B`.
    pub advanced_ok: bool,
}

impl Firmware {
    /// The flavor its `FIRMWARE_NAME` names ([`FirmwareFlavor::Other`](crate::FirmwareFlavor)
    /// before `M115` is answered).
    pub fn flavor(&self) -> crate::FirmwareFlavor {
        self.info
            .as_ref()
            .map_or(crate::FirmwareFlavor::Other, |i| {
                crate::FirmwareFlavor::detect(&i.name)
            })
    }

    /// Whether `Cap:<name>:1` was reported (a capability not reported is absent).
    pub fn has(&self, name: &str) -> bool {
        self.capabilities.iter().any(|(n, on)| *on && n == name)
    }
}

/// Something the session wants the application to know. Drain with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished: the firmware answered the hello and `M115`; commands flow now.
    Connected {
        /// Firmware identity and capabilities.
        firmware: Firmware,
        /// The flow-control policy chosen.
        policy: ActivePolicy,
        /// How temperatures will be reported.
        temperatures: TemperatureReporting,
    },
    /// A command was acknowledged (`ok`). `response` holds the lines the firmware wrote for it
    /// (between the previous acknowledgement and this one, autoreports and busy lines excluded)
    /// and the `ok` line itself when it carried data (`ok T:…`). Each command ends in exactly
    /// one `Completed` or [`Event::Abandoned`]. A doubled `ok` can complete a line before it
    /// ran; if the firmware then asks for it again the copy goes out unreported, and
    /// [`FatalError::FirmwareReset`]'s `last_acknowledged` goes back to the line before.
    Completed {
        /// Which command.
        id: CommandId,
        /// Its line number.
        line: i64,
        /// Response lines.
        response: Vec<String>,
    },
    /// A command will never complete because the session failed; see [`Event::Fatal`].
    Abandoned(CommandId),
    /// A temperature report (autoreport, `M105` answer, heating progress).
    Temperatures(Temperatures),
    /// An `M114` position report.
    Position(Position),
    /// SD card status.
    Sd(SdStatus),
    /// The firmware is alive but blocked.
    Busy(BusyReason),
    /// A host action command from the firmware.
    Action(HostAction),
    /// An informational `echo:` or `//` line.
    Message(String),
    /// The firmware asked for lines again, starting at `from`.
    Resending {
        /// First line re-sent.
        from: i64,
        /// The error the firmware gave before asking, if any.
        reason: Option<FirmwareError>,
    },
    /// Something unusual that the session handled.
    Warning(Warning),
    /// The firmware restarted while nothing was outstanding; the session says hello again.
    FirmwareReset,
    /// The session stopped for good; the error is also returned by
    /// [`Session::fatal`](crate::Session::fatal).
    Fatal(FatalError),
}

/// Unusual conditions the session recovered from or ignored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// `echo:Unknown command: "…"` (the command was acknowledged).
    UnknownCommand(String),
    /// A line the parser did not recognise.
    UnknownLine(String),
    /// A resend request the session ignored, and why.
    IgnoredResend {
        /// The line asked for (if any).
        line: Option<i64>,
        /// Why it was ignored.
        why: &'static str,
    },
    /// Acknowledgements were lost: ADVANCED_OK named a later line, or the answer to an `M105`
    /// came while earlier lines were unacknowledged (the firmware ran them: it checks numbering).
    SkippedOks {
        /// How many commands were acknowledged implicitly.
        count: usize,
    },
    /// An `ok` with nothing outstanding (duplicate or late).
    UnexpectedOk,
    /// An `Error:` line that needs no action (the session continues).
    FirmwareError(FirmwareError),
    /// No `ok` in time (or the firmware said `wait`, or the line went quiet): a numbered `M105`
    /// probe was sent. Its answer acknowledges every earlier line; a line lost on the way makes
    /// the firmware ask for it instead.
    Probed,
}

/// Why a session stopped. Sticky: once set, the session sends nothing but emergency commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FatalError {
    /// Nothing at all came back to the hello.
    #[error("no response from the printer after {attempts} hello attempts (wrong port, or the printer is off)")]
    NoResponse {
        /// How many hellos were sent.
        attempts: u32,
    },
    /// Bytes came back, but never a line the session understood: usually a wrong baud rate.
    #[error("received {bytes} bytes but no valid response after {attempts} hello attempts (wrong baud rate?)")]
    Garbled {
        /// Bytes received.
        bytes: usize,
        /// How many hellos were sent.
        attempts: u32,
    },
    /// The printer went silent with commands outstanding.
    #[error("printer lost: nothing received for {silent_for:?} with commands outstanding")]
    PrinterLost {
        /// How long nothing was received.
        silent_for: Duration,
    },
    /// `Error:Printer halted. kill() called!`.
    #[error("printer halted (kill() called){}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Halted {
        /// The message the firmware gave just before, such as `Killed by M112`.
        reason: Option<String>,
    },
    /// A thermal protection error; the firmware stops heating and halts.
    #[error("thermal protection: {cause} on heater {heater}")]
    Thermal {
        /// `Thermal Runaway`, `MAXTEMP triggered`, …
        cause: String,
        /// Heater id as reported.
        heater: String,
    },
    /// `Printer stopped due to errors … M999`.
    #[error("printer stopped due to errors (M999 and a reconnect are needed)")]
    Stopped,
    /// A `!!` line, Repetier's `fatal:` or Smoothieware's halt notice.
    #[error("firmware reported: {0}")]
    FirmwareFatal(String),
    /// A line got no acknowledgement but a later one did, on firmware that neither checks line
    /// numbers nor asks for resends (RepRapFirmware drops a line with a bad checksum without a
    /// word): the line was dropped, or only its `ok` lost, and no host can tell which.
    #[error("no acknowledgement for line {line:?} before a later one, and the firmware does not check line numbers: whether it ran is unknown")]
    Unconfirmed {
        /// The line without an acknowledgement.
        line: Option<i64>,
    },
    /// `start` arrived while commands were outstanding: the firmware lost its state.
    #[error("firmware reset while {unfinished} commands were unfinished (last acknowledged line: {last_acknowledged:?})")]
    FirmwareReset {
        /// Last line acknowledged before the reset. Without ADVANCED_OK's line number a
        /// doubled `ok` looks like the next line's own: unless a resend request exposed it
        /// before the reset, this can be ahead of what ran by such `ok`s.
        last_acknowledged: Option<i64>,
        /// Commands queued or in flight that are lost.
        unfinished: usize,
    },
    /// The firmware asked for a line older than the resend history.
    #[error("firmware asked for line {requested}, which is no longer in the resend history (oldest kept: {oldest:?})")]
    ResendOutOfHistory {
        /// The line asked for.
        requested: i64,
        /// Oldest line kept.
        oldest: Option<i64>,
    },
    /// The firmware asked for a line the host never sent (or a negative one): the numbering is out of sync.
    #[error("firmware asked for line {requested}, but the next line to send is {next}: line numbering out of sync")]
    ResendNotSent {
        /// The line asked for.
        requested: i64,
        /// The next line number the host would use.
        next: i64,
    },
    /// The same line was asked for again and again.
    #[error("printer keeps requesting line {line} ({times} times): communication stuck")]
    ResendLoop {
        /// The line.
        line: i64,
        /// How many consecutive requests.
        times: u32,
    },
    /// The host sent `M112`.
    #[error("emergency stop (M112) sent by the host")]
    EmergencyStop,
}

//! Session configuration.

use std::time::Duration;

/// How many commands the host keeps unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowPolicy {
    /// Ping-pong until the firmware shows ADVANCED_OK (`ok N.. P.. B..` answering the hello),
    /// then a credit window with the command slots it reports and `rx_bytes` of receive buffer.
    Auto {
        /// The firmware's serial receive buffer (Marlin's AVR default is 128).
        rx_bytes: u32,
    },
    /// Exactly one command outstanding (what OctoPrint does).
    PingPong,
    /// Up to `slots` commands and `rx_bytes` bytes outstanding, whatever the firmware reports.
    /// When the firmware sends ADVANCED_OK, lines known (from `B`) to sit in its command queue
    /// no longer count against `rx_bytes`, and more lines than `slots` may wait in its receive
    /// buffer: only the bytes bound the window then.
    ///
    /// Without ADVANCED_OK an acknowledgement cannot be matched to its line: a numbered `M105`
    /// among the lines every 32 commands resynchronises the count, but a duplicated `ok` can
    /// still report a command complete (and let one more line into the firmware) early until
    /// then; prefer [`FlowPolicy::Auto`].
    Credit {
        /// Command-queue slots (Marlin `BUFSIZE`, default 4).
        slots: u32,
        /// Receive-buffer bytes (Marlin `RX_BUFFER_SIZE`, 128 on AVR).
        rx_bytes: u32,
    },
}

/// Whether the firmware sends an `ok` after each `Resend:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResendOk {
    /// Expect at most one: the first plain `ok` right after the request, unless another line
    /// comes first or [`SessionConfig::resend_ok_timeout`] passes. Works with every Marlin.
    Detect,
    /// The firmware always sends one (Marlin 2.1.x); wait up to the timeout for it.
    Always,
    /// The firmware never sends one (Marlin 2.0.x); re-send at once.
    Never,
}

/// Everything tunable about a [`Session`](crate::Session). `Default` is right for stock Marlin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Flow-control policy.
    pub flow: FlowPolicy,
    /// How many sent lines are kept for resends (at least 8 more than the largest window).
    pub history_len: usize,
    /// `ok` after `Resend:` handling.
    pub resend_ok: ResendOk,
    /// How long to wait for the `ok` that may follow a resend request.
    pub resend_ok_timeout: Duration,
    /// No acknowledgement for this long (and no `busy:`) with commands outstanding: the `ok`
    /// is assumed lost.
    pub ok_timeout: Duration,
    /// Replaces `ok_timeout` and `lost_after` while the oldest outstanding command is a long
    /// one (`G28`, `M109`, `M400`, `M600`, …) on firmware that may not send `busy:`.
    pub long_command_timeout: Duration,
    /// Nothing received for this long with commands outstanding: send an `M105` probe.
    pub probe_after: Duration,
    /// Nothing received for this long with commands outstanding: the printer is lost.
    pub lost_after: Duration,
    /// How long to wait for an answer to each hello.
    pub hello_timeout: Duration,
    /// How many unanswered hellos before giving up. A hello answered with a resend request
    /// (garbled on the way) is sent again without counting; `max_consecutive_resends` of those
    /// in a row end in [`FatalError::ResendLoop`](crate::FatalError::ResendLoop).
    pub hello_attempts: u32,
    /// The same line requested this many times in a row means the link is stuck.
    pub max_consecutive_resends: u32,
    /// Keep temperatures coming at this interval once connected: `M155 S<secs>` when the
    /// firmware reports `Cap:AUTOREPORT_TEMP:1` (re-armed after a firmware reset), otherwise a
    /// numbered `M105` whenever none is outstanding and the interval has passed. `None`: the
    /// session asks for nothing by itself.
    pub temperature_interval: Option<Duration>,
    /// Longest time the driver may leave the firmware's answers unread while the firmware
    /// holds plenty of queued work, so that it takes `ok`s in bursts and writes the next lines
    /// in one batch (fewer wake-ups per line). See
    /// [`Session::read_deferral`](crate::Session::read_deferral); zero turns it off.
    pub ack_batching: Duration,
    /// Firmware behaviours to assume; `None`: the table entry of the flavor `M115` reports
    /// ([`Quirks::for_flavor`](crate::Quirks::for_flavor); Marlin's until it answers).
    pub quirks: Option<crate::Quirks>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            flow: FlowPolicy::Auto { rx_bytes: 128 },
            history_len: 256,
            resend_ok: ResendOk::Detect,
            resend_ok_timeout: Duration::from_millis(500),
            ok_timeout: Duration::from_secs(10),
            long_command_timeout: Duration::from_secs(30 * 60),
            probe_after: Duration::from_secs(5),
            lost_after: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(3),
            hello_attempts: 3,
            max_consecutive_resends: 10,
            temperature_interval: None,
            ack_batching: Duration::from_millis(5),
            quirks: None,
        }
    }
}

/// Commands that legitimately take long before their `ok`.
pub(crate) fn is_long_running(code: &str) -> bool {
    matches!(
        code,
        "G4" | "G28"
            | "G29"
            | "G30"
            | "G32"
            | "G33"
            | "G34"
            | "M0"
            | "M1"
            | "M24"
            | "M109"
            | "M190"
            | "M191"
            | "M226"
            | "M303"
            | "M400"
            | "M600"
    )
}

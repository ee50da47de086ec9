//! Host side of the Marlin serial protocol, as a sans-IO state machine.
//!
//! ```text
//!            send / send_emergency / emergency_stop
//!                          │
//!   port bytes ──▶ handle_rx(now, bytes) ─▶ ┌─────────┐ ─▶ poll_transmit(now, buf) ──▶ port
//!   deadline  ──▶ handle_timeout(now)    ─▶ │ Session │ ─▶ poll_event() ──▶ application
//!                                           └─────────┘ ─▶ poll_timeout() ──▶ timer
//! ```
//!
//! [`Session`] contains no I/O, threads or clock: time comes in as `now`, bytes come in and go
//! out through buffers, so every behaviour is testable step by step and deterministically.
//!
//! # Layout
//! - [`line`](mod@line): framing (comment stripping, payload validation, `N<n> … *<checksum>`).
//! - [`response`]: typed parsing of every firmware line a host meets; never fails.
//! - [`session`]: the protocol state machine: handshake, numbering, resend history, flow
//!   control (ping-pong or a credit window driven by ADVANCED_OK), keepalive and timeouts,
//!   emergency commands, sticky fatal errors.
//! - [`sim`]: a simulated Marlin printer and a virtual-time harness.
//! - [`transport`]: blocking links (serial/pty, TCP, in-memory) and I/O-thread priority.
//! - [`printer`]: the tokio-facing [`Printer`](printer::Printer) handle; a dedicated OS thread
//!   drives the session over a link.
#![deny(unreachable_pub)]

pub mod line;
pub mod printer;
pub mod response;
pub mod session;
pub mod sim;
pub mod transport;

pub use line::{Dialect, Payload, PayloadError};
pub use response::{
    BusyReason, FirmwareError, FirmwareInfo, FirmwareLine, Heater, HostAction, OkLine, Position,
    Reading, SdStatus, Temperatures,
};
pub use session::{
    ActivePolicy, CommandId, EmergencyCommand, Event, FatalError, Firmware, FirmwareFlavor,
    FlowPolicy, Quirks, ResendOk, SendError, Session, SessionConfig, TemperatureReporting, Warning,
};

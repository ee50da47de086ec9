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
//! Driving it means moving bytes and time. Here the other end is the in-process simulated
//! printer ([`sim::SimPrinter`], sans-IO too) and time is virtual: it jumps to the next
//! deadline of either side, so the simulated 8 s of homing take no wall time. A real host does the
//! same with a serial port and a clock, or uses the [`Printer`](printer::Printer) handle,
//! which runs this loop on an I/O thread.
//!
//! ```
//! use std::time::Instant;
//! use easyprint_marlin::sim::{SimConfig, SimPrinter};
//! use easyprint_marlin::{Event, Session, SessionConfig};
//!
//! let mut now = Instant::now();
//! let mut session = Session::new(SessionConfig::default(), now);
//! let mut printer = SimPrinter::new(SimConfig::default());
//! // Queued now, sent once the handshake (M110, M115) is done.
//! for command in ["G28", "G1 X10 Y20 F3000", "M105"] {
//!     session.send(command)?;
//! }
//! let (mut to_printer, mut to_host) = (Vec::new(), Vec::new());
//! let mut completed = 0;
//! while completed < 3 {
//!     to_printer.clear();
//!     to_host.clear();
//!     session.poll_transmit(now, &mut to_printer);
//!     printer.handle_rx(now, &to_printer);
//!     printer.poll_transmit(&mut to_host);
//!     session.handle_rx(now, &to_host);
//!     while let Some(event) = session.poll_event() {
//!         if let Event::Completed { .. } = event {
//!             completed += 1;
//!         }
//!     }
//!     assert!(session.fatal().is_none());
//!     if to_printer.is_empty() && to_host.is_empty() {
//!         // Nothing more happens at `now`: jump to the next deadline of either side.
//!         let deadlines = [session.poll_timeout(), printer.poll_timeout()];
//!         now = now.max(deadlines.into_iter().flatten().min().expect("a command is pending"));
//!         printer.handle_timeout(now);
//!         session.handle_timeout(now);
//!     }
//! }
//! assert_eq!(printer.position()[..2], [10.0, 20.0]);
//! assert_eq!(session.firmware().flavor(), easyprint_marlin::FirmwareFlavor::Marlin);
//! # Ok::<(), easyprint_marlin::SendError>(())
//! ```
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

//! A simulated Marlin printer, sans-IO like the session, for tests, benchmarks and the
//! `virtual-printer` pseudo-terminal.
//!
//! - [`SimPrinter`]: receive buffer in bytes, command slots, Marlin's line reader (comments,
//!   escapes, `MAX_CMD_SIZE` truncation, `M110` at read time, line-number and checksum
//!   checks in Marlin's order, RX drain on error per [`MarlinVersion`]), emergency parser,
//!   a planner that executes moves in time, blocking `G28`/`G4`/`M400`/`M109`/`M190`/`M0` with
//!   `busy:` keepalive and heating curves, `M115` capabilities, ADVANCED_OK, seeded
//!   [`Faults`], a [`ledger`](SimPrinter::ledger) of executed commands and
//!   [`underrun accounting`](SimStats). [`SimFlavor`]s answer as Prusa-Firmware, Repetier,
//!   Smoothieware, RepRapFirmware or Klipper instead ([`SimConfig::flavored`]).
//! - SD card ([`SdCard`], options in [`SdConfig`]: autoreport, long-name writing): `M20`–`M30`,
//!   `M524`, `M28`…`M29` writing (numbered lines are
//!   stored, not run), `M24` printing through the planner, `M27` reports and autoreport.
//! - [`Link`]: one direction of a baud-limited serial link with latency, and optionally a
//!   USB-serial bridge's batching ([`UsbBatching`], the FTDI latency timer).
//! - [`Harness`]: session + links + printer in virtual time; it can record the wire for a
//!   [`WireAudit`] (no line skipped, none re-sent unasked).
//! - [`VirtualPrinter`]: the printer served on a real pseudo-terminal, in real time.

mod audit;
mod config;
mod flavor;
mod harness;
mod link;
mod printer;
mod pty;
mod rng;
mod sd;

pub use audit::{WireAudit, WireViolation};
pub use config::{Faults, MarlinVersion, MoveTiming, SimConfig};
pub use flavor::SimFlavor;
pub use harness::{Harness, RunReport};
pub use link::{Link, LinkConfig, UsbBatching};
pub use printer::{Executed, FaultCounts, SimPrinter, SimStats};
pub use pty::VirtualPrinter;
pub use sd::{SdCard, SdConfig, SdFile};

#[cfg(test)]
mod tests;

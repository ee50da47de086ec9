//! The printers this server drives, as the HTTP and WebSocket layers see them.
//!
//! This is the seam where `easyprint-marlin`'s printer handle plugs in: a [`PrinterRegistry`]
//! holds one [`PrinterSlot`] per configured printer. No serial driver is attached yet, so every
//! slot reports [`ConnectionState::Closed`], and the OctoPrint endpoints answer "Printer is not
//! operational" (409), which is exactly what they answer for a printer that is not connected.

use serde::Serialize;

use crate::config::PrinterConfig;

/// Connection state of one printer, named as OctoPrint names it in `/api/connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not connected (OctoPrint: "Closed").
    Closed,
}

impl ConnectionState {
    /// OctoPrint's text for this state.
    pub fn octoprint_text(self) -> &'static str {
        match self {
            ConnectionState::Closed => "Closed",
        }
    }

    /// Whether the printer can take commands.
    pub fn is_operational(self) -> bool {
        match self {
            ConnectionState::Closed => false,
        }
    }
}

/// One configured printer.
#[derive(Debug, Clone, Serialize)]
pub struct PrinterSlot {
    /// Stable identifier from the configuration.
    pub id: String,
    /// Display name (the id when none was configured).
    pub name: String,
    /// Serial device path or `virtual`.
    pub port: String,
    /// Baud rate.
    pub baudrate: u32,
    /// Current connection state.
    pub state: ConnectionState,
}

/// All printers of this server, in configuration order.
#[derive(Debug, Default)]
pub struct PrinterRegistry {
    slots: Vec<PrinterSlot>,
}

impl PrinterRegistry {
    /// One closed slot per configured printer.
    pub fn from_config(printers: &[PrinterConfig]) -> PrinterRegistry {
        PrinterRegistry {
            slots: printers
                .iter()
                .map(|p| PrinterSlot {
                    id: p.id.clone(),
                    name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                    port: p.port.clone(),
                    baudrate: p.baudrate,
                    state: ConnectionState::Closed,
                })
                .collect(),
        }
    }

    /// Every printer.
    pub fn list(&self) -> &[PrinterSlot] {
        &self.slots
    }

    /// The printer OctoPrint's single-printer API talks about: the first operational one.
    pub fn first_operational(&self) -> Option<&PrinterSlot> {
        self.slots.iter().find(|s| s.state.is_operational())
    }
}

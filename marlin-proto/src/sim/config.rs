//! Simulated printer configuration (defaults are stock Marlin 2.1.x on an 8-bit board).

use std::time::Duration;

use super::flavor::SimFlavor;
use super::link::UsbBatching;

/// Which Marlin generation's resend behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarlinVersion {
    /// 1.x / early 2.0: no RX drain after a line error (every line in flight behind a bad one
    /// fails again), one `ok` after each `Resend:`.
    V1,
    /// 2.0.x (about 2021): RX drained after a line error, **no** `ok` after `Resend:`.
    V2_0,
    /// 2.1.x: RX drained after a line error, one plain `ok` after `Resend:`.
    V2_1,
}

/// How long a move takes in the planner.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MoveTiming {
    /// Path length divided by the feed rate (no acceleration).
    Kinematic,
    /// Every move takes this long.
    Fixed(Duration),
    /// Moves take no time (host-limited throughput measurements).
    Instant,
}

/// Faults injected from a seed; probabilities are per line or per `ok`.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Seed of the fault schedule.
    pub seed: u64,
    /// A host line arrives with one byte changed.
    pub corrupt_line: f64,
    /// A host line arrives with one byte missing.
    pub drop_byte: f64,
    /// A host line is lost entirely.
    pub lose_line: f64,
    /// An `ok` is never sent.
    pub lost_ok: f64,
    /// An `ok` is sent twice.
    pub duplicate_ok: f64,
    /// A good line is rejected as a checksum mismatch anyway.
    pub spurious_resend: f64,
    /// The firmware resets right after executing this many commands.
    pub reset_after: Option<u64>,
    /// The firmware halts (thermal runaway) right after executing this many commands.
    pub halt_after: Option<u64>,
    /// Commands (by code, such as `M28`) whose `ok` is lost the first time each is done:
    /// a targeted [`lost_ok`](Self::lost_ok), for the exchanges a random schedule rarely hits
    /// (the `M28`/`M29` around an SD upload). Not for Repetier, which acknowledges on receipt.
    pub lose_ok_of: Vec<String>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self {
            seed: 0,
            corrupt_line: 0.0,
            drop_byte: 0.0,
            lose_line: 0.0,
            lost_ok: 0.0,
            duplicate_ok: 0.0,
            spurious_resend: 0.0,
            reset_after: None,
            halt_after: None,
            lose_ok_of: Vec::new(),
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

/// Everything about the simulated printer.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Marlin's resend behaviour (Prusa-Firmware has its own whatever this says: the receive
    /// buffer drained and one `ok` after every `Resend:`).
    pub version: MarlinVersion,
    /// `RX_BUFFER_SIZE` in bytes (128 on AVR).
    pub rx_buffer: usize,
    /// `BUFSIZE`: command-queue slots (4).
    pub command_slots: usize,
    /// `BLOCK_BUFFER_SIZE`: planner blocks (16).
    pub planner_blocks: usize,
    /// `ADVANCED_OK`: `ok N<n> P<planner free> B<slots free>`.
    pub advanced_ok: bool,
    /// `EMERGENCY_PARSER`: M112/M108/M410/M876 act on raw bytes at once.
    pub emergency_parser: bool,
    /// `PAREN_COMMENTS`.
    pub paren_comments: bool,
    /// `AUTO_REPORT_TEMPERATURES`: `M155 S<secs>` makes the firmware report temperatures by
    /// itself (`Cap:AUTOREPORT_TEMP:1`); without it `M155` is an unknown command.
    pub autoreport_temp: bool,
    /// `HOST_KEEPALIVE_FEATURE` interval (`None`: no `busy:` lines).
    pub keepalive: Option<Duration>,
    /// Move durations.
    pub moves: MoveTiming,
    /// `BLOCK_DELAY_FOR_1ST_MOVE` (100 ms): a move queued while the planner is empty waits
    /// this long, or until three moves are queued, before it starts, so the planner can join
    /// it to the moves that follow. Not applied to [`MoveTiming::Instant`].
    pub first_move_delay: Duration,
    /// Time the firmware spends parsing and planning each command.
    pub command_time: Duration,
    /// Heating speed in °C per second (cooling is four times slower).
    pub heating_rate: f64,
    /// Duration of `G28`.
    pub homing_time: Duration,
    /// Injected faults.
    pub faults: Faults,
    /// The board's USB-serial bridge, batching what the firmware sends (`None`: every line
    /// reaches the host the link's latency after its last byte).
    pub usb_batching: Option<UsbBatching>,
    /// Which firmware to imitate ([`SimConfig::flavored`] sets the matching options).
    pub flavor: SimFlavor,
    /// The SD card's build options.
    pub sd: super::sd::SdConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            version: MarlinVersion::V2_1,
            rx_buffer: 128,
            command_slots: 4,
            planner_blocks: 16,
            advanced_ok: false,
            emergency_parser: true,
            paren_comments: false,
            autoreport_temp: true,
            keepalive: Some(Duration::from_secs(2)),
            moves: MoveTiming::Kinematic,
            first_move_delay: Duration::from_millis(100),
            command_time: Duration::from_micros(300),
            heating_rate: 5.0,
            homing_time: Duration::from_secs(8),
            faults: Faults::none(),
            usb_batching: None,
            flavor: SimFlavor::Marlin,
            sd: super::sd::SdConfig::default(),
        }
    }
}

impl SimConfig {
    /// Klipper's serial host emulation ([`SimFlavor::Klipper`]): no ADVANCED_OK, no `M155`
    /// autoreport, no `busy:` keepalive, `M112` acted on as soon as it arrives.
    pub fn klipper() -> Self {
        Self::flavored(SimFlavor::Klipper)
    }

    /// A printer running `flavor`, with that firmware's options: Marlin's defaults; Prusa
    /// without an emergency parser (it acts on `M112` when the line is read); Repetier with
    /// its emergency parser; Smoothieware and RepRapFirmware without emergency parser,
    /// `M155` or `busy:` lines; Klipper as [`klipper`](Self::klipper).
    pub fn flavored(flavor: SimFlavor) -> Self {
        let marlin = Self::default();
        match flavor {
            SimFlavor::Marlin | SimFlavor::Repetier => Self { flavor, ..marlin },
            SimFlavor::Prusa => Self {
                flavor,
                emergency_parser: false,
                ..marlin
            },
            SimFlavor::Klipper => Self {
                flavor,
                autoreport_temp: false,
                keepalive: None,
                ..marlin
            },
            SimFlavor::Smoothieware | SimFlavor::RepRapFirmware => Self {
                flavor,
                emergency_parser: false,
                autoreport_temp: false,
                keepalive: None,
                ..marlin
            },
        }
    }
}

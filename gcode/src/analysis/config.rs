//! Analysis settings: machine limits for the time estimate, filament, storage bounds.

use crate::ParseOptions;

/// Motion limits of the printer, Marlin units (mm, mm/s, mm/s²). Index 0..4 is X, Y, Z, E.
///
/// The defaults are Marlin 2's stock Ender-3 configuration. With
/// [`AnalysisConfig::use_file_limits`] the file's `M201`/`M203`/`M204`/`M205`/`M566` override them
/// as the firmware would.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MachineLimits {
    /// Maximum feedrate per axis, mm/s (`M203`).
    pub max_feedrate: [f64; 4],
    /// Maximum acceleration per axis, mm/s² (`M201`).
    pub max_acceleration: [f64; 4],
    /// Acceleration of printing (extruding) moves, mm/s² (`M204 P`, or `S`).
    pub acceleration: f64,
    /// Acceleration of extruder-only moves (retract/unretract), mm/s² (`M204 R`).
    pub retract_acceleration: f64,
    /// Acceleration of travel moves, mm/s² (`M204 T`, or `S`).
    pub travel_acceleration: f64,
    /// Classic jerk per axis, mm/s (`M205 X Y Z E`; `M566` in mm/min).
    pub jerk: [f64; 4],
    /// Junction deviation in mm (`M205 J`). When set, junction speeds use Marlin's junction
    /// deviation model instead of classic jerk.
    pub junction_deviation: Option<f64>,
    /// Minimum feedrate of extruding moves, mm/s (`M205 S`).
    pub min_feedrate: f64,
    /// Minimum feedrate of travel moves, mm/s (`M205 T`).
    pub min_travel_feedrate: f64,
}

impl Default for MachineLimits {
    fn default() -> Self {
        MachineLimits {
            max_feedrate: [500.0, 500.0, 5.0, 25.0],
            max_acceleration: [500.0, 500.0, 100.0, 5000.0],
            acceleration: 500.0,
            retract_acceleration: 500.0,
            travel_acceleration: 500.0,
            jerk: [10.0, 10.0, 0.3, 5.0],
            junction_deviation: None,
            min_feedrate: 0.0,
            min_travel_feedrate: 0.0,
        }
    }
}

/// Firmware retraction settings used for `G10`/`G11` (`M207`/`M208` in the file override them).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FirmwareRetract {
    /// Retract length, mm of filament.
    pub length: f64,
    /// Retract feedrate, mm/s.
    pub feedrate: f64,
    /// Recover feedrate, mm/s.
    pub recover_feedrate: f64,
}

impl Default for FirmwareRetract {
    fn default() -> Self {
        // Marlin's FWRETRACT defaults.
        FirmwareRetract {
            length: 3.0,
            feedrate: 45.0,
            recover_feedrate: 8.0,
        }
    }
}

/// Settings for [`analyze`](super::analyze) and [`Analyzer`](super::Analyzer).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AnalysisConfig {
    /// Limits the time estimate starts with.
    pub limits: MachineLimits,
    /// Let `M201`/`M203`/`M204`/`M205`/`M566` in the file change the limits (default `true`).
    pub use_file_limits: bool,
    /// Filament diameter in mm, for volumes (default 1.75).
    pub filament_diameter: f64,
    /// `G10`/`G11` retraction.
    pub firmware_retract: FirmwareRetract,
    /// Record the time offset every this many lines (default 64); between checkpoints the remaining
    /// time is interpolated. Smaller is more precise and uses more memory (24 bytes per checkpoint).
    pub checkpoint_every_lines: u32,
    /// Keep at most this many layers (default 1,000,000); more are counted but not stored.
    pub max_layers: usize,
    /// Keep at most this many diagnostics (default 100); more are counted.
    pub max_diagnostics: usize,
    /// Keep at most this many bytes of decoded thumbnails (default 16 MiB).
    pub max_thumbnail_bytes: usize,
    /// Longest line accepted (see [`ParseOptions::max_line_len`]); streaming memory is bounded by it.
    pub max_line_len: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            limits: MachineLimits::default(),
            use_file_limits: true,
            filament_diameter: 1.75,
            firmware_retract: FirmwareRetract::default(),
            checkpoint_every_lines: 64,
            max_layers: 1_000_000,
            max_diagnostics: 100,
            max_thumbnail_bytes: 16 << 20,
            max_line_len: ParseOptions::DEFAULT_MAX_LINE_LEN,
        }
    }
}

//! Firmware flavors and the behaviours that differ between them, as a table.
//!
//! The flavor comes from `M115`'s `FIRMWARE_NAME`; [`Quirks::for_flavor`] gives its table
//! entry, and [`SessionConfig::quirks`](super::SessionConfig::quirks) overrides it. Entries
//! differ from Marlin's only where a firmware's source shows it:
//!
//! | flavor | `!!` line | shutdown announced as |
//! |---|---|---|
//! | Marlin, Prusa-Firmware, Repetier, Smoothieware, RepRapFirmware, other | fatal (the firmware halted) | — |
//! | Klipper | an error for the running command, whose `ok` still follows | `// Klipper state: Shutdown` (fatal) |
//!
//! Klipper (`klippy/gcode.py`): every command gets its `ok` even after an error, which is
//! reported as `!! <message>`; `M115` is answered inside the `ok`
//! (`ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:…`, handled for every flavor); line numbers
//! and checksums are skipped, never checked, so it never asks for a resend; after `M112` or an
//! internal error it announces `// Klipper state: Shutdown` and answers every later command
//! with `!!`.

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
        let name = name.trim_start().to_ascii_lowercase();
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
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or(Self::Other, |(_, flavor)| flavor)
    }
}

/// Behaviours that differ between firmwares; [`Quirks::for_flavor`] gives each
/// [`FirmwareFlavor`]'s entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirks {
    /// A `!!` line means the firmware halted (fatal). `false`: it reports an error for the
    /// command being executed, whose `ok` still follows.
    pub bang_is_fatal: bool,
    /// A `//` message that announces the firmware shut down (fatal).
    pub shutdown_message: Option<&'static str>,
}

impl Quirks {
    /// Marlin's behaviour, also every flavor's default.
    pub const MARLIN: Self = Self {
        bang_is_fatal: true,
        shutdown_message: None,
    };

    /// Klipper's serial host emulation.
    pub const KLIPPER: Self = Self {
        bang_is_fatal: false,
        shutdown_message: Some("Klipper state: Shutdown"),
    };

    /// The table entry for `flavor`.
    pub fn for_flavor(flavor: FirmwareFlavor) -> Self {
        match flavor {
            FirmwareFlavor::Klipper => Self::KLIPPER,
            _ => Self::MARLIN,
        }
    }
}

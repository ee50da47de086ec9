//! Slicer engines behind one trait: requests, results, errors, progress and cancel.

mod common;
pub mod cura;
pub mod cura_log;
mod isolation;
pub mod output;
pub mod prusa;
mod prusa_config;
pub mod supervise;

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::model::{FitError, ModelError};
use crate::settings::{DefinitionError, ExtruderChoice, Override, Selection, SettingsError};
use std::collections::BTreeMap;

pub use cura::{CuraEngine, CuraOptions, CuraSlicer, ENGINE_ENV};
pub use cura_log::Progress;
pub use prusa::{PrusaConfig, PrusaPreset, PrusaPresets, PrusaSlicer, PRUSA_ENV};
pub use supervise::{CancelToken, ConcurrencyLimit, SlotGuard, SLOTS_ENV};

/// How any engine is run: supervision, isolation, concurrency and cache.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Kill the engine after this long.
    pub timeout: Option<Duration>,
    /// Run with `SCHED_IDLE`, nice 19 and the idle I/O class (default true).
    pub idle_priority: bool,
    /// How many slices may run at once (default: one per host, shared by all engines).
    pub limit: std::sync::Arc<ConcurrencyLimit>,
    /// Result cache (default none).
    pub cache: Option<crate::cache::SliceCache>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            idle_priority: true,
            limit: ConcurrencyLimit::host_default(),
            cache: None,
        }
    }
}

pub use crate::settings::QualityChoice;

/// What to print on: machine, its configuration (nozzle, material, quality, intent), machine
/// settings and user overrides — for CuraEngine; PrusaSlicer reads [`Profile::prusa`].
///
/// ```
/// use easyprint_slicer::Profile;
/// let profile = Profile::machine("creality_ender3")
///     .variant("0.4mm Nozzle")
///     .material("generic_pla_175")
///     .quality_type("standard")
///     .set("infill_sparse_density=30")?;
/// assert_eq!(profile.selection().material.as_deref(), Some("generic_pla_175"));
/// # Ok::<(), easyprint_slicer::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Machine definition id (`anet3d_a8`, `creality_ender3`).
    pub machine: String,
    /// Quality profile.
    pub quality: QualityChoice,
    /// User overrides, applied in order.
    pub overrides: Vec<Override>,
    /// Nozzle variant name for every extruder (`None`: the machine's preferred one).
    pub variant: Option<String>,
    /// Material base file id for every extruder (`None`: the machine's preferred one).
    pub material: Option<String>,
    /// Intent category (`engineering`, `visual`, `quick`; `None`: none).
    pub intent: Option<String>,
    /// Per-extruder nozzle and material, by position.
    pub extruders: BTreeMap<usize, ExtruderChoice>,
    /// Changes to the machine itself (Cura's machine settings: below every profile).
    pub machine_settings: Vec<Override>,
    /// PrusaSlicer's printer, print and filament presets.
    pub prusa: PrusaPresets,
}

impl Profile {
    /// A machine with its preferred configuration and no overrides.
    pub fn machine(id: impl Into<String>) -> Self {
        Self {
            machine: id.into(),
            quality: QualityChoice::Preferred,
            overrides: Vec::new(),
            variant: None,
            material: None,
            intent: None,
            extruders: BTreeMap::new(),
            machine_settings: Vec::new(),
            prusa: PrusaPresets::default(),
        }
    }

    /// PrusaSlicer presets (no Cura machine).
    pub fn prusa(presets: PrusaPresets) -> Self {
        Self {
            prusa: presets,
            ..Self::machine("")
        }
    }

    /// Add an override given as `key=value` text.
    pub fn set(mut self, key_value: &str) -> Result<Self, SettingsError> {
        self.overrides.push(Override::parse(key_value)?);
        Ok(self)
    }

    /// Add a machine setting given as `key=value` text (below every profile, unlike
    /// [`Self::set`]).
    pub fn machine_setting(mut self, key_value: &str) -> Result<Self, SettingsError> {
        self.machine_settings.push(Override::parse(key_value)?);
        Ok(self)
    }

    /// Use this nozzle variant in every extruder.
    pub fn variant(mut self, name: impl Into<String>) -> Self {
        self.variant = Some(name.into());
        self
    }

    /// Use this material (base file id) in every extruder.
    pub fn material(mut self, id: impl Into<String>) -> Self {
        self.material = Some(id.into());
        self
    }

    /// Use this nozzle variant in extruder `position`.
    pub fn extruder_variant(mut self, position: usize, name: impl Into<String>) -> Self {
        self.extruders.entry(position).or_default().variant = Some(name.into());
        self
    }

    /// Use this material in extruder `position`.
    pub fn extruder_material(mut self, position: usize, id: impl Into<String>) -> Self {
        self.extruders.entry(position).or_default().material = Some(id.into());
        self
    }

    /// Use this quality type (`draft`, `standard`...); PrusaSlicer takes a layer height
    /// (`0.2`, `0.20mm`).
    pub fn quality_type(mut self, quality: impl Into<String>) -> Self {
        self.quality = QualityChoice::Named(quality.into());
        self
    }

    /// Use this intent category.
    pub fn intent(mut self, category: impl Into<String>) -> Self {
        self.intent = Some(category.into());
        self
    }

    /// The Cura configuration this profile asks for.
    pub fn selection(&self) -> Selection {
        Selection {
            variant: self.variant.clone(),
            material: self.material.clone(),
            extruders: self.extruders.clone(),
            quality: self.quality.clone(),
            intent: self.intent.clone(),
        }
    }
}

/// One slice to run.
pub struct SliceRequest<'a> {
    /// Model file (STL or OBJ).
    pub model: &'a Path,
    /// Printer profile.
    pub profile: &'a Profile,
    /// Where the G-code goes (written atomically, only when the slice passed every check).
    pub output: &'a Path,
    /// Progress callback (called on the calling thread).
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
    /// Cancel from another thread.
    pub cancel: CancelToken,
}

impl std::fmt::Debug for SliceRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceRequest")
            .field("model", &self.model)
            .field("profile", &self.profile)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Figures about the produced G-code.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SliceStats {
    /// The engine's print time estimate, seconds (what Cura shows).
    pub print_time_s: Option<u64>,
    /// The `gcode` crate's Marlin-like estimate from the file itself, seconds.
    pub estimated_time_s: Option<f64>,
    /// Filament length, mm.
    pub filament_mm: Option<f64>,
    /// Filament volume, mm³.
    pub filament_mm3: Option<f64>,
    /// Number of layers.
    pub layer_count: u64,
    /// Bounding box `[min, max]` of the printed objects' extrusion (start G-code purge lines
    /// excluded), machine coordinates, mm; from the `gcode` crate's analysis of the output.
    pub bbox: Option<[[f64; 3]; 2]>,
}

/// A finished slice.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceReport {
    /// The published G-code file.
    pub output: PathBuf,
    /// Engine name and version (`CuraEngine 4.13.0`).
    pub engine: String,
    /// Whether it came from the cache.
    pub cache_hit: bool,
    /// Figures from the output.
    pub stats: SliceStats,
    /// Engine warnings worth showing (first few).
    pub warnings: Vec<String>,
    /// Wall time of the whole call.
    pub elapsed: Duration,
    /// Wall time the engine process ran (zero for a cache hit); `elapsed - engine_elapsed` is
    /// the wrapper's own cost.
    pub engine_elapsed: Duration,
}

/// Why a slice failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SliceError {
    /// The engine binary is missing or unusable.
    #[error("{0}")]
    EngineNotFound(String),
    /// Cura definitions are missing or broken.
    #[error(transparent)]
    Definitions(#[from] DefinitionError),
    /// A setting is unknown, malformed or out of range.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The model is unreadable, empty or implausible.
    #[error("bad model: {0}")]
    Model(#[from] ModelError),
    /// The model does not fit the machine.
    #[error("model does not fit the build volume: {0}")]
    DoesNotFit(#[from] FitError),
    /// The engine could not find or load a definition.
    #[error("engine could not load a definition: {0}")]
    MissingDefinition(String),
    /// The engine exited with an error code.
    #[error("engine exited with code {code}: {}", summary(.errors))]
    EngineFailed {
        /// Exit code.
        code: i32,
        /// `[ERROR]` lines.
        errors: Vec<String>,
    },
    /// The engine was killed by a signal it did not get from us (crash).
    #[error("engine crashed (signal {signal}){}", if .errors.is_empty() { String::new() } else { format!(": {}", summary(.errors)) })]
    EngineCrashed {
        /// The signal.
        signal: i32,
        /// `[ERROR]` lines before the crash.
        errors: Vec<String>,
    },
    /// The engine exited 0 but logged errors (e.g. silently fell back to 2.85 mm filament).
    #[error("engine reported errors although it exited 0: {}", summary(.errors))]
    EngineReportedErrors {
        /// `[ERROR]` lines.
        errors: Vec<String>,
    },
    /// The output has no layers (empty or garbage model).
    #[error("engine produced G-code with no layers")]
    NoLayers,
    /// Cancelled through the [`CancelToken`].
    #[error("slice cancelled")]
    Cancelled,
    /// The timeout passed.
    #[error("slice timed out after {0:?}")]
    Timeout(Duration),
    /// A PrusaSlicer preset is missing from its bundle or inherits in a loop.
    #[error("PrusaSlicer preset {}: {message}", path.display())]
    Preset {
        /// The preset or bundle file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn summary(errors: &[String]) -> String {
    if errors.is_empty() {
        "no error message".to_owned()
    } else {
        errors
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl SliceError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SliceError {
        let context = context.into();
        move |source| SliceError::Io { context, source }
    }
}

/// A slicer engine: CuraEngine now, PrusaSlicer later, behind the same calls.
pub trait Slicer {
    /// Engine name and version (`CuraEngine 4.13.0`).
    fn engine(&self) -> String;
    /// Slice one model to G-code.
    fn slice(&self, request: SliceRequest<'_>) -> Result<SliceReport, SliceError>;
}

//! CuraEngine and PrusaSlicer as supervised, isolated, cached subprocesses.
//!
//! Data flow: [`settings`] turns a machine id + quality + user overrides into every resolved
//! setting value (Cura's formulas evaluated, as its front end does); [`model`] reads, validates
//! and places the mesh; [`engine`] runs the slicer at idle priority with progress, cancel and
//! timeout, checks the output and publishes it atomically with a true header; [`cache`]
//! returns repeated slices at once.
//!
//! Slicing a generated 20 mm cube for an Anet A8 with the installed CuraEngine (Debian's
//! `cura-engine` and `cura` packages; [`CuraSlicer::discover`] says what is missing):
//!
//! ```
//! use easyprint_slicer::model::{save_binary_stl, shapes::cuboid};
//! use easyprint_slicer::{CancelToken, CuraOptions, CuraSlicer, Profile, SliceRequest, Slicer};
//!
//! let dir = tempfile::tempdir()?;
//! let model = dir.path().join("cube.stl");
//! save_binary_stl(&cuboid([0.0; 3], [20.0; 3]), &model)?;
//! let slicer = CuraSlicer::discover(CuraOptions::default())?;
//! let profile = Profile::machine("anet3d_a8").set("layer_height=0.3")?;
//! let mut fractions = Vec::new();
//! let report = slicer.slice(SliceRequest {
//!     model: &model,
//!     profile: &profile,
//!     output: &dir.path().join("cube.gcode"),
//!     progress: Some(&mut |p| fractions.push(p.fraction)),
//!     cancel: CancelToken::new(),
//! })?;
//! assert!(report.stats.layer_count >= 60, "{:?}", report.stats);
//! assert!(report.stats.print_time_s.is_some_and(|s| s > 0));
//! assert!(fractions.windows(2).all(|w| w[0] <= w[1]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
pub mod engine;
pub mod model;
pub mod settings;

pub use engine::{
    CancelToken, ConcurrencyLimit, CuraEngine, CuraOptions, CuraSlicer, Profile, Progress,
    PrusaPreset, PrusaPresets, PrusaSlicer, QualityChoice, RunOptions, SliceError, SliceReport,
    SliceRequest, SliceStats, Slicer, SlotGuard, SLOTS_ENV,
};

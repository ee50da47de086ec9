//! CuraEngine and PrusaSlicer as supervised, isolated, cached subprocesses.
//!
//! Data flow: [`settings`] turns a machine id + quality + user overrides into every resolved
//! setting value (Cura's formulas evaluated, as its front end does); [`model`] reads, validates
//! and places the mesh; [`engine`] runs the slicer at idle priority with progress, cancel and
//! timeout, checks the output and publishes it atomically with a true header; [`cache`]
//! returns repeated slices at once.
//!
//! ```no_run
//! use easyprint_slicer::{CancelToken, CuraOptions, CuraSlicer, Profile, SliceRequest, Slicer};
//! let slicer = CuraSlicer::discover(CuraOptions::default())?;
//! let profile = Profile::machine("anet3d_a8").set("layer_height=0.2")?;
//! let report = slicer.slice(SliceRequest {
//!     model: "cube.stl".as_ref(),
//!     profile: &profile,
//!     output: "cube.gcode".as_ref(),
//!     progress: Some(&mut |p| eprintln!("{:.0} %", p.fraction * 100.0)),
//!     cancel: CancelToken::new(),
//! })?;
//! println!("{:?}", report.stats.print_time_s);
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

//! CuraEngine (and later PrusaSlicer) as a supervised, isolated, cached subprocess.
//!
//! Data flow: [`settings`] turns a machine id + quality + user overrides into every resolved
//! setting value (Cura's formulas evaluated); [`model`] reads, validates and places the mesh;
//! [`engine`] runs the slicer at idle priority with progress, cancel and timeout, checks and
//! publishes the output; [`cache`] returns repeated slices at once.

pub mod model;
pub mod settings;

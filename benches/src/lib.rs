//! Shared helpers for easyprint benchmarks.

pub mod gcode;

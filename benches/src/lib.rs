//! Shared helpers for easyprint benchmarks.

pub mod gcode;
pub mod queue;
pub mod server;

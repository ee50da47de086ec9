//! Shared helpers for easyprint benchmarks.

pub mod gcode;
pub mod octoprint;
pub mod queue;
pub mod server;
pub mod sim_process;

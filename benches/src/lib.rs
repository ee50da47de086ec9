//! Shared helpers for easyprint benchmarks.

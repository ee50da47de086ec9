//! G-code parser, writer and one-pass analysis.

//! G-code for 3D printer hosts: a fast zero-copy parser, a canonical writer and a one-pass analysis.
//!
//! - [`Parser`] parses a buffer (or memory-mapped file) line by line without allocating per line;
//!   [`parse_reader`] and [`LineSplitter`] do the same from any stream in bounded memory. Errors
//!   carry line, column and what was expected ([`ParseError`]); [`Mode::Lenient`] reports and goes on,
//!   [`Mode::Strict`] stops.
//! - [`write_line`] produces the canonical form a host sends to firmware, optionally with `N` and the
//!   `*` [`checksum()`].
//! - [`analysis`] computes layers, bounding box, filament, a Marlin-like print time estimate with
//!   per-line time offsets, and slicer metadata in a single pass.
//! - [`machine_state`] tracks the printer state over streamed lines (positions, modes, heaters,
//!   fans, tool) and builds the G-code prelude that resumes an interrupted print.
//!
//! ```
//! use easyprint_gcode::{Parser, ParseOptions};
//! let mut parser = Parser::new(b"G1X10Y-5.2E.4\nM117 Hello; world?\n", ParseOptions::strict());
//! let first = parser.next_line().unwrap().unwrap();
//! assert_eq!(first.arg(b'X'), Some(10.0));
//! let second = parser.next_line().unwrap().unwrap();
//! assert_eq!(second.text(), Some(&b"Hello"[..]));
//! assert_eq!(second.comment(), Some(&b" world?"[..]));
//! ```

mod checksum;
mod number;
pub(crate) mod parse;
mod write;

pub use checksum::checksum;
pub use parse::{
    parse_reader, Code, Expected, Extended, Found, Line, LineParser, LineSplitter, Mode,
    ParseError, ParseErrorKind, ParseOptions, Parser, RawLine, Word, WordValue,
};

pub mod analysis;
pub mod machine_state;
pub use write::{frame, write_line, WriteOptions};

//! Push-based line splitting for streams: feed chunks of any size, get whole lines.

use std::ops::ControlFlow;

use super::strip_cr;

/// A line delivered by [`LineSplitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine<'a> {
    /// A complete line without its terminator (`\n` or `\r\n`).
    Line {
        /// The line's bytes.
        bytes: &'a [u8],
        /// 1-based line number.
        number: u64,
        /// Byte offset of the line's first byte in the stream.
        offset: u64,
    },
    /// A line longer than the limit; its bytes were dropped as they arrived.
    TooLong {
        /// 1-based line number.
        number: u64,
        /// Byte offset of the line's first byte in the stream.
        offset: u64,
        /// The limit it exceeded.
        max: usize,
    },
}

/// Splits a byte stream into lines, whatever the chunk boundaries, holding at most one partial line
/// of at most `max_line_len` bytes. Complete lines inside a chunk are passed on without copying.
///
/// ```
/// use easyprint_gcode::{LineSplitter, RawLine};
/// use std::ops::ControlFlow;
/// let mut splitter = LineSplitter::new(100);
/// let mut lines = Vec::new();
/// let mut collect = |l: RawLine<'_>| {
///     if let RawLine::Line { bytes, .. } = l { lines.push(bytes.to_vec()); }
///     ControlFlow::Continue(())
/// };
/// let _ = splitter.push(b"G1 X", &mut collect);
/// let _ = splitter.push(b"1\r\nG1 X2\nM84", &mut collect);
/// let _ = splitter.finish(&mut collect);
/// assert_eq!(lines, [b"G1 X1".to_vec(), b"G1 X2".to_vec(), b"M84".to_vec()]);
/// ```
#[derive(Debug)]
pub struct LineSplitter {
    carry: Vec<u8>,
    max: usize,
    /// Stream offset of the next byte to arrive.
    offset: u64,
    /// Stream offset where the current (partial) line started.
    line_start: u64,
    lines: u64,
    skipping: bool,
}

impl LineSplitter {
    /// A splitter accepting lines of up to `max_line_len` bytes (terminator excluded).
    pub fn new(max_line_len: usize) -> Self {
        LineSplitter {
            carry: Vec::new(),
            max: max_line_len,
            offset: 0,
            line_start: 0,
            lines: 0,
            skipping: false,
        }
    }

    /// Lines delivered so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes currently allocated for a partial line: at most about `max_line_len`, whatever comes in.
    pub fn buffered_capacity(&self) -> usize {
        self.carry.capacity()
    }

    /// Bytes pushed so far.
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Feeds a chunk; `f` gets every line completed by it. Stops early when `f` breaks (the rest
    /// of the chunk is then dropped).
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(RawLine<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let base = self.offset;
        self.offset += chunk.len() as u64;
        let mut consumed = 0usize;
        for end in memchr::memchr_iter(b'\n', chunk) {
            let piece = &chunk[consumed..end];
            self.lines += 1;
            let number = self.lines;
            let offset = self.line_start;
            let flow = if self.skipping {
                self.skipping = false;
                f(self.too_long(number, offset))
            } else if !self.carry.is_empty() {
                self.carry.extend_from_slice(piece);
                let flow = if strip_cr(&self.carry).len() > self.max {
                    f(self.too_long(number, offset))
                } else {
                    f(RawLine::Line {
                        bytes: strip_cr(&self.carry),
                        number,
                        offset,
                    })
                };
                self.carry.clear();
                flow
            } else {
                let bytes = strip_cr(piece);
                if bytes.len() > self.max {
                    f(self.too_long(number, offset))
                } else {
                    f(RawLine::Line {
                        bytes,
                        number,
                        offset,
                    })
                }
            };
            consumed = end + 1;
            self.line_start = base + consumed as u64;
            flow?;
        }
        let tail = &chunk[consumed..];
        if !self.skipping && !tail.is_empty() {
            // One extra byte of room for a `\r` that the next chunk's `\n` would strip.
            if self.carry.len() + tail.len() > self.max.saturating_add(1) {
                self.skipping = true;
                self.carry = Vec::new();
            } else {
                self.carry.extend_from_slice(tail);
            }
        }
        ControlFlow::Continue(())
    }

    /// Records `bytes` holding `lines` whole lines that the caller parsed itself, in place (see
    /// [`Analyzer::feed`](crate::analysis::Analyzer::feed)). Only valid at a line start: right
    /// after a pushed chunk that ended with `\n`.
    pub(crate) fn skip_lines(&mut self, bytes: usize, lines: u64) {
        debug_assert!(self.carry.is_empty() && !self.skipping);
        self.offset += bytes as u64;
        self.lines += lines;
        self.line_start = self.offset;
    }

    /// Ends the stream: delivers a last line that had no terminator.
    pub fn finish(&mut self, mut f: impl FnMut(RawLine<'_>) -> ControlFlow<()>) -> ControlFlow<()> {
        let flow = if self.skipping {
            self.skipping = false;
            self.lines += 1;
            f(self.too_long(self.lines, self.line_start))
        } else if !self.carry.is_empty() {
            self.lines += 1;
            let bytes = strip_cr(&self.carry);
            if bytes.len() > self.max {
                f(self.too_long(self.lines, self.line_start))
            } else {
                f(RawLine::Line {
                    bytes,
                    number: self.lines,
                    offset: self.line_start,
                })
            }
        } else {
            ControlFlow::Continue(())
        };
        self.carry.clear();
        self.line_start = self.offset;
        flow
    }

    fn too_long(&self, number: u64, offset: u64) -> RawLine<'static> {
        RawLine::TooLong {
            number,
            offset,
            max: self.max,
        }
    }
}

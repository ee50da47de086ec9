//! The parser: whole buffers ([`Parser`]) and streams ([`parse_reader`], [`LineSplitter`]).
//!
//! Lines are found with `memchr`, each line is parsed by a small nom grammar over `&[u8]` into a
//! reused word buffer, so parsing allocates nothing per line and borrows all text from the input.

pub(crate) mod error;
mod fast;
pub(crate) mod line;
mod split;

use std::io::Read;
use std::ops::ControlFlow;

pub use error::{Expected, Found, ParseError, ParseErrorKind};
pub use line::{Code, Extended, Line, Word, WordValue};
pub use split::{LineSplitter, RawLine};

use fast::{FastWords, EMPTY, FAST_WORDS};
use line::{parse_line, RawWord};

/// What the parser does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Stop at the first error: it is returned, and the parser yields nothing after it.
    Strict,
    /// Report each bad line and go on with the next one. An unclosed `(` comment runs to the end
    /// of the line instead of being an error. A host must not abort a print on a weird comment.
    #[default]
    Lenient,
}

/// Parser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Strict or lenient error handling.
    pub mode: Mode,
    /// The longest line accepted, in bytes (terminator excluded). Longer lines are skipped with
    /// [`ParseErrorKind::LineTooLong`]; when streaming they are never buffered, so memory stays
    /// bounded by this limit plus the chunk size. Clamped to `u32::MAX`.
    pub max_line_len: usize,
}

impl ParseOptions {
    /// Default line limit: 1 MiB (real slicer lines are under 1 kB; base64 thumbnail rows ~80 bytes).
    pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;

    /// Strict mode, default line limit.
    pub fn strict() -> Self {
        ParseOptions {
            mode: Mode::Strict,
            ..Self::default()
        }
    }

    /// Lenient mode, default line limit.
    pub fn lenient() -> Self {
        Self::default()
    }

    #[inline]
    fn limit(&self) -> usize {
        self.max_line_len.min(u32::MAX as usize)
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            mode: Mode::Lenient,
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
        }
    }
}

/// Parses lines from a byte slice in memory (or a memory-mapped file), zero-copy.
///
/// `next_line` lends each [`Line`] until the next call (the word buffer is reused), so it is not an
/// `Iterator`; use `while let`:
///
/// ```
/// use easyprint_gcode::{Parser, ParseOptions};
/// let gcode = b"G28 ; home\r\nG1 X10 Y10 F3000\nM84 X Y E";
/// let mut parser = Parser::new(gcode, ParseOptions::strict());
/// let mut commands = Vec::new();
/// while let Some(line) = parser.next_line() {
///     let line = line.expect("valid G-code");
///     if let Some(code) = line.command() {
///         commands.push(code.to_string());
///     }
/// }
/// assert_eq!(commands, ["G28", "G1", "M84"]);
/// ```
#[derive(Debug)]
pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Stream offset of `input[0]` (0 unless the input is a piece of a stream).
    base: u64,
    line_number: u64,
    words: WordBuffer,
    options: ParseOptions,
    /// `options.limit()`, computed once.
    limit: usize,
    failed: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a [u8], options: ParseOptions) -> Self {
        Self::continuing(input, options, 0, 0)
    }

    /// A parser over a piece of a stream that starts a line: `lines_before` lines and `offset`
    /// bytes came before it, so line numbers and offsets are the stream's.
    pub(crate) fn continuing(
        input: &'a [u8],
        options: ParseOptions,
        lines_before: u64,
        offset: u64,
    ) -> Self {
        Parser {
            input,
            pos: 0,
            base: offset,
            line_number: lines_before,
            words: WordBuffer::default(),
            options,
            limit: options.limit(),
            failed: false,
        }
    }

    /// The next line, or `None` at the end of the input (or after an error in strict mode).
    // Always inlined: in the caller's loop the line's parts stay in registers instead of going
    // through memory, and the caller's word loop sees the words' kinds.
    #[inline(always)]
    pub fn next_line(&mut self) -> Option<Result<Line<'_>, ParseError>> {
        if self.pos >= self.input.len() || self.failed {
            return None;
        }
        let rest = &self.input[self.pos..];
        let offset = self.base + self.pos as u64;
        self.line_number += 1;
        let limit = self.limit;
        if let Some(fast) = fast::scan(rest, &mut self.words.fast, limit) {
            self.pos += fast.consumed;
            return Some(Ok(Line {
                raw: &rest[..fast.len],
                words: &self.words.fast[..fast.count],
                parts: fast.parts,
                number: self.line_number,
                offset,
            }));
        }
        let (len, next) = match memchr::memchr(b'\n', rest) {
            Some(n) => (n, self.pos + n + 1),
            None => (rest.len(), self.input.len()),
        };
        self.pos = next;
        let raw = strip_cr(&rest[..len]);
        let result = if raw.len() > limit {
            Err(ParseError {
                line: self.line_number,
                column: 1,
                offset,
                kind: ParseErrorKind::LineTooLong { max: limit },
            })
        } else {
            parse_raw(
                raw,
                self.line_number,
                offset,
                &mut self.words,
                self.options.mode,
            )
        };
        if result.is_err() && self.options.mode == Mode::Strict {
            self.failed = true;
        }
        Some(result)
    }

    /// The next line if it is a plain `G0`/`G1` move (see [`fast::scan_move`]), its words handed
    /// to `word` (letter, value) as they are read; returns the line's number and byte offset. On
    /// `None` nothing is consumed: the line is for [`next_line`](Self::next_line).
    #[inline(always)]
    pub(crate) fn next_move(&mut self, word: impl FnMut(u8, f64)) -> Option<(u64, u64)> {
        if self.failed {
            return None;
        }
        let rest = self.input.get(self.pos..)?;
        let consumed = fast::scan_move(rest, self.limit, word)?;
        let offset = self.base + self.pos as u64;
        self.pos += consumed;
        self.line_number += 1;
        Some((self.line_number, offset))
    }

    /// Byte offset of the next line to be parsed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Number of the last line returned (lines before the input included).
    pub(crate) fn line_number(&self) -> u64 {
        self.line_number
    }
}

#[inline]
fn strip_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    }
}

/// Where a parser keeps the words of the current line: a fixed array for the fast path, a
/// growable buffer (reused from line to line) for the general grammar.
#[derive(Debug, Clone)]
pub(crate) struct WordBuffer {
    /// Boxed: the parser's own fields (position, line number) then have no address taken, so a
    /// caller's loop keeps them in registers; the words live apart.
    fast: Box<FastWords>,
    general: Vec<RawWord>,
}

impl Default for WordBuffer {
    fn default() -> Self {
        WordBuffer {
            fast: Box::new([EMPTY; FAST_WORDS]),
            general: Vec::with_capacity(16),
        }
    }
}

/// Parses one raw line (terminator already removed) with a caller-owned word buffer.
#[inline]
pub(crate) fn parse_raw<'a>(
    raw: &'a [u8],
    number: u64,
    offset: u64,
    words: &'a mut WordBuffer,
    mode: Mode,
) -> Result<Line<'a>, ParseError> {
    // `raw` has no terminator, so the fast path ends at its end.
    if let Some(fast) = fast::scan(raw, &mut words.fast, usize::MAX) {
        if fast.consumed == raw.len() {
            return Ok(Line {
                raw: &raw[..fast.len],
                words: &words.fast[..fast.count],
                parts: fast.parts,
                number,
                offset,
            });
        }
    }
    let words = &mut words.general;
    match parse_line(raw, words, mode == Mode::Lenient) {
        Ok(parts) => Ok(Line {
            raw,
            words,
            parts,
            number,
            offset,
        }),
        Err((column, kind)) => Err(ParseError {
            line: number,
            column: (column + 1).min(u32::MAX as usize) as u32,
            offset,
            kind,
        }),
    }
}

/// Reusable per-line parse state for streaming callers: holds the word buffer.
#[derive(Debug, Default)]
pub struct LineParser {
    words: WordBuffer,
    mode: Mode,
}

impl LineParser {
    /// A line parser in the given mode.
    pub fn new(mode: Mode) -> Self {
        LineParser {
            words: WordBuffer::default(),
            mode,
        }
    }

    /// Parses one line delivered by a [`LineSplitter`] (an over-long line becomes
    /// [`ParseErrorKind::LineTooLong`]).
    pub fn parse<'a>(&'a mut self, raw: RawLine<'a>) -> Result<Line<'a>, ParseError> {
        match raw {
            RawLine::Line {
                bytes,
                number,
                offset,
            } => parse_raw(bytes, number, offset, &mut self.words, self.mode),
            RawLine::TooLong {
                number,
                offset,
                max,
            } => Err(ParseError {
                line: number,
                column: 1,
                offset,
                kind: ParseErrorKind::LineTooLong { max },
            }),
        }
    }
}

/// Parses G-code from any reader in chunks, with memory bounded by the chunk size plus
/// `options.max_line_len`, calling `f` for every line. `f` returns [`ControlFlow::Break`] to stop
/// early; in strict mode parsing stops after the first error has been passed to `f`.
///
/// Returns the number of lines seen.
///
/// ```
/// use easyprint_gcode::{parse_reader, ParseOptions};
/// use std::ops::ControlFlow;
/// let file = std::io::Cursor::new(b"G1 X1\nG1 X2\nG1 X3\n".to_vec());
/// let mut xs = Vec::new();
/// parse_reader(file, ParseOptions::strict(), |line| {
///     xs.push(line.unwrap().arg(b'X').unwrap());
///     ControlFlow::Continue(())
/// })
/// .unwrap();
/// assert_eq!(xs, [1.0, 2.0, 3.0]);
/// ```
pub fn parse_reader<R: Read>(
    mut reader: R,
    options: ParseOptions,
    mut f: impl FnMut(Result<Line<'_>, ParseError>) -> ControlFlow<()>,
) -> std::io::Result<u64> {
    const CHUNK: usize = 256 * 1024;
    let mut splitter = LineSplitter::new(options.limit());
    let mut parser = LineParser::new(options.mode);
    let mut chunk = vec![0u8; CHUNK];
    let mut stopped = false;
    let mut handle = |raw: RawLine<'_>| {
        let result = parser.parse(raw);
        let failed = result.is_err();
        let flow = f(result);
        if failed && options.mode == Mode::Strict {
            return ControlFlow::Break(());
        }
        flow
    };
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if splitter.push(&chunk[..n], &mut handle).is_break() {
            stopped = true;
            break;
        }
    }
    if !stopped {
        let _ = splitter.finish(&mut handle);
    }
    Ok(splitter.lines())
}

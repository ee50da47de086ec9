//! Parse errors: where (line, column) and what was expected.

use core::fmt;

/// What the parser expected at the position of a [`ParseError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Expected {
    /// A word letter `A`-`Z` (either case), a comment or the end of the line.
    WordLetter,
    /// A decimal number (`10`, `-.5`, `+1`, `1.`).
    Number,
    /// A number small enough for `f64` (the digits overflowed).
    FiniteNumber,
    /// An unsigned integer (line number, checksum).
    Integer,
    /// An integer that fits in 32 bits (line number) or 8 bits (checksum).
    SmallInteger,
    /// The `)` closing a parenthesised comment.
    ClosingParen,
    /// The `"` closing a quoted string.
    ClosingQuote,
    /// The `}` closing an expression.
    ClosingBrace,
    /// The end of the line (or a comment) after a checksum.
    EndOfLine,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::WordLetter => "a word letter, a comment or end of line",
            Expected::Number => "a number",
            Expected::FiniteNumber => "a number that fits in f64",
            Expected::Integer => "an unsigned integer",
            Expected::SmallInteger => "a smaller integer",
            Expected::ClosingParen => "')' closing the comment",
            Expected::ClosingQuote => "'\"' closing the string",
            Expected::ClosingBrace => "'}' closing the expression",
            Expected::EndOfLine => "end of line after the checksum",
        })
    }
}

/// The byte found where something else was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Found {
    /// This byte.
    Byte(u8),
    /// The end of the line.
    EndOfLine,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Found::Byte(b) if b.is_ascii_graphic() || b == b' ' => write!(f, "'{}'", b as char),
            Found::Byte(b) => write!(f, "byte 0x{b:02x}"),
            Found::EndOfLine => f.write_str("end of line"),
        }
    }
}

/// What went wrong on a line.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ParseErrorKind {
    /// The syntax did not match.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: Expected,
        /// What was there instead.
        found: Found,
    },
    /// The `*` checksum does not match the XOR of the bytes before it.
    #[error("checksum mismatch: line says {stated}, bytes give {computed}")]
    ChecksumMismatch {
        /// The checksum written on the line.
        stated: u8,
        /// [`checksum`](crate::checksum()) of the bytes before `*`.
        computed: u8,
    },
    /// The line is longer than [`ParseOptions::max_line_len`](crate::ParseOptions::max_line_len);
    /// it was skipped without being buffered.
    #[error("line longer than the limit of {max} bytes")]
    LineTooLong {
        /// The configured limit.
        max: usize,
    },
}

/// A parse error with its position: 1-based line number and 1-based byte column.
///
/// ```
/// use easyprint_gcode::{Parser, ParseOptions};
/// let mut p = Parser::new(b"G1 X10\nG1 X#\n", ParseOptions::strict());
/// assert!(p.next_line().unwrap().is_ok());
/// let err = p.next_line().unwrap().unwrap_err();
/// assert_eq!((err.line, err.column), (2, 5));
/// assert_eq!(err.to_string(), "line 2, column 5: expected a word letter, a comment or end of line, found '#'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number in the input (counting every `\n`).
    pub line: u64,
    /// 1-based byte column.
    pub column: u32,
    /// Byte offset of the line's first byte in the input.
    pub offset: u64,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// The nom error type inside the parser: the remaining input where it failed, and what was expected.
/// Kept crate-private so nom stays out of the public API.
#[derive(Debug)]
pub(crate) struct SyntaxError<'a> {
    pub(crate) rest: &'a [u8],
    pub(crate) kind: ParseErrorKind,
}

impl<'a> SyntaxError<'a> {
    pub(crate) fn new(rest: &'a [u8], expected: Expected) -> Self {
        let found = rest.first().map_or(Found::EndOfLine, |&b| Found::Byte(b));
        SyntaxError {
            rest,
            kind: ParseErrorKind::Unexpected { expected, found },
        }
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for SyntaxError<'a> {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        SyntaxError::new(input, Expected::WordLetter)
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

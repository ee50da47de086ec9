//! One line of G-code: the grammar (nom parsers over `&[u8]`) and the zero-copy view of the result.

use memchr::{memchr, memchr2, memrchr};
use nom::bytes::complete::take_while;
use nom::{IResult, Parser as _};

use super::error::{Expected, ParseErrorKind, SyntaxError};
use crate::number::{decimal, unsigned};

/// What kind of value a word carries (stored compactly in [`RawWord`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Number,
    Flag,
    Text,
    Quoted,
    Expression,
}

/// A word as stored by the parser: no borrow, so one `Vec` is reused for every line.
///
/// 16 bytes: one payload holds either the number or, for text kinds, the value's byte span inside
/// the line (start in the low 32 bits, end in the high). Storing a word is two stores, and a
/// slice of words is indexed with a shift.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawWord {
    payload: u64,
    pub(crate) letter: u8,
    pub(crate) kind: ValueKind,
}

impl RawWord {
    /// A word with a number.
    #[inline(always)]
    pub(crate) fn number(letter: u8, value: f64) -> Self {
        RawWord {
            payload: value.to_bits(),
            letter,
            kind: ValueKind::Number,
        }
    }

    /// A word without a value.
    #[inline(always)]
    pub(crate) const fn flag(letter: u8) -> Self {
        RawWord {
            payload: 0,
            letter,
            kind: ValueKind::Flag,
        }
    }

    /// A word with a text value (`kind` is not `Number` or `Flag`) at `span` in the line.
    pub(crate) fn text(letter: u8, kind: ValueKind, span: Span) -> Self {
        RawWord {
            payload: u64::from(span.start) | u64::from(span.end) << 32,
            letter,
            kind,
        }
    }

    /// The number (meaningful for [`ValueKind::Number`] only).
    #[inline(always)]
    pub(crate) fn value(&self) -> f64 {
        f64::from_bits(self.payload)
    }

    /// The text value's span (meaningful for the text kinds only).
    #[inline(always)]
    pub(crate) fn span(&self) -> Span {
        Span {
            start: self.payload as u32,
            end: (self.payload >> 32) as u32,
        }
    }

    /// The same word, bit for bit.
    #[cfg(test)]
    pub(crate) fn same(&self, other: &RawWord) -> bool {
        (self.payload, self.letter, self.kind) == (other.payload, other.letter, other.kind)
    }
}

/// A byte range inside a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    fn of(line: &[u8], rest_at_start: &[u8], rest_at_end: &[u8]) -> Span {
        Span {
            start: (line.len() - rest_at_start.len()) as u32,
            end: (line.len() - rest_at_end.len()) as u32,
        }
    }

    #[inline]
    pub(crate) fn get(self, line: &[u8]) -> &[u8] {
        &line[self.start as usize..self.end as usize]
    }
}

/// A command code: the letter and number of the line's first word, `G1`, `M862.3`, `T0`.
///
/// ```
/// use easyprint_gcode::{Parser, ParseOptions, Code};
/// let mut p = Parser::new(b"M862.3 P \"MK3S\"", ParseOptions::strict());
/// let line = p.next_line().unwrap().unwrap();
/// assert_eq!(line.command(), Some(Code { letter: b'M', major: 862, minor: Some(3) }));
/// assert_eq!(line.command().unwrap().to_string(), "M862.3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Code {
    /// `b'G'`, `b'M'` or `b'T'` (always upper case).
    pub letter: u8,
    /// The number before any dot.
    pub major: u32,
    /// The subcode after a dot (`M862.3` has `Some(3)`).
    pub minor: Option<u32>,
}

impl Code {
    /// `true` for `letter` + `major` without a subcode, e.g. `code.is(b'G', 1)`.
    #[inline]
    pub fn is(&self, letter: u8, major: u32) -> bool {
        self.letter == letter && self.major == major && self.minor.is_none()
    }
}

impl core::fmt::Display for Code {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}{}", self.letter as char, self.major)?;
        if let Some(minor) = self.minor {
            write!(f, ".{minor}")?;
        }
        Ok(())
    }
}

/// The value of a word.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WordValue<'a> {
    /// A decimal number: `X10`, `E.05`, `S-1`.
    Number(f64),
    /// A letter without a value: `M84 X Y E`, `G28 W`.
    Flag,
    /// An unquoted value that is not a plain number, kept as text: `U3.12.2` (a version).
    Text(&'a [u8]),
    /// A quoted string, without its quotes (a doubled `""` inside stays doubled): `P"x.g"`.
    Quoted(&'a [u8]),
    /// An expression in braces, without the braces: `Y{machine_depth}`.
    Expression(&'a [u8]),
}

/// A word: a letter (upper case) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Word<'a> {
    /// The letter, upper case.
    pub letter: u8,
    /// Its value.
    pub value: WordValue<'a>,
}

impl Word<'_> {
    /// The numeric value, if the word has one.
    #[inline]
    pub fn number(&self) -> Option<f64> {
        match self.value {
            WordValue::Number(v) => Some(v),
            _ => None,
        }
    }
}

/// An extended command, named rather than coded: Klipper macros and RepRapFirmware meta commands
/// (`SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200`, `echo "x"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extended<'a> {
    /// The command name as written.
    pub name: &'a [u8],
    /// Everything after the name up to a comment, trimmed.
    pub parameters: &'a [u8],
}

/// The parts of a line other than its words, all as spans.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineParts {
    pub(crate) line_number: Option<u32>,
    pub(crate) checksum: Option<u8>,
    pub(crate) command: Option<Code>,
    /// The command's digits as written (general grammar only).
    pub(crate) command_digits: Option<Span>,
    pub(crate) comment: Option<Span>,
    pub(crate) text: Option<Span>,
    pub(crate) extended: Option<(Span, Span)>,
}

/// One parsed line, borrowing the input bytes and the parser's word buffer.
///
/// ```
/// use easyprint_gcode::{Parser, ParseOptions, WordValue};
/// let mut p = Parser::new(b"N7 G1X10y-5.2E.4 ; move*", ParseOptions::strict());
/// let line = p.next_line().unwrap().unwrap();
/// assert_eq!(line.line_number(), Some(7));
/// assert!(line.command().unwrap().is(b'G', 1));
/// assert_eq!(line.arg(b'Y'), Some(-5.2));
/// assert_eq!(line.arg(b'E'), Some(0.4));
/// assert_eq!(line.comment(), Some(&b" move*"[..]));
/// assert_eq!(line.args().count(), 3);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) words: &'a [RawWord],
    pub(crate) parts: LineParts,
    pub(crate) number: u64,
    pub(crate) offset: u64,
}

impl<'a> Line<'a> {
    /// The line's bytes, without the line terminator (`\n` or `\r\n`).
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// 1-based line number in the input (physical lines, not the `N` word).
    #[inline]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Byte offset of the line's first byte in the input.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The `N` line number, if any.
    #[inline]
    pub fn line_number(&self) -> Option<u32> {
        self.parts.line_number
    }

    /// The `*` checksum, if any (already verified against the bytes before it).
    #[inline]
    pub fn checksum(&self) -> Option<u8> {
        self.parts.checksum
    }

    /// The command code: the first word when it is `G`, `M` or `T` with a number.
    #[inline]
    pub fn command(&self) -> Option<Code> {
        self.parts.command
    }

    /// The text of the first `;` comment, without the `;`.
    #[inline]
    pub fn comment(&self) -> Option<&'a [u8]> {
        self.parts.comment.map(|s| s.get(self.raw))
    }

    /// The string argument of commands that take one (`M117 Hello`, `M23 /sub/file.gco`,
    /// `M28`/`M30`/`M32` file names, `M118`, `M16`, `M33`, `M928`), trimmed. It runs to a `;` comment
    /// or a trailing `*checksum`.
    #[inline]
    pub fn text(&self) -> Option<&'a [u8]> {
        self.parts.text.map(|s| s.get(self.raw))
    }

    /// The extended (named) command, if the line is one.
    #[inline]
    pub fn extended(&self) -> Option<Extended<'a>> {
        self.parts.extended.map(|(n, p)| Extended {
            name: n.get(self.raw),
            parameters: p.get(self.raw),
        })
    }

    /// `true` when the line has no words, no text and no extended command (blank or comment only).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.parts.extended.is_none()
    }

    /// All words in order, including the command word (`N` and the checksum are not words).
    #[inline]
    pub fn words(&self) -> impl ExactSizeIterator<Item = Word<'a>> + '_ {
        let raw = self.raw;
        self.words.iter().map(move |w| word(raw, w))
    }

    /// The words after the command word (all words if the line has no command).
    #[inline]
    pub fn args(&self) -> impl ExactSizeIterator<Item = Word<'a>> + '_ {
        let skip = usize::from(self.parts.command.is_some());
        let raw = self.raw;
        self.words[skip..].iter().map(move |w| word(raw, w))
    }

    /// The numeric value of the first argument with this letter (upper case).
    #[inline]
    pub fn arg(&self, letter: u8) -> Option<f64> {
        let skip = usize::from(self.parts.command.is_some());
        self.words[skip..]
            .iter()
            .find(|w| w.letter == letter && w.kind == ValueKind::Number)
            .map(|w| w.value())
    }

    /// `true` if an argument with this letter is present, with or without a value.
    #[inline]
    pub fn has_arg(&self, letter: u8) -> bool {
        let skip = usize::from(self.parts.command.is_some());
        self.words[skip..].iter().any(|w| w.letter == letter)
    }

    /// The digits of the command code as written (`862.3`), when the general grammar parsed the
    /// line (the fast path takes plain codes only, which the writer rebuilds from the number).
    pub(crate) fn command_digits(&self) -> Option<&'a [u8]> {
        self.parts.command?;
        Some(self.parts.command_digits?.get(self.raw)).filter(|d| !d.is_empty())
    }

    pub(crate) fn raw_args(&self) -> &'a [RawWord] {
        &self.words[usize::from(self.parts.command.is_some())..]
    }
}

#[inline]
fn word<'a>(raw: &'a [u8], w: &RawWord) -> Word<'a> {
    // Spans always lie inside the line; `get` rather than indexing keeps a panic path out of the
    // caller's loop, so a caller that only reads numbers pays nothing for the text kinds.
    let text = || {
        let span = w.span();
        raw.get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    };
    let value = match w.kind {
        ValueKind::Number => WordValue::Number(w.value()),
        ValueKind::Flag => WordValue::Flag,
        ValueKind::Text => WordValue::Text(text()),
        ValueKind::Quoted => WordValue::Quoted(text()),
        ValueKind::Expression => WordValue::Expression(text()),
    };
    Word {
        letter: w.letter,
        value,
    }
}

/// M-codes whose argument is free text rather than words.
#[inline]
pub(crate) fn takes_text(code: Code) -> bool {
    code.letter == b'M'
        && code.minor.is_none()
        && matches!(code.major, 16 | 23 | 28 | 30 | 32 | 33 | 117 | 118 | 928)
}

type PResult<'a, T> = IResult<&'a [u8], T, SyntaxError<'a>>;

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Skips spaces and tabs (hand-written: this runs between every two words).
#[inline(always)]
fn blanks(mut i: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = i {
        i = rest;
    }
    i
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if is_blank(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// `"..."` with `""` as an escaped quote; returns the inner bytes.
fn quoted(i: &[u8]) -> PResult<'_, &[u8]> {
    let body = &i[1..];
    let mut pos = 0;
    loop {
        match memchr(b'"', &body[pos..]) {
            Some(q) if body.get(pos + q + 1) == Some(&b'"') => pos += q + 2,
            Some(q) => return Ok((&body[pos + q + 1..], &body[..pos + q])),
            None => {
                return Err(nom::Err::Error(SyntaxError::new(
                    &body[body.len()..],
                    Expected::ClosingQuote,
                )))
            }
        }
    }
}

/// `{...}` with nesting; returns the inner bytes.
fn braced(i: &[u8]) -> PResult<'_, &[u8]> {
    let mut depth = 0usize;
    for (pos, &b) in i.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((&i[pos + 1..], &i[1..pos]));
                }
            }
            _ => {}
        }
    }
    Err(nom::Err::Error(SyntaxError::new(
        &i[i.len()..],
        Expected::ClosingBrace,
    )))
}

/// The digits of a command code (`1`, `862.3`) as major and minor numbers.
fn code_number(i: &[u8]) -> PResult<'_, (u32, Option<u32>)> {
    let (rest, major) = unsigned(i)?;
    if rest.first() == Some(&b'.') {
        if let Ok((rest2, minor)) = unsigned(&rest[1..]) {
            return Ok((rest2, (major, Some(minor))));
        }
    }
    Ok((rest, (major, None)))
}

fn to_error(e: nom::Err<SyntaxError<'_>>) -> SyntaxError<'_> {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        // Only streaming nom parsers return Incomplete; these are all complete parsers.
        nom::Err::Incomplete(_) => SyntaxError {
            rest: &[],
            kind: ParseErrorKind::LineTooLong { max: 0 },
        },
    }
}

/// Where a line's parse failed: byte offset inside the line and what went wrong.
pub(crate) type LineError = (usize, ParseErrorKind);

/// Parses one line (without its terminator) into `parts` and `words` (cleared first).
pub(crate) fn parse_line(
    line: &[u8],
    words: &mut Vec<RawWord>,
    lenient: bool,
) -> Result<LineParts, LineError> {
    words.clear();
    let mut parts = LineParts::default();
    match parse_words(line, words, &mut parts, lenient) {
        Ok(()) => Ok(parts),
        Err(e) => {
            let e = to_error(e);
            Err((line.len() - e.rest.len(), e.kind))
        }
    }
}

fn parse_words<'a>(
    line: &'a [u8],
    words: &mut Vec<RawWord>,
    parts: &mut LineParts,
    lenient: bool,
) -> Result<(), nom::Err<SyntaxError<'a>>> {
    let mut i = blanks(line);
    // Block delete and tape markers carry no command.
    if let Some(b'/' | b'%') = i.first() {
        i = blanks(&i[1..]);
    }
    // N line number (only when followed by a digit: a lone `N` would be a flag word).
    if let [b'N' | b'n', d, ..] = i {
        if d.is_ascii_digit() {
            let (rest, n) = unsigned(&i[1..])?;
            parts.line_number = Some(n);
            i = blanks(rest);
        }
    }
    // Extended command: a name of two or more letters (`SET_FAN_SPEED`, `echo`), not a word.
    if let [a, b, ..] = i {
        if a.is_ascii_alphabetic() && (b.is_ascii_alphabetic() || *b == b'_') {
            return extended(line, i, parts);
        }
    }
    loop {
        i = blanks(i);
        let Some(&c) = i.first() else {
            return Ok(());
        };
        match c {
            b';' => {
                parts.comment = Some(Span::of(line, &i[1..], &[]));
                return Ok(());
            }
            b'(' => match memchr(b')', i) {
                Some(close) => i = &i[close + 1..],
                None if lenient => {
                    if parts.comment.is_none() {
                        parts.comment = Some(Span::of(line, &i[1..], &[]));
                    }
                    return Ok(());
                }
                None => {
                    return Err(nom::Err::Error(SyntaxError::new(
                        &i[i.len()..],
                        Expected::ClosingParen,
                    )))
                }
            },
            b'*' => {
                i = checksum_suffix(line, i, parts)?;
            }
            _ if c.is_ascii_alphabetic() => {
                let letter = c.to_ascii_uppercase();
                let after_letter = &i[1..];
                if words.is_empty()
                    && matches!(letter, b'G' | b'M' | b'T')
                    && after_letter.first().is_some_and(u8::is_ascii_digit)
                {
                    let (rest, (major, minor)) = code_number(after_letter)?;
                    let code = Code {
                        letter,
                        major,
                        minor,
                    };
                    let value = match minor {
                        None => f64::from(major),
                        // The value as written (`862.3`), for callers that read words only.
                        Some(_) => decimal(after_letter).map_or(f64::from(major), |(_, v)| v),
                    };
                    // The code's digits as written, so a writer can reproduce `T55.04` exactly
                    // (its subcode is 4, as in Marlin, but its value is 55.04).
                    parts.command_digits = Some(Span::of(line, after_letter, rest));
                    words.push(RawWord::number(letter, value));
                    parts.command = Some(code);
                    i = rest;
                    if takes_text(code) {
                        i = text_argument(line, i, parts);
                    }
                    continue;
                }
                let v = blanks(after_letter);
                let (rest, value, kind, span) = match v.first() {
                    Some(b'-' | b'+' | b'.' | b'0'..=b'9') => {
                        let (rest, value) = decimal(v)?;
                        match rest.first() {
                            // `3.12.2`: a dotted version, kept as text.
                            Some(b'.' | b'0'..=b'9') => {
                                let (rest, _) = take_while(|b: u8| b == b'.' || b.is_ascii_digit())
                                    .parse(rest)?;
                                (rest, 0.0, ValueKind::Text, Span::of(line, v, rest))
                            }
                            _ => (rest, value, ValueKind::Number, Span::default()),
                        }
                    }
                    Some(b'"') => {
                        let (rest, inner) = quoted(v)?;
                        let span = Span::of(line, &v[1..], &v[1 + inner.len()..]);
                        (rest, 0.0, ValueKind::Quoted, span)
                    }
                    Some(b'{') => {
                        let (rest, inner) = braced(v)?;
                        let span = Span::of(line, &v[1..], &v[1 + inner.len()..]);
                        (rest, 0.0, ValueKind::Expression, span)
                    }
                    _ => (after_letter, 0.0, ValueKind::Flag, Span::default()),
                };
                words.push(match kind {
                    ValueKind::Number => RawWord::number(letter, value),
                    ValueKind::Flag => RawWord::flag(letter),
                    _ => RawWord::text(letter, kind, span),
                });
                i = rest;
            }
            _ => {
                return Err(nom::Err::Error(SyntaxError::new(i, Expected::WordLetter)));
            }
        }
    }
}

/// `*123` followed by blanks and an optional comment; verifies against the bytes before `*`.
fn checksum_suffix<'a>(
    line: &'a [u8],
    i: &'a [u8],
    parts: &mut LineParts,
) -> Result<&'a [u8], nom::Err<SyntaxError<'a>>> {
    let star = line.len() - i.len();
    let (rest, stated) = unsigned(&i[1..])?;
    let Ok(stated) = u8::try_from(stated) else {
        return Err(nom::Err::Error(SyntaxError::new(
            &i[1..],
            Expected::SmallInteger,
        )));
    };
    let rest = blanks(rest);
    if !matches!(rest.first(), None | Some(b';' | b'(')) {
        return Err(nom::Err::Error(SyntaxError::new(rest, Expected::EndOfLine)));
    }
    let computed = crate::checksum(&line[..star]);
    if computed != stated {
        return Err(nom::Err::Error(SyntaxError {
            rest: i,
            kind: ParseErrorKind::ChecksumMismatch { stated, computed },
        }));
    }
    parts.checksum = Some(stated);
    Ok(rest)
}

/// The free-text argument of `M117`-like commands: up to `;` or a trailing `*digits`.
fn text_argument<'a>(line: &'a [u8], i: &'a [u8], parts: &mut LineParts) -> &'a [u8] {
    let start = blanks(i);
    let region_end = memchr(b';', start).unwrap_or(start.len());
    let mut text_end = region_end;
    if let Some(star) = memrchr(b'*', &start[..region_end]) {
        let tail = trim_end(&start[star + 1..region_end]);
        if !tail.is_empty() && tail.iter().all(u8::is_ascii_digit) {
            text_end = star;
        }
    }
    let text = trim_end(&start[..text_end]);
    if !text.is_empty() {
        parts.text = Some(Span::of(line, start, &start[text.len()..]));
    }
    &start[text_end..]
}

/// A named command: the name, then parameters up to a comment or checksum.
fn extended<'a>(
    line: &'a [u8],
    i: &'a [u8],
    parts: &mut LineParts,
) -> Result<(), nom::Err<SyntaxError<'a>>> {
    let (rest, _name) =
        take_while(|b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.').parse(i)?;
    let params = blanks(rest);
    let mut end = memchr2(b';', b'*', params).unwrap_or(params.len());
    // A `*` is a checksum only when digits follow; Klipper expressions may contain `*` too.
    while params.get(end) == Some(&b'*') && !params.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = memchr2(b';', b'*', &params[end + 1..]).map_or(params.len(), |p| end + 1 + p);
    }
    let body = trim_end(&params[..end]);
    parts.extended = Some((
        Span::of(line, i, rest),
        Span::of(line, params, &params[body.len()..]),
    ));
    match params.get(end) {
        Some(b';') => parts.comment = Some(Span::of(line, &params[end + 1..], &[])),
        Some(b'*') => {
            let rest = checksum_suffix(line, &params[end..], parts)?;
            if let Some(b';') = rest.first() {
                parts.comment = Some(Span::of(line, &rest[1..], &[]));
            }
        }
        _ => {}
    }
    Ok(())
}

//! The fast path for ordinary lines: letters with plain numbers or no value, blanks and a `;`
//! comment, scanned in one pass that also finds the end of the line (no separate newline search).
//!
//! Anything else (line numbers, checksums, quotes, braces, parentheses, text arguments, extended
//! commands, errors) makes it give up, and the line goes to the general grammar in `line.rs`,
//! which accepts everything this accepts with the same result; a test checks that on random input.

use super::line::{Code, LineParts, RawWord, Span, ValueKind};
use crate::number::short_decimal;

/// A line the fast path parsed.
#[derive(Debug)]
pub(crate) struct FastLine {
    /// Length of the line without its terminator.
    pub(crate) len: usize,
    /// Bytes consumed including the terminator.
    pub(crate) consumed: usize,
    pub(crate) parts: LineParts,
}

#[inline(always)]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline(always)]
fn starts_value(b: u8) -> bool {
    matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'"' | b'{')
}

/// Parses the line at the start of `rest` (which may run on past it), or returns `None` to hand it
/// to the general grammar. Words replace the contents of `words`.
///
/// Written for the optimiser: the line's parts are kept in locals and assembled at the end.
#[inline]
pub(crate) fn scan(rest: &[u8], words: &mut Vec<RawWord>, max_len: usize) -> Option<FastLine> {
    const EMPTY: RawWord = RawWord {
        value: 0.0,
        start: 0,
        end: 0,
        letter: 0,
        kind: ValueKind::Flag,
    };
    words.clear();
    let mut command = None;
    let mut comment = None;
    let mut i = 0;
    let (len, consumed) = loop {
        let Some(&c) = rest.get(i) else {
            break (i, i);
        };
        match c {
            b' ' | b'\t' => i += 1,
            b'\n' => break (i, i + 1),
            b'\r' if rest.get(i + 1) == Some(&b'\n') => break (i, i + 2),
            b';' => {
                let end = memchr::memchr(b'\n', &rest[i..]).map_or(rest.len(), |n| i + n);
                let consumed = if end < rest.len() { end + 1 } else { end };
                let len = if end > i && rest[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                comment = Some(Span {
                    start: (i + 1) as u32,
                    end: len as u32,
                });
                break (len, consumed);
            }
            _ if c.is_ascii_alphabetic() => {
                let count = words.len();
                let letter = c & !0x20;
                let next = rest.get(i + 1).copied().unwrap_or(b'\n');
                i += 1;
                let word = if next.is_ascii_digit() || matches!(next, b'-' | b'+' | b'.') {
                    if count == 0 && letter == b'N' {
                        return None;
                    }
                    let (end, value) = short_decimal(rest, i)?;
                    // A dotted version (`3.12.2`) is text for the general grammar.
                    if matches!(rest.get(end), Some(b'.' | b'0'..=b'9')) {
                        return None;
                    }
                    if count == 0 && matches!(letter, b'G' | b'M' | b'T') {
                        command = Some(code(&rest[i..end], letter)?);
                    }
                    i = end;
                    RawWord {
                        value,
                        letter,
                        kind: ValueKind::Number,
                        ..EMPTY
                    }
                } else {
                    if count == 0 && (next.is_ascii_alphabetic() || next == b'_') {
                        return None; // an extended command
                    }
                    if is_blank(next) {
                        // `X 10` is a spaced value; `X Y` is a flag.
                        let mut j = i;
                        while rest.get(j).is_some_and(|&b| is_blank(b)) {
                            j += 1;
                        }
                        if rest.get(j).is_some_and(|&b| starts_value(b)) {
                            return None;
                        }
                    } else if !(next.is_ascii_alphabetic() || matches!(next, b';' | b'\n' | b'\r'))
                    {
                        return None;
                    }
                    RawWord { letter, ..EMPTY }
                };
                words.push(word);
            }
            _ => return None,
        }
        if i > max_len {
            return None;
        }
    };
    if len > max_len {
        return None;
    }
    Some(FastLine {
        len,
        consumed,
        parts: LineParts {
            command,
            comment,
            ..LineParts::default()
        },
    })
}

/// The command code of a first word written as plain digits; `None` (general path) for subcodes,
/// signs and codes that take a text argument.
#[inline(always)]
fn code(digits: &[u8], letter: u8) -> Option<Code> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let major = digits
        .iter()
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    let code = Code {
        letter,
        major,
        minor: None,
    };
    (!super::line::takes_text(code)).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::line::parse_line;
    use proptest::prelude::*;

    fn same(a: &RawWord, b: &RawWord) -> bool {
        a.letter == b.letter
            && a.kind == b.kind
            && a.value.to_bits() == b.value.to_bits()
            && (a.kind == ValueKind::Number || (a.start, a.end) == (b.start, b.end))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        /// Whatever the fast path accepts, the general grammar accepts with the same result.
        #[test]
        fn fast_path_agrees_with_grammar(line in "[GgMmTtXYZEFNSPxyz0-9 .;+\\-\t\"{}()*_a]{0,40}") {
            let bytes = line.as_bytes();
            let mut fast_words = Vec::new();
            if let Some(fast) = scan(bytes, &mut fast_words, usize::MAX) {
                prop_assert_eq!(fast.consumed, bytes.len());
                let mut words = Vec::new();
                let parts = parse_line(&bytes[..fast.len], &mut words, false);
                let parts = parts.map_err(|e| format!("{e:?}"));
                prop_assert!(parts.is_ok(), "grammar rejects {:?}: {:?}", line, parts);
                let parts = parts.unwrap();
                prop_assert_eq!(parts.command, fast.parts.command);
                prop_assert_eq!(parts.comment, fast.parts.comment);
                prop_assert_eq!(parts.line_number, None);
                prop_assert!(parts.text.is_none() && parts.extended.is_none() && parts.checksum.is_none());
                prop_assert_eq!(words.len(), fast_words.len());
                for (a, b) in words.iter().zip(&fast_words) {
                    prop_assert!(same(a, b), "{:?} vs {:?} in {:?}", a, b, line);
                }
            }
        }
    }

    #[test]
    fn ordinary_lines_take_the_fast_path() {
        let mut words = Vec::new();
        for line in [
            &b"G1 X91.369 Y107.387 E0.02112\n"[..],
            b"G0 F3600 X10 Y-5\r\n",
            b";LAYER:1\n",
            b"M84 X Y E\n",
            b"G1 E-.8 F2100\n",
        ] {
            let fast = scan(line, &mut words, 1 << 20).expect("fast path");
            assert_eq!(fast.consumed, line.len());
        }
        for line in [
            &b"N1 G1 X1*33\n"[..],
            b"M117 hi\n",
            b"G1 X\"a\"\n",
            b"SET_FAN\n",
            b"G1 X 10\n",
        ] {
            assert!(scan(line, &mut words, 1 << 20).is_none(), "{line:?}");
        }
    }
}

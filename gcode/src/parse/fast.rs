//! The fast path for ordinary lines: letters with plain numbers or no value, blanks and a `;`
//! comment, scanned in one pass that also finds the end of the line (no separate newline search).
//!
//! Anything else (line numbers, checksums, quotes, braces, parentheses, text arguments, extended
//! commands, errors) makes it give up, and the line goes to the general grammar in `line.rs`,
//! which accepts everything this accepts with the same result; a test checks that on random input.

use super::line::{Code, LineParts, RawWord, Span};
use crate::number::{window_code, window_decimal, window_unsigned};

/// Most words a fast line holds (more, e.g. a long run of flags, go to the general grammar).
/// A power of two: words are stored at `count % FAST_WORDS`, and a line that stored more is
/// rejected once at its end rather than checked word by word.
pub(crate) const FAST_WORDS: usize = 32;

/// The fast path's word storage: fixed, so storing a word needs no capacity check.
pub(crate) type FastWords = [RawWord; FAST_WORDS];

/// A word with no value yet: the fill of a fresh [`FastWords`].
pub(crate) const EMPTY: RawWord = RawWord::flag(0);

/// A line the fast path parsed.
#[derive(Debug)]
pub(crate) struct FastLine {
    /// Length of the line without its terminator.
    pub(crate) len: usize,
    /// Bytes consumed including the terminator.
    pub(crate) consumed: usize,
    /// Words stored at the start of the [`FastWords`].
    pub(crate) count: usize,
    pub(crate) parts: LineParts,
}

/// Bytes the scanner looks at in one go: a line is scanned inside this window (a borrowed slice of
/// the input, or for the input's last bytes a copy padded with `\n`), so every index is checked
/// against a constant rather than the input's length.
const WINDOW: usize = 128;
/// A word starting before this column stays inside the window (letter, sign, 8 + dot + 8 bytes).
const WORD_LIMIT: usize = WINDOW - 24;

#[inline(always)]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline(always)]
fn starts_value(b: u8) -> bool {
    matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'"' | b'{')
}

#[inline(always)]
fn starts_number(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.')
}

/// The command number (0 or 1) of a line that starts `G0 ` or `G1 `, the start of almost every
/// line of a print, found by one comparison.
#[inline(always)]
fn plain_move_head(window: &[u8; WINDOW]) -> Option<u32> {
    let head = u32::from_le_bytes(*window.first_chunk::<4>().expect("4 bytes"));
    (head & 0x00FF_FEFF == u32::from_le_bytes([b'G', b'0', b' ', 0]))
        .then(|| u32::from(window[1] - b'0'))
}

/// A word with a number (`X-5.2`) whose letter is at `i`, and where the next word may start;
/// `None` for numbers the fast path does not convert.
#[inline(always)]
fn number_word(window: &[u8; WINDOW], i: usize, letter: u8) -> Option<(RawWord, usize, u8)> {
    // Most numbers start with a digit: they skip the sign handling.
    let number = if window[i + 1].is_ascii_digit() {
        window_unsigned::<WINDOW, true>(window, i + 1)?
    } else {
        window_decimal(window, i + 1)?
    };
    // Words are usually one blank apart: step over it here.
    let next = number.end + usize::from(number.terminator == b' ');
    Some((
        RawWord::number(letter, number.value),
        next,
        number.terminator,
    ))
}

/// A word without a value (`X` in `M84 X Y`) whose letter is at `i`, and where the next word may
/// start; `None` when the letter is followed by anything the fast path does not handle (`X 10`,
/// `X"a"`, `X{e}`, `X*`).
#[inline(always)]
fn flag(window: &[u8; WINDOW], rest: &[u8], i: usize, letter: u8) -> Option<(RawWord, usize)> {
    let next = window[i + 1];
    if is_blank(next) {
        // `X 10` is a spaced value; `X Y` is a flag.
        let mut j = i + 1;
        while rest.get(j).is_some_and(|&b| is_blank(b)) {
            j += 1;
        }
        if rest.get(j).is_some_and(|&b| starts_value(b)) {
            return None;
        }
    } else if !(next.is_ascii_alphabetic() || matches!(next, b';' | b'\n' | b'\r')) {
        return None;
    }
    Some((RawWord::flag(letter), i + 1))
}

/// Index of the first `\n` in `window` at or after `from`, if any.
#[inline(always)]
fn newline_in_window(window: &[u8; WINDOW], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut k = from;
    while k + 8 <= WINDOW {
        let chunk = u64::from_le_bytes(window[k..k + 8].try_into().expect("8 bytes"));
        let x = chunk ^ NEWLINES;
        // The lowest flagged byte is the first zero byte of `x` (higher flags may be false).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(k + (found.trailing_zeros() / 8) as usize);
        }
        k += 8;
    }
    window[k..].iter().position(|&b| b == b'\n').map(|n| k + n)
}

/// Parses the line at the start of `rest` (which may run on past it), or returns `None` to hand it
/// to the general grammar (also for lines whose words run past the window). Words go to the start
/// of `words`.
///
/// Written for the optimiser: the first word (the only one that can be a command, a line number
/// or an extended command) is handled before the loop, so the loop over the arguments checks
/// nothing about position; the line's parts are kept in locals and assembled at the end.
#[inline(always)]
pub(crate) fn scan(rest: &[u8], words: &mut FastWords, max_len: usize) -> Option<FastLine> {
    match rest.first_chunk::<WINDOW>() {
        Some(window) => scan_window(window, usize::MAX, rest, words, max_len),
        None => {
            let mut padded = [b'\n'; WINDOW];
            padded[..rest.len()].copy_from_slice(rest);
            scan_window(&padded, rest.len(), rest, words, max_len)
        }
    }
}

/// [`scan`] over `window`, the first bytes of `rest`, of which `avail` are input (the rest is
/// `\n` padding; `usize::MAX` when the window is borrowed from the input).
#[inline(always)]
fn scan_window(
    window: &[u8; WINDOW],
    avail: usize,
    rest: &[u8],
    words: &mut FastWords,
    max_len: usize,
) -> Option<FastLine> {
    let mut i = 0;
    let mut command = None;
    let mut count = 0;
    if let Some(major) = plain_move_head(window) {
        command = Some(Code {
            letter: b'G',
            major,
            minor: None,
        });
        words[0] = RawWord::number(b'G', f64::from(major));
        i = 3;
        count = 1;
    } else {
        while is_blank(window[i]) {
            i += 1;
            if i >= WORD_LIMIT {
                return None;
            }
        }
        let c = window[i];
        if c.is_ascii_alphabetic() {
            let letter = c & !0x20;
            let next = window[i + 1];
            let is_code = matches!(letter, b'G' | b'M' | b'T');
            let (word, next_word) = if is_code && next.is_ascii_digit() {
                // One digit (`G1`, `G0`, `T0`) is the usual case: no need to scan for more.
                let after = window[i + 2];
                let (major, end) = if after.is_ascii_digit() || after == b'.' {
                    window_code(window, i + 1)?
                } else {
                    (u32::from(next - b'0'), i + 2)
                };
                let code = Code {
                    letter,
                    major,
                    minor: None,
                };
                if super::line::takes_text(code) {
                    return None;
                }
                command = Some(code);
                let word = RawWord::number(letter, f64::from(major));
                (word, end + usize::from(window[end] == b' '))
            } else if starts_number(next) {
                // A line number, or a command with a sign or dot (`G-1`, `M.5`), is for the grammar.
                if letter == b'N' || is_code {
                    return None;
                }
                let (word, next_word, _) = number_word(window, i, letter)?;
                (word, next_word)
            } else {
                if next.is_ascii_alphabetic() || next == b'_' {
                    return None; // an extended command
                }
                flag(window, rest, i, letter)?
            };
            words[0] = word;
            i = next_word;
            count = 1;
        }
    }
    let mut comment = None;
    let (len, consumed) = loop {
        if i >= WORD_LIMIT {
            return None;
        }
        let c = window[i];
        // Letters first: after a number, the next word is the usual case.
        let letter = c & !0x20;
        if letter.wrapping_sub(b'A') < 26 {
            // An unsigned number is tried first: its scan also tells a value that starts with a
            // digit from one that does not, without a separate look at that byte.
            // Anything else is a flag; `flag` leaves a value it does not take to the grammar.
            let number = match window_unsigned::<WINDOW, false>(window, i + 1) {
                Some(number) => Some(number),
                None if matches!(window[i + 1], b'-' | b'+') => {
                    Some(window_decimal(window, i + 1)?)
                }
                None => None,
            };
            if let Some(number) = number {
                // Masked: in bounds without a check; too many words are rejected at the line's end.
                words[count % FAST_WORDS] = RawWord::number(letter, number.value);
                count += 1;
                // The number's scan saw the byte after it. Branches rather than arithmetic on it:
                // predicted, they keep that byte off the chain each word's position waits on.
                let end = number.end;
                if number.terminator == b' ' {
                    i = end + 1;
                } else if number.terminator == b'\n' {
                    break (end, (end + 1).min(avail));
                } else {
                    i = end;
                }
                continue;
            }
            let (word, next_word) = flag(window, rest, i, letter)?;
            words[count % FAST_WORDS] = word;
            i = next_word;
            count += 1;
            continue;
        }
        match c {
            b' ' | b'\t' => i += 1,
            // Past `avail` the newline is padding: the input ends without a terminator.
            b'\n' => break (i, (i + 1).min(avail)),
            b'\r' if window[i + 1] == b'\n' && i + 1 < avail => break (i, i + 2),
            b';' => {
                // Most comments (`;WIDTH:0.45`, `;TYPE:Perimeter`) end inside the window: look
                // for the newline there, 8 bytes at a time, before calling memchr (whose setup
                // costs more than such a line). In a padded window the padding stops the search
                // at the input's end.
                let end = match newline_in_window(window, i + 1) {
                    Some(n) => n.min(rest.len()),
                    None => {
                        memchr::memchr(b'\n', &rest[WINDOW..]).map_or(rest.len(), |n| WINDOW + n)
                    }
                };
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
            _ => return None,
        }
    };
    if len > max_len || count > FAST_WORDS {
        return None;
    }
    Some(FastLine {
        len,
        consumed,
        count,
        parts: LineParts {
            command,
            comment,
            ..LineParts::default()
        },
    })
}

/// A `G0`/`G1` line of number words with the letters `X`, `Y`, `Z`, `E` and `F` only, one blank
/// or none apart (`G1 X91.369 Y107.387 E0.02112`): the shape of almost every line of a print.
/// Each word goes to `word` (letter, value) as it is read, so a caller that only needs the values
/// keeps them in registers: no word is stored, no [`Line`](super::Line) is built. Returns the
/// bytes consumed with the line's terminator, or `None` for anything else (a
/// comment, another letter, a flag, two blanks, a line within [`WINDOW`] bytes of the input's
/// end...), and then the caller takes the line through [`scan`] or the grammar, which give these
/// lines the same words (the values come from the same number reader), so `word` may have been
/// called for words of a line that is then rejected.
#[inline(always)]
pub(crate) fn scan_move(
    rest: &[u8],
    max_len: usize,
    mut word: impl FnMut(u8, f64),
) -> Option<usize> {
    let window = rest.first_chunk::<WINDOW>()?;
    plain_move_head(window)?;
    let mut i = 3;
    let (len, consumed) = loop {
        if i >= WORD_LIMIT {
            return None;
        }
        let letter = window[i];
        if !matches!(letter, b'X' | b'Y' | b'Z' | b'E' | b'F') || !starts_number(window[i + 1]) {
            return None;
        }
        let (number, next_word, terminator) = number_word(window, i, letter)?;
        word(letter, number.value());
        i = next_word;
        match terminator {
            // `next_word` is past the blank, or at the next word's letter.
            b' ' => {}
            b'\n' => break (i, i + 1),
            b'\r' if window[i + 1] == b'\n' => break (i, i + 2),
            t if t.is_ascii_uppercase() => {}
            _ => return None,
        }
    };
    (len <= max_len).then_some(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::line::parse_line;
    use proptest::prelude::*;

    fn same(a: &RawWord, b: &RawWord) -> bool {
        a.same(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        /// Whatever the fast path accepts, the general grammar accepts with the same result.
        #[test]
        fn fast_path_agrees_with_grammar(
            head in "(G0 |G1 |)",
            tail in "[GgMmTtXYZEFNSPxyz0-9 .;+\\-\t\"{}()*_a]{0,40}",
        ) {
            let line = format!("{head}{tail}");
            let bytes = line.as_bytes();
            let mut fast_words = [EMPTY; FAST_WORDS];
            if let Some(fast) = scan(bytes, &mut fast_words, usize::MAX) {
                let fast_words = &fast_words[..fast.count];
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
                for (a, b) in words.iter().zip(fast_words) {
                    prop_assert!(same(a, b), "{:?} vs {:?} in {:?}", a, b, line);
                }
            }
            // Followed by more input, the line is scanned in place instead of from a padded copy.
            let mut longer = bytes.to_vec();
            longer.push(b'\n');
            longer.extend([b'G'; WINDOW]);
            let mut in_place = [EMPTY; FAST_WORDS];
            let in_place_line = scan(&longer, &mut in_place, usize::MAX);
            let padded = scan(bytes, &mut fast_words, usize::MAX);
            prop_assert_eq!(in_place_line.is_some(), padded.is_some());
            if let (Some(a), Some(b)) = (in_place_line, padded) {
                prop_assert_eq!(a.consumed, bytes.len() + 1);
                prop_assert_eq!((a.len, a.parts.command, a.parts.comment), (b.len, b.parts.command, b.parts.comment));
                prop_assert_eq!(a.count, b.count);
                for (a, b) in in_place[..a.count].iter().zip(&fast_words[..b.count]) {
                    prop_assert!(same(a, b), "{:?} vs {:?} in {:?}", a, b, line);
                }
            }
        }
    }

    /// A slicer-like line: a command, then words with plain numbers of any length (or flags),
    /// blanks and an optional comment.
    fn slicer_line() -> impl Strategy<Value = String> {
        let word = (
            "[XYZEFSPIJxyze]",
            "[-+]?[0-9]{0,9}(\\.[0-9]{0,9})?",
            "[ \t]{0,2}",
        )
            .prop_map(|(l, n, blank)| format!("{l}{n}{blank}"));
        (
            "[ \t]{0,2}",
            // `G0 `/`G1 ` often: the fast path takes them in one comparison.
            prop_oneof![
                1 => proptest::string::string_regex("(G0 |G1 |G0|G1|G2 |G10 |g1 )").unwrap(),
                2 => proptest::string::string_regex("[GMTgmt][0-9]{1,4}[ ]?").unwrap(),
            ],
            proptest::collection::vec(word, 0..8),
            "(;[ -~]{0,20})?",
        )
            .prop_map(|(lead, code, words, comment)| {
                format!("{lead}{code}{}{comment}", words.concat())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// On slicer-shaped lines the fast path agrees with the grammar word for word, bit for bit.
        #[test]
        fn fast_path_agrees_with_grammar_on_slicer_lines(line in slicer_line(), terminator in "(\n|\r\n|)") {
            let bytes = format!("{line}{terminator}").into_bytes();
            let mut fast_words = [EMPTY; FAST_WORDS];
            if let Some(fast) = scan(&bytes, &mut fast_words, usize::MAX) {
                prop_assert_eq!(fast.consumed, bytes.len());
                let mut words = Vec::new();
                let parts = parse_line(&bytes[..fast.len], &mut words, false);
                prop_assert!(parts.is_ok(), "grammar rejects {:?}", line);
                let parts = parts.unwrap();
                prop_assert_eq!(parts.command, fast.parts.command);
                prop_assert_eq!(parts.comment, fast.parts.comment);
                prop_assert_eq!(words.len(), fast.count);
                for (a, b) in words.iter().zip(&fast_words[..fast.count]) {
                    prop_assert!(same(a, b), "{:?} vs {:?} in {:?}", a, b, line);
                }
            }
        }
    }

    /// A `G0`/`G1` line like a slicer's, sometimes with what the move path does not take.
    fn move_line() -> impl Strategy<Value = String> {
        let word = (
            "[XYZEFxS]",
            "[-+]?[0-9]{0,9}(\\.[0-9]{0,9})?",
            prop_oneof![8 => Just(" "), 1 => Just(""), 1 => Just("  "), 1 => Just("\t")],
        )
            .prop_map(|(l, n, blank)| format!("{l}{n}{blank}"));
        (
            "(G1 |G0 |G1|G01 | G1 |g1 )",
            proptest::collection::vec(word, 0..6),
            "(;[ -~]{0,10})?",
            "(\n|\r\n|\r|)",
        )
            .prop_map(|(code, words, comment, end)| {
                let line = format!("{code}{}", words.concat());
                format!("{}{comment}{end}", line.trim_end_matches(' '))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        /// What the move path takes, the fast path takes with the same words, bit for bit, in
        /// place or from a padded window, and consumes as much.
        #[test]
        fn move_path_agrees_with_the_fast_path(line in move_line(), next in "(G1 X1\n|;c\n|)") {
            let mut bytes = format!("{line}{next}").into_bytes();
            // The move path reads whole windows only: the input goes on (as it does but for the
            // last bytes of a file).
            bytes.extend([b'\n'; WINDOW]);
            let mut moved = Vec::new();
            let consumed = scan_move(&bytes, usize::MAX, |letter, value| moved.push((letter, value.to_bits())));
            let mut words = [EMPTY; FAST_WORDS];
            let fast = scan(&bytes, &mut words, usize::MAX);
            if let Some(consumed) = consumed {
                let fast = fast.expect("the fast path takes what the move path takes");
                prop_assert_eq!(consumed, fast.consumed);
                prop_assert_eq!(fast.parts.comment, None);
                let g0_or_g1 = matches!(
                    fast.parts.command,
                    Some(Code { letter: b'G', major: 0 | 1, minor: None })
                );
                prop_assert!(g0_or_g1, "{:?}", fast.parts.command);
                let fast_words: Vec<_> = words[1..fast.count]
                    .iter()
                    .map(|w| {
                        assert_eq!(w.kind, super::super::line::ValueKind::Number);
                        (w.letter, w.value().to_bits())
                    })
                    .collect();
                prop_assert_eq!(moved, fast_words);
            }
        }
    }

    #[test]
    fn plain_moves_take_the_move_path() {
        let tail = [b'\n'; WINDOW];
        for (line, words) in [
            (&b"G1 X91.369 Y107.387 E.02112\n"[..], 3),
            (b"G0 F3600 X10 Y-5\r\n", 3),
            (b"G1 X1Y2\n", 2),
            (b"G1 Z.2 F7800\n", 2),
        ] {
            let bytes = [line, &tail[..]].concat();
            let mut count = 0;
            assert_eq!(
                scan_move(&bytes, usize::MAX, |_, _| count += 1),
                Some(line.len()),
                "{line:?}"
            );
            assert_eq!(count, words);
        }
        for line in [
            &b"G1 X1 ; comment\n"[..],
            b"G1 X1 S2\n",
            b"G1 X\n",
            b"G1\n",
            b"G2 X1 Y1 I1\n",
            b"g1 x1\n",
            b"G1  X1\n",
            b"N1 G1 X1*33\n",
        ] {
            let bytes = [line, &tail[..]].concat();
            assert_eq!(scan_move(&bytes, usize::MAX, |_, _| {}), None, "{line:?}");
        }
        // A line at the input's end (no whole window after it) is left to the fast path.
        assert_eq!(scan_move(b"G1 X1\n", usize::MAX, |_, _| {}), None);
        // So is a line longer than the limit.
        assert_eq!(
            scan_move(&[&b"G1 X1 Y2\n"[..], &tail[..]].concat(), 4, |_, _| {}),
            None
        );
    }

    #[test]
    fn ordinary_lines_take_the_fast_path() {
        let mut words = [EMPTY; FAST_WORDS];
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

//! Decimal number scanning for G-code words, in the nom parser signature.
//!
//! G-code numbers are plain decimals (`10`, `-.5`, `+1`, `1.`, `007`) with no exponent: `E` is an axis
//! letter, so `X1E5` is two words. Most have at most 15 significant digits, for which
//! `mantissa / 10^k` in `f64` is exact and correctly rounded (both operands are exact and IEEE
//! division rounds once); anything longer takes the standard library's correctly rounded parser.

use nom::IResult;

use crate::parse::error::{Expected, SyntaxError};

/// Powers of ten exactly representable in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
/// Largest mantissa converted exactly to `f64`.
const MAX_EXACT_MANTISSA: u64 = 1 << 53;

/// A decimal number as scanned: sign, digits (wrapping into `mantissa` past 19 of them), and how
/// many of the digits follow the dot.
#[derive(Debug, Clone, Copy)]
struct Scanned {
    negative: bool,
    sign_len: usize,
    end: usize,
    mantissa: u64,
    digits: usize,
    fraction: usize,
}

/// Accumulates the run of ASCII digits starting at `s[i]`.
#[inline(always)]
fn digit_run(s: &[u8], mut i: usize, mut mantissa: u64) -> (usize, u64) {
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    (i, mantissa)
}

#[inline(always)]
fn scan(s: &[u8], start: usize) -> Scanned {
    let (negative, sign_len) = match s.get(start) {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let int_start = start + sign_len;
    let (mut end, mut mantissa) = digit_run(s, int_start, 0);
    let mut digits = end - int_start;
    let mut fraction = 0;
    if s.get(end) == Some(&b'.') {
        let (frac_end, m) = digit_run(s, end + 1, mantissa);
        fraction = frac_end - (end + 1);
        digits += fraction;
        (end, mantissa) = (frac_end, m);
    }
    Scanned {
        negative,
        sign_len,
        end,
        mantissa,
        digits,
        fraction,
    }
}

/// Scans a signed decimal number at the start of `input`.
///
/// Fails with [`Expected::Number`] when there is no digit, and with [`Expected::FiniteNumber`] when
/// the digits overflow `f64`.
#[inline]
pub(crate) fn decimal(input: &[u8]) -> IResult<&[u8], f64, SyntaxError<'_>> {
    let n = scan(input, 0);
    if n.digits == 0 {
        return Err(nom::Err::Error(SyntaxError::new(
            &input[n.sign_len..],
            Expected::Number,
        )));
    }
    // 19 digits always fit in u64; beyond that the wrapped mantissa is garbage, so go the slow way.
    let exact = n.digits <= 19 && n.mantissa <= MAX_EXACT_MANTISSA && n.fraction < POW10.len();
    let value = if exact {
        let v = n.mantissa as f64 / POW10[n.fraction];
        if n.negative {
            -v
        } else {
            v
        }
    } else {
        slow_decimal(&input[..n.end])
            .ok_or_else(|| nom::Err::Error(SyntaxError::new(input, Expected::FiniteNumber)))?
    };
    Ok((&input[n.end..], value))
}

/// A number scanned by [`window_decimal`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowNumber {
    /// Index just past the number.
    pub(crate) end: usize,
    /// The byte at `end`.
    pub(crate) terminator: u8,
    pub(crate) value: f64,
}

/// Exact powers of ten as integers, for joining integer and fraction digits.
const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// How many of the 8 little-endian bytes in `chunk` are ASCII digits before the first other byte
/// (8 when all are). Borrows and carries only run upwards, so the lowest flagged byte is exact.
#[inline(always)]
fn leading_digits(chunk: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let below = chunk.wrapping_sub(ONES * b'0' as u64);
    let above = chunk.wrapping_add(ONES * 0x46);
    ((below | above) & (ONES * 0x80)).trailing_zeros() as usize / 8
}

/// Flags (high bit) every byte of `chunk` that is not an ASCII digit. Unlike [`leading_digits`]
/// exact for every byte, not only the lowest flagged one: the range checks run on the low 7 bits,
/// where neither adding nor the high bit can carry into the next byte.
#[inline(always)]
fn non_digit_flags(chunk: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    let low7 = chunk & !HIGHS;
    let at_least_0 = low7 + ONES * (0x80 - b'0' as u64);
    let above_9 = low7 + ONES * (0x80 - b'9' as u64 - 1);
    (above_9 | chunk | !at_least_0) & HIGHS
}

/// Where the bytes of an 8-byte chunk that are not ASCII digits are: one bit per byte, every
/// `STRIDE` bits. A position found is at most 8 (past the chunk: set bits in the SSE2 mask, the
/// division by `STRIDE` for the flags).
#[derive(Clone, Copy)]
struct NonDigits<const STRIDE: u32>(u64);

/// What [`non_digits`] gives on this architecture.
#[cfg(target_arch = "x86_64")]
type ChunkNonDigits = NonDigits<1>;
#[cfg(not(target_arch = "x86_64"))]
type ChunkNonDigits = NonDigits<8>;

/// The non-digits of `chunk`: on x86-64 from SSE2 compares (part of every x86-64 CPU), which run
/// beside the parse's integer work instead of taking its units; elsewhere [`non_digit_flags`].
#[inline(always)]
fn non_digits(chunk: u64) -> ChunkNonDigits {
    #[cfg(target_arch = "x86_64")]
    {
        NonDigits::<1>::of_sse2(chunk)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        NonDigits::<8>::of_flags(chunk)
    }
}

impl NonDigits<1> {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    fn of_sse2(chunk: u64) -> Self {
        use core::arch::x86_64::{
            _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_cvtsi64_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always available;
        // none of them touches memory.
        let mask = unsafe {
            // The upper 8 bytes are zero, not digits: they set bits 8 to 15.
            let bytes = _mm_cvtsi64_si128(chunk as i64);
            let above_9 = _mm_cmpgt_epi8(bytes, _mm_set1_epi8(b'9' as i8));
            // Signed: bytes from 0x80 are negative, below `0` too.
            let below_0 = _mm_cmplt_epi8(bytes, _mm_set1_epi8(b'0' as i8));
            _mm_movemask_epi8(_mm_or_si128(above_9, below_0))
        };
        NonDigits(u64::from(mask as u32))
    }
}

impl NonDigits<8> {
    /// Bit 7 of each byte; none past the chunk, where positions come out as 8 by the division.
    #[inline(always)]
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn of_flags(chunk: u64) -> Self {
        NonDigits(non_digit_flags(chunk))
    }
}

impl<const STRIDE: u32> NonDigits<STRIDE> {
    /// The first non-digit (8 when there is none).
    #[inline(always)]
    fn first(self) -> usize {
        (self.0.trailing_zeros() / STRIDE) as usize
    }

    /// The second non-digit (8 or more when there is none).
    #[inline(always)]
    fn second(self) -> usize {
        ((self.0 & self.0.wrapping_sub(1)).trailing_zeros() / STRIDE) as usize
    }
}

/// The value of the first `n` (at most 7) ASCII digits of `chunk`, first byte most significant:
/// they are shifted to the top (the bytes below become leading zeros) and combined pairwise.
#[inline(always)]
fn digits_value(chunk: u64, n: usize) -> u64 {
    // Two shifts so that n == 0 shifts everything out instead of overflowing.
    let v = ((chunk << (8 * (7 - n))) << 8) & 0x0F0F_0F0F_0F0F_0F0F;
    let v = v.wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32
}

/// The fast path's number scanner over a fixed window: 8 bytes at a time for the integer and
/// fraction digits. Gives exactly [`decimal`]'s value; `None` (general grammar) when there is no
/// digit, either digit run is 8 or longer, a second dot follows, or the number runs out of the window.
#[inline(always)]
pub(crate) fn window_decimal<const N: usize>(w: &[u8; N], at: usize) -> Option<WindowNumber> {
    let (negative, start) = match w[at] {
        b'-' => (true, at + 1),
        b'+' => (false, at + 1),
        _ => (false, at),
    };
    let n = window_unsigned::<N, false>(w, start)?;
    Some(WindowNumber {
        value: if negative { -n.value } else { n.value },
        ..n
    })
}

/// [`window_decimal`] for a number without a sign at `at`. With `DIGIT_FIRST` the caller has seen
/// a digit at `at` (the usual case: `X91.369`), so the check for a number without digits goes.
///
/// Numbers that end within 8 bytes of `at` (`91.369 `, `0.02112\n`) are read from one load: the
/// dot and the end are found in that chunk, so the next word's position depends on one load
/// rather than three (the parse of a line is a chain of such positions). Longer numbers load
/// their fraction digits separately.
#[inline(always)]
pub(crate) fn window_unsigned<const N: usize, const DIGIT_FIRST: bool>(
    w: &[u8; N],
    start: usize,
) -> Option<WindowNumber> {
    let load = |p: usize| {
        w.get(p..)?
            .first_chunk::<8>()
            .copied()
            .map(u64::from_le_bytes)
    };
    let chunk = load(start)?;
    let non_digits = non_digits(chunk);
    let int_digits = non_digits.first();
    if int_digits == 8 {
        return None;
    }
    let shift = 8 * int_digits;
    let after_int = (chunk >> shift) as u8;
    let (mantissa, fraction, end, terminator) = if after_int == b'.' {
        // The second non-digit ends the number.
        let end_in_chunk = non_digits.second();
        if end_in_chunk < 8 {
            // Drop the dot: the fraction digits move down one byte onto it.
            let int_part = chunk & ((1u64 << shift) - 1);
            let fraction_part = ((chunk >> shift) >> 8) << shift;
            let digits = end_in_chunk - 1;
            if !DIGIT_FIRST && digits == 0 {
                return None; // a lone dot
            }
            let mantissa = digits_value(int_part | fraction_part, digits);
            let terminator = (chunk >> (8 * end_in_chunk)) as u8;
            (
                mantissa,
                digits - int_digits,
                start + end_in_chunk,
                terminator,
            )
        } else {
            // The fraction fills the rest of the chunk: there are digits.
            let fraction_chunk = load(start + int_digits + 1)?;
            let fraction = leading_digits(fraction_chunk);
            if fraction == 8 {
                return None;
            }
            let mantissa = digits_value(chunk, int_digits) * POW10_U64[fraction]
                + digits_value(fraction_chunk, fraction);
            let end = start + int_digits + 1 + fraction;
            (mantissa, fraction, end, w[end])
        }
    } else {
        if !DIGIT_FIRST && int_digits == 0 {
            return None; // no digit
        }
        let mantissa = digits_value(chunk, int_digits);
        (mantissa, 0, start + int_digits, after_int)
    };
    // A digit run shorter than 8 ends before a non-digit; a second dot makes a dotted version
    // (`3.12.2`), text for the general grammar.
    if terminator == b'.' {
        return None;
    }
    // At most 14 digits: the mantissa is below 2^53 and the power of ten exact.
    // Below 2^53, so the signed conversion (one instruction on x86-64) is exact.
    // `fraction` is at most 7: the mask changes nothing but lets the compiler drop the bounds check.
    let value = mantissa as i64 as f64 / POW10[fraction & 7];
    Some(WindowNumber {
        end,
        terminator,
        value,
    })
}

/// The fast path's command number (`1` in `G1`) over a fixed window: 1 to 7 digits at `at`, not
/// followed by a dot (a subcode, `M862.3`, goes to the general grammar). Returns the number and
/// the index just past it.
#[inline(always)]
pub(crate) fn window_code<const N: usize>(w: &[u8; N], at: usize) -> Option<(u32, usize)> {
    let chunk = u64::from_le_bytes(*w.get(at..)?.first_chunk::<8>()?);
    let digits = leading_digits(chunk);
    let end = at + digits;
    if digits == 0 || digits == 8 || w.get(end) == Some(&b'.') {
        return None;
    }
    // At most 7 digits: fits in u32.
    Some((digits_value(chunk, digits) as u32, end))
}

/// The standard library's correctly rounded parser, for numbers the fast path cannot do exactly.
#[cold]
fn slow_decimal(text: &[u8]) -> Option<f64> {
    // The scanned bytes are ASCII sign, digits and at most one dot: valid UTF-8 by construction.
    let text = core::str::from_utf8(text).ok()?;
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Scans an unsigned decimal integer (digits only) that fits in `u32`.
#[inline]
pub(crate) fn unsigned(input: &[u8]) -> IResult<&[u8], u32, SyntaxError<'_>> {
    let mut value: u64 = 0;
    let mut pos = 0;
    while let Some(&b) = input.get(pos) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value * 10 + u64::from(d);
        if value > u64::from(u32::MAX) {
            return Err(nom::Err::Error(SyntaxError::new(
                input,
                Expected::SmallInteger,
            )));
        }
        pos += 1;
    }
    if pos == 0 {
        return Err(nom::Err::Error(SyntaxError::new(input, Expected::Integer)));
    }
    Ok((&input[pos..], value as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> f64 {
        decimal(s.as_bytes()).unwrap().1
    }

    #[test]
    fn forms() {
        assert_eq!(num("10"), 10.0);
        assert_eq!(num("-.5"), -0.5);
        assert_eq!(num("+1"), 1.0);
        assert_eq!(num("1."), 1.0);
        assert_eq!(num("007"), 7.0);
        assert_eq!(num(".05"), 0.05);
        assert_eq!(num("-5.2"), -5.2);
        assert_eq!(num("91.369"), 91.369);
        assert_eq!(num("0.02112"), 0.02112);
        assert_eq!(decimal(b"1.5X").unwrap().0, b"X");
    }

    #[test]
    fn matches_std_on_long_numbers() {
        for s in [
            "12345678901234567890.5",
            "0.000000000000000000000000001",
            "9007199254740993",
            "-3.14159265358979323846264338327950288",
        ] {
            assert_eq!(num(s), s.parse::<f64>().unwrap(), "{s}");
        }
    }

    /// Numbers around the window scanner's limits (7-digit runs, joined and separate runs).
    const EDGE_CASES: [&str; 22] = [
        "0",
        "7",
        "-.5",
        "+1",
        "1.",
        "007",
        "91.369",
        "-0.02112",
        "1234567",
        "1234567.1234567",
        "12345678",
        "0.12345678",
        "-9999999.9999999",
        ".0",
        "-0",
        "1234567.1",
        "1.1234567",
        "123.4567",
        "0.0000001",
        "9999999.",
        ".9999999",
        "+.25",
    ];

    #[test]
    fn bounded_and_unbounded_input_agree() {
        for s in EDGE_CASES {
            let padded = format!("{s};;;;;;;;;;;;;;;;;;");
            let bounded = decimal(padded.as_bytes()).unwrap();
            let general = decimal(s.as_bytes()).unwrap();
            assert_eq!(bounded.1.to_bits(), general.1.to_bits(), "{s}");
            assert_eq!(bounded.1, s.parse::<f64>().unwrap(), "{s}");
            assert_eq!(bounded.0.len(), padded.len() - s.len(), "{s}");
        }
        assert!(decimal(b"-;;;;;;;;;;;;;;;;").is_err());
        assert!(decimal(b".;;;;;;;;;;;;;;;;").is_err());
    }

    #[test]
    fn window_scanner_agrees_with_decimal() {
        let mut window = [b';'; 32];
        for s in EDGE_CASES {
            window.fill(b';');
            window[..s.len()].copy_from_slice(s.as_bytes());
            let long_run = s
                .split('.')
                .any(|run| run.trim_start_matches(['-', '+']).len() >= 8);
            match window_decimal(&window, 0) {
                Some(n) => {
                    assert!(!long_run, "{s}");
                    assert_eq!(n.value.to_bits(), num(s).to_bits(), "{s}");
                    assert_eq!(n.end, s.len(), "{s}");
                }
                None => assert!(long_run, "{s}"),
            }
        }
        for s in ["-", ".", ";", "1.2.3"] {
            window.fill(b';');
            window[..s.len()].copy_from_slice(s.as_bytes());
            assert!(window_decimal(&window, 0).is_none(), "{s}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        /// Both scanners give exactly the standard library's value for the numbers slicers write
        /// (and longer ones), wherever the number sits in the window and whatever ends it.
        #[test]
        fn scanners_equal_std_parse(
            text in "[-+]?[0-9]{0,10}(\\.[0-9]{0,10})?",
            at in 0usize..40,
            end in proptest::sample::select(&b" \n\r;XE*\"("[..]),
        ) {
            let mut window = [end; 64];
            window[at..at + text.len()].copy_from_slice(text.as_bytes());
            let std = text.parse::<f64>().ok();
            match decimal(&window[at..]) {
                Ok((rest, v)) => {
                    proptest::prop_assert_eq!(Some(v.to_bits()), std.map(f64::to_bits), "{}", text);
                    proptest::prop_assert_eq!(rest.len(), 64 - at - text.len());
                }
                Err(_) => proptest::prop_assert!(std.is_none(), "{}", text),
            }
            if text.starts_with(|c: char| c.is_ascii_digit()) {
                // The digit-first variant the fast path uses for most words agrees.
                let digit_first = window_unsigned::<64, true>(&window, at);
                let signed = window_decimal(&window, at);
                proptest::prop_assert_eq!(
                    digit_first.map(|n| (n.value.to_bits(), n.end, n.terminator)),
                    signed.map(|n| (n.value.to_bits(), n.end, n.terminator))
                );
            }
            if let Some(n) = window_decimal(&window, at) {
                proptest::prop_assert_eq!(Some(n.value.to_bits()), std.map(f64::to_bits), "{}", text);
                proptest::prop_assert_eq!(n.end, at + text.len());
                proptest::prop_assert_eq!(n.terminator, end);
            } else {
                // Only long digit runs and no digits go to the general grammar.
                let digits = text.trim_start_matches(['-', '+']);
                let long_run = digits.split('.').any(|run| run.len() >= 8);
                proptest::prop_assert!(long_run || std.is_none(), "{}", text);
            }
        }
    }

    /// The first and second non-digit of a chunk are found exactly, by both ways of finding them.
    #[test]
    fn non_digit_positions_are_exact() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'0', b'9', b'.', 0x00, 0xFF, b'/', b':', b'\n'] {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let chunk = u64::from_le_bytes(bytes);
                    let mut naive = (0..8).filter(|&k| !bytes[k].is_ascii_digit());
                    let (first, second) = (naive.next().unwrap_or(8), naive.next().unwrap_or(8));
                    let found = non_digits(chunk);
                    assert_eq!((found.first(), found.second().min(8)), (first, second));
                    let found = NonDigits::<8>::of_flags(chunk);
                    assert_eq!((found.first(), found.second().min(8)), (first, second));
                }
            }
        }
    }

    /// Every byte is flagged exactly, whatever its neighbours (a borrow or carry from one byte into
    /// the next, e.g. from a dot into a following `0`, would misplace a dotted number's end).
    #[test]
    fn non_digit_flags_are_exact_for_every_byte() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'0', b'9', b'.', 0x00, 0xFF, b'/', b':'] {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let flags = non_digit_flags(u64::from_le_bytes(bytes));
                    for (k, &byte) in bytes.iter().enumerate() {
                        let flagged = (flags >> (8 * k + 7)) & 1 == 1;
                        assert_eq!(flagged, !byte.is_ascii_digit(), "{bytes:?} byte {k}");
                    }
                    assert_eq!(flags & !0x8080_8080_8080_8080, 0);
                }
            }
        }
    }

    #[test]
    fn rejects_no_digits_and_overflow() {
        assert!(decimal(b"-").is_err());
        assert!(decimal(b".").is_err());
        assert!(decimal(b"X").is_err());
        let huge = "9".repeat(400);
        assert!(decimal(huge.as_bytes()).is_err());
        assert!(unsigned(b"99999999999").is_err());
        assert_eq!(unsigned(b"42 ").unwrap(), (&b" "[..], 42));
    }
}

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

/// The fast path's number scanner: `s[i..]` holds a number of at most 15 digits. Returns the end
/// position and the value, which is exactly what [`decimal`] gives for the same bytes; `None` for
/// anything else (no digits, longer numbers), which the general grammar then handles.
#[inline(always)]
pub(crate) fn short_decimal(s: &[u8], i: usize) -> Option<(usize, f64)> {
    let n = scan(s, i);
    if n.digits == 0 || n.digits > 15 {
        return None;
    }
    // At most 15 digits: the mantissa is below 2^53 and the power of ten exact.
    let v = n.mantissa as f64 / POW10[n.fraction & 15];
    Some((n.end, if n.negative { -v } else { v }))
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

    #[test]
    fn fast_and_general_paths_agree() {
        // Padding makes the SWAR path apply; the bare string takes the digit loop.
        for s in [
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
        ] {
            let padded = format!("{s};;;;;;;;;;;;;;;;;;");
            let fast = decimal(padded.as_bytes()).unwrap();
            let general = decimal(s.as_bytes()).unwrap();
            assert_eq!(fast.1.to_bits(), general.1.to_bits(), "{s}");
            assert_eq!(fast.1, s.parse::<f64>().unwrap(), "{s}");
            assert_eq!(fast.0.len(), padded.len() - s.len(), "{s}");
        }
        assert!(decimal(b"-;;;;;;;;;;;;;;;;").is_err());
        assert!(decimal(b".;;;;;;;;;;;;;;;;").is_err());
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

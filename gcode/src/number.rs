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

/// Powers of ten as integers, for joining integer and fraction digits.
const POW10_INT: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// SWAR digit scan of 8 bytes (first byte lowest): how many leading bytes are ASCII digits, and
/// their value. Eight at once instead of a loop with a branch per digit.
#[inline(always)]
fn eight_digits(chunk: [u8; 8]) -> (usize, u64) {
    let v = u64::from_le_bytes(chunk);
    let sub = v.wrapping_sub(0x3030_3030_3030_3030);
    // High bit set in each byte below '0' (borrow) or above '9' (carry past 0x7f).
    let non_digit = (sub | v.wrapping_add(0x4646_4646_4646_4646)) & 0x8080_8080_8080_8080;
    let count = (non_digit.trailing_zeros() / 8) as usize;
    if count == 0 {
        return (0, 0);
    }
    // Keep the `count` digit bytes, moved up so the bytes below them read as leading zeros.
    let mut x = sub << (8 * (8 - count));
    // Byte 0 is the most significant digit: fold pairs, then pairs of pairs, then halves.
    x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    x = (x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff;
    (count, x)
}

/// Scans a signed decimal number at the start of `input`.
///
/// Fails with [`Expected::Number`] when there is no digit, and with [`Expected::FiniteNumber`] when
/// the digits overflow `f64`.
#[inline(always)]
pub(crate) fn decimal(input: &[u8]) -> IResult<&[u8], f64, SyntaxError<'_>> {
    let (negative, sign_len) = match input.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    // Fast path: up to 7 integer and 7 fraction digits with 8 readable bytes after each start.
    if let Some(int_chunk) = read8(input, sign_len) {
        let (int_len, int_value) = eight_digits(int_chunk);
        if int_len < 8 {
            let dot = sign_len + int_len;
            if input.get(dot) != Some(&b'.') {
                if int_len > 0 {
                    let v = int_value as f64;
                    return Ok((&input[dot..], if negative { -v } else { v }));
                }
            } else if let Some(frac_chunk) = read8(input, dot + 1) {
                let (frac_len, frac_value) = eight_digits(frac_chunk);
                if frac_len < 8 && int_len + frac_len > 0 {
                    let mantissa = int_value * POW10_INT[frac_len] + frac_value;
                    let v = mantissa as f64 / POW10[frac_len];
                    return Ok((&input[dot + 1 + frac_len..], if negative { -v } else { v }));
                }
            }
        }
    }
    general_decimal(input, negative, sign_len)
}

#[inline(always)]
fn read8(input: &[u8], at: usize) -> Option<[u8; 8]> {
    input
        .get(at..at.checked_add(8)?)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
}

/// Digit by digit, for short inputs and long numbers.
fn general_decimal(
    input: &[u8],
    negative: bool,
    sign_len: usize,
) -> IResult<&[u8], f64, SyntaxError<'_>> {
    let mut pos = sign_len;
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction_digits = 0usize;
    while let Some(&b) = input.get(pos) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        digits += 1;
        pos += 1;
    }
    if input.get(pos) == Some(&b'.') {
        pos += 1;
        while let Some(&b) = input.get(pos) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            digits += 1;
            fraction_digits += 1;
            pos += 1;
        }
    }
    if digits == 0 {
        return Err(nom::Err::Error(SyntaxError::new(
            &input[sign_len..],
            Expected::Number,
        )));
    }
    // 19 digits always fit in u64; beyond that the wrapped mantissa is garbage, so go the slow way.
    let exact = digits <= 19 && mantissa <= MAX_EXACT_MANTISSA && fraction_digits < POW10.len();
    let value = if exact {
        let v = mantissa as f64 / POW10[fraction_digits];
        if negative {
            -v
        } else {
            v
        }
    } else {
        slow_decimal(&input[..pos])
            .ok_or_else(|| nom::Err::Error(SyntaxError::new(input, Expected::FiniteNumber)))?
    };
    Ok((&input[pos..], value))
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

//! `f64` minimum and maximum for the hot paths, one instruction each.
//!
//! `f64::max`/`f64::min` must return the other operand when one is NaN, which costs a compare, two
//! masks and an or around `maxsd`/`minsd` (about 5 instructions each; a move's planning and
//! bounding boxes do dozens). These return the same values when `a` is not NaN: a NaN `b` is
//! ignored as by `f64::max`. Only a tie between `0.0` and `-0.0` may pick the other zero, which
//! no comparison or sum of the analysis can tell apart.

/// `a.max(b)` for an `a` that is not NaN.
#[inline(always)]
pub(crate) fn max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// `a.min(b)` for an `a` that is not NaN.
#[inline(always)]
pub(crate) fn min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_with_std_when_the_first_operand_is_a_number() {
        let values = [
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for a in values.into_iter().filter(|a| !a.is_nan()) {
            for b in values {
                assert_eq!(max(a, b), a.max(b), "max({a}, {b})");
                assert_eq!(min(a, b), a.min(b), "min({a}, {b})");
            }
        }
    }
}

//! Framing of host lines: comment stripping, payload validation, line numbers and checksums.
//!
//! Marlin checksums the bytes it *stores*, not the bytes it receives: comments are cut, `\`
//! escapes and (with `PAREN_COMMENTS`) parenthesised text are removed, and anything beyond
//! `MAX_CMD_SIZE - 1` stored bytes is silently dropped. [`Payload::new`] therefore strips
//! comments first and refuses every byte that would make the firmware store something other
//! than what the host checksums, so a framed line is accepted as is or not sent at all.

use std::fmt;

/// Marlin's `MAX_CMD_SIZE` minus its terminating NUL: the most bytes a stored line may hold,
/// including `N<n> ` and `*<checksum>`.
pub const MAX_STORED_LINE: usize = 95;

/// The longest payload accepted, so that `N<10 digits> <payload>*<3 digits>` still fits in
/// [`MAX_STORED_LINE`] for any line number a print can reach.
pub const MAX_PAYLOAD: usize = MAX_STORED_LINE - "N2147483647 ".len() - "*255".len();

/// Why a command cannot be sent as a numbered line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload (comments stripped) is longer than [`MAX_PAYLOAD`]; Marlin would cut off its
    /// checksum and ask for it again forever.
    #[error("command is {len} bytes after stripping comments, the limit is {max}")]
    TooLong {
        /// Stored length of the payload.
        len: usize,
        /// The limit, [`MAX_PAYLOAD`].
        max: usize,
    },
    /// A byte the firmware would drop or transform before checksumming.
    #[error("byte 0x{byte:02x} at offset {offset} cannot be sent: {why}")]
    ForbiddenByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the command text as given.
        offset: usize,
        /// What the firmware would do with it.
        why: &'static str,
    },
    /// The payload contains `M110`, which Marlin treats as a line-number reset wherever it appears
    /// in a numbered line; the session sends `M110` itself.
    #[error("command contains \"M110\", which resets the firmware's line numbering; the session manages M110 itself")]
    ContainsM110,
}

/// A command ready for framing: comments stripped, trimmed, every byte safe to checksum.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Box<str>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the firmware treats text that hosts must mimic or avoid (from `M115` capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    /// `Cap:PAREN_COMMENTS:1`: `(`…`)` is a comment the firmware removes, so the host removes it too.
    pub paren_comments: bool,
}

impl Payload {
    /// Strips the `;` comment and surrounding whitespace and validates what is left.
    ///
    /// Returns `Ok(None)` for an empty or comment-only line: such a line must never be numbered,
    /// because Marlin sends no `ok` for it.
    ///
    /// ```
    /// use easyprint_marlin::{Dialect, Payload};
    /// let p = Payload::new("G1 X10 Y20 ; perimeter", Dialect::default()).unwrap().unwrap();
    /// assert_eq!(p.as_str(), "G1 X10 Y20");
    /// assert!(Payload::new("  ; only a comment", Dialect::default()).unwrap().is_none());
    /// ```
    pub fn new(text: &str, dialect: Dialect) -> Result<Option<Self>, PayloadError> {
        let code = match memchr::memchr(b';', text.as_bytes()) {
            Some(i) => &text[..i],
            None => text,
        };
        let stripped;
        let code = if dialect.paren_comments && code.contains('(') {
            stripped = strip_paren_comments(code);
            stripped.as_str()
        } else {
            code
        };
        let start = code.len() - code.trim_start().len();
        let code = code.trim();
        if code.is_empty() {
            return Ok(None);
        }
        for (i, &b) in code.as_bytes().iter().enumerate() {
            let why = match b {
                b'\n' | b'\r' => "it ends the line",
                0 => "it ends the stored string",
                0x08 => "it deletes the previous stored character",
                b'\\' => "it escapes the next character and is not stored",
                0x80..=0xff => "it is not ASCII",
                _ => continue,
            };
            return Err(PayloadError::ForbiddenByte {
                byte: b,
                offset: start + i,
                why,
            });
        }
        if code.len() > MAX_PAYLOAD {
            return Err(PayloadError::TooLong {
                len: code.len(),
                max: MAX_PAYLOAD,
            });
        }
        if contains_m110(code) {
            return Err(PayloadError::ContainsM110);
        }
        Ok(Some(Self(code.into())))
    }

    /// A payload the session builds itself (`M110 N<n>`), skipping the `M110` refusal.
    pub(crate) fn internal(code: &str) -> Self {
        debug_assert!(code.len() <= MAX_PAYLOAD && code.is_ascii());
        Self(code.into())
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: empty lines are never payloads.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The G/M/T code word, upper-cased: `"G1"`, `"M109"`.
    pub fn code(&self) -> &str {
        let s = self.as_str();
        s.split(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or(s)
    }
}

fn contains_m110(code: &str) -> bool {
    code.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"M110"))
}

fn strip_paren_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut depth = false;
    for c in code.chars() {
        match c {
            '(' => depth = true,
            ')' if depth => depth = false,
            _ if !depth => out.push(c),
            _ => {}
        }
    }
    out
}

/// XOR of every byte: Marlin's line checksum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Appends `N<n> <payload>*<checksum>\n` to `out`.
///
/// ```
/// let mut out = Vec::new();
/// easyprint_marlin::line::frame_numbered(1, "M115", &mut out);
/// assert_eq!(out, b"N1 M115*39\n");
/// ```
pub fn frame_numbered(n: i64, payload: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "N{n} {payload}");
    let cs = checksum(&out[start..]);
    let _ = writeln!(out, "*{cs}");
}

/// Appends an unnumbered line `<payload>\n` (no checksum: Marlin checks none without `N`).
pub fn frame_unnumbered(payload: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(payload.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(n: i64, p: &str) -> String {
        let mut v = Vec::new();
        frame_numbered(n, p, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn reference_checksums() {
        assert_eq!(framed(0, "M110 N0"), "N0 M110 N0*125\n");
        assert_eq!(framed(-1, "M110 N-1"), "N-1 M110 N-1*125\n");
        assert_eq!(framed(1, "M115"), "N1 M115*39\n");
        assert_eq!(framed(2, "M105"), "N2 M105*37\n");
        assert_eq!(
            framed(123, "G1 X10 Y20 F3000"),
            "N123 G1 X10 Y20 F3000*79\n"
        );
        assert_eq!(
            framed(12_345_678_901, "G1 X1"),
            format!("N12345678901 G1 X1*{}\n", checksum(b"N12345678901 G1 X1"))
        );
    }

    #[test]
    fn strips_comments_and_whitespace() {
        let d = Dialect::default();
        let p = Payload::new("  G1 X1 ; move *12", d).unwrap().unwrap();
        assert_eq!(p.as_str(), "G1 X1");
        assert_eq!(Payload::new(";LAYER:1", d).unwrap(), None);
        assert_eq!(Payload::new("   \t", d).unwrap(), None);
        assert_eq!(Payload::new("", d).unwrap(), None);
    }

    #[test]
    fn paren_comments_only_with_the_capability() {
        let plain = Payload::new("M117 Hi (x)", Dialect::default())
            .unwrap()
            .unwrap();
        assert_eq!(plain.as_str(), "M117 Hi (x)");
        let paren = Dialect {
            paren_comments: true,
        };
        let p = Payload::new("G1 X1 (fast) Y2", paren).unwrap().unwrap();
        assert_eq!(p.as_str(), "G1 X1  Y2");
        assert_eq!(Payload::new("(only)", paren).unwrap(), None);
    }

    #[test]
    fn refuses_bytes_the_firmware_transforms() {
        let d = Dialect::default();
        let err = Payload::new("M117 a\\b", d).unwrap_err();
        assert_eq!(
            err,
            PayloadError::ForbiddenByte {
                byte: b'\\',
                offset: 6,
                why: "it escapes the next character and is not stored"
            }
        );
        assert!(matches!(
            Payload::new("M117 \u{e9}", d),
            Err(PayloadError::ForbiddenByte { byte: 0xc3, .. })
        ));
        assert!(matches!(
            Payload::new("M117 a\u{8}", d),
            Err(PayloadError::ForbiddenByte { byte: 8, .. })
        ));
        assert!(matches!(
            Payload::new("G1\rX1", d),
            Err(PayloadError::ForbiddenByte { byte: b'\r', .. })
        ));
    }

    #[test]
    fn refuses_lines_that_would_be_truncated() {
        let d = Dialect::default();
        let ok = format!("M117 {}", "a".repeat(MAX_PAYLOAD - 5));
        assert!(Payload::new(&ok, d).unwrap().is_some());
        let long = format!("M117 {}", "a".repeat(MAX_PAYLOAD - 4));
        assert_eq!(
            Payload::new(&long, d),
            Err(PayloadError::TooLong {
                len: MAX_PAYLOAD + 1,
                max: MAX_PAYLOAD
            })
        );
        // The worst case still fits Marlin's buffer.
        assert!(framed(2_147_483_647, &ok).trim_end().len() <= MAX_STORED_LINE);
    }

    #[test]
    fn refuses_m110_anywhere() {
        let d = Dialect::default();
        assert_eq!(Payload::new("M110 N5", d), Err(PayloadError::ContainsM110));
        assert_eq!(
            Payload::new("M117 see m110", d),
            Err(PayloadError::ContainsM110)
        );
    }

    #[test]
    fn code_word() {
        let p = Payload::new("M109 S200", Dialect::default())
            .unwrap()
            .unwrap();
        assert_eq!(p.code(), "M109");
    }
}

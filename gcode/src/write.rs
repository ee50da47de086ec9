//! The canonical form of a line, as a host sends it to firmware: comments stripped, one space
//! between words, upper-case letters, numbers in their shortest exact form, and optionally a line
//! number and checksum.

use std::io::Write as _;

use crate::{checksum, Line, WordValue};

/// How to frame a written line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// Prefix `N<number> `.
    pub line_number: Option<u32>,
    /// Append `*<checksum>` (the XOR of every byte before `*`).
    pub checksum: bool,
}

impl WriteOptions {
    /// Line number and checksum, the form Marlin's resend protocol expects.
    pub fn numbered(line_number: u32) -> Self {
        WriteOptions {
            line_number: Some(line_number),
            checksum: true,
        }
    }
}

/// Appends the canonical form of `line` and a `\n` to `out`. Writes nothing and returns `false`
/// for a line with nothing to send (blank or comment only).
///
/// Parsing the output gives the same words, text and extended command back.
///
/// ```
/// use easyprint_gcode::{write_line, Parser, ParseOptions, WriteOptions};
/// let mut p = Parser::new(b"g1x10  Y-05.50 e.4 ; extrude", ParseOptions::strict());
/// let line = p.next_line().unwrap().unwrap();
/// let mut out = Vec::new();
/// write_line(&mut out, &line, WriteOptions::default());
/// assert_eq!(out, b"G1 X10 Y-5.5 E0.4\n");
/// out.clear();
/// write_line(&mut out, &line, WriteOptions::numbered(7));
/// assert_eq!(out, b"N7 G1 X10 Y-5.5 E0.4*99\n");
/// ```
pub fn write_line(out: &mut Vec<u8>, line: &Line<'_>, options: WriteOptions) -> bool {
    if line.is_empty() {
        return false;
    }
    let start = out.len();
    if let Some(n) = options.line_number {
        let _ = write!(out, "N{n} ");
    }
    let body = out.len();
    if let Some(ext) = line.extended() {
        out.extend_from_slice(ext.name);
        if !ext.parameters.is_empty() {
            out.push(b' ');
            out.extend_from_slice(ext.parameters);
        }
    } else {
        for (i, word) in line.words().enumerate() {
            if out.len() > body {
                out.push(b' ');
            }
            if i == 0 {
                if let Some(code) = line.command() {
                    match (code.minor, line.command_digits()) {
                        // Subcodes keep their spelling: `T55.04` is not `T55.4`.
                        (Some(_), Some(digits)) => {
                            out.push(code.letter);
                            out.extend_from_slice(digits);
                        }
                        _ => {
                            let _ = write!(out, "{code}");
                        }
                    }
                    if let Some(text) = line.text() {
                        out.push(b' ');
                        out.extend_from_slice(text);
                    }
                    continue;
                }
            }
            out.push(word.letter);
            // A leading `G`/`M`/`T`/`N` word that is not a command (it was written `M 5`, or
            // `G 1..` with a dotted value) keeps its space, or it would read back as a command
            // code or line number.
            if i == 0 && matches!(word.letter, b'G' | b'M' | b'T' | b'N') {
                if let WordValue::Number(_) | WordValue::Text(_) = word.value {
                    out.push(b' ');
                }
            }
            match word.value {
                // `{}` on f64 is the shortest text that parses back to the same value, never with
                // an exponent (which G-code could not express).
                WordValue::Number(v) => {
                    let _ = write!(out, "{v}");
                }
                WordValue::Flag => {}
                WordValue::Text(t) => out.extend_from_slice(t),
                WordValue::Quoted(t) => {
                    out.push(b'"');
                    out.extend_from_slice(t);
                    out.push(b'"');
                }
                WordValue::Expression(t) => {
                    out.push(b'{');
                    out.extend_from_slice(t);
                    out.push(b'}');
                }
            }
        }
    }
    if options.checksum {
        let sum = checksum(&out[start..]);
        let _ = write!(out, "*{sum}");
    }
    out.push(b'\n');
    true
}

/// Frames an already canonical command body (no comment, no newline) with a line number and
/// checksum, plus `\n`: `frame(out, b"M110 N0", 0)` writes `N0 M110 N0*125\n`.
///
/// ```
/// let mut out = Vec::new();
/// easyprint_gcode::frame(&mut out, b"M105", 12);
/// assert_eq!(out, b"N12 M105*20\n");
/// ```
pub fn frame(out: &mut Vec<u8>, body: &[u8], line_number: u32) {
    let start = out.len();
    let _ = write!(out, "N{line_number} ");
    out.extend_from_slice(body);
    let sum = checksum(&out[start..]);
    let _ = writeln!(out, "*{sum}");
}

//! Every syntax form the parser supports, and its errors.

use easyprint_gcode::{
    checksum, parse_reader, Code, Expected, Found, Line, Mode, ParseError, ParseErrorKind,
    ParseOptions, Parser, WordValue,
};
use std::ops::ControlFlow;

/// Parses a single line strictly and hands it to `check`.
fn one(src: &str, check: impl FnOnce(Line<'_>)) {
    let mut p = Parser::new(src.as_bytes(), ParseOptions::strict());
    let line = p
        .next_line()
        .expect("a line")
        .unwrap_or_else(|e| panic!("{src:?}: {e}"));
    check(line);
}

fn error(src: &[u8]) -> ParseError {
    let mut p = Parser::new(src, ParseOptions::strict());
    loop {
        match p.next_line() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => return e,
            None => panic!("{:?} parsed without error", String::from_utf8_lossy(src)),
        }
    }
}

fn words(line: &Line<'_>) -> Vec<(char, WordValue<'static>)> {
    line.words()
        .map(|w| {
            let v = match w.value {
                WordValue::Number(n) => WordValue::Number(n),
                WordValue::Flag => WordValue::Flag,
                WordValue::Text(t) => WordValue::Text(t.to_vec().leak()),
                WordValue::Quoted(t) => WordValue::Quoted(t.to_vec().leak()),
                WordValue::Expression(t) => WordValue::Expression(t.to_vec().leak()),
            };
            (w.letter as char, v)
        })
        .collect()
}

#[test]
fn line_numbers_and_words() {
    one("N123 G1 X10 Y20", |l| {
        assert_eq!(l.line_number(), Some(123));
        assert_eq!(
            l.command(),
            Some(Code {
                letter: b'G',
                major: 1,
                minor: None
            })
        );
        assert_eq!(l.arg(b'X'), Some(10.0));
        assert_eq!(l.arg(b'Y'), Some(20.0));
    });
}

#[test]
fn number_forms() {
    one("G1 X-.5 Y+1 Z1. E007 F.05", |l| {
        assert_eq!(l.arg(b'X'), Some(-0.5));
        assert_eq!(l.arg(b'Y'), Some(1.0));
        assert_eq!(l.arg(b'Z'), Some(1.0));
        assert_eq!(l.arg(b'E'), Some(7.0));
        assert_eq!(l.arg(b'F'), Some(0.05));
    });
}

#[test]
fn lowercase_and_no_spaces() {
    one("g1x10y-5.2e.4", |l| {
        assert!(l.command().unwrap().is(b'G', 1));
        assert_eq!(
            words(&l),
            [
                ('G', WordValue::Number(1.0)),
                ('X', WordValue::Number(10.0)),
                ('Y', WordValue::Number(-5.2)),
                ('E', WordValue::Number(0.4)),
            ]
        );
    });
    one("G1X10Y-5.2E.4", |l| assert_eq!(l.args().count(), 3));
}

#[test]
fn tool_change_and_leading_zero_codes() {
    one("T0", |l| {
        assert_eq!(
            l.command(),
            Some(Code {
                letter: b'T',
                major: 0,
                minor: None
            })
        )
    });
    one("G01 X1", |l| assert!(l.command().unwrap().is(b'G', 1)));
    one("M862.3 P \"MK3S\"", |l| {
        assert_eq!(l.command().unwrap().minor, Some(3));
        assert_eq!(words(&l)[1], ('P', WordValue::Quoted(b"MK3S")));
    });
}

#[test]
fn comments() {
    one("G1 X1 ; move ; twice", |l| {
        assert_eq!(l.comment(), Some(&b" move ; twice"[..]))
    });
    one("G1 (inline) X2 (another)", |l| {
        assert_eq!(l.arg(b'X'), Some(2.0))
    });
    one(";LAYER:0", |l| {
        assert!(l.is_empty());
        assert_eq!(l.comment(), Some(&b"LAYER:0"[..]));
    });
    one("\n", |l| assert!(l.is_empty()));
    one("   \t ", |l| assert!(l.is_empty()));
    let long = format!("; {}", "x".repeat(600));
    one(&long, |l| assert_eq!(l.comment().unwrap().len(), 601));
}

#[test]
fn non_utf8_in_comments_and_text() {
    let src = b"G1 X1 ; caf\xe9 \xff\xfe\n";
    let mut p = Parser::new(src, ParseOptions::strict());
    let l = p.next_line().unwrap().unwrap();
    assert_eq!(l.comment(), Some(&b" caf\xe9 \xff\xfe"[..]));
}

#[test]
fn checksums() {
    let body = "N10 G1 X10";
    let good = format!("{body}*{}", checksum(body.as_bytes()));
    one(&good, |l| {
        assert_eq!(l.checksum(), Some(checksum(body.as_bytes())));
        assert_eq!(l.line_number(), Some(10));
        assert_eq!(l.arg(b'X'), Some(10.0));
    });
    let bad = format!("{body}*{}", checksum(body.as_bytes()) ^ 1);
    let e = error(bad.as_bytes());
    assert!(
        matches!(e.kind, ParseErrorKind::ChecksumMismatch { stated, computed }
            if computed == checksum(body.as_bytes()) && stated == computed ^ 1),
        "{e}"
    );
    assert_eq!(e.column, 11);
}

#[test]
fn checksum_wiki_example_is_rejected() {
    // The right checksum is the XOR; 10 is not it, so this must be an error.
    let e = error(b"N123 M104 S200*10");
    assert!(matches!(e.kind, ParseErrorKind::ChecksumMismatch { .. }));
}

#[test]
fn string_arguments() {
    one("M117 Hello; world?", |l| {
        assert_eq!(l.text(), Some(&b"Hello"[..]));
        assert_eq!(l.comment(), Some(&b" world?"[..]));
    });
    one("M23 /sub/file.gco", |l| {
        assert_eq!(l.text(), Some(&b"/sub/file.gco"[..]))
    });
    one("M28 big file name.gco", |l| {
        assert_eq!(l.text(), Some(&b"big file name.gco"[..]))
    });
    one("M30 old.g", |l| assert_eq!(l.text(), Some(&b"old.g"[..])));
    one("M32 P !/a.g#", |l| {
        assert_eq!(l.text(), Some(&b"P !/a.g#"[..]))
    });
    let body = "N5 M117 Printing 3*4 parts";
    let line = format!("{body}*{}", checksum(body.as_bytes()));
    one(&line, |l| {
        assert_eq!(l.text(), Some(&b"Printing 3*4 parts"[..]));
        assert!(l.checksum().is_some());
    });
    one("M117", |l| assert_eq!(l.text(), None));
}

#[test]
fn reprap_and_klipper_forms() {
    one("M98 P\"x.g\"", |l| {
        assert_eq!(words(&l)[1], ('P', WordValue::Quoted(b"x.g")))
    });
    one("M291 P\"say \"\"hi\"\"\" S1", |l| {
        assert_eq!(words(&l)[1], ('P', WordValue::Quoted(b"say \"\"hi\"\"")));
        assert_eq!(l.arg(b'S'), Some(1.0));
    });
    one("G1 X0 Y{machine_depth} ;Present print", |l| {
        assert_eq!(words(&l)[2], ('Y', WordValue::Expression(b"machine_depth")));
    });
    one("G1 X{move.axes[0].max - {1}}", |l| {
        assert_eq!(
            words(&l)[1],
            ('X', WordValue::Expression(b"move.axes[0].max - {1}"))
        );
    });
    one(
        "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200 ; heat",
        |l| {
            let ext = l.extended().unwrap();
            assert_eq!(ext.name, b"SET_HEATER_TEMPERATURE");
            assert_eq!(ext.parameters, b"HEATER=extruder TARGET=200");
            assert_eq!(l.comment(), Some(&b" heat"[..]));
            assert!(!l.is_empty());
        },
    );
    one("PRINT_START", |l| {
        assert_eq!(l.extended().unwrap().parameters, b"")
    });
    one("echo \"hello\"", |l| {
        assert_eq!(l.extended().unwrap().name, b"echo")
    });
}

#[test]
fn slicer_output_that_gcode_0_7_rejects() {
    one("M84 X Y E ; disable motors", |l| {
        assert_eq!(
            words(&l),
            [
                ('M', WordValue::Number(84.0)),
                ('X', WordValue::Flag),
                ('Y', WordValue::Flag),
                ('E', WordValue::Flag),
            ]
        );
        assert!(l.has_arg(b'Y'));
        assert_eq!(l.arg(b'Y'), None);
    });
    one("G28 W ; home all without mesh bed level", |l| {
        assert_eq!(words(&l)[1], ('W', WordValue::Flag));
    });
    one("M115 U3.12.2 ; tell printer latest fw version", |l| {
        assert_eq!(words(&l)[1], ('U', WordValue::Text(b"3.12.2")));
    });
    one("G1 E.05 F2100", |l| assert_eq!(l.arg(b'E'), Some(0.05)));
}

#[test]
fn line_endings() {
    let src = b"G1 X1\r\nG1 X2\r\nG1 X3";
    let mut p = Parser::new(src, ParseOptions::strict());
    let mut xs = vec![];
    while let Some(l) = p.next_line() {
        let l = l.unwrap();
        assert!(!l.raw().ends_with(b"\r"));
        xs.push(l.arg(b'X').unwrap());
    }
    assert_eq!(xs, [1.0, 2.0, 3.0]);
}

#[test]
fn positions() {
    let src = b"G28\n\nG1 X5\n";
    let mut p = Parser::new(src, ParseOptions::strict());
    let mut seen = vec![];
    while let Some(l) = p.next_line() {
        let l = l.unwrap();
        seen.push((l.number(), l.offset()));
    }
    assert_eq!(seen, [(1, 0), (2, 4), (3, 5)]);
}

#[test]
fn errors_say_where_and_what() {
    let e = error(b"G1 X10\nG1 X#1\n");
    assert_eq!((e.line, e.column, e.offset), (2, 5, 7));
    assert_eq!(
        e.kind,
        ParseErrorKind::Unexpected {
            expected: Expected::WordLetter,
            found: Found::Byte(b'#')
        }
    );
    let e = error(b"G1 X-");
    assert_eq!(
        e.kind,
        ParseErrorKind::Unexpected {
            expected: Expected::Number,
            found: Found::EndOfLine
        }
    );
    assert_eq!(e.column, 6);
    let e = error(b"M98 P\"open");
    assert_eq!(
        e.kind,
        ParseErrorKind::Unexpected {
            expected: Expected::ClosingQuote,
            found: Found::EndOfLine
        }
    );
    let e = error(b"G1 X{1");
    assert!(e.to_string().contains("'}' closing the expression"), "{e}");
    let e = error(b"G1 (open comment");
    assert!(e.to_string().contains("')' closing the comment"), "{e}");
    let e = error(b"G1 X1 \x00");
    assert_eq!(
        e.to_string(),
        "line 1, column 7: expected a word letter, a comment or end of line, found byte 0x00"
    );
    let e = error(b"N99999999999 G1");
    assert!(e.to_string().contains("smaller integer"), "{e}");
    let e = error(b"G1 X1*12 G2");
    assert!(
        e.to_string().contains("end of line after the checksum"),
        "{e}"
    );
}

#[test]
fn strict_stops_lenient_continues() {
    let src = b"G1 X1\nG1 @\nG1 X3\n";
    let mut p = Parser::new(src, ParseOptions::strict());
    assert!(p.next_line().unwrap().is_ok());
    assert!(p.next_line().unwrap().is_err());
    assert!(p.next_line().is_none());

    let mut p = Parser::new(src, ParseOptions::lenient());
    let results: Vec<bool> = std::iter::from_fn(|| p.next_line().map(|r| r.is_ok())).collect();
    assert_eq!(results, [true, false, true]);

    // Lenient: an unclosed parenthesis comment is just a comment.
    let mut p = Parser::new(b"G1 X1 (weird", ParseOptions::lenient());
    let l = p.next_line().unwrap().unwrap();
    assert_eq!(l.arg(b'X'), Some(1.0));
    assert_eq!(l.comment(), Some(&b"weird"[..]));
}

#[test]
fn too_long_lines() {
    let opts = ParseOptions {
        mode: Mode::Lenient,
        max_line_len: 8,
    };
    let mut p = Parser::new(b"G1 X1\nG1 X1234567\nG1 X2", opts);
    assert!(p.next_line().unwrap().is_ok());
    let e = p.next_line().unwrap().unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LineTooLong { max: 8 });
    assert_eq!(e.line, 2);
    assert_eq!(p.next_line().unwrap().unwrap().arg(b'X'), Some(2.0));
}

/// A reader that returns at most `n` bytes per read, to exercise chunk boundaries.
struct Trickle<'a>(&'a [u8], usize);
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streaming_matches_buffer() {
    let src: &[u8] = b"N1 G28*18\r\n; comment\nM117 Hi there\nG1X1Y2E.5\n\nG1 X@\nM84 X Y E";
    let mut from_buffer = vec![];
    let mut p = Parser::new(src, ParseOptions::lenient());
    while let Some(l) = p.next_line() {
        from_buffer.push(
            l.map(|l| (l.number(), l.offset(), l.raw().to_vec()))
                .map_err(|e| e.to_string()),
        );
    }
    for chunk in [1, 2, 3, 7, 1000] {
        let mut from_stream = vec![];
        let n = parse_reader(Trickle(src, chunk), ParseOptions::lenient(), |l| {
            from_stream.push(
                l.map(|l| (l.number(), l.offset(), l.raw().to_vec()))
                    .map_err(|e| e.to_string()),
            );
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(n, 7);
        assert_eq!(from_stream, from_buffer, "chunk size {chunk}");
    }
}

#[test]
fn streaming_strict_stops_at_first_error() {
    let mut seen = 0;
    parse_reader(&b"G1 X1\nG1 @\nG1 X3\n"[..], ParseOptions::strict(), |_| {
        seen += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, 2);
}

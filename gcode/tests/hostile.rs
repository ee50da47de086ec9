//! Hostile input: junk, huge lines, NUL bytes, invalid UTF-8, truncation. Clear errors, no panic,
//! bounded memory.

use std::ops::ControlFlow;

use easyprint_gcode::analysis::{analyze, analyze_reader, AnalysisConfig, Analyzer, Diagnostic};
use easyprint_gcode::{parse_reader, LineSplitter, ParseErrorKind, ParseOptions, Parser};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn parse_all(bytes: &[u8], options: ParseOptions) -> (u64, u64) {
    let (mut ok, mut err) = (0, 0);
    let mut p = Parser::new(bytes, options);
    while let Some(line) = p.next_line() {
        match line {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(e.line >= 1 && e.column >= 1, "{e}");
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    (ok, err)
}

#[test]
fn binary_junk() {
    for seed in 1..20 {
        let bytes = junk(64 * 1024, seed);
        let (ok, err) = parse_all(&bytes, ParseOptions::lenient());
        assert_eq!(
            ok + err,
            memchr::memchr_iter(b'\n', &bytes).count() as u64 + 1
        );
        assert!(err > 0);
        let a = analyze(&bytes, &AnalysisConfig::default());
        assert_eq!(a.bytes, bytes.len() as u64);
        assert!(a.diagnostic_count > 0 && a.diagnostics.len() <= 100);
        // Strict mode stops at the first bad line.
        let (_, strict_errors) = parse_all(&bytes, ParseOptions::strict());
        assert_eq!(strict_errors, 1);
    }
}

#[test]
fn ten_megabyte_line() {
    let mut bytes = b"G1 X1\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'X', 10 << 20));
    bytes.extend_from_slice(b"\nG1 X2 E1\n");
    let mut p = Parser::new(&bytes, ParseOptions::lenient());
    assert!(p.next_line().unwrap().is_ok());
    let e = p.next_line().unwrap().unwrap_err();
    assert_eq!(
        e.kind,
        ParseErrorKind::LineTooLong {
            max: ParseOptions::DEFAULT_MAX_LINE_LEN
        }
    );
    assert_eq!((e.line, e.offset), (2, 6));
    assert_eq!(p.next_line().unwrap().unwrap().arg(b'X'), Some(2.0));

    // Streaming never holds the long line: the splitter's buffer stays near the limit.
    let mut splitter = LineSplitter::new(ParseOptions::DEFAULT_MAX_LINE_LEN);
    let mut seen = Vec::new();
    for chunk in bytes.chunks(64 * 1024) {
        let _ = splitter.push(chunk, |l| {
            seen.push(l.to_owned_kind());
            ControlFlow::Continue(())
        });
        assert!(splitter.buffered_capacity() <= 2 * ParseOptions::DEFAULT_MAX_LINE_LEN);
    }
    assert_eq!(seen, ["line", "too long", "line"]);

    let a = analyze_reader(&bytes[..], &AnalysisConfig::default()).unwrap();
    assert_eq!(a.lines, 3);
    assert!(matches!(
        &a.diagnostics[..],
        [Diagnostic::Parse(e)] if matches!(e.kind, ParseErrorKind::LineTooLong { .. }) && e.line == 2
    ));
    assert_eq!(a.filament[0].length_mm, 1.0);
    assert_eq!(a, analyze(&bytes, &AnalysisConfig::default()));
}

/// Labels for what the splitter delivered.
trait Kind {
    fn to_owned_kind(&self) -> &'static str;
}
impl Kind for easyprint_gcode::RawLine<'_> {
    fn to_owned_kind(&self) -> &'static str {
        match self {
            easyprint_gcode::RawLine::Line { .. } => "line",
            easyprint_gcode::RawLine::TooLong { .. } => "too long",
        }
    }
}

#[test]
fn nul_bytes_and_invalid_utf8() {
    let bytes = b"G1 X1\0\nG1 \xff\xfe X2\n; \xc3\x28 comment is fine\nM117 caf\xe9\n\0\0\0\n";
    let mut p = Parser::new(bytes, ParseOptions::lenient());
    let mut results = Vec::new();
    while let Some(l) = p.next_line() {
        results.push(l.map(|l| l.number()).map_err(|e| (e.line, e.column)));
    }
    assert_eq!(
        results,
        [Err((1, 6)), Err((2, 4)), Ok(3), Ok(4), Err((5, 1))]
    );
    let a = analyze(bytes, &AnalysisConfig::default());
    assert_eq!(a.diagnostic_count, 3);
}

#[test]
fn truncated_files() {
    let full = "; thumbnail begin 1x1 8\n; AAECAwQF\n; thumbnail end\nM82\nG1 Z0.2 F600\n\
                G2 X10 Y10 I5 J5 E1.5\nG1 X20 Y20 E2.25 F1200\nM117 done\n";
    let reference = analyze(full.as_bytes(), &AnalysisConfig::default());
    assert_eq!(reference.diagnostic_count, 0, "{:?}", reference.diagnostics);
    for cut in 0..full.len() {
        let part = &full.as_bytes()[..cut];
        let a = analyze(part, &AnalysisConfig::default());
        assert_eq!(a.bytes, cut as u64);
        // A cut number can mean another feedrate or arc, so the time only has to be sane.
        assert!(a.estimated_time.is_finite() && a.estimated_time >= 0.0);
        let mut streamed = Analyzer::new(AnalysisConfig::default());
        for chunk in part.chunks(7) {
            streamed.feed(chunk);
        }
        assert_eq!(streamed.finish(), a, "cut at {cut}");
        let mut lines = 0;
        parse_reader(part, ParseOptions::lenient(), |_| {
            lines += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(lines, a.lines);
    }
    // Cut inside the thumbnail: reported, not fatal.
    let cut = full.find("AAEC").unwrap() + 2;
    let a = analyze(&full.as_bytes()[..cut], &AnalysisConfig::default());
    assert!(
        matches!(a.diagnostics[..], [Diagnostic::Thumbnail { .. }]),
        "{:?}",
        a.diagnostics
    );
}

#[test]
fn pathological_numbers_and_arcs() {
    let nines = "9".repeat(400);
    let g = format!(
        "G1 X{nines}\nG1 X1e5\nG1 X0.{nines}\nG2 X1 Y0 R0.0000001 E1\nG2 X100000000 Y0 I1e-300 E1\n\
         G2 X1e15 Y1e15 I1e15 J0 E1\nG1 F0\nG1 X1 F-5\nG4 P-1\nM204 P-1 T0\nG1 X5 E2\n"
    );
    let a = analyze(g.as_bytes(), &AnalysisConfig::default());
    assert!(
        a.estimated_time.is_finite() && a.estimated_time >= 0.0,
        "{}",
        a.estimated_time
    );
    assert!(a.filament[0].length_mm.is_finite());
    assert!(a.diagnostic_count >= 2, "{:?}", a.diagnostics);
}

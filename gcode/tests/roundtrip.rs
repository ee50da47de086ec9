//! Property test: for arbitrary commands, parse(write(x)) == x, and the parser reads x back from
//! any of its accepted spellings (case, spacing, comments, line number and checksum).

use easyprint_gcode::{checksum, write_line, Line, ParseOptions, Parser, WordValue, WriteOptions};
use proptest::prelude::*;

/// A word as generated: letter and value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Flag,
    Text(String),
    Quoted(String),
    Expression(String),
}

/// The meaning of a line, independent of its spelling.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// Words (the first may be a G/M/T command).
    Words(Vec<(u8, Value)>),
    /// `M117`-like command with free text.
    WithText(u32, String),
    /// A named command and its parameters.
    Extended(String, String),
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        // Slicer-like decimals.
        (-100_000i64..100_000, 0u32..6).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
        // Anything finite, to exercise the exact fallback.
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => number().prop_map(Value::Number),
        1 => Just(Value::Flag),
        1 => (0u32..20, 0u32..20, 0u32..20).prop_map(|(a, b, c)| Value::Text(format!("{a}.{b}.{c}"))),
        1 => "[ -!#-~]{0,12}".prop_map(Value::Quoted),
        1 => "[a-z_.\\[\\]0-9 +*]{0,12}".prop_map(Value::Expression),
    ]
}

fn code() -> impl Strategy<Value = (u8, Value)> {
    (prop::sample::select(vec![b'G', b'M', b'T']), 0u32..1000)
        .prop_filter("not a text command", |(l, n)| {
            *l != b'M' || ![16, 23, 28, 30, 32, 33, 117, 118, 928].contains(n)
        })
        .prop_map(|(l, n)| (l, Value::Number(f64::from(n))))
}

fn command() -> impl Strategy<Value = Command> {
    let arg_letter = prop::sample::select(b"ABCDEFHIJKLOPQRSUVWXYZ".to_vec());
    prop_oneof![
        6 => (code(), prop::collection::vec((arg_letter, value()), 0..8)).prop_map(|(c, mut args)| {
            args.insert(0, c);
            Command::Words(args)
        }),
        1 => (prop::sample::select(vec![117u32, 118, 23, 28, 30]), "[!-)+-:<-~]([ -)+-:<-~]{0,20}[!-)+-:<-~])?")
            .prop_map(|(n, t)| Command::WithText(n, t)),
        1 => ("[A-Z][A-Z_]{1,15}", "([A-Z]{1,8}=[a-z0-9]{1,8}( [A-Z]{1,8}=[a-z0-9]{1,8}){0,3})?")
            .prop_map(|(n, p)| Command::Extended(n, p)),
    ]
}

fn meaning(line: &Line<'_>) -> Command {
    if let Some(ext) = line.extended() {
        return Command::Extended(
            String::from_utf8(ext.name.to_vec()).unwrap(),
            String::from_utf8(ext.parameters.to_vec()).unwrap(),
        );
    }
    if let (Some(code), Some(text)) = (line.command(), line.text()) {
        return Command::WithText(code.major, String::from_utf8(text.to_vec()).unwrap());
    }
    let s = |t: &[u8]| String::from_utf8(t.to_vec()).unwrap();
    Command::Words(
        line.words()
            .map(|w| {
                let v = match w.value {
                    WordValue::Number(n) => Value::Number(n),
                    WordValue::Flag => Value::Flag,
                    WordValue::Text(t) => Value::Text(s(t)),
                    WordValue::Quoted(t) => Value::Quoted(s(t)),
                    WordValue::Expression(t) => Value::Expression(s(t)),
                };
                (w.letter, v)
            })
            .collect(),
    )
}

/// A messy but valid spelling of `c`: random case, spacing and trailing comment.
fn spell(c: &Command, lower: bool, gap: &str, comment: bool) -> String {
    let mut s = match c {
        Command::Words(words) => {
            let mut s = String::new();
            for (letter, v) in words {
                let letter = if lower {
                    letter.to_ascii_lowercase()
                } else {
                    *letter
                } as char;
                s.push_str(gap);
                s.push(letter);
                match v {
                    Value::Number(n) => s.push_str(&format!("{n}")),
                    Value::Flag => s.push(' '),
                    Value::Text(t) => s.push_str(t),
                    Value::Quoted(t) => s.push_str(&format!("\"{}\"", t.replace('"', "\"\""))),
                    Value::Expression(t) => s.push_str(&format!("{{{t}}}")),
                }
            }
            s
        }
        Command::WithText(n, t) => format!("{gap}M{n} {t}"),
        Command::Extended(n, p) => format!("{gap}{n} {p}"),
    };
    if comment {
        s.push_str(" ; a comment (with parens) *12");
    }
    s
}

/// Quoted strings come back with doubled quotes as written.
fn normalise(c: Command) -> Command {
    match c {
        Command::Words(w) => Command::Words(
            w.into_iter()
                .map(|(l, v)| match v {
                    Value::Quoted(t) => (l, Value::Quoted(t.replace('"', "\"\""))),
                    v => (l, v),
                })
                .collect(),
        ),
        c => c,
    }
}

fn parse_one(bytes: &[u8]) -> Command {
    let mut p = Parser::new(bytes, ParseOptions::strict());
    let line = p
        .next_line()
        .expect("one line")
        .unwrap_or_else(|e| panic!("{e} in {:?}", String::from_utf8_lossy(bytes)));
    meaning(&line)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_write_parse(c in command(), lower in any::<bool>(), gap in "[ \t]{0,2}", comment in any::<bool>(),
                         n in prop::option::of(0u32..100_000), crlf in any::<bool>()) {
        let expected = normalise(c.clone());
        let mut spelled = spell(&c, lower, &gap, comment);
        if crlf {
            spelled.push_str("\r\n");
        }
        let first = parse_one(spelled.as_bytes());
        prop_assert_eq!(&first, &expected, "spelled {:?}", spelled);

        let mut p = Parser::new(spelled.as_bytes(), ParseOptions::strict());
        let line = p.next_line().unwrap().unwrap();
        let mut out = Vec::new();
        let options = WriteOptions { line_number: n, checksum: n.is_some() };
        prop_assert!(write_line(&mut out, &line, options));
        prop_assert_eq!(out.last(), Some(&b'\n'));
        let second = parse_one(&out);
        prop_assert_eq!(&second, &expected, "written {:?}", String::from_utf8_lossy(&out));

        let mut p = Parser::new(&out, ParseOptions::strict());
        let again = p.next_line().unwrap().unwrap();
        prop_assert_eq!(again.line_number(), n);
        if n.is_some() {
            let star = out.iter().rposition(|&b| b == b'*').unwrap();
            prop_assert_eq!(again.checksum(), Some(checksum(&out[..star])));
        }
    }
}

#[test]
fn blank_and_comment_lines_write_nothing() {
    let mut p = Parser::new(b"; only a comment\n\n", ParseOptions::strict());
    let mut out = Vec::new();
    while let Some(line) = p.next_line() {
        assert!(!write_line(
            &mut out,
            &line.unwrap(),
            WriteOptions::numbered(1)
        ));
    }
    assert!(out.is_empty());
}

/// Inputs the fuzzers found (`fuzz/fuzz_targets/gcode_parse.rs`): each must round-trip.
#[test]
fn fuzz_regressions_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut parser = Parser::new(&data, ParseOptions::lenient());
        let mut out = Vec::new();
        while let Some(line) = parser.next_line() {
            let Ok(line) = line else { continue };
            out.clear();
            if write_line(&mut out, &line, WriteOptions::numbered(7)) {
                let mut again = Parser::new(&out, ParseOptions::strict());
                let written = again.next_line().unwrap().unwrap();
                assert_eq!(
                    meaning(&written),
                    meaning(&line),
                    "{:?}",
                    String::from_utf8_lossy(&out)
                );
                assert_eq!(written.command(), line.command());
            }
        }
        easyprint_gcode::analysis::analyze(&data, &Default::default());
        count += 1;
    }
    assert!(count > 0);
}

#[test]
fn subcodes_keep_their_spelling() {
    let mut p = Parser::new(b"t55.04\nG29.10 P1", ParseOptions::strict());
    let mut out = Vec::new();
    while let Some(line) = p.next_line() {
        write_line(&mut out, &line.unwrap(), WriteOptions::default());
    }
    assert_eq!(out, b"T55.04\nG29.10 P1\n");
}

#[test]
fn spaced_leading_code_letters_stay_words() {
    let mut p = Parser::new(b"m 22222222222222\nN 5 X1", ParseOptions::strict());
    let mut out = Vec::new();
    while let Some(line) = p.next_line() {
        let line = line.unwrap();
        assert_eq!(line.command(), None);
        assert_eq!(line.line_number(), None);
        write_line(&mut out, &line, WriteOptions::default());
    }
    assert_eq!(out, b"M 22222222222222\nN 5 X1\n");
}

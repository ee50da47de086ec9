//! Fuzz the G-code parser: buffer, streaming and writer must never panic, must agree with each
//! other, and written lines must parse back to the same words.
#![no_main]

use std::ops::ControlFlow;

use easyprint_gcode::{parse_reader, write_line, ParseOptions, Parser, WriteOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions { max_line_len: 4096, ..ParseOptions::lenient() };
    let mut from_buffer = Vec::new();
    let mut parser = Parser::new(data, options);
    let mut out = Vec::new();
    while let Some(line) = parser.next_line() {
        match line {
            Ok(line) => {
                from_buffer.push(Ok((line.number(), line.offset(), line.words().count())));
                out.clear();
                if write_line(&mut out, &line, WriteOptions::numbered(7)) {
                    let mut again = Parser::new(&out, ParseOptions::strict());
                    let written = again.next_line().expect("a line").expect("written lines parse");
                    assert_eq!(written.words().count(), line.words().count());
                    for (a, b) in written.words().zip(line.words()) {
                        assert_eq!(a.letter, b.letter);
                        assert_eq!(format!("{:?}", a.value), format!("{:?}", b.value));
                    }
                    assert_eq!(written.text(), line.text());
                    assert_eq!(written.extended(), line.extended());
                }
            }
            Err(e) => from_buffer.push(Err(e)),
        }
    }
    // Streaming in odd-sized chunks sees exactly the same lines and errors.
    struct Chunks<'a>(&'a [u8]);
    impl std::io::Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut from_stream = Vec::new();
    parse_reader(Chunks(data), options, |line| {
        from_stream.push(line.map(|l| (l.number(), l.offset(), l.words().count())));
        ControlFlow::Continue(())
    })
    .expect("reading from memory");
    assert_eq!(from_stream, from_buffer);

    // Numbers: the fast path's scanner and the grammar both read exactly what the standard
    // library reads, in place (followed by more input) and at the end of the input.
    let text: String = data
        .iter()
        .take(24)
        .map(|&b| char::from(b"0123456789.-+"[usize::from(b) % 13]))
        .collect();
    if let Ok(expected) = text.parse::<f64>() {
        let gcode = format!("G1 X{text}\n;{}\nG1 X{text}", "-".repeat(200));
        let mut parser = Parser::new(gcode.as_bytes(), ParseOptions::strict());
        while let Some(line) = parser.next_line() {
            let line = line.expect("a plain number parses");
            if line.command().is_some() {
                assert_eq!(line.arg(b'X').map(f64::to_bits), Some(expected.to_bits()), "{text}");
            }
        }
    }
});

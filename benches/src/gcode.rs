//! G-code benchmark helpers: our parser and the crates.io `gcode` 0.7 visitor doing the same work
//! (count words and comments, sum the numbers), and a synthetic slicer-like file for when no real
//! one is given.

use easyprint_gcode::{ParseOptions, Parser, WordValue};

/// What a parse pass saw.
#[derive(Debug, Default)]
pub struct Counts {
    /// Words, including command words and line numbers.
    pub words: u64,
    /// Comments.
    pub comments: u64,
    /// Lines that did not parse (ours) or diagnostics (gcode 0.7).
    pub errors: u64,
    /// Sum of all numeric values, so the work cannot be optimised away.
    pub sum: f64,
}

/// Parses with easyprint-gcode (lenient), touching every word.
pub fn ours(src: &[u8]) -> Counts {
    let mut c = Counts::default();
    let mut parser = Parser::new(src, ParseOptions::lenient());
    while let Some(line) = parser.next_line() {
        match line {
            Ok(line) => {
                c.comments += u64::from(line.comment().is_some());
                c.words += u64::from(line.line_number().is_some());
                for w in line.words() {
                    c.words += 1;
                    if let WordValue::Number(v) = w.value {
                        c.sum += v;
                    }
                }
            }
            Err(_) => c.errors += 1,
        }
    }
    c
}

pub mod peer {
    //! The crates.io `gcode` 0.7 zero-allocation visitor (`gcode::core::parse`).
    use super::Counts;
    use gcode::core::{
        self, BlockVisitor, CommandVisitor, ControlFlow, Diagnostics, Number, ProgramVisitor, Span,
        TokenType, Value,
    };

    struct Program(Counts);
    struct Block<'a>(&'a mut Counts);

    impl Diagnostics for Program {
        fn emit_unknown_content(&mut self, _text: &str, _span: Span) {
            self.0.errors += 1;
        }
        fn emit_unexpected(&mut self, _actual: &str, _expected: &[TokenType], _span: Span) {
            self.0.errors += 1;
        }
    }
    impl Diagnostics for Block<'_> {
        fn emit_unknown_content(&mut self, _text: &str, _span: Span) {
            self.0.errors += 1;
        }
        fn emit_unexpected(&mut self, _actual: &str, _expected: &[TokenType], _span: Span) {
            self.0.errors += 1;
        }
    }
    impl ProgramVisitor for Program {
        fn start_block(&mut self) -> ControlFlow<impl BlockVisitor + '_> {
            ControlFlow::Continue(Block(&mut self.0))
        }
    }
    impl Block<'_> {
        fn code(&mut self) -> ControlFlow<impl CommandVisitor + '_> {
            self.0.words += 1;
            ControlFlow::Continue(Block(&mut *self.0))
        }
    }
    impl BlockVisitor for Block<'_> {
        fn line_number(&mut self, _n: u32, _s: Span) {
            self.0.words += 1;
        }
        fn comment(&mut self, _v: &str, _s: Span) {
            self.0.comments += 1;
        }
        fn word_address(&mut self, _l: char, v: Value<'_>, _s: Span) {
            self.0.words += 1;
            if let Value::Literal(x) = v {
                self.0.sum += f64::from(x);
            }
        }
        fn start_general_code(&mut self, _n: Number) -> ControlFlow<impl CommandVisitor + '_> {
            self.code()
        }
        fn start_miscellaneous_code(
            &mut self,
            _n: Number,
        ) -> ControlFlow<impl CommandVisitor + '_> {
            self.code()
        }
        fn start_tool_change_code(&mut self, _n: Number) -> ControlFlow<impl CommandVisitor + '_> {
            self.code()
        }
    }
    impl CommandVisitor for Block<'_> {
        fn argument(&mut self, _l: char, v: Value<'_>, _s: Span) {
            self.0.words += 1;
            if let Value::Literal(x) = v {
                self.0.sum += f64::from(x);
            }
        }
    }

    /// Parses `src` with the visitor.
    pub fn visit(src: &str) -> Counts {
        let mut program = Program(Counts::default());
        core::parse(src, &mut program);
        program.0
    }
}

/// A deterministic slicer-like program of about `layers * 1500` lines: Cura-style header, layer
/// markers, perimeters, infill, retractions and travels, 3-decimal coordinates and 5-decimal E.
pub fn synthetic_gcode(layers: usize) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::from(
        ";FLAVOR:Marlin\n;TIME:1000\n;Filament used: 1m\n;Layer height: 0.2\n\
         M140 S60\nM104 S200\nM190 S60\nM109 S200\nG28\nG92 E0\nM82\n",
    );
    let _ = writeln!(s, ";LAYER_COUNT:{layers}");
    let mut e = 0.0f64;
    let mut seed = 12345u32;
    let mut rand = move || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        f64::from(seed >> 8) / f64::from(1u32 << 24)
    };
    for layer in 0..layers {
        let z = 0.2 * (layer + 1) as f64;
        let _ = writeln!(
            s,
            ";LAYER:{layer}\nG0 F3600 X100 Y100 Z{z:.1}\n;TYPE:WALL-OUTER"
        );
        for seg in 0..600 {
            let a = seg as f64 * std::f64::consts::TAU / 600.0;
            e += 0.02 + rand() * 0.01;
            let _ = writeln!(
                s,
                "G1 F1800 X{:.3} Y{:.3} E{e:.5}",
                117.5 + 20.0 * a.cos(),
                117.5 + 20.0 * a.sin()
            );
        }
        let _ = writeln!(s, ";TYPE:FILL");
        for line in 0..400 {
            if line % 40 == 0 {
                e -= 6.5;
                let _ = writeln!(s, "G1 F1500 E{e:.5}");
                let _ = writeln!(
                    s,
                    "G0 F3600 X{:.3} Y{:.3}",
                    100.0 + rand() * 35.0,
                    100.0 + rand() * 35.0
                );
                e += 6.5;
                let _ = writeln!(s, "G1 F1500 E{e:.5}");
            }
            e += 0.05 + rand() * 0.05;
            let _ = writeln!(
                s,
                "G1 X{:.3} Y{:.3} E{e:.5}",
                100.0 + rand() * 35.0,
                100.0 + rand() * 35.0
            );
        }
        let _ = writeln!(s, ";TIME_ELAPSED:{:.6}", layer as f64 * 60.0);
    }
    s.push_str("M140 S0\nM104 S0\nM84 X Y E\n");
    s.into_bytes()
}

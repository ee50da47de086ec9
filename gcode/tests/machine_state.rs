//! Property tests of the machine-state tracker: it agrees with the analysis, and a resume
//! prelude brings a power-cycled printer back to the state the file left, so that the rest of
//! the file ends exactly where an uninterrupted print would.

use easyprint_gcode::analysis::{analyze, AnalysisConfig};
use easyprint_gcode::machine_state::{MachineState, ResumeOptions};
use easyprint_gcode::{ParseOptions, Parser};
use proptest::prelude::*;

fn apply(state: &mut MachineState, gcode: &str) {
    let mut parser = Parser::new(gcode.as_bytes(), ParseOptions::strict());
    while let Some(line) = parser.next_line() {
        state.apply(&line.expect("generated G-code parses"));
    }
}

fn coordinate() -> impl Strategy<Value = f64> + Clone {
    // Three decimals, like slicers write (and exact enough for the prelude's five).
    (-50_000i32..50_000).prop_map(|v| f64::from(v) / 1000.0)
}

/// One line of a print-like stream (no firmware retraction, which the analysis models as
/// extrusion but the tracker as a flag).
fn command() -> impl Strategy<Value = String> {
    let axes = || {
        proptest::collection::vec(
            (prop::sample::select(vec!['X', 'Y', 'Z', 'E']), coordinate()),
            0..4,
        )
    };
    prop_oneof![
        6 => (prop::bool::ANY, axes(), proptest::option::of(1u32..9000)).prop_map(|(g0, words, f)| {
            let mut s = String::from(if g0 { "G0" } else { "G1" });
            for (a, v) in words {
                s.push_str(&format!(" {a}{v}"));
            }
            if let Some(f) = f {
                s.push_str(&format!(" F{f}"));
            }
            s
        }),
        1 => Just("G90".to_string()),
        1 => Just("G91".to_string()),
        1 => Just("M82".to_string()),
        1 => Just("M83".to_string()),
        1 => Just("G20".to_string()),
        1 => Just("G21".to_string()),
        1 => axes().prop_map(|words| {
            let mut s = String::from("G92");
            for (a, v) in words {
                s.push_str(&format!(" {a}{v}"));
            }
            s
        }),
        1 => proptest::collection::vec(prop::sample::select(vec!["X", "Y", "Z"]), 0..3)
            .prop_map(|axes| format!("G28 {}", axes.join(" ")).trim_end().to_string()),
        1 => (prop::bool::ANY, proptest::option::of(0u8..2), 150u32..260)
            .prop_map(|(wait, tool, t)| format!(
                "M10{} {}S{t}",
                if wait { 9 } else { 4 },
                tool.map(|t| format!("T{t} ")).unwrap_or_default()
            )),
        1 => (prop::bool::ANY, 0u32..110).prop_map(|(wait, t)| format!("M1{}0 S{t}", if wait { 9 } else { 4 })),
        1 => (0u32..256).prop_map(|s| format!("M106 S{s}")),
        1 => Just("M107".to_string()),
        1 => (0u8..2).prop_map(|t| format!("T{t}")),
        1 => Just("M420 S1".to_string()),
        1 => (50u32..150).prop_map(|s| format!("M220 S{s}")),
        1 => Just("; a comment".to_string()),
    ]
}

fn stream() -> impl Strategy<Value = Vec<String>> {
    // Always heated so that a prelude exists.
    proptest::collection::vec(command(), 0..60).prop_map(|mut lines| {
        lines.insert(0, "M104 T1 S200".to_string());
        lines.insert(0, "M104 T0 S200".to_string());
        lines
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// The state a person sees: everything but the machine-coordinate offsets of Z (unknowable
/// after a power loss) and the line count.
fn assert_same_state(resumed: &MachineState, original: &MachineState, what: &str) {
    for (i, (r, o)) in resumed
        .position()
        .iter()
        .zip(original.position())
        .enumerate()
    {
        assert!(close(*r, o), "{what}: axis {i}: {r} != {o}");
    }
    assert_eq!(
        (
            resumed.absolute_positioning(),
            resumed.absolute_extrusion(),
            resumed.inches(),
            resumed.tool(),
            resumed.leveling(),
            resumed.speed_factor(),
        ),
        (
            original.absolute_positioning(),
            original.absolute_extrusion(),
            original.inches(),
            original.tool(),
            original.leveling(),
            original.speed_factor(),
        ),
        "{what}: modes"
    );
    for t in 0..2 {
        assert_eq!(
            resumed.hotend_target(t).unwrap_or(0.0),
            original.hotend_target(t).unwrap_or(0.0),
            "{what}: hotend {t}"
        );
    }
    assert_eq!(
        resumed.bed_target().unwrap_or(0.0),
        original.bed_target().unwrap_or(0.0),
        "{what}: bed"
    );
    assert_eq!(
        resumed.fan(0).unwrap_or(0),
        original.fan(0).unwrap_or(0),
        "{what}: fan"
    );
    if let Some(f) = original.feedrate_mm_min() {
        let r = resumed.feedrate_mm_min().expect("feedrate restored");
        assert!(close(r, f), "{what}: feedrate {r} != {f}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The tracker's net extrusion and last layer Z are the analysis' filament length and the
    /// Z of its last layer.
    #[test]
    fn tracker_agrees_with_the_analysis(lines in stream()) {
        let gcode = lines.join("\n") + "\n";
        let mut state = MachineState::new();
        apply(&mut state, &gcode);
        let analysis = analyze(gcode.as_bytes(), &AnalysisConfig::default());
        let filament: f64 = analysis.filament.iter().map(|f| f.length_mm).sum();
        prop_assert!(close(state.extruded_mm(), filament), "{} != {}", state.extruded_mm(), filament);
        prop_assert_eq!(state.lines(), analysis.lines);
        match (state.layer_z(), analysis.layers.last()) {
            (Some(z), Some(layer)) if analysis.layers.len() == analysis.layer_count as usize => {
                prop_assert!(close(z, layer.z), "{} != {}", z, layer.z);
            }
            (None, layer) => prop_assert!(layer.is_none()),
            _ => {}
        }
    }

    /// Cut a stream anywhere: a fresh printer given the prelude reaches the cut's state, and
    /// after the rest of the file both end in the same state.
    #[test]
    fn prelude_plus_rest_ends_like_the_whole_file(lines in stream(), cut in any::<prop::sample::Index>(), prime in prop::bool::ANY) {
        let cut = cut.index(lines.len() + 1);
        let (head, tail) = lines.split_at(cut);
        let mut original = MachineState::new();
        apply(&mut original, &(head.join("\n") + "\n"));
        let options = ResumeOptions { prime_mm: if prime { 3.0 } else { 0.0 }, ..ResumeOptions::default() };
        let prelude = original.resume_prelude(&options);
        let prelude = match prelude {
            Ok(p) => p,
            // A cut before the active tool was heated (after T1 with T1 at 0 °C is impossible
            // here: both start heated), or a position beyond the prelude's range.
            Err(e) => return Err(TestCaseError::reject(e.to_string())),
        };
        prop_assert!(!prelude.lines().any(|l| l == "G28" || l.contains("G28 Z") || l.starts_with("G28 X Y Z")));
        let mut resumed = MachineState::new();
        apply(&mut resumed, &prelude);
        assert_same_state(&resumed, &original, "after the prelude");
        let rest = tail.join("\n") + "\n";
        apply(&mut original, &rest);
        apply(&mut resumed, &rest);
        assert_same_state(&resumed, &original, "at the end");
    }
}

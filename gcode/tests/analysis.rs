//! The analysis on small hand-written programs whose answers are known.

use easyprint_gcode::analysis::{
    analyze, Analysis, AnalysisConfig, Analyzer, Diagnostic, MachineLimits, ThumbnailFormat,
};

fn run(gcode: &str) -> Analysis {
    analyze(gcode.as_bytes(), &AnalysisConfig::default())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn absolute_and_relative_modes() {
    // G91 makes E relative too; M82 after it forces E absolute; G90 clears the override.
    let a =
        run("G21\nG90\nM83\nG1 X10 E1\nG1 X20 E1\nG91\nG1 X5 E2\nM82\nG1 X5 E10\nG90\nG1 X0 E11\n");
    assert!(
        close(a.filament[0].length_mm, 11.0),
        "{}",
        a.filament[0].length_mm
    );
    let b = a.extrusion_bbox.unwrap();
    assert_eq!((b.min[0], b.max[0]), (0.0, 30.0));
}

#[test]
fn set_position_and_units() {
    let a = run("G92 E0\nG1 X1 E5\nG92 E0\nG1 X2 E5\nG20\nG1 X1 E5.1\n");
    // 5 + 5 + (5.1 in = 129.54 mm) - 5 mm
    assert!(
        close(a.filament[0].length_mm, 5.0 + 5.0 + 129.54 - 5.0),
        "{}",
        a.filament[0].length_mm
    );
    assert!(close(a.extrusion_bbox.unwrap().max[0], 25.4));
}

#[test]
fn homing_tools_and_firmware_retract() {
    // One E position is shared by all tools, as in Marlin.
    let a = run("G1 X50 Y50 Z5\nG28 X\nG1 Y60 E1\nT1\nG1 X10 E3\nG10\nG11\nT0\nG1 X20 E4\nT99\n");
    let b = a.extrusion_bbox.unwrap();
    assert_eq!(b.min[0], 0.0); // X was homed to 0 before the first extrusion
    assert_eq!(a.filament.len(), 2);
    assert!(close(a.filament[0].length_mm, 2.0), "{:?}", a.filament);
    // T1 extruded E1 -> E3 (2 mm); G10/G11 cancel out.
    assert!(close(a.filament[1].length_mm, 2.0), "{:?}", a.filament);
    assert_eq!(a.counts.tool_changes, 2);
    assert_eq!(a.counts.retractions, 1);
    assert!(matches!(
        a.diagnostics[..],
        [Diagnostic::ToolOutOfRange { tool: 99, .. }]
    ));
}

#[test]
fn arcs() {
    // Quarter circle of radius 10 around (10, 0) from (0, 0) to (10, 10), clockwise, with I/J
    // and the same with R.
    for arc in ["G2 X10 Y10 I10 J0 E1", "G2 X10 Y10 R10 E1"] {
        let a = run(&format!("G1 X0 Y0 F600\n{arc}\n"));
        assert_eq!(a.counts.arcs, 1);
        assert_eq!(a.diagnostic_count, 0, "{:?}", a.diagnostics);
        let b = a.extrusion_bbox.unwrap();
        // A clockwise quarter from (0,0) to (10,10) around (10,0) passes through (2.93, 7.07).
        assert!(
            b.min[0] >= -1e-9 && b.max[0] <= 10.0 + 1e-9 && b.max[1] <= 10.0 + 1e-9,
            "{arc}: {b:?}"
        );
        assert!(b.min[1] >= -1e-9, "{arc}: {b:?}");
        // Length 15.7 mm at 10 mm/s: a bit over 1.57 s with acceleration.
        assert!(
            a.estimated_time > 1.57 && a.estimated_time < 2.5,
            "{arc}: {}",
            a.estimated_time
        );
    }
    // Full circle: start == end with a centre.
    let a = run("G1 X0 Y0 F6000\nG3 X0 Y0 I5 J0 E1\n");
    let b = a.extrusion_bbox.unwrap();
    // Chords of about 1 mm come within 0.05 mm of the circle.
    assert!(
        (b.max[0] - 10.0).abs() < 0.05
            && (b.max[1] - 5.0).abs() < 0.05
            && (b.min[1] + 5.0).abs() < 0.05,
        "{b:?}"
    );
    let bad = run("G2 X10 Y10 E1\n");
    assert!(matches!(
        bad.diagnostics[..],
        [Diagnostic::InvalidArc { line: 1 }]
    ));
}

#[test]
fn time_follows_limits_from_file_or_caller() {
    // 100 mm at 50 mm/s, accelerations 1000 mm/s², no jerk: exactly 2.05 s.
    let program = "M201 X1000 Y1000\nM204 P1000 T1000\nM205 X0 Y0\nG1 X100 F3000\n";
    let a = run(program);
    assert!(
        (a.estimated_time - 2.05).abs() < 1e-9,
        "{}",
        a.estimated_time
    );
    assert_eq!(a.final_limits.acceleration, 1000.0);

    // Ignoring the file's limits, the caller's apply: 100 mm/s² -> 0.5 s ramps of 12.5 mm.
    let config = AnalysisConfig {
        use_file_limits: false,
        limits: MachineLimits {
            max_acceleration: [100.0; 4],
            acceleration: 100.0,
            travel_acceleration: 100.0,
            jerk: [0.0; 4],
            ..MachineLimits::default()
        },
        ..AnalysisConfig::default()
    };
    let b = analyze(program.as_bytes(), &config);
    assert!(
        (b.estimated_time - (1.0 + 75.0 / 50.0)).abs() < 1e-9,
        "{}",
        b.estimated_time
    );

    // A dwell adds its time.
    let c = run(&format!("{program}G4 P1500\nG4 S1\n"));
    assert!(
        (c.estimated_time - 4.55).abs() < 1e-9,
        "{}",
        c.estimated_time
    );
}

#[test]
fn limits_apply_from_the_line_that_sets_them() {
    // Moves are planned in batches: a limit change must still only reach the moves after it.
    // 100 mm at 50 mm/s from and to rest: 2.05 s at 1000 mm/s², then 2.5 s at 100 mm/s².
    let a = run(
        "M201 X1000 Y1000\nM204 P1000 T1000\nM205 X0 Y0\nG1 X100 F3000\n\
                 M201 X100\nM204 P100 T100\nG1 X0\n",
    );
    assert!(close(a.estimated_time, 4.55), "{}", a.estimated_time);
}

#[test]
fn move_words_last_wins_and_only_positive_feedrates_count() {
    // `F0` and `F-60` leave the feedrate as it was (50 mm/s); of two `X`, the last counts.
    let a = run("M201 X1000 Y1000\nM204 P1000 T1000\nM205 X0 Y0\nG1 F3000\n\
                 G1 X7 X100 E1 E2 F0 F-60\n");
    assert!(close(a.estimated_time, 2.05), "{}", a.estimated_time);
    assert_eq!(a.filament[0].length_mm, 2.0);
    assert_eq!(a.extrusion_bbox.unwrap().max[0], 100.0);
    // Relative moves add each axis's last word to the position once.
    let b = run("G91\nG1 X5 X10 E1\nG1 X10 E1\n");
    assert_eq!(b.extrusion_bbox.unwrap().max[0], 20.0);
    assert_eq!(b.filament[0].length_mm, 2.0);
}

#[test]
fn junction_deviation_is_used_when_set() {
    let square = "M205 X0 Y0 J0.05\nG1 X10 F6000\nG1 Y10\nG1 X0\nG1 Y0\n";
    let jd = run(square);
    let stop = run(&square.replace(" J0.05", ""));
    assert!(jd.final_limits.junction_deviation == Some(0.05));
    // Cornering at a junction speed is faster than stopping at every corner (zero jerk).
    assert!(
        jd.estimated_time < stop.estimated_time,
        "{} vs {}",
        jd.estimated_time,
        stop.estimated_time
    );
}

#[test]
fn layers_offsets_and_times() {
    let mut g = String::from("G28\nG1 Z0.2 F600\n");
    for layer in 0..5 {
        g.push_str(&format!(";LAYER:{layer}\n"));
        if layer > 0 {
            g.push_str(&format!("G1 Z{:.1}\n", 0.2 * (layer + 1) as f64));
        }
        // A z-hop inside a layer must not start a new layer.
        g.push_str("G1 X0 Y0 E1 F1200\nG1 Z5\nG1 X10\nG1 Z");
        g.push_str(&format!("{:.1}\nG1 X20 Y20 E2\n", 0.2 * (layer + 1) as f64));
    }
    let a = run(&g);
    assert_eq!(a.layer_count, 5);
    assert_eq!(a.metadata.layer_markers, 5);
    for (i, layer) in a.layers.iter().enumerate() {
        assert!((layer.z - 0.2 * (i + 1) as f64).abs() < 1e-9);
        let start = &g.as_bytes()[layer.offset as usize..];
        if i == 0 {
            // Layer 0 begins at the Z move before its marker.
            assert!(
                start.starts_with(b"G1 Z0.2 F600\n"),
                "{:?}",
                String::from_utf8_lossy(&start[..20])
            );
        } else {
            assert!(start.starts_with(format!(";LAYER:{i}\n").as_bytes()));
        }
        assert_eq!(a.layer_at_offset(layer.offset), Some(i));
    }
    let times: Vec<f64> = a.layers.iter().map(|l| l.start_time).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(times.iter().all(|t| t.is_finite() && *t < a.estimated_time));
    // Remaining time falls line by line from the total to zero.
    let mut previous = f64::INFINITY;
    for line in 1..=a.lines + 1 {
        let r = a.remaining_time_at_line(line);
        assert!(r <= previous + 1e-9, "line {line}");
        previous = r;
    }
    assert!(close(a.remaining_time_at_line(1), a.estimated_time));
    assert!(close(a.remaining_time_at_offset(g.len() as u64), 0.0));
}

#[test]
fn remaining_time_is_exact_at_checkpoints() {
    let mut g = String::new();
    for i in 0..1000 {
        g.push_str(&format!("G1 X{} Y{} E{} F3000\n", i % 2 * 10, i % 3, i));
    }
    let config = AnalysisConfig {
        checkpoint_every_lines: 1,
        ..AnalysisConfig::default()
    };
    let fine = analyze(g.as_bytes(), &config);
    let coarse = run(&g);
    assert_eq!(fine.checkpoints.len(), 1000);
    assert!(close(fine.estimated_time, coarse.estimated_time));
    for c in &coarse.checkpoints {
        assert!((fine.time_at_line(c.line) - c.time).abs() < 1e-9);
    }
    // Interpolated in between, within a few moves of the exact value.
    for line in [10, 500, 999] {
        assert!(
            (coarse.time_at_line(line) - fine.time_at_line(line)).abs() < 1.0,
            "line {line}"
        );
    }
}

#[test]
fn cura_header_metadata() {
    let a = run(";FLAVOR:Marlin\n;TIME:5711\n;Filament used: 5.24898m\n;Layer height: 0.2\n;MINX:87.701\n\
                 ;MINY:102.198\n;MINZ:0.2\n;MAXX:146.941\n;MAXY:132.802\n;MAXZ:48\n\
                 ;Generated with Cura_SteamEngine 4.13.0\n;LAYER_COUNT:240\n;LAYER:0\n;TYPE:SKIRT\n");
    let m = &a.metadata;
    assert_eq!(m.flavor.as_deref(), Some("Marlin"));
    assert_eq!(m.estimated_time, Some(5711.0));
    assert!((m.filament_used_mm[0] - 5248.98).abs() < 1e-6);
    assert_eq!(m.layer_height, Some(0.2));
    assert_eq!(m.layer_count, Some(240));
    assert_eq!(m.layer_markers, 1);
    assert_eq!(m.generator.as_deref(), Some("Cura_SteamEngine 4.13.0"));
    let b = m.bounding_box.unwrap();
    assert_eq!(
        (b.min, b.max),
        ([87.701, 102.198, 0.2], [146.941, 132.802, 48.0])
    );
    // The Cura command line's placeholders are not a box.
    let p = run(
        ";MINX:2.14748e+06\n;MINY:2.14748e+06\n;MINZ:2.14748e+06\n;MAXX:-2.14748e+06\n\
                 ;MAXY:-2.14748e+06\n;MAXZ:-2.14748e+06\n",
    );
    assert_eq!(p.metadata.bounding_box, None);
}

#[test]
fn prusa_footer_and_thumbnails() {
    use base64::Engine as _;
    let image: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&image);
    let mut g = String::from("; generated by PrusaSlicer 2.5.0 on 2026-11-22 at 23:20:10 UTC\n;\n");
    g.push_str(&format!("; thumbnail begin 16x12 {}\n", encoded.len()));
    for row in encoded.as_bytes().chunks(78) {
        g.push_str(&format!("; {}\n", std::str::from_utf8(row).unwrap()));
    }
    g.push_str("; thumbnail end\n;\n");
    g.push_str(&format!(
        "; thumbnail_JPG begin 4x4 {}\n; {}\n; thumbnail_JPG end\n",
        4, "AAEC"
    ));
    g.push_str(
        "G1 X1 E1\n; filament used [mm] = 1546.91\n; filament used [cm3] = 3.72\n\
                ; filament used [g] = 4.61\n; estimated printing time (normal mode) = 1h 2m 3s\n\
                ; estimated printing time (silent mode) = 1d 0h 0m 1s\n",
    );
    let a = run(&g);
    assert_eq!(a.diagnostic_count, 0, "{:?}", a.diagnostics);
    assert_eq!(a.thumbnails.len(), 2);
    let t = &a.thumbnails[0];
    assert_eq!(
        (t.width, t.height, t.format, t.line),
        (16, 12, ThumbnailFormat::Png, 3)
    );
    assert_eq!(t.data, image);
    assert_eq!(a.thumbnails[1].format, ThumbnailFormat::Jpg);
    assert_eq!(a.thumbnails[1].data, [0, 1, 2]);
    let m = &a.metadata;
    assert_eq!(m.estimated_time, Some(3723.0));
    assert_eq!(m.estimated_time_silent, Some(86401.0));
    assert_eq!(m.filament_used_mm, [1546.91]);
    assert_eq!(m.filament_used_cm3, [3.72]);
    assert_eq!(m.filament_used_g, [4.61]);
    assert!(m
        .generator
        .as_deref()
        .unwrap()
        .starts_with("PrusaSlicer 2.5.0"));
}

#[test]
fn broken_thumbnails_are_reported_not_fatal() {
    let a = run("; thumbnail begin 2x2 8\n; !!!!\n; thumbnail end\n; thumbnail begin 2x2 8\n; AAAA\nG1 X1\n");
    assert!(a.thumbnails.is_empty());
    assert_eq!(a.diagnostic_count, 2, "{:?}", a.diagnostics);
    assert!(a
        .diagnostics
        .iter()
        .all(|d| matches!(d, Diagnostic::Thumbnail { .. })));
}

#[test]
fn streaming_in_any_chunks_equals_whole_buffer() {
    let g = "; thumbnail begin 1x1 4\n; AAEC\n; thumbnail end\nM83\nG1 Z0.2\r\nG1 X10 Y10 E1 F1200\nG2 X20 Y10 I5 J0 E1\n\
             ;LAYER:1\nG1 Z0.4\nG1 X0 E2 ; done\nG1 X@\nM117 bye";
    let whole = run(g);
    for size in [1, 2, 3, 5, 8, 13, 1000] {
        let mut s = Analyzer::new(AnalysisConfig::default());
        for chunk in g.as_bytes().chunks(size) {
            s.feed(chunk);
        }
        assert_eq!(s.finish(), whole, "chunk size {size}");
    }
    assert_eq!(whole.diagnostic_count, 1);
    assert_eq!(whole.lines, 12);
}

/// Whole lines inside a chunk are parsed in place and the rest through the splitter: both must
/// agree on line numbers, offsets, CRLF and over-long lines wherever the chunks are cut.
#[test]
fn streaming_agrees_on_long_lines_and_crlf_at_any_cut() {
    let config = AnalysisConfig {
        max_line_len: 24,
        checkpoint_every_lines: 1,
        ..AnalysisConfig::default()
    };
    let g = "G1 Z0.2 F600\r\n;LAYER:0\r\nG1 X10 Y10 E1 F1200\r\n; a comment longer than the line limit\n\
             G1 X20 E2\nG1 X20 Y20 E3 ; this one is too long too\r\nG1 Y0 E4\r\nM117 end";
    let whole = analyze(g.as_bytes(), &config);
    assert_eq!(whole.diagnostic_count, 2, "{:?}", whole.diagnostics);
    assert_eq!(whole.checkpoints.len() as u64, whole.lines);
    for size in 1..g.len() {
        let mut s = Analyzer::new(config.clone());
        for chunk in g.as_bytes().chunks(size) {
            s.feed(chunk);
        }
        assert_eq!(s.finish(), whole, "chunk size {size}");
    }
}

#[test]
fn purge_lines_are_not_layers_when_the_file_has_feature_tags() {
    let g =
        "G1 Z0.3\nG1 X0 Y200 E15\nG1 Z0.2\n;LAYER:0\nG0 X5 Y5\n;TYPE:WALL-OUTER\nG1 X10 Y10 E16\n\
             G1 Z0.4\n;LAYER:1\nG1 X20 E17\n";
    let a = run(g);
    assert_eq!(a.layer_count, 2);
    assert_eq!(a.layers.iter().map(|l| l.z).collect::<Vec<_>>(), [0.2, 0.4]);
    assert_eq!(a.extrusion_bbox.unwrap().max[1], 200.0);
    assert_eq!(a.print_bbox.unwrap().max[1], 10.0);
    assert!(close(a.filament[0].printed_mm, 2.0));
    // Without tags every extrusion layer counts.
    assert_eq!(run(&g.replace(";TYPE:WALL-OUTER\n", "")).layer_count, 3);
}

#[test]
fn bounding_boxes_exist_only_for_what_was_extruded() {
    // Travel, retraction and a Z move only: no extrusion, so no boxes.
    let a = run("G1 X10 Y10\nG1 E-1\nG1 Z2\nG1 E1\n");
    assert_eq!((a.extrusion_bbox, a.print_bbox), (None, None));
    // Untagged extrusion: an extrusion box, no print box. Its first point is the move's start.
    let a = run("G1 X-5 Y-0.0 Z0.2\nG1 X-1 Y3 E1\n");
    let b = a.extrusion_bbox.unwrap();
    assert_eq!((b.min, b.max), ([-5.0, 0.0, 0.2], [-1.0, 3.0, 0.2]));
    assert!(b.min[1].is_sign_negative(), "the start's -0.0 is kept");
    assert_eq!(a.print_bbox, None);
    // Tagged extrusion after untagged: the print box holds only the tagged segment.
    let a = run("G1 X0 Y0 Z0.2\nG1 X50 E1\n;TYPE:WALL-OUTER\nG1 X50 Y20 E2\n");
    let p = a.print_bbox.unwrap();
    assert_eq!((p.min, p.max), ([50.0, 0.0, 0.2], [50.0, 20.0, 0.2]));
    assert_eq!(a.extrusion_bbox.unwrap().min[0], 0.0);
}

/// A slicer-like program: mostly plain `G0`/`G1` moves (which the whole-buffer analysis reads
/// straight into the move), among mode changes, tags, limits and lines the move path leaves to
/// the parser.
fn move_program() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let number = prop_oneof![
        "-?[0-9]{1,3}\\.[0-9]{1,5}",
        "-?\\.[0-9]{1,5}",
        "-?[0-9]{1,3}",
        Just("0".to_string()),
        Just("-0".to_string()),
    ];
    let word = ("[XYZEF]", number).prop_map(|(l, n)| format!("{l}{n}"));
    let plain = ("G[01]", proptest::collection::vec(word, 1..5))
        .prop_map(|(g, words)| format!("{g} {}", words.join(" ")));
    let other = prop_oneof![
        Just("M83"),
        Just("M82"),
        Just("G91"),
        Just("G90"),
        Just("G92 E0"),
        Just("G92 X1 Y-0"),
        Just("G20"),
        Just("G21"),
        Just(";TYPE:WALL-OUTER"),
        Just(";TYPE:Custom"),
        Just(";LAYER:1"),
        Just("M204 P800"),
        Just("M204 S1250 T1500"),
        Just("M205 X8 Y8"),
        Just("G1 X1 Y2 ; comment"),
        Just("G1 X3 S2"),
        Just("g1 x4 e5"),
        Just("G1  X5"),
        Just("G1 X6Y7E8"),
        Just("G1 F0"),
        Just("G4 P10"),
        Just("G28 X"),
        Just("T1"),
    ]
    .prop_map(str::to_string);
    let line = prop_oneof![12 => plain, 1 => other];
    (proptest::collection::vec(line, 20..200), "(\n|\r\n)")
        .prop_map(|(lines, end)| lines.join(&end))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// The whole-buffer analysis reads plain moves straight into the move; streaming in chunks
    /// shorter than a line parses every line first (no chunk holds the move path's window). Both
    /// give the same analysis, bit for bit.
    #[test]
    fn plain_moves_read_straight_into_the_move_equal_parsed_moves(
        program in move_program(),
        size in 1usize..24,
    ) {
        let config = AnalysisConfig { checkpoint_every_lines: 5, ..AnalysisConfig::default() };
        let whole = analyze(program.as_bytes(), &config);
        let mut streaming = Analyzer::new(config);
        for chunk in program.as_bytes().chunks(size) {
            streaming.feed(chunk);
        }
        let streamed = streaming.finish();
        proptest::prop_assert_eq!(format!("{streamed:?}"), format!("{whole:?}"));
    }
}

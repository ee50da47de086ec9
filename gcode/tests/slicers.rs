//! Real slicer output: the test makes its own STL models, slices them with CuraEngine (and
//! PrusaSlicer when installed), and requires zero parse errors, a print bounding box where the
//! model was placed, and estimates in line with the slicer's own.
//!
//! Skips with a message when a slicer is not installed (`scripts/install-deps` installs CuraEngine).

use std::path::{Path, PathBuf};
use std::process::Command;

use easyprint_gcode::analysis::{analyze, analyze_reader, Analysis, AnalysisConfig};
use easyprint_gcode::{ParseOptions, Parser};

const CURA_RESOURCES: &str = "/usr/share/cura/resources";
/// CuraEngine places mesh coordinates relative to the bed centre (235 x 235 mm on the Ender 3).
const ENDER3_CENTRE: f64 = 117.5;

type Triangle = [[f32; 3]; 3];

/// A prism: `polygon` (counter-clockwise, star-shaped around its first vertex) from z0 to z1.
fn prism(polygon: &[(f32, f32)], z0: f32, z1: f32) -> Vec<Triangle> {
    let n = polygon.len();
    let mut t = Vec::new();
    for i in 1..n - 1 {
        let (a, b, c) = (polygon[0], polygon[i], polygon[i + 1]);
        t.push([[a.0, a.1, z1], [b.0, b.1, z1], [c.0, c.1, z1]]);
        t.push([[a.0, a.1, z0], [c.0, c.1, z0], [b.0, b.1, z0]]);
    }
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + 1) % n]);
        t.push([[a.0, a.1, z0], [b.0, b.1, z0], [b.0, b.1, z1]]);
        t.push([[a.0, a.1, z0], [b.0, b.1, z1], [a.0, a.1, z1]]);
    }
    t
}

fn rectangle(x0: f32, y0: f32, x1: f32, y1: f32) -> Vec<(f32, f32)> {
    vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
}

fn write_stl(path: &Path, triangles: &[Triangle]) {
    let mut bytes = vec![0u8; 80];
    bytes.extend_from_slice(&(triangles.len() as u32).to_le_bytes());
    for tri in triangles {
        bytes.extend_from_slice(&[0u8; 12]); // normal: recomputed by slicers
        for v in tri {
            for c in v {
                bytes.extend_from_slice(&c.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&[0u8; 2]);
    }
    std::fs::write(path, bytes).unwrap();
}

/// The test models with their bounding boxes (min, max) in model coordinates.
struct Model {
    name: &'static str,
    parts: Vec<Vec<Triangle>>,
    min: [f64; 3],
    max: [f64; 3],
}

fn models() -> Vec<Model> {
    let circle: Vec<(f32, f32)> = (0..48)
        .map(|i| {
            let a = i as f32 * std::f32::consts::TAU / 48.0;
            (10.0 * a.cos(), 10.0 * a.sin())
        })
        .collect();
    // An L profile in XZ, extruded along Y: a 15 mm shelf sticking out at Z 10-15.
    let profile = [
        (0.0, 15.0),
        (0.0, 0.0),
        (10.0, 0.0),
        (10.0, 10.0),
        (25.0, 10.0),
        (25.0, 15.0),
    ];
    let overhang: Vec<Triangle> = prism(&profile, -5.0, 5.0)
        .into_iter()
        // (x, y, z) -> (x, z, y) swaps handedness, so reverse the winding too.
        .map(|[a, b, c]| [[a[0], a[2], a[1]], [c[0], c[2], c[1]], [b[0], b[2], b[1]]])
        .collect();
    vec![
        Model {
            name: "cube",
            parts: vec![prism(&rectangle(-10.0, -10.0, 10.0, 10.0), 0.0, 10.0)],
            min: [-10.0, -10.0, 0.0],
            max: [10.0, 10.0, 10.0],
        },
        Model {
            name: "cylinder",
            parts: vec![prism(&circle, 0.0, 8.0)],
            min: [-10.0, -10.0, 0.0],
            max: [10.0, 10.0, 8.0],
        },
        Model {
            name: "overhang",
            parts: vec![overhang],
            min: [0.0, -5.0, 0.0],
            max: [25.0, 5.0, 15.0],
        },
        Model {
            name: "small_parts",
            parts: [(-30.0, -30.0), (10.0, -30.0), (-30.0, 10.0), (10.0, 10.0)]
                .iter()
                .map(|&(x, y)| prism(&rectangle(x, y, x + 6.0, y + 6.0), 0.0, 4.0))
                .collect(),
            min: [-30.0, -30.0, 0.0],
            max: [16.0, 16.0, 4.0],
        },
    ]
}

fn installed(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok()
}

fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn stl_files(dir: &Path, model: &Model) -> Vec<PathBuf> {
    model
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(format!("{}_{i}.stl", model.name));
            write_stl(&path, part);
            path
        })
        .collect()
}

/// Checks shared by every slicer: no parse problems, the print bbox where the model is.
fn check_common(name: &str, a: &Analysis, offset: [f64; 2], model: &Model, gcode: &[u8]) {
    assert_eq!(a.diagnostic_count, 0, "{name}: {:?}", a.diagnostics);
    let mut strict = Parser::new(gcode, ParseOptions::strict());
    while let Some(line) = strict.next_line() {
        line.unwrap_or_else(|e| panic!("{name}: strict parse failed: {e}"));
    }
    let bbox = a
        .print_bbox
        .unwrap_or_else(|| panic!("{name}: no print bbox"));
    for (axis, shift) in offset.iter().enumerate() {
        let (lo, hi) = (model.min[axis] + shift, model.max[axis] + shift);
        // Extrusion centre lines sit half a line width (about 0.2 mm) inside the outline.
        assert!(
            bbox.min[axis] >= lo - 0.05 && bbox.min[axis] <= lo + 0.6,
            "{name}: axis {axis} min {} vs model {lo}",
            bbox.min[axis]
        );
        assert!(
            bbox.max[axis] <= hi + 0.05 && bbox.max[axis] >= hi - 0.6,
            "{name}: axis {axis} max {} vs model {hi}",
            bbox.max[axis]
        );
    }
    assert!(
        bbox.min[2] > 0.05 && bbox.min[2] <= 0.35,
        "{name}: first layer Z {}",
        bbox.min[2]
    );
    assert!(
        bbox.max[2] <= model.max[2] + 0.01 && bbox.max[2] >= model.max[2] - 0.3,
        "{name}: top Z {} vs model {}",
        bbox.max[2],
        model.max[2]
    );
    assert!(
        a.estimated_time > 0.0 && a.filament[0].length_mm > 0.0,
        "{name}"
    );
    // Layers: one per 0.2 mm of height, plus possibly the start G-code's purge line.
    let expected = (model.max[2] / 0.2).round() as u64;
    assert!(
        a.layer_count >= expected - 1 && a.layer_count <= expected + 1,
        "{name}: {} layers, expected about {expected}",
        a.layer_count
    );
    // Streaming gives the same result as the whole buffer.
    let streamed = analyze_reader(std::io::Cursor::new(gcode), &AnalysisConfig::default()).unwrap();
    assert_eq!(&streamed, a, "{name}: streaming differs");
}

/// Prints our estimates against the slicer's and checks the time ratio and the printed filament.
fn compare_with_slicer(
    slicer: &str,
    name: &str,
    a: &Analysis,
    time: f64,
    filament_mm: f64,
    time_ratio: std::ops::Range<f64>,
    filament_tolerance: f64,
) {
    let ratio = a.estimated_time / time;
    let printed = a.filament[0].printed_mm;
    println!(
        "{name}: ours {:.0} s vs {slicer} {time:.0} s (ratio {ratio:.3}); \
         filament ours {printed:.2} mm vs {slicer} {filament_mm:.2} mm",
        a.estimated_time
    );
    assert!(time_ratio.contains(&ratio), "{name}: time ratio {ratio}");
    assert!(
        (printed - filament_mm).abs() <= filament_tolerance * filament_mm + 0.05,
        "{name}: printed filament {printed} vs {slicer} {filament_mm}"
    );
}

#[test]
fn cura_engine_output() {
    if !installed("CuraEngine", "help") {
        println!("SKIPPED: CuraEngine is not installed (scripts/install-deps installs it)");
        return;
    }
    let definition = format!("{CURA_RESOURCES}/definitions/creality_ender3.def.json");
    assert!(
        Path::new(&definition).exists(),
        "Cura definitions missing: {definition}"
    );
    let dir = workdir();
    for model in models() {
        let out = dir.path().join(format!("{}.gcode", model.name));
        let mut cmd = Command::new("CuraEngine");
        cmd.env(
            "CURA_ENGINE_SEARCH_PATH",
            format!("{CURA_RESOURCES}/definitions:{CURA_RESOURCES}/extruders"),
        )
        .args(["slice", "-v", "-m1", "-j", &definition])
        .args(["-s", "layer_height=0.2", "-s", "layer_height_0=0.2"])
        .args(["-s", "adhesion_type=none", "-s", "infill_line_distance=4"]);
        for stl in stl_files(dir.path(), &model) {
            cmd.arg("-l").arg(stl);
        }
        let result = cmd.arg("-o").arg(&out).output().unwrap();
        let log = String::from_utf8_lossy(&result.stderr);
        assert!(
            result.status.success(),
            "{}: CuraEngine failed: {log}",
            model.name
        );
        let gcode = std::fs::read(&out).unwrap();
        let a = analyze(&gcode, &AnalysisConfig::default());
        check_common(model.name, &a, [ENDER3_CENTRE; 2], &model, &gcode);
        assert_eq!(
            a.metadata.layer_count,
            Some(a.metadata.layer_markers),
            "{}",
            model.name
        );

        // Cura's own figures, from its log (the CLI writes placeholders into the file header).
        let figure = |key: &str| -> f64 {
            let line = log
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("{key} in log"));
            line[key.len()..].trim().parse().unwrap()
        };
        let cura_time = figure("Print time (s):");
        let cura_mm = figure("Filament (mm^3):") / (std::f64::consts::PI * 0.875 * 0.875);
        // Cura's log gives whole mm³, hence the 0.5 % on filament.
        compare_with_slicer("Cura", model.name, &a, cura_time, cura_mm, 0.7..1.5, 0.005);
        // The net length also has the start G-code's 30 mm purge, less the final retraction
        // (6.5 mm) and the end G-code's 4 mm.
        let extra = a.filament[0].length_mm - a.filament[0].printed_mm;
        assert!(
            (19.0..20.0).contains(&extra),
            "{}: net - printed = {extra} mm",
            model.name
        );
    }
}

#[test]
fn prusa_slicer_output() {
    if !installed("prusa-slicer", "--help") {
        println!("SKIPPED: prusa-slicer is not installed");
        return;
    }
    let dir = workdir();
    for model in models() {
        let out = dir.path().join(format!("{}.gcode", model.name));
        let stls = stl_files(dir.path(), &model);
        let mut cmd = Command::new("prusa-slicer");
        cmd.args(["--export-gcode", "--merge", "--dont-arrange"])
            .args([
                "--gcode-flavor",
                "marlin2",
                "--machine-limits-usage",
                "emit_to_gcode",
            ])
            .args(["--layer-height", "0.2", "--first-layer-height", "0.2"])
            .args([
                "--skirts",
                "0",
                "--brim-width",
                "0",
                "--start-gcode",
                "G28\nG1 Z5 F3000",
            ])
            .arg("-o")
            .arg(&out)
            .args(&stls);
        let result = cmd.output().unwrap();
        assert!(
            result.status.success(),
            "{}: prusa-slicer failed: {}{}",
            model.name,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        let gcode = std::fs::read(&out).unwrap();
        let a = analyze(&gcode, &AnalysisConfig::default());
        // --dont-arrange keeps model coordinates: PrusaSlicer then centres the merged object on
        // the bed, so compare sizes through the bbox centre it reports.
        let bbox = a.print_bbox.expect("print bbox");
        let centre = [
            (bbox.min[0] + bbox.max[0]) / 2.0 - (model.min[0] + model.max[0]) / 2.0,
            (bbox.min[1] + bbox.max[1]) / 2.0 - (model.min[1] + model.max[1]) / 2.0,
        ];
        check_common(model.name, &a, centre, &model, &gcode);
        let ps_time = a
            .metadata
            .estimated_time
            .expect("PrusaSlicer time estimate");
        let ps_mm = a.metadata.filament_used_mm[0];
        compare_with_slicer(
            "PrusaSlicer",
            model.name,
            &a,
            ps_time,
            ps_mm,
            0.95..1.05,
            0.001,
        );
    }
}

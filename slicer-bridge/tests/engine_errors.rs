//! Error mapping for engine outcomes our pre-flight checks make unreachable with the real
//! engine. A stand-in script reproduces what CuraEngine 4.13 was measured to do in each case
//! (exit code, stderr lines, output file); see the crate README for the measurements.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use easyprint_slicer::model::{write_binary_stl, Mesh};
use easyprint_slicer::settings::Resources;
use easyprint_slicer::{
    CancelToken, CuraEngine, CuraOptions, CuraSlicer, Profile, SliceError, SliceRequest, Slicer,
};

const HEADER: &str = ";FLAVOR:Marlin\n;TIME:6666\n;Filament used: 0m\n;Layer height: 0.2\n\n;Generated with Cura_SteamEngine 4.13.0\nG28\n";

/// A stand-in engine: answers `help` with a version, then behaves as `body` says.
fn stand_in(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = help ]; then echo 'Cura_SteamEngine version 4.13.0' >&2; exit 0; fi\n\
         out=''\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then out=\"$2\"; fi; shift; done\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run(engine: &Path, dir: &Path) -> (Result<easyprint_slicer::SliceReport, SliceError>, PathBuf) {
    let slicer = CuraSlicer::new(
        CuraEngine::at(engine).unwrap(),
        Resources::discover(None).unwrap(),
        CuraOptions::default(),
    );
    let model = dir.join("cube.stl");
    let t = |a: [f32; 3], b: [f32; 3], c: [f32; 3]| [a, b, c];
    let mesh = Mesh {
        triangles: vec![
            t([0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]),
            t([0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]),
        ],
        dropped_degenerate: 0,
    };
    let mut bytes = Vec::new();
    write_binary_stl(&mesh, &mut bytes).unwrap();
    std::fs::write(&model, bytes).unwrap();
    let output = dir.join("out.gcode");
    let r = slicer.slice(SliceRequest {
        model: &model,
        profile: &Profile::machine("anet3d_a8"),
        output: &output,
        progress: None,
        cancel: CancelToken::new(),
    });
    (r, output)
}

#[test]
fn engine_outcomes_map_to_typed_errors_and_publish_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layers = "printf ';LAYER_COUNT:1\\n;LAYER:0\\nG1 X1 E1\\n' >> \"$out\"";
    type Case = (&'static str, String, fn(&SliceError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "missing_extruder",
            format!("printf '{HEADER}' > \"$out\"; {layers}; echo ';End of Gcode' >> \"$out\"; echo '[ERROR] Couldn'\"'\"'t find definition file with ID: anet3d_extruder_0' >&2; exit 0"),
            |e| matches!(e, SliceError::MissingDefinition(m) if m.contains("anet3d_extruder_0")),
        ),
        (
            "error_rc0",
            format!("printf '{HEADER}' > \"$out\"; {layers}; echo ';End of Gcode' >> \"$out\"; echo '[ERROR] something odd' >&2; exit 0"),
            |e| matches!(e, SliceError::EngineReportedErrors { errors } if errors == &["something odd"]),
        ),
        (
            "no_layers",
            format!("printf '{HEADER}' > \"$out\"; echo ';End of Gcode' >> \"$out\"; exit 0"),
            |e| matches!(e, SliceError::NoLayers),
        ),
        (
            "truncated",
            format!("printf '{HEADER}' > \"$out\"; {layers}; exit 0"),
            |e| matches!(e, SliceError::EngineFailed { code: 0, .. }),
        ),
        (
            "missing_setting",
            "echo \"[ERROR] Trying to retrieve setting with no value given: 'mesh_rotation_matrix'\" >&2; exit 2".to_owned(),
            |e| matches!(e, SliceError::EngineFailed { code: 2, errors } if errors[0].contains("mesh_rotation_matrix")),
        ),
        (
            "crash",
            format!("printf '{HEADER}' > \"$out\"; {layers}; kill -SEGV $$"),
            |e| matches!(e, SliceError::EngineCrashed { signal: 11, .. }),
        ),
    ];
    for (name, body, expected) in cases {
        let engine = stand_in(d, name, &body);
        let (r, output) = run(&engine, d);
        let e = r.expect_err(name);
        assert!(expected(&e), "{name}: {e:?}");
        assert!(!output.exists(), "{name}: nothing published");
    }
}

#[test]
fn header_placeholders_are_replaced_from_the_engine_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = format!(
        "printf '{HEADER}' > \"$out\"; printf ';LAYER_COUNT:1\\n;LAYER:0\\nG1 X1 E1\\n;TIME_ELAPSED:12.5\\n;End of Gcode\\n' >> \"$out\"\n\
         printf 'Progress:export:1:1\\t1.0%%\\nGcode header after slicing:\\n;FLAVOR:Marlin\\n;TIME:13\\n;Filament used: 0.00042m\\n;Layer height: 0.2\\nEnd of gcode header.\\nPrint time (s): 13\\n' >&2"
    );
    let engine = stand_in(d, "ok", &body);
    let (r, output) = run(&engine, d);
    let report = r.unwrap();
    let text = std::fs::read_to_string(output).unwrap();
    assert!(
        text.starts_with(";FLAVOR:Marlin\n;TIME:13\n;Filament used: 0.00042m\n"),
        "{text}"
    );
    assert_eq!(report.stats.print_time_s, Some(13));
    assert_eq!(report.stats.filament_mm, Some(0.42));
    assert!(report.engine.contains("4.13.0"));
}

#[test]
fn missing_engine_says_how_to_install() {
    let e = CuraEngine::at("/nonexistent/CuraEngine").unwrap_err();
    assert!(matches!(e, SliceError::EngineNotFound(_)));
    let dir = tempfile::tempdir().unwrap();
    let fake = stand_in(dir.path(), "notcura", "exit 0");
    std::fs::write(&fake, "#!/bin/sh\necho hello\n").unwrap();
    let e = CuraEngine::at(&fake).unwrap_err();
    assert!(
        e.to_string().contains("does not look like CuraEngine"),
        "{e}"
    );
    let e = Resources::at(dir.path()).unwrap_err();
    assert!(e.to_string().contains("fdmprinter"), "{e}");
}

//! The PrusaSlicer backend with the real `prusa-slicer` (Debian package) and its vendor
//! bundles, which scripts/install-deps installs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use easyprint_gcode::analysis::{analyze, AnalysisConfig};
use easyprint_slicer::model::shapes::{cuboid, sphere};
use easyprint_slicer::model::{save_binary_stl, FitError, Mesh};
use easyprint_slicer::settings::SettingsError;
use easyprint_slicer::{
    CancelToken, Profile, Progress, PrusaPreset, PrusaPresets, PrusaSlicer, RunOptions, SliceError,
    SliceReport, SliceRequest, Slicer,
};

/// The slicer (always `Some`: the `let Some(..) else` in tests reads well).
fn slicer() -> Option<PrusaSlicer> {
    Some(
        PrusaSlicer::locate(None, RunOptions::default())
            .expect("prusa-slicer (scripts/install-deps installs it)"),
    )
}

fn write_model(dir: &Path, name: &str, mesh: Mesh) -> PathBuf {
    let path = dir.join(name);
    save_binary_stl(&mesh, &path).unwrap();
    path
}

fn profile(extra: &[&str]) -> Profile {
    let mut p = Profile::prusa(PrusaPresets::default());
    for e in extra {
        p = p.set(e).unwrap();
    }
    p
}

fn run<'a>(
    s: &PrusaSlicer,
    model: &'a Path,
    p: &'a Profile,
    out: &'a Path,
    progress: Option<&'a mut dyn FnMut(&Progress)>,
) -> Result<SliceReport, SliceError> {
    s.slice(SliceRequest {
        model,
        profile: p,
        output: out,
        progress,
        cancel: CancelToken::new(),
    })
}

#[test]
fn slices_with_overrides_progress_and_true_bbox() {
    let Some(s) = slicer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [20.0, 10.0, 6.0]));
    let out = dir.path().join("a.gcode");
    let mut seen = Vec::new();
    let report = run(
        &s,
        &model,
        &profile(&["layer_height=0.3", "first_layer_height=0.3", "skirts=0"]),
        &out,
        Some(&mut |p: &Progress| seen.push(p.fraction)),
    )
    .unwrap();
    assert_eq!(report.stats.layer_count, 20);
    assert!(report.stats.print_time_s.unwrap() > 0);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&1.0),
        "{seen:?}"
    );
    let gcode = std::fs::read(&out).unwrap();
    let a = analyze(&gcode, &AnalysisConfig::default());
    let bb = a.print_bbox.unwrap();
    // Default bed 200 x 200: the part is centred at (100, 100).
    assert!(
        (bb.min[0] - 90.0).abs() < 0.5 && (bb.max[0] - 110.0).abs() < 0.5,
        "{bb:?}"
    );
    assert!(
        (bb.min[1] - 95.0).abs() < 0.5 && (bb.max[1] - 105.0).abs() < 0.5,
        "{bb:?}"
    );
    let dense = dir.path().join("b.gcode");
    run(
        &s,
        &model,
        &profile(&[
            "layer_height=0.3",
            "first_layer_height=0.3",
            "skirts=0",
            "fill_density=60%",
        ]),
        &dense,
        None,
    )
    .unwrap();
    let e = |path: &Path| {
        let a = analyze(&std::fs::read(path).unwrap(), &AnalysisConfig::default());
        a.filament.iter().map(|f| f.length_mm).sum::<f64>()
    };
    assert!(e(&dense) > e(&out) * 1.1, "{} vs {}", e(&dense), e(&out));
}

#[test]
fn bad_input_is_typed() {
    let Some(s) = slicer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [5.0; 3]));
    let out = dir.path().join("x.gcode");
    let r = run(&s, &model, &profile(&["layer_hieght=0.2"]), &out, None);
    assert!(
        matches!(
            r,
            Err(SliceError::Settings(SettingsError::UnknownSetting { .. }))
        ),
        "{r:?}"
    );
    let r = run(&s, &model, &profile(&["layer_height=thick"]), &out, None);
    assert!(
        matches!(&r, Err(SliceError::EngineFailed { code: 1, errors }) if errors.iter().any(|e| e.contains("Invalid value"))),
        "{r:?}"
    );
    let big = write_model(dir.path(), "big.stl", cuboid([0.0; 3], [300.0, 10.0, 10.0]));
    let r = run(&s, &big, &profile(&[]), &out, None);
    assert!(
        matches!(
            r,
            Err(SliceError::DoesNotFit(FitError::TooLarge { axis: 'X', .. }))
        ),
        "{r:?}"
    );
    assert!(!out.exists());
}

#[test]
fn cancel_kills_prusaslicer() {
    let Some(s) = slicer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "sphere.stl", sphere(30.0, 120));
    let out = dir.path().join("c.gcode");
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    // Cancel once the engine reports it is working (a condition, not a delay).
    let mut cancelled_at = None;
    let mut on_progress = |_: &Progress| {
        if cancelled_at.is_none() {
            c2.cancel();
            cancelled_at = Some(Instant::now());
        }
    };
    let r = s.slice(SliceRequest {
        model: &model,
        profile: &profile(&["layer_height=0.05", "first_layer_height=0.1"]),
        output: &out,
        progress: Some(&mut on_progress),
        cancel,
    });
    let latency = cancelled_at.expect("progress before the end").elapsed();
    assert!(matches!(r, Err(SliceError::Cancelled)), "{r:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    assert!(!out.exists());
}

const CREALITY: &str = "/usr/share/PrusaSlicer/profiles/Creality.ini";

fn ender3() -> PrusaPresets {
    PrusaPresets {
        printer: Some(PrusaPreset::bundle(
            CREALITY,
            "Creality Ender-3 (0.4 mm nozzle)",
        )),
        print: None,
        filament: Some(PrusaPreset::bundle(CREALITY, "Generic PLA @CREALITY")),
    }
}

/// Z of the first extrusion of each layer (PrusaSlicer marks layer changes `;LAYER_CHANGE`).
fn layer_z(gcode: &str) -> Vec<f64> {
    gcode
        .lines()
        .filter_map(|l| l.strip_prefix(";Z:"))
        .map(|z| z.trim().parse().unwrap())
        .collect()
}

#[test]
fn vendor_bundle_presets_with_inheritance_and_quality() {
    let Some(s) = slicer() else { return };
    // The print preset comes from the quality, looked up in the printer's bundle.
    let p = Profile::prusa(ender3()).quality_type("0.20 mm NORMAL (0.4 mm nozzle) @CREALITY");
    let c = s.config(&p).unwrap();
    // From [printer:*ENDER3*] through two levels of `inherits`.
    assert_eq!(c.values["bed_shape"], "3x3,228x3,228x228,3x228");
    assert_eq!(c.values["nozzle_diameter"], "0.4");
    // From [filament:*PLA*] (inherited by Generic PLA @CREALITY).
    assert_eq!(c.values["first_layer_temperature"], "210");
    assert_eq!(c.values["layer_height"].parse::<f64>().unwrap(), 0.2);
    assert!(!c.values.contains_key("inherits"));
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [10.0, 10.0, 2.0]));
    let out = dir.path().join("e3.gcode");
    run(&s, &model, &p, &out, None).unwrap();
    let gcode = std::fs::read_to_string(&out).unwrap();
    assert!(gcode.contains("M109 S210"), "first layer temperature");
    let z = layer_z(&gcode);
    assert!((z[1] - z[0] - 0.2).abs() < 1e-6, "{z:?}");
    // Centred on the bed, whose corner is at (3, 3): centre (115.5, 115.5).
    let a = analyze(gcode.as_bytes(), &AnalysisConfig::default());
    let bb = a.print_bbox.unwrap();
    let mid = (bb.min[0] + bb.max[0]) / 2.0;
    assert!((mid - 115.5).abs() < 0.5, "{bb:?}");
    // A layer height as quality.
    let fine = s
        .config(&Profile::prusa(ender3()).quality_type("0.12mm"))
        .unwrap();
    assert_eq!(fine.values["layer_height"], "0.12");
    // Unknown presets name what exists.
    let wrong = Profile::prusa(ender3()).quality_type("0.19 mm MAGIC");
    let e = s.config(&wrong).unwrap_err().to_string();
    assert!(e.contains("0.20 mm NORMAL"), "{e}");
}

#[test]
fn flat_presets_load_in_order_and_overrides_win() {
    let Some(s) = slicer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        PrusaPreset::file(p)
    };
    let presets = PrusaPresets {
        printer: Some(file(
            "printer.ini",
            "bed_shape = 0x0,180x0,180x180,0x180\nlayer_height = 0.3\nsome_future_option = 1\n",
        )),
        print: Some(file(
            "print.ini",
            "layer_height = 0.15\nfill_density = 25%\n",
        )),
        filament: Some(file(
            "filament.ini",
            "temperature = 215\nfill_density = 30%\n",
        )),
    };
    let p = Profile::prusa(presets).set("fill_density=40%").unwrap();
    let c = s.config(&p).unwrap();
    assert_eq!(c.values["bed_shape"], "0x0,180x0,180x180,0x180");
    assert_eq!(c.values["layer_height"], "0.15");
    assert_eq!(c.values["temperature"], "215");
    assert_eq!(c.values["fill_density"], "40%");
    assert_eq!(c.ignored.len(), 1);
    assert!(
        c.ignored[0].ends_with("some_future_option"),
        "{:?}",
        c.ignored
    );
}

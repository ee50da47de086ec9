//! The PrusaSlicer backend with the real `prusa-slicer` (Debian package), when installed.
//! scripts/install-deps does not install it; without it these tests print a note and pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use easyprint_gcode::analysis::{analyze, AnalysisConfig};
use easyprint_slicer::model::shapes::{cuboid, sphere};
use easyprint_slicer::model::{save_binary_stl, FitError, Mesh};
use easyprint_slicer::settings::SettingsError;
use easyprint_slicer::{
    CancelToken, Profile, Progress, PrusaSlicer, RunOptions, SliceError, SliceReport, SliceRequest,
    Slicer,
};

/// The slicer, or `None` (with a note) when `prusa-slicer` is not installed. Installed but
/// unusable is a failure, not a skip.
fn slicer() -> Option<PrusaSlicer> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let installed = std::env::split_paths(&path).any(|d| d.join("prusa-slicer").is_file());
    if !installed {
        eprintln!("skipping PrusaSlicer tests: prusa-slicer is not installed");
        return None;
    }
    Some(PrusaSlicer::locate(None, RunOptions::default()).expect("installed prusa-slicer works"))
}

fn write_model(dir: &Path, name: &str, mesh: Mesh) -> PathBuf {
    let path = dir.join(name);
    save_binary_stl(&mesh, &path).unwrap();
    path
}

fn profile(extra: &[&str]) -> Profile {
    let mut p = Profile::machine("");
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
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        c2.cancel();
        Instant::now()
    });
    let r = s.slice(SliceRequest {
        model: &model,
        profile: &profile(&["layer_height=0.05", "first_layer_height=0.1"]),
        output: &out,
        progress: None,
        cancel,
    });
    let latency = t.join().unwrap().elapsed();
    assert!(matches!(r, Err(SliceError::Cancelled)), "{r:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    assert!(!out.exists());
}

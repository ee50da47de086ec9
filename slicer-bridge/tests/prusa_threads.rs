//! PrusaSlicer's thread count (its CPU affinity), alone in this test binary so the only
//! prusa-slicer this process starts is the one under test.

use std::time::{Duration, Instant};

use easyprint_slicer::model::save_binary_stl;
use easyprint_slicer::model::shapes::sphere;
use easyprint_slicer::{
    CancelToken, Profile, PrusaPresets, PrusaSlicer, RunOptions, SliceError, SliceRequest, Slicer,
};

/// The `Cpus_allowed_list` of a running prusa-slicer this process started.
fn child_prusa_cpus() -> Option<String> {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with("prusa-slicer") && field("PPid:").as_deref() == Some(&me) {
            return field("Cpus_allowed_list:");
        }
    }
    None
}

#[test]
fn threads_bound_the_cpus_prusaslicer_runs_on() {
    let s = PrusaSlicer::locate(None, RunOptions::default())
        .expect("prusa-slicer (scripts/install-deps installs it)")
        .with_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("sphere.stl");
    save_binary_stl(&sphere(30.0, 120), &model).unwrap();
    let out = dir.path().join("t.gcode");
    let cancel = CancelToken::new();
    let watcher = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            // Wait for the engine to appear (bounded), read its CPU list, then stop it.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut cpus = None;
            while cpus.is_none() && Instant::now() < deadline {
                cpus = child_prusa_cpus();
                std::thread::yield_now();
            }
            cancel.cancel();
            cpus
        })
    };
    let r = s.slice(SliceRequest {
        model: &model,
        profile: &Profile::prusa(PrusaPresets::default())
            .set("layer_height=0.05")
            .unwrap(),
        output: &out,
        progress: None,
        cancel,
    });
    let cpus = watcher.join().unwrap().expect("saw the running engine");
    assert!(
        !cpus.contains(',') && !cpus.contains('-'),
        "one CPU expected, got {cpus}"
    );
    assert!(matches!(r, Err(SliceError::Cancelled)), "{r:?}");
}

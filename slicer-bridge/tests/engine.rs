//! Slicing generated models with the real CuraEngine (installed by scripts/install-deps).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_gcode::analysis::{analyze, AnalysisConfig};
use easyprint_slicer::cache::SliceCache;
use easyprint_slicer::model::shapes::{combine, cuboid, cylinder, sphere};
use easyprint_slicer::model::{save_binary_stl, FitError, Mesh, ModelError};
use easyprint_slicer::settings::SettingsError;
use easyprint_slicer::{
    CancelToken, CuraOptions, CuraSlicer, Profile, Progress, QualityChoice, RunOptions, SliceError,
    SliceReport, SliceRequest, Slicer,
};

/// A "T": a thin post with a wide slab on top (needs support).
fn overhang() -> Mesh {
    combine([
        cuboid([-3.0, -3.0, 0.0], [3.0, 3.0, 6.0]),
        cuboid([-12.0, -12.0, 6.0], [12.0, 12.0, 8.0]),
    ])
}

fn write_model(dir: &Path, name: &str, mesh: Mesh) -> PathBuf {
    let path = dir.join(name);
    save_binary_stl(&mesh, &path).unwrap();
    path
}

fn slicer(cache: Option<SliceCache>) -> CuraSlicer {
    CuraSlicer::discover(CuraOptions {
        threads: Some(1),
        run: RunOptions {
            cache,
            ..RunOptions::default()
        },
    })
    .expect("CuraEngine and Cura resources (scripts/install-deps installs them)")
}

/// Fast settings: thick layers, no adhesion unless a test asks for it.
fn profile(machine: &str, extra: &[&str]) -> Profile {
    let mut p = Profile::machine(machine).set("layer_height=0.3").unwrap();
    p.quality = QualityChoice::None;
    let mut p = p.set("adhesion_type=none").unwrap();
    for e in extra {
        p = p.set(e).unwrap();
    }
    p
}

fn slice(
    s: &CuraSlicer,
    model: &Path,
    profile: &Profile,
    output: &Path,
) -> Result<SliceReport, SliceError> {
    s.slice(SliceRequest {
        model,
        profile,
        output,
        progress: None,
        cancel: CancelToken::new(),
    })
}

/// Bounding box of the printed objects, from the `gcode` crate's analysis of the file (which
/// must parse cleanly).
fn extrusion_bbox(gcode: &str) -> [[f64; 3]; 2] {
    let a = analyze(gcode.as_bytes(), &AnalysisConfig::default());
    assert_eq!(a.diagnostic_count, 0, "{:?}", a.diagnostics);
    let bb = a.print_bbox.expect("extrusion");
    [bb.min, bb.max]
}

fn count(gcode: &str, needle: &str) -> usize {
    gcode.matches(needle).count()
}

#[test]
fn shapes_slice_on_two_machines_with_matching_bbox() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let two_parts = combine([
        cuboid([-15.0, -5.0, 0.0], [-5.0, 5.0, 6.0]),
        cuboid([5.0, -5.0, 0.0], [15.0, 5.0, 6.0]),
    ]);
    let models = [
        (
            "cube.stl",
            cuboid([0.0, 0.0, 0.0], [10.0, 10.0, 6.0]),
            [10.0, 10.0, 6.0],
        ),
        ("cylinder.stl", cylinder(6.0, 6.0, 48), [12.0, 12.0, 6.0]),
        ("overhang.stl", overhang(), [24.0, 24.0, 8.0]),
        ("two.stl", two_parts, [30.0, 10.0, 6.0]),
    ];
    for machine in ["creality_ender3", "anet3d_a8"] {
        let p = profile(machine, &[]);
        let (w, d) = match machine {
            "creality_ender3" => (235.0, 235.0),
            _ => (220.0, 220.0),
        };
        for (name, tris, size) in &models {
            let model = write_model(dir.path(), name, tris.clone());
            let out = dir.path().join(format!("{machine}-{name}.gcode"));
            let report =
                slice(&s, &model, &p, &out).unwrap_or_else(|e| panic!("{machine} {name}: {e}"));
            let gcode = std::fs::read_to_string(&out).unwrap();
            assert!(report.stats.layer_count >= 19, "{name}: {:?}", report.stats);
            assert!(!gcode.contains(";TIME:6666") && !gcode.contains("2.14748e+06"));
            assert!(report.stats.print_time_s.unwrap() > 0);
            assert!(report.stats.estimated_time_s.unwrap() > 0.0);
            assert!(report.stats.filament_mm.unwrap() > 0.0);
            // Centred on the bed; outer wall centre lines sit half a line (0.2 mm) inside.
            let bb = extrusion_bbox(&gcode);
            let expect_min = [(w - size[0]) / 2.0, (d - size[1]) / 2.0];
            for a in 0..2 {
                let expect_max = expect_min[a] + size[a];
                assert!(
                    (bb[0][a] - expect_min[a]).abs() < 0.5 && (bb[1][a] - expect_max).abs() < 0.5,
                    "{machine} {name} axis {a}: {bb:?} vs {expect_min:?}+{size:?}"
                );
            }
            assert!(
                (bb[1][2] - size[2]).abs() < 0.35,
                "{machine} {name} z: {bb:?}"
            );
            // The header now carries the engine's true extents.
            let header_bb = report.stats.bbox.unwrap();
            assert!(
                (header_bb[0][0] - bb[0][0]).abs() < 0.5,
                "{header_bb:?} vs {bb:?}"
            );
        }
    }
}

#[test]
fn settings_really_change_the_gcode() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let cube = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [20.0, 20.0, 6.0]));
    let t = write_model(dir.path(), "t.stl", overhang());
    let run = |model: &Path, extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        slice(&s, model, &profile("creality_ender3", extra), &out).unwrap();
        std::fs::read_to_string(out).unwrap()
    };
    let base = run(&cube, &[], "base.gcode");
    let dense = run(&cube, &["infill_sparse_density=60"], "dense.gcode");
    let e_total = |g: &str| {
        g.lines()
            .filter(|l| l.starts_with("G1") && l.contains(" E"))
            .filter_map(|l| {
                l.rsplit(" E")
                    .next()?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .fold(0f64, f64::max)
    };
    assert!(
        e_total(&dense) > e_total(&base) * 1.1,
        "infill density must change extrusion: {} vs {}",
        e_total(&dense),
        e_total(&base)
    );
    let no_support = run(&t, &[], "nosup.gcode");
    let support = run(&t, &["support_enable=true"], "sup.gcode");
    assert_eq!(count(&no_support, ";TYPE:SUPPORT"), 0);
    assert!(count(&support, ";TYPE:SUPPORT") > 5);
    let skirt = run(&cube, &["adhesion_type=skirt"], "skirt.gcode");
    let brim = run(&cube, &["adhesion_type=brim"], "brim.gcode");
    assert_eq!(count(&base, ";TYPE:SKIRT"), 0);
    assert!(count(&skirt, ";TYPE:SKIRT") > 0);
    // Both are tagged SKIRT; the brim hugs the part, the skirt stands off by skirt_gap.
    let (bs, bb) = (extrusion_bbox(&skirt), extrusion_bbox(&brim));
    assert!(bs[0][0] < bb[0][0] - 1.0, "skirt {bs:?} brim {bb:?}");
    let hot = run(
        &cube,
        &[
            "material_print_temperature=222",
            "material_bed_temperature=71",
        ],
        "hot.gcode",
    );
    assert!(
        hot.contains("M104 S222") || hot.contains("M109 S222"),
        "print temperature"
    );
    assert!(
        hot.contains("M140 S71") || hot.contains("M190 S71"),
        "bed temperature"
    );
}

#[test]
fn progress_is_monotonic_and_reaches_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let model = write_model(dir.path(), "cyl.stl", cylinder(8.0, 10.0, 64));
    let mut seen: Vec<Progress> = Vec::new();
    let out = dir.path().join("p.gcode");
    s.slice(SliceRequest {
        model: &model,
        profile: &profile("anet3d_a8", &[]),
        output: &out,
        progress: Some(&mut |p| seen.push(p.clone())),
        cancel: CancelToken::new(),
    })
    .unwrap();
    assert!(seen.len() > 20, "{}", seen.len());
    assert!(seen.windows(2).all(|w| w[0].fraction <= w[1].fraction));
    assert_eq!(seen.last().unwrap().fraction, 1.0);
    assert!(seen.iter().any(|p| p.stage == "export"));
}

fn libc_sched_idle() -> i32 {
    5 // SCHED_IDLE in linux/sched.h
}

/// Pids of CuraEngine processes whose command line contains `marker`.
fn engines_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("CuraEngine") && cmdline.contains(marker) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn cancel_mid_slice_kills_the_engine_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let model = write_model(dir.path(), "sphere.stl", sphere(20.0, 120));
    let marker = format!("cancel-test-{}", std::process::id());
    let p = profile("anet3d_a8", &["layer_height=0.1"])
        .set(&format!("machine_name={marker}"))
        .unwrap();
    let out = dir.path().join("cancel.gcode");
    let cancel = CancelToken::new();
    let mut cancelled_at = None;
    let mut engine_pids = Vec::new();
    let mut policy_seen = None;
    let result = s.slice(SliceRequest {
        model: &model,
        profile: &p,
        output: &out,
        progress: Some(&mut |p| {
            if cancelled_at.is_none() && p.fraction > 0.1 {
                engine_pids = engines_with(&marker);
                if let Some(pid) = engine_pids.first() {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let after = stat.rsplit(')').next().unwrap_or("");
                    // Field 41 is the scheduling policy (5 = SCHED_IDLE); the engine resets its
                    // own nice to 10, which SCHED_IDLE makes irrelevant.
                    policy_seen = after
                        .split_whitespace()
                        .nth(38)
                        .and_then(|n| n.parse::<i32>().ok());
                }
                cancel.cancel();
                cancelled_at = Some(Instant::now());
            }
        }),
        cancel: cancel.clone(),
    });
    let latency = cancelled_at.expect("slice reached 10 %").elapsed();
    assert!(matches!(result, Err(SliceError::Cancelled)), "{result:?}");
    assert!(!out.exists(), "no partial output");
    assert!(!engine_pids.is_empty(), "engine was found while running");
    assert_eq!(
        policy_seen,
        Some(libc_sched_idle()),
        "engine runs under SCHED_IDLE"
    );
    assert!(engines_with(&marker).is_empty(), "engine process gone");
    // Not a benchmark: only proves cancel does not wait for the slice to finish.
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn timeout_kills_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let s = CuraSlicer::discover(CuraOptions {
        threads: Some(1),
        run: RunOptions {
            timeout: Some(Duration::from_millis(300)),
            ..RunOptions::default()
        },
    })
    .unwrap();
    let model = write_model(dir.path(), "sphere.stl", sphere(20.0, 120));
    let out = dir.path().join("t.gcode");
    let r = slice(
        &s,
        &model,
        &profile("anet3d_a8", &["layer_height=0.1"]),
        &out,
    );
    assert!(matches!(r, Err(SliceError::Timeout(_))), "{r:?}");
    assert!(!out.exists());
}

#[test]
fn bad_inputs_give_typed_errors_before_the_engine_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let out = dir.path().join("x.gcode");
    let p = profile("anet3d_a8", &[]);
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let empty = file("empty.stl", b"");
    assert!(matches!(
        slice(&s, &empty, &p, &out),
        Err(SliceError::Model(ModelError::Empty))
    ));
    let mut zero = vec![0u8; 84];
    zero[..4].copy_from_slice(b"mesh");
    let zero = file("zero.stl", &zero);
    assert!(matches!(
        slice(&s, &zero, &p, &out),
        Err(SliceError::Model(ModelError::Empty))
    ));
    let garbage = file(
        "garbage.stl",
        &b"this is not a mesh, just some text long enough to look like a header...\n".repeat(3),
    );
    assert!(matches!(
        slice(&s, &garbage, &p, &out),
        Err(SliceError::Model(_))
    ));
    let mut nan = cuboid([0.0; 3], [5.0; 3]);
    nan.triangles[3][1][0] = f32::NAN;
    let nan = write_model(dir.path(), "nan.stl", nan);
    assert!(matches!(
        slice(&s, &nan, &p, &out),
        Err(SliceError::Model(ModelError::NonFinite { triangle: 3 }))
    ));
    let big = write_model(
        dir.path(),
        "big.stl",
        cuboid([0.0; 3], [500.0, 500.0, 500.0]),
    );
    assert!(matches!(
        slice(&s, &big, &p, &out),
        Err(SliceError::DoesNotFit(FitError::TooLarge { .. }))
    ));
    let wrong_ext = file("model.3ds", b"x");
    assert!(matches!(
        slice(&s, &wrong_ext, &p, &out),
        Err(SliceError::Model(ModelError::UnsupportedFormat(_)))
    ));
    let cube = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [5.0; 3]));
    let unknown = Profile::machine("anet3d_a8")
        .set("infill_denisty=20")
        .unwrap();
    assert!(matches!(
        slice(&s, &cube, &unknown, &out),
        Err(SliceError::Settings(SettingsError::UnknownSetting { .. }))
    ));
    let range = Profile::machine("anet3d_a8")
        .set("infill_sparse_density=-5")
        .unwrap();
    assert!(matches!(
        slice(&s, &cube, &range, &out),
        Err(SliceError::Settings(SettingsError::OutOfRange { .. }))
    ));
    let no_machine = Profile::machine("no_such_printer");
    let e = slice(&s, &cube, &no_machine, &out).unwrap_err();
    assert!(e.to_string().contains("no_such_printer"), "{e}");
    assert!(!out.exists());
}

#[test]
fn obj_and_3mf_models_slice() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(None);
    let obj = dir.path().join("cube.obj");
    std::fs::write(
        &obj,
        "v 0 0 0\nv 10 0 0\nv 10 10 0\nv 0 10 0\nv 0 0 5\nv 10 0 5\nv 10 10 5\nv 0 10 5\n\
         f 1 4 3 2\nf 5 6 7 8\nf 1 2 6 5\nf 2 3 7 6\nf 3 4 8 7\nf -4 -8 -5 -1\n",
    )
    .unwrap();
    let out = dir.path().join("obj.gcode");
    let report = slice(&s, &obj, &profile("anet3d_a8", &[]), &out).unwrap();
    assert!(report.stats.layer_count >= 15);

    // The same cube as 3MF, in centimetres.
    let cube = cuboid([0.0; 3], [1.0, 1.0, 0.5]);
    let mut xml =
        String::from(r#"<model unit="centimeter"><resources><object id="1"><mesh><vertices>"#);
    for v in cube.triangles.iter().flatten() {
        xml.push_str(&format!(
            r#"<vertex x="{}" y="{}" z="{}"/>"#,
            v[0], v[1], v[2]
        ));
    }
    xml.push_str("</vertices><triangles>");
    for t in 0..cube.triangles.len() {
        xml.push_str(&format!(
            r#"<triangle v1="{}" v2="{}" v3="{}"/>"#,
            3 * t,
            3 * t + 1,
            3 * t + 2
        ));
    }
    xml.push_str(
        r#"</triangles></mesh></object></resources><build><item objectid="1"/></build></model>"#,
    );
    let mut zipped = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut zipped);
    z.start_file("3D/3dmodel.model", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut z, xml.as_bytes()).unwrap();
    z.finish().unwrap();
    let path = dir.path().join("cube.3mf");
    std::fs::write(&path, zipped.into_inner()).unwrap();
    let out = dir.path().join("3mf.gcode");
    let report3 = slice(&s, &path, &profile("anet3d_a8", &[]), &out).unwrap();
    assert_eq!(report3.stats.layer_count, report.stats.layer_count);
    assert_eq!(report3.stats.bbox, report.stats.bbox);
}

#[test]
fn cache_returns_identical_bytes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = slicer(Some(SliceCache::new(dir.path().join("cache")).unwrap()));
    let model = write_model(dir.path(), "cube.stl", cuboid([0.0; 3], [8.0, 8.0, 5.0]));
    let p = profile("anet3d_a8", &[]);
    let (a, b) = (dir.path().join("a.gcode"), dir.path().join("b.gcode"));
    let first = slice(&s, &model, &p, &a).unwrap();
    let second = slice(&s, &model, &p, &b).unwrap();
    assert!(!first.cache_hit);
    assert!(second.cache_hit);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(first.stats, second.stats);
    // Publishing the same hit twice over itself leaves no stray files.
    slice(&s, &model, &p, &b).unwrap();
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".easyprint"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // Any setting change is a different key.
    let c = dir.path().join("c.gcode");
    let third = slice(
        &s,
        &model,
        &profile("anet3d_a8", &["infill_sparse_density=30"]),
        &c,
    )
    .unwrap();
    assert!(!third.cache_hit);
}

#[test]
fn cancel_while_waiting_for_a_slot() {
    // The host limit (one slice) makes a second request wait; cancelling it must not start it.
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(slicer(None));
    let model = write_model(dir.path(), "sphere.stl", sphere(20.0, 80));
    let started = Arc::new(AtomicBool::new(false));
    let (s2, m2, st2, out1) = (
        s.clone(),
        model.clone(),
        started.clone(),
        dir.path().join("1.gcode"),
    );
    let first_cancel = CancelToken::new();
    let fc = first_cancel.clone();
    let first = std::thread::spawn(move || {
        s2.slice(SliceRequest {
            model: &m2,
            profile: &profile("anet3d_a8", &["layer_height=0.1"]),
            output: &out1,
            progress: Some(&mut |_| st2.store(true, Ordering::SeqCst)),
            cancel: fc,
        })
    });
    while !started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second_cancel = CancelToken::new();
    second_cancel.cancel();
    let out2 = dir.path().join("2.gcode");
    let r = s.slice(SliceRequest {
        model: &model,
        profile: &profile("anet3d_a8", &[]),
        output: &out2,
        progress: None,
        cancel: second_cancel,
    });
    assert!(matches!(r, Err(SliceError::Cancelled)), "{r:?}");
    first_cancel.cancel();
    assert!(matches!(first.join().unwrap(), Err(SliceError::Cancelled)));
}

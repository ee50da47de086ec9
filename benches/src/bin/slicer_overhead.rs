//! Slicer wrapper overhead versus running CuraEngine by hand, cache-hit and cancel latency.
//!
//! `cargo run --release -p easyprint-benches --bin slicer_overhead [-- ROUNDS]`
//!
//! "By hand" runs the exact command line the wrapper builds (same resolved settings, same
//! placed model) with a plain `Command::status()`, so the engine's work is identical and the
//! difference is the wrapper: settings resolution, model checks, supervision, output checks,
//! header rewrite and atomic publish. The wrapper is measured at normal priority (pure
//! overhead) and at its default idle priority (what a loaded host costs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use easyprint_slicer::cache::SliceCache;
use easyprint_slicer::model::shapes::sphere;
use easyprint_slicer::model::write_binary_stl;
use easyprint_slicer::{
    CancelToken, CuraOptions, CuraSlicer, Profile, QualityChoice, RunOptions, SliceReport,
    SliceRequest, Slicer,
};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn slice(
    s: &CuraSlicer,
    model: &Path,
    profile: &Profile,
    out: &Path,
    cancel: CancelToken,
) -> SliceReport {
    s.slice(SliceRequest {
        model,
        profile,
        output: out,
        progress: None,
        cancel,
    })
    .expect("slice")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("easyprint-slicer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // A 40 mm sphere, 28 800 triangles, 0.2 mm layers: a realistic small print.
    let mut mesh = sphere(20.0, 120).validate()?;
    mesh.center_on_origin();
    let model = dir.join("sphere.stl");
    let mut bytes = Vec::new();
    write_binary_stl(&mesh, &mut bytes)?;
    std::fs::write(&model, &bytes)?;
    let mut profile = Profile::machine("anet3d_a8").set("layer_height=0.2")?;
    profile.quality = QualityChoice::None;

    let options = |idle: bool| CuraOptions {
        threads: Some(1),
        run: RunOptions {
            idle_priority: idle,
            ..RunOptions::default()
        },
    };
    let plain = CuraSlicer::discover(options(false))?;
    let idle = CuraSlicer::discover(options(true))?;
    let prepared = plain.prepare(&profile)?;
    let t = Instant::now();
    for _ in 0..20 {
        plain.prepare(&profile)?;
    }
    let resolve = t.elapsed() / 20;

    let (mut by_hand, mut wrapped, mut wrapped_idle) = (Vec::new(), Vec::new(), Vec::new());
    let mut own_cost = Vec::new();
    for _ in 0..rounds {
        let out = dir.join("hand.gcode");
        let mut cmd = plain.command(&prepared, &model, &out);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let status = cmd.status()?;
        by_hand.push(t.elapsed());
        assert!(status.success());
        let w = slice(
            &plain,
            &model,
            &profile,
            &dir.join("w.gcode"),
            CancelToken::new(),
        );
        wrapped.push(w.elapsed);
        own_cost.push(w.elapsed - w.engine_elapsed);
        let i = slice(
            &idle,
            &model,
            &profile,
            &dir.join("i.gcode"),
            CancelToken::new(),
        );
        wrapped_idle.push(i.elapsed);
    }
    let (h, w, i) = (median(by_hand), median(wrapped), median(wrapped_idle));
    let own_min = own_cost.iter().min().copied().unwrap_or_default();
    let own = median(own_cost);
    println!("model: sphere 40 mm, {} triangles, anet3d_a8, 0.2 mm layers, -m1; {rounds} rounds, medians", mesh.triangles.len());
    println!("settings resolution (prepare):      {:8.2} ms", ms(resolve));
    println!("CuraEngine by hand:                 {:8.1} ms", ms(h));
    println!(
        "wrapper, normal priority:           {:8.1} ms  overhead {:+.2} %",
        ms(w),
        (ms(w) / ms(h) - 1.0) * 100.0
    );
    println!(
        "wrapper's own work (elapsed - engine):  {:8.1} ms  = {:.2} % of the by-hand run (min {:.1} ms = {:.2} %)",
        ms(own),
        ms(own) / ms(h) * 100.0,
        ms(own_min),
        ms(own_min) / ms(h) * 100.0
    );
    println!(
        "wrapper, idle priority (default):   {:8.1} ms  vs by hand {:+.2} %",
        ms(i),
        (ms(i) / ms(h) - 1.0) * 100.0
    );

    // Cache hits.
    let cached = CuraSlicer::discover(CuraOptions {
        threads: Some(1),
        run: RunOptions {
            cache: Some(SliceCache::new(dir.join("cache"))?),
            ..RunOptions::default()
        },
    })?;
    slice(
        &cached,
        &model,
        &profile,
        &dir.join("c0.gcode"),
        CancelToken::new(),
    );
    let hits: Vec<Duration> = (0..20)
        .map(|k| {
            slice(
                &cached,
                &model,
                &profile,
                &dir.join(format!("c{k}.gcode")),
                CancelToken::new(),
            )
            .elapsed
        })
        .collect();
    println!(
        "cache hit (model hash + request lookup + hard link): {:6.2} ms median, {:.2} ms max",
        ms(median(hits.clone())),
        ms(*hits.iter().max().unwrap_or(&Duration::ZERO))
    );

    // Cancel latency: cancel at 20 % progress, time until slice() returns with the group dead.
    let mut latencies = Vec::new();
    let fine = profile.clone().set("layer_height=0.1")?;
    for _ in 0..rounds {
        let cancel = CancelToken::new();
        let mut at: Option<Instant> = None;
        let out: PathBuf = dir.join("cancel.gcode");
        let r = plain.slice(SliceRequest {
            model: &model,
            profile: &fine,
            output: &out,
            progress: Some(&mut |p| {
                if at.is_none() && p.fraction > 0.2 {
                    at = Some(Instant::now());
                    cancel.cancel();
                }
            }),
            cancel: cancel.clone(),
        });
        assert!(r.is_err());
        if let Some(at) = at {
            latencies.push(at.elapsed());
        }
    }
    if !latencies.is_empty() {
        println!("cancel latency (cancel() -> slice returned, engine reaped): {:.2} ms median, {:.2} ms max",
            ms(median(latencies.clone())), ms(*latencies.iter().max().unwrap_or(&Duration::ZERO)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

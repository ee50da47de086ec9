//! Slice a model with CuraEngine through easyprint-slicer.
//!
//! ```text
//! cargo run -p easyprint-examples --example slice -- model.stl --machine anet3d_a8 \
//!     -s layer_height=0.2 [-s key=value ...] [--quality draft|none] [--variant NAME] \
//!     [--material ID] [--intent CATEGORY] [-o out.gcode] [--threads N] [--timeout SECS] \
//!     [--cache DIR] [--list-machines] [--list-settings] [--list-profiles]
//! cargo run -p easyprint-examples --example slice -- model.stl \
//!     --prusa-printer BUNDLE.ini#"Creality Ender-3 (0.4 mm nozzle)" \
//!     --prusa-filament BUNDLE.ini#"Generic PLA @CREALITY" --quality 0.2 -s fill_density=30%
//!     # PrusaSlicer: presets are flat .ini files, or FILE#NAME for a bundle's preset
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use easyprint_slicer::settings::{user_settings, SettingsStack};
use easyprint_slicer::{
    CancelToken, CuraOptions, CuraSlicer, Profile, PrusaPreset, PrusaPresets, PrusaSlicer,
    QualityChoice, SliceRequest, Slicer,
};

/// `FILE#NAME` (a bundle's preset) or `FILE` (a flat .ini).
fn preset(arg: String) -> PrusaPreset {
    match arg.split_once('#') {
        Some((file, name)) => PrusaPreset::bundle(file, name),
        None => PrusaPreset::file(arg),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut model = None;
    let mut output = None;
    let mut machine = "anet3d_a8".to_owned();
    let mut overrides = Vec::new();
    let mut quality = QualityChoice::Preferred;
    let mut options = CuraOptions::default();
    let (mut list_machines, mut list_settings, mut list_profiles) = (false, false, false);
    let mut prusa = PrusaPresets::default();
    let (mut variant, mut material, mut intent) = (None, None, None);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--machine" | "-m" => machine = value()?,
            "-s" => overrides.push(value()?),
            "-o" => output = Some(PathBuf::from(value()?)),
            "--quality" => {
                quality = match value()?.as_str() {
                    "none" => QualityChoice::None,
                    q => QualityChoice::Named(q.to_owned()),
                }
            }
            "--threads" => options.threads = Some(value()?.parse()?),
            "--timeout" => options.run.timeout = Some(Duration::from_secs_f64(value()?.parse()?)),
            "--cache" => {
                options.run.cache = Some(easyprint_slicer::cache::SliceCache::new(value()?)?)
            }
            "--prusa-printer" => prusa.printer = Some(preset(value()?)),
            "--prusa-print" => prusa.print = Some(preset(value()?)),
            "--prusa-filament" => prusa.filament = Some(preset(value()?)),
            "--variant" => variant = Some(value()?),
            "--material" => material = Some(value()?),
            "--intent" => intent = Some(value()?),
            "--list-machines" => list_machines = true,
            "--list-settings" => list_settings = true,
            "--list-profiles" => list_profiles = true,
            _ if a.starts_with('-') => return Err(format!("unknown option {a}").into()),
            _ => model = Some(PathBuf::from(a)),
        }
    }
    if prusa != PrusaPresets::default() {
        let mut engine = PrusaSlicer::locate(None, options.run.clone())?;
        if let Some(n) = options.threads {
            engine = engine.with_threads(n);
        }
        let mut profile = Profile::prusa(prusa);
        profile.quality = quality;
        for o in &overrides {
            profile = profile.set(o)?;
        }
        let model = model.ok_or("usage: slice MODEL --prusa-printer FILE[#NAME] ...")?;
        return run(&engine, &model, &profile, output);
    }
    let slicer = CuraSlicer::discover(options)?;
    if list_machines {
        for m in slicer.resources().machines()? {
            println!("{:32} {} ({})", m.id, m.name, m.manufacturer);
        }
        return Ok(());
    }
    let mut profile = Profile::machine(&machine);
    profile.quality = quality;
    profile.variant = variant;
    profile.material = material;
    profile.intent = intent;
    for o in &overrides {
        profile = profile.set(o)?;
    }
    if list_profiles {
        let r = slicer.resources();
        let m = r.load_machine(&machine)?;
        let variants: Vec<String> = r.variants(&m)?.into_iter().map(|v| v.name).collect();
        println!("nozzle variants: {}", variants.join(", "));
        let config = r.configure(&m, &profile.selection())?;
        let chosen = &config.extruders[0];
        let variant = chosen.variant.as_ref().map(|v| v.name.as_str());
        println!("materials for {}:", variant.unwrap_or("this machine"));
        for mat in r.materials_for(&m, 0, variant) {
            println!("  {:40} {} {}", mat.base_file, mat.brand, mat.name);
        }
        println!("qualities: {}", config.available_quality_types.join(", "));
        for i in r.intents(&m, &profile.selection())? {
            println!(
                "intent: {} ({}, quality {})",
                i.category, i.name, i.quality_type
            );
        }
        for note in &config.notes {
            println!("note: {note}");
        }
        return Ok(());
    }
    if list_settings {
        let prepared = slicer.prepare(&profile)?;
        let stack: &SettingsStack = &prepared.stack;
        for s in user_settings(stack, &prepared.settings)? {
            println!(
                "{:40} {:8} {:>12} {:4} [{:?}..{:?}] {}",
                s.key,
                s.setting_type,
                s.value.to_string(),
                s.unit,
                s.minimum,
                s.maximum,
                s.label
            );
        }
        return Ok(());
    }
    let model = model.ok_or("usage: slice MODEL.stl --machine ID [-s key=value]...")?;
    run(&slicer, &model, &profile, output)
}

fn run(
    slicer: &dyn Slicer,
    model: &std::path::Path,
    profile: &Profile,
    output: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let output = output.unwrap_or_else(|| model.with_extension("gcode"));
    let mut last = -1.0;
    let mut progress = |p: &easyprint_slicer::Progress| {
        if p.fraction - last >= 0.05 || p.fraction >= 1.0 {
            last = p.fraction;
            eprint!("\r{:>5.1} % {:<12}", p.fraction * 100.0, p.stage);
            let _ = std::io::stderr().flush();
        }
    };
    let report = slicer.slice(SliceRequest {
        model,
        profile,
        output: &output,
        progress: Some(&mut progress),
        cancel: CancelToken::new(),
    })?;
    eprintln!();
    println!("engine:     {}", report.engine);
    println!("output:     {}", report.output.display());
    println!("cache hit:  {}", report.cache_hit);
    println!("layers:     {}", report.stats.layer_count);
    println!("print time: {:?} s", report.stats.print_time_s);
    println!("filament:   {:?} mm", report.stats.filament_mm);
    println!("bbox:       {:?}", report.stats.bbox);
    println!("elapsed:    {:?}", report.elapsed);
    for w in &report.warnings {
        println!("warning:    {w}");
    }
    Ok(())
}

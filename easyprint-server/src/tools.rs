//! `easyprint gcode info` and `easyprint slice`: conveniences over easyprint-gcode and
//! easyprint-slicer for the command line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use easyprint_gcode::analysis::{analyze_reader, Analysis, AnalysisConfig};
use easyprint_slicer::{CancelToken, CuraOptions, CuraSlicer, Profile, SliceRequest, Slicer};

/// Prints the analysis of a G-code file (streamed: memory stays flat whatever its size).
pub fn gcode_info(path: &Path, json: bool) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let analysis = analyze_reader(file, &AnalysisConfig::default())
        .with_context(|| format!("cannot read {}", path.display()))?;
    if json {
        let mut value = serde_json::to_value(&analysis)?;
        // The ETA index is for queries, not for reading.
        if let Some(map) = value.as_object_mut() {
            map.remove("checkpoints");
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", summary(path, &analysis));
    }
    Ok(())
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A few lines a person reads before printing.
fn summary(path: &Path, a: &Analysis) -> String {
    let mut out = format!("{}: {} bytes, {} lines\n", path.display(), a.bytes, a.lines);
    if let Some(generator) = &a.metadata.generator {
        out += &format!("  sliced by   {generator}\n");
    }
    out += &format!("  time        {} (estimated)", duration(a.estimated_time));
    if let Some(t) = a.metadata.estimated_time {
        out += &format!(", slicer says {}", duration(t));
    }
    out += "\n";
    out += &format!("  layers      {}", a.layer_count);
    if let (Some(first), Some(last)) = (a.layers.first(), a.layers.last()) {
        out += &format!(" (Z {:.2} to {:.2} mm)", first.z, last.z);
    }
    out += "\n";
    if let Some(b) = a.print_bbox.or(a.extrusion_bbox) {
        let [x, y, z] = b.size();
        out += &format!("  size        {x:.1} x {y:.1} x {z:.1} mm\n");
    }
    for (tool, f) in a.filament.iter().enumerate() {
        out += &format!("  filament T{tool} {:.2} m\n", f.length_mm / 1000.0);
    }
    if a.diagnostic_count > 0 {
        out += &format!("  problems    {}\n", a.diagnostic_count);
        for d in a.diagnostics.iter().take(5) {
            out += &format!("    {d}\n");
        }
    }
    out
}

/// Slices `model` with CuraEngine for Cura machine `machine` with `key=value` overrides,
/// writing `output` (default: the model's name with `.gcode`).
pub fn slice(
    model: &Path,
    machine: &str,
    settings: &[String],
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let slicer = CuraSlicer::discover(CuraOptions::default()).context("CuraEngine not found")?;
    let mut profile = Profile::machine(machine);
    for setting in settings {
        profile = profile
            .set(setting)
            .with_context(|| format!("setting {setting:?}"))?;
    }
    let output = output.unwrap_or_else(|| model.with_extension("gcode"));
    let mut shown = -1.0;
    let mut progress = |p: &easyprint_slicer::Progress| {
        if p.fraction - shown >= 0.05 || p.fraction >= 1.0 {
            shown = p.fraction;
            eprint!(
                "\r{:>3.0} % {:<16}",
                p.fraction * 100.0,
                p.stage.to_string()
            );
            let _ = std::io::stderr().flush();
        }
    };
    let report = slicer
        .slice(SliceRequest {
            model,
            profile: &profile,
            output: &output,
            progress: Some(&mut progress),
            cancel: CancelToken::new(),
        })
        .with_context(|| format!("slicing {}", model.display()))?;
    eprintln!();
    println!(
        "{}: {} layers in {:.1} s",
        report.output.display(),
        report.stats.layer_count,
        report.elapsed.as_secs_f64()
    );
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

//! Prints a G-code file's analysis: layers, bounding boxes, filament, time estimate (ours and the
//! slicer's), thumbnails and problems.
//!
//! usage: cargo run -p easyprint-examples --example gcode_info -- FILE [--json]
//!
//! The file is streamed through `analyze_reader`, so memory stays flat whatever its size.

use std::process::ExitCode;

use easyprint_gcode::analysis::{analyze_reader, Analysis, AnalysisConfig};

fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
}

fn table(path: &str, a: &Analysis) {
    println!("file              {path}");
    println!("size              {} bytes, {} lines", a.bytes, a.lines);
    if let Some(g) = &a.metadata.generator {
        println!("generator         {g}");
    }
    println!(
        "layers            {} (first Z {:?}, last Z {:?})",
        a.layer_count,
        a.layers.first().map(|l| l.z),
        a.layers.last().map(|l| l.z)
    );
    if let Some(n) = a.metadata.layer_count {
        println!(
            "slicer layers     {n} (markers seen: {})",
            a.metadata.layer_markers
        );
    }
    for (name, bbox) in [
        ("extrusion bbox", a.extrusion_bbox),
        ("print bbox", a.print_bbox),
    ] {
        if let Some(b) = bbox {
            println!(
                "{name:<17} X {:.3}..{:.3}  Y {:.3}..{:.3}  Z {:.3}..{:.3}",
                b.min[0], b.max[0], b.min[1], b.max[1], b.min[2], b.max[2]
            );
        }
    }
    for (tool, f) in a.filament.iter().enumerate() {
        println!(
            "filament T{tool}       {:.1} mm printed, {:.1} mm net, {:.0} mm³",
            f.printed_mm, f.length_mm, f.volume_mm3
        );
    }
    if !a.metadata.filament_used_mm.is_empty() {
        println!("slicer filament   {:?} mm", a.metadata.filament_used_mm);
    }
    print!(
        "estimated time    {} ({:.0} s)",
        hms(a.estimated_time),
        a.estimated_time
    );
    match a.metadata.estimated_time {
        Some(t) => println!(
            "; slicer says {} ({:.0} s), ours/slicer = {:.3}",
            hms(t),
            t,
            a.estimated_time / t
        ),
        None => println!(),
    }
    let c = &a.counts;
    println!(
        "commands          {} (moves {}, arcs {}, tool changes {}, retractions {}), comment lines {}",
        c.commands, c.moves, c.arcs, c.tool_changes, c.retractions, c.comment_lines
    );
    for t in &a.thumbnails {
        println!(
            "thumbnail         {}x{} {:?}, {} bytes",
            t.width,
            t.height,
            t.format,
            t.data.len()
        );
    }
    println!("problems          {}", a.diagnostic_count);
    for d in a.diagnostics.iter().take(10) {
        println!("  {d}");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: gcode_info FILE [--json]");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gcode_info: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let analysis = match analyze_reader(file, &AnalysisConfig::default()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gcode_info: reading {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        // Checkpoints are an index for ETA queries, not something to read: leave them out.
        let mut value = serde_json::to_value(&analysis).expect("analysis serializes");
        if let Some(map) = value.as_object_mut() {
            map.remove("checkpoints");
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("valid JSON")
        );
    } else {
        table(path, &analysis);
    }
    ExitCode::SUCCESS
}

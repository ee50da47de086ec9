//! Throughput of the easyprint G-code parser and analysis against a bare memchr newline scan and the
//! crates.io `gcode` 0.7 zero-allocation visitor, all measured in the same run on the same bytes.
//!
//! usage: gcode-bench [--runs N] [--modes memchr,ours,analysis,peer] FILE...
//!
//! Each file is read once into a reused buffer; timings exclude I/O. Prints MB/s (1 MB = 10^6 bytes,
//! fastest of N interleaved rounds: the machine is shared and the minimum is the least disturbed)
//! per mode and the ratios ours / gcode-0.7 and ours / memchr. Then prints our time and filament
//! estimates next to the slicer's own figures in the file (PrusaSlicer's footer, Cura's header).

use std::hint::black_box;
use std::time::Instant;

use easyprint_benches::gcode::{ours, peer};

/// Times one call of `f`, in seconds.
fn once<T>(f: impl FnOnce() -> T) -> f64 {
    let t = Instant::now();
    black_box(f());
    t.elapsed().as_secs_f64()
}

fn main() -> anyhow_free::Result {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5usize;
    let mut modes = String::from("memchr,ours,analysis,peer");
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let value = args.get(1).cloned().ok_or("missing option value")?;
        match args[0].as_str() {
            "--runs" => runs = value.parse()?,
            "--modes" => modes = value,
            other => return Err(format!("unknown option {other}").into()),
        }
        args.drain(..2);
    }
    let on = |m: &str| modes.split(',').any(|x| x == m);
    if args.is_empty() {
        return Err("usage: gcode-bench [--runs N] FILE...".into());
    }
    println!("file\tMB\tmemchr MB/s\tours MB/s\tanalysis MB/s\tgcode-0.7 MB/s\tours/gcode-0.7\tanalysis/gcode-0.7\tours/memchr");
    let mut buf = Vec::new();
    let mut ratios = Vec::new();
    let mut accuracy = Vec::new();
    for path in &args {
        buf.clear();
        std::io::Read::read_to_end(&mut std::fs::File::open(path)?, &mut buf)?;
        let mb = buf.len() as f64 / 1e6;
        let text = String::from_utf8_lossy(&buf).into_owned();
        // Rounds interleave the modes, so background load hits them alike; each mode keeps its
        // fastest run (the least disturbed). A mode left out shows as NaN.
        let mut best = [f64::INFINITY; 4];
        for _ in 0..runs {
            if on("memchr") {
                best[0] = best[0].min(once(|| memchr::memchr_iter(b'\n', black_box(&buf)).count()));
            }
            if on("ours") {
                best[1] = best[1].min(once(|| ours(black_box(&buf))));
            }
            if on("analysis") {
                best[2] = best[2].min(once(|| {
                    easyprint_gcode::analysis::analyze(black_box(&buf), &Default::default())
                }));
            }
            if on("peer") {
                best[3] = best[3].min(once(|| peer::visit(black_box(&text))));
            }
        }
        let [t_memchr, t_ours, t_analysis, t_peer] =
            best.map(|t| if t.is_finite() { t } else { f64::NAN });
        let (o, p) = (ours(&buf), peer::visit(&text));
        let name = std::path::Path::new(path)
            .file_name()
            .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        println!(
            "{name}\t{mb:.2}\t{:.0}\t{:.0}\t{:.0}\t{:.1}\t{:.1}x\t{:.1}x\t{:.3}",
            mb / t_memchr,
            mb / t_ours,
            mb / t_analysis,
            mb / t_peer,
            t_peer / t_ours,
            t_peer / t_analysis,
            t_memchr / t_ours,
        );
        eprintln!(
            "  {name}: ours words={} comments={} errors={} | gcode-0.7 words={} comments={} diagnostics={}",
            o.words, o.comments, o.errors, p.words, p.comments, p.errors
        );
        let a = easyprint_gcode::analysis::analyze(&buf, &Default::default());
        accuracy.push(format!(
            "{name}\t{}\t{:.0}\t{}\t{}\t{:.1}\t{}\t{}",
            a.metadata
                .estimated_time
                .map_or("-".into(), |t| format!("{t:.0}")),
            a.estimated_time,
            a.metadata
                .estimated_time
                .map_or("-".into(), |t| format!("{:.3}", a.estimated_time / t)),
            a.metadata
                .filament_used_mm
                .first()
                .map_or("-".into(), |f| format!("{f:.1}")),
            a.filament.iter().map(|f| f.printed_mm).sum::<f64>(),
            a.metadata.filament_used_mm.first().map_or("-".into(), |f| {
                format!(
                    "{:.4}",
                    a.filament.iter().map(|f| f.printed_mm).sum::<f64>() / f
                )
            }),
            a.layer_count,
        ));
        if (t_peer / t_ours).is_finite() {
            ratios.push(t_peer / t_ours);
        }
        let _ = (o.sum, p.sum);
    }
    println!("\nfile\tslicer time s\tours s\tours/slicer\tslicer filament mm\tours printed mm\tours/slicer\tlayers");
    for row in &accuracy {
        println!("{row}");
    }
    ratios.sort_by(f64::total_cmp);
    if ratios.is_empty() {
        return Ok(());
    }
    println!(
        "median parse speed-up over gcode 0.7: {:.1}x (min {:.1}x, max {:.1}x)",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}

mod anyhow_free {
    //! `main`'s error type without pulling a dependency.
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}

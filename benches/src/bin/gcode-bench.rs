//! Throughput of the easyprint G-code parser and analysis against a bare memchr newline scan and the
//! crates.io `gcode` 0.7 zero-allocation visitor, all measured in the same run on the same bytes.
//!
//! usage: gcode-bench [--runs N] [--modes memchr,ours,analysis,stream,peer] [--clock cpu|wall] FILE...
//!
//! Each file is read once into a reused buffer; timings exclude I/O. Prints MB/s per mode (1 MB =
//! 10^6 bytes; fastest of N interleaved rounds) and the ratios ours / gcode-0.7 and ours / memchr.
//! `analysis` is `analyze` over the whole buffer, `stream` the streaming `Analyzer` fed the same
//! bytes in 64 KiB chunks (as `analyze_reader` would, without the reads).
//! Times are the thread's CPU time by default: on a shared machine wall time also counts the time
//! other processes hold the core, which penalises long runs (the slower peer) more than short ones;
//! `--clock wall` uses wall time. Then prints our time and filament estimates next to the slicer's
//! own figures in the file (PrusaSlicer's footer, Cura's header).

use std::hint::black_box;
use std::time::Instant;

use easyprint_benches::gcode::{ours, peer};
use easyprint_gcode::analysis::{AnalysisConfig, Analyzer};

/// Chunk size of the `stream` mode.
const STREAM_CHUNK: usize = 64 * 1024;

/// CPU time of this thread, in seconds. Unlike wall time it does not count the time other
/// processes on a shared machine take the core away from us.
fn thread_cpu_time() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Times one call of `f`: (wall seconds, thread CPU seconds).
fn once<T>(f: impl FnOnce() -> T) -> (f64, f64) {
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    black_box(f());
    (wall.elapsed().as_secs_f64(), thread_cpu_time() - cpu)
}

fn main() -> anyhow_free::Result {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5usize;
    let mut modes = String::from("memchr,ours,analysis,stream,peer");
    let mut cpu_time = true;
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let value = args.get(1).cloned().ok_or("missing option value")?;
        match args[0].as_str() {
            "--runs" => runs = value.parse()?,
            "--modes" => modes = value,
            "--clock" => cpu_time = value == "cpu",
            other => return Err(format!("unknown option {other}").into()),
        }
        args.drain(..2);
    }
    let on = |m: &str| modes.split(',').any(|x| x == m);
    if args.is_empty() {
        return Err("usage: gcode-bench [--runs N] FILE...".into());
    }
    println!(
        "clock: {}",
        if cpu_time {
            "thread CPU time"
        } else {
            "wall time"
        }
    );
    println!("file\tMB\tmemchr MB/s\tours MB/s\tanalysis MB/s\tstream MB/s\tgcode-0.7 MB/s\tours/gcode-0.7\tanalysis/gcode-0.7\tours/memchr");
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
        let mut best = [(f64::INFINITY, f64::INFINITY); 5];
        let keep =
            |best: &mut (f64, f64), t: (f64, f64)| *best = (best.0.min(t.0), best.1.min(t.1));
        for _ in 0..runs {
            if on("memchr") {
                keep(
                    &mut best[0],
                    once(|| memchr::memchr_iter(b'\n', black_box(&buf)).count()),
                );
            }
            if on("ours") {
                keep(&mut best[1], once(|| ours(black_box(&buf))));
            }
            if on("analysis") {
                keep(
                    &mut best[2],
                    once(|| {
                        easyprint_gcode::analysis::analyze(black_box(&buf), &Default::default())
                    }),
                );
            }
            if on("stream") {
                keep(
                    &mut best[3],
                    once(|| {
                        let mut analyzer = Analyzer::new(AnalysisConfig::default());
                        for chunk in black_box(&buf).chunks(STREAM_CHUNK) {
                            analyzer.feed(chunk);
                        }
                        analyzer.finish()
                    }),
                );
            }
            if on("peer") {
                keep(&mut best[4], once(|| peer::visit(black_box(&text))));
            }
        }
        let pick = |t: (f64, f64)| {
            let t = if cpu_time { t.1 } else { t.0 };
            if t.is_finite() {
                t
            } else {
                f64::NAN
            }
        };
        let [t_memchr, t_ours, t_analysis, t_stream, t_peer] = best.map(pick);
        let (o, p) = (ours(&buf), peer::visit(&text));
        let name = std::path::Path::new(path)
            .file_name()
            .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        println!(
            "{name}\t{mb:.2}\t{:.0}\t{:.0}\t{:.0}\t{:.0}\t{:.1}\t{:.1}x\t{:.1}x\t{:.3}",
            mb / t_memchr,
            mb / t_ours,
            mb / t_analysis,
            mb / t_stream,
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

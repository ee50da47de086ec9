//! Criterion: parse and analysis throughput of easyprint-gcode against a bare newline scan and the
//! crates.io `gcode` 0.7 visitor, on the same bytes.
//!
//! Input: the files in `GCODE_BENCH_FILES` (colon separated; e.g. real slicer output), else a
//! synthetic slicer-like program. Ratios with a peer are printed by `src/bin/gcode-bench.rs`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use easyprint_benches::gcode::{ours, peer, synthetic_gcode};
use easyprint_gcode::analysis::{analyze, AnalysisConfig, Analyzer};

fn inputs() -> Vec<(String, Vec<u8>)> {
    match std::env::var("GCODE_BENCH_FILES") {
        Ok(files) => files
            .split(':')
            .map(|f| {
                let name = std::path::Path::new(f)
                    .file_name()
                    .map_or(f.to_string(), |n| n.to_string_lossy().into_owned());
                (
                    name,
                    std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}")),
                )
            })
            .collect(),
        Err(_) => vec![("synthetic".to_string(), synthetic_gcode(20))],
    }
}

fn gcode(c: &mut Criterion) {
    for (name, bytes) in inputs() {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut group = c.benchmark_group(format!("gcode/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.sample_size(20);
        group.bench_function("memchr_newlines", |b| {
            b.iter(|| memchr::memchr_iter(b'\n', black_box(&bytes)).count())
        });
        group.bench_function("parse", |b| b.iter(|| ours(black_box(&bytes))));
        group.bench_function("gcode_0_7_visitor", |b| {
            b.iter(|| peer::visit(black_box(&text)))
        });
        group.bench_function("analyze", |b| {
            b.iter(|| analyze(black_box(&bytes), &AnalysisConfig::default()))
        });
        group.bench_function("analyze_streaming_64k", |b| {
            b.iter(|| {
                let mut a = Analyzer::new(AnalysisConfig::default());
                for chunk in black_box(&bytes).chunks(64 * 1024) {
                    a.feed(chunk);
                }
                a.finish()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, gcode);
criterion_main!(benches);

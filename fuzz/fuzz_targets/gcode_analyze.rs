//! Fuzz the analysis: never panics, finite results, and feeding the same bytes in chunks gives
//! the same analysis as the whole buffer.
#![no_main]

use easyprint_gcode::analysis::{analyze, AnalysisConfig, Analyzer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = AnalysisConfig { checkpoint_every_lines: 3, max_line_len: 4096, ..AnalysisConfig::default() };
    let whole = analyze(data, &config);
    assert!(whole.estimated_time.is_finite() && whole.estimated_time >= 0.0);
    for layer in &whole.layers {
        assert!(layer.start_time.is_finite());
        assert!(layer.offset <= data.len() as u64);
    }
    for c in &whole.checkpoints {
        assert!(c.time.is_finite() && c.time <= whole.estimated_time + 1e-6 * whole.estimated_time.max(1.0));
    }
    let r = whole.remaining_time_at_offset(data.len() as u64 / 2);
    assert!(r.is_finite() && r >= 0.0);
    let split = data.first().map_or(1, |&b| usize::from(b % 17) + 1);
    let mut streaming = Analyzer::new(config);
    for chunk in data.chunks(split) {
        streaming.feed(chunk);
    }
    let streamed = streaming.finish();
    // NaN-free, so equality is meaningful.
    assert_eq!(format!("{streamed:?}"), format!("{whole:?}"));
});

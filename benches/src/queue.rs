//! Inputs shared by the job-queue benchmarks (`queue-bench` and the criterion `queue` bench).

use easyprint_queue::{
    BuildVolume, ContentHash, ExtrusionMode, JobSource, LayerMark, Positioning, PrinterProfile,
    Progress, SourceKind,
};

/// An Ender-3-like printer with a 0.4 mm nozzle and PLA loaded.
pub fn printer() -> PrinterProfile {
    PrinterProfile {
        id: "p1".into(),
        nozzle_um: 400,
        material: Some("PLA".into()),
        build_volume: BuildVolume::new(220.0, 220.0, 250.0),
    }
}

/// A distinct G-code source per `n`.
pub fn gcode_source(n: u64) -> JobSource {
    JobSource {
        hash: ContentHash::parse(&format!("{n:032x}")).expect("32 hex digits"),
        file_name: format!("part-{n}.gcode"),
        kind: SourceKind::Gcode,
    }
}

/// A realistic progress report at `line` (50 lines per 0.2 mm layer).
pub fn progress(line: u64) -> Progress {
    let layer = u32::try_from(line / 50).unwrap_or(u32::MAX);
    let z = 0.2 * f64::from(layer.saturating_add(1));
    Progress {
        line,
        byte_offset: line * 24,
        layer: Some(LayerMark {
            number: layer,
            line: u64::from(layer) * 50,
            byte_offset: u64::from(layer) * 1200,
            z,
            e: 2.5 * f64::from(layer),
        }),
        z,
        e: line as f64 * 0.05,
        extrusion: ExtrusionMode::Absolute,
        positioning: Positioning::Absolute,
        hotend_c: 205.0,
        bed_c: 60.0,
        fan: 255,
        feedrate_mm_min: Some(1800.0),
    }
}

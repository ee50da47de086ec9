//! Untrusted inputs of easyprint-queue: job descriptions from a client, content hashes,
//! resume records read back from storage, and event sequences. Nothing may panic.
#![no_main]

use easyprint_queue::{
    resume_point, ContentHash, ExtrusionMode, JobSource, JobState, LayerMark, NewJob, Positioning,
    Progress, ResumeFrom, SourceKind, ALL_EVENTS, ALL_STATES,
};
use libfuzzer_sys::fuzz_target;

fn f64_at(data: &[u8], i: usize) -> f64 {
    let mut b = [0u8; 8];
    for (k, slot) in b.iter_mut().enumerate() {
        *slot = data.get(i * 8 + k).copied().unwrap_or(0);
    }
    f64::from_le_bytes(b)
}

fn u64_at(data: &[u8], i: usize) -> u64 {
    f64_at(data, i).to_bits()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ContentHash::parse(&text);
    let mut parts = text.splitn(3, '\u{1f}');
    let (owner, name, settings) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Ok(hash) = ContentHash::parse("00112233445566778899aabbccddeeff") {
        let mut job = NewJob::new(
            owner,
            JobSource {
                hash,
                file_name: name.into(),
                kind: SourceKind::Gcode,
            },
        );
        if let Ok(v) = serde_json::from_str(settings) {
            job.settings = v;
        }
        let _ = job.validate();
    }

    let progress = Progress {
        line: u64_at(data, 0),
        byte_offset: u64_at(data, 1),
        layer: (data.first().copied().unwrap_or(0) & 1 == 1).then(|| LayerMark {
            number: u32::try_from(u64_at(data, 2) >> 32).unwrap_or(0),
            line: u64_at(data, 3),
            byte_offset: u64_at(data, 4),
            z: f64_at(data, 5),
            e: f64_at(data, 6),
        }),
        z: f64_at(data, 7),
        e: f64_at(data, 8),
        extrusion: if data.len() % 2 == 0 {
            ExtrusionMode::Absolute
        } else {
            ExtrusionMode::Relative
        },
        positioning: Positioning::Absolute,
        hotend_c: f64_at(data, 9),
        bed_c: f64_at(data, 10),
        fan: data.get(3).copied().unwrap_or(0),
        feedrate_mm_min: Some(f64_at(data, 11)),
    };
    for from in [ResumeFrom::LayerStart, ResumeFrom::LastConfirmedLine] {
        if let Ok(point) = resume_point(&progress, from) {
            assert!(point.z.is_finite() && point.e.is_finite());
        }
    }

    let events = ALL_EVENTS;
    let mut state = ALL_STATES[usize::from(data.first().copied().unwrap_or(0)) % ALL_STATES.len()];
    for b in data {
        if let Ok(next) = state.apply(events[usize::from(*b) % events.len()]) {
            assert!(!state.is_final());
            state = next;
        }
    }
    let _ = JobState::from_name(&text);
});

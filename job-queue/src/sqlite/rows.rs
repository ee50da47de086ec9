//! Mapping between rows and domain types. A value the domain does not know (an unknown
//! state name, a negative count) is reported as a conversion failure, which the store turns
//! into [`crate::StoreError::Corrupt`].

use std::time::Duration;

use rusqlite::types::{FromSqlError, Type};
use rusqlite::Row;

use crate::model::{
    BuildVolume, ContentHash, Job, JobId, JobSource, Lease, Requirements, RunId, SourceKind,
    Target, Timestamp,
};
use crate::progress::{ExtrusionMode, LayerMark, Positioning, Progress};
use crate::state::JobState;
use crate::store::{Change, ChangeKind, RunKind, RunRecord, RunResult, Usage};
use crate::JobEvent;

/// Columns read by [`job`], in order.
pub(crate) const JOB_COLUMNS: &str = "id, owner, source_hash, source_name, source_kind, \
    gcode_hash, settings, target_printer, req_nozzle_um, req_material, req_x_mm, req_y_mm, \
    req_z_mm, priority, rank, copies, copies_done, not_before, state, attempts, failure, \
    lease_run, lease_worker, lease_printer, lease_expires_at, created_at, updated_at, finished_at";

fn bad(column: usize, what: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        Type::Text,
        Box::new(FromSqlError::Other(what.into().into())),
    )
}

fn hash(row: &Row<'_>, i: usize) -> rusqlite::Result<ContentHash> {
    let s: String = row.get(i)?;
    ContentHash::parse(&s).map_err(|e| bad(i, e.to_string()))
}

fn count(row: &Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| bad(i, format!("count {v} out of range")))
}

pub(crate) fn state(row: &Row<'_>, i: usize) -> rusqlite::Result<JobState> {
    let s: String = row.get(i)?;
    JobState::from_name(&s).ok_or_else(|| bad(i, format!("unknown job state {s:?}")))
}

fn time(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp))
}

/// Reads a row selected with [`JOB_COLUMNS`].
pub(crate) fn job(row: &Row<'_>) -> rusqlite::Result<Job> {
    let id = JobId(row.get(0)?);
    let kind: String = row.get(4)?;
    let kind =
        SourceKind::from_name(&kind).ok_or_else(|| bad(4, format!("unknown kind {kind:?}")))?;
    let gcode: Option<String> = row.get(5)?;
    let gcode = match gcode {
        Some(_) => Some(hash(row, 5)?),
        None => None,
    };
    let settings: String = row.get(6)?;
    let settings = serde_json::from_str(&settings).map_err(|e| bad(6, e.to_string()))?;
    let target = match row.get::<_, Option<String>>(7)? {
        Some(printer) => Target::Printer(printer),
        None => {
            let x: Option<f64> = row.get(10)?;
            let volume = match x {
                Some(x_mm) => Some(BuildVolume {
                    x_mm,
                    y_mm: row.get(11)?,
                    z_mm: row.get(12)?,
                }),
                None => None,
            };
            Target::Any(Requirements {
                nozzle_um: row
                    .get::<_, Option<i64>>(8)?
                    .map(|n| u32::try_from(n).map_err(|_| bad(8, "nozzle out of range")))
                    .transpose()?,
                material: row.get(9)?,
                min_build_volume: volume,
            })
        }
    };
    let lease = match row.get::<_, Option<i64>>(21)? {
        Some(run) => Some(Lease {
            job: id,
            run: RunId(run),
            worker: row.get(22)?,
            printer: row.get(23)?,
            expires_at: Timestamp(row.get(24)?),
        }),
        None => None,
    };
    Ok(Job {
        id,
        owner: row.get(1)?,
        source: JobSource {
            hash: hash(row, 2)?,
            file_name: row.get(3)?,
            kind,
        },
        gcode,
        settings,
        target,
        priority: row.get(13)?,
        rank: row.get(14)?,
        copies: count(row, 15)?,
        copies_done: count(row, 16)?,
        not_before: time(row, 17)?,
        state: state(row, 18)?,
        attempts: count(row, 19)?,
        failure: row.get(20)?,
        lease,
        created_at: Timestamp(row.get(25)?),
        updated_at: Timestamp(row.get(26)?),
        finished_at: time(row, 27)?,
    })
}

/// Columns read by [`progress`], in order.
pub(crate) const PROGRESS_COLUMNS: &str = "line, byte_offset, layer, layer_line, \
    layer_byte_offset, layer_z, layer_e, z, e, relative_e, relative_xyz, hotend_c, bed_c, fan, \
    feedrate";

fn unsigned(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| bad(i, format!("negative value {v}")))
}

pub(crate) fn progress(row: &Row<'_>) -> rusqlite::Result<Progress> {
    let layer = match row.get::<_, Option<i64>>(2)? {
        Some(n) => Some(LayerMark {
            number: u32::try_from(n).map_err(|_| bad(2, "layer out of range"))?,
            line: unsigned(row, 3)?,
            byte_offset: unsigned(row, 4)?,
            z: row.get(5)?,
            e: row.get(6)?,
        }),
        None => None,
    };
    let fan: i64 = row.get(13)?;
    Ok(Progress {
        line: unsigned(row, 0)?,
        byte_offset: unsigned(row, 1)?,
        layer,
        z: row.get(7)?,
        e: row.get(8)?,
        extrusion: if row.get(9)? {
            ExtrusionMode::Relative
        } else {
            ExtrusionMode::Absolute
        },
        positioning: if row.get(10)? {
            Positioning::Relative
        } else {
            Positioning::Absolute
        },
        hotend_c: row.get(11)?,
        bed_c: row.get(12)?,
        fan: u8::try_from(fan).map_err(|_| bad(13, "fan out of range"))?,
        feedrate_mm_min: row.get(14)?,
    })
}

/// Converts a `u64` offset for storage (SQLite integers are signed).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Columns read by [`run`]: runs joined with jobs as `r` and `j`.
pub(crate) const RUN_COLUMNS: &str = "r.id, r.job_id, j.owner, j.source_name, r.kind, r.worker, \
    r.printer, r.started_at, r.ended_at, r.result, r.print_ms, r.filament_mm, r.failure, r.note";

pub(crate) fn run(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let kind: String = row.get(4)?;
    let kind = match kind.as_str() {
        "slice" => RunKind::Slice,
        "print" => RunKind::Print,
        other => return Err(bad(4, format!("unknown run kind {other:?}"))),
    };
    let result = match row.get::<_, Option<String>>(9)? {
        Some(r) => {
            Some(RunResult::from_name(&r).ok_or_else(|| bad(9, format!("unknown result {r:?}")))?)
        }
        None => None,
    };
    Ok(RunRecord {
        id: RunId(row.get(0)?),
        job: JobId(row.get(1)?),
        owner: row.get(2)?,
        file_name: row.get(3)?,
        kind,
        worker: row.get(5)?,
        printer: row.get(6)?,
        started_at: Timestamp(row.get(7)?),
        ended_at: time(row, 8)?,
        result,
        usage: Usage {
            print_time: Duration::from_millis(unsigned(row, 10)?),
            filament_mm: row.get(11)?,
        },
        failure: row.get(12)?,
        note: row.get(13)?,
    })
}

pub(crate) fn run_kind_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Slice => "slice",
        RunKind::Print => "print",
    }
}

/// Reads `seq, job_id, kind, state, at` from the change log.
pub(crate) fn change(row: &Row<'_>) -> rusqlite::Result<Change> {
    let state = state(row, 3)?;
    let kind: String = row.get(2)?;
    let kind = match kind.as_str() {
        "enqueued" => ChangeKind::Enqueued,
        "reordered" => ChangeKind::Reordered,
        "priority_changed" => ChangeKind::PriorityChanged,
        "start_slicing" => ChangeKind::Event(JobEvent::StartSlicing),
        "slicing_done" => ChangeKind::Event(JobEvent::SlicingDone),
        "sliced_only" => ChangeKind::Event(JobEvent::SlicedOnly),
        "rescheduled" => ChangeKind::Rescheduled,
        "retargeted" => ChangeKind::Retargeted,
        "start_print" => ChangeKind::Event(JobEvent::StartPrint),
        "pause" => ChangeKind::Event(JobEvent::Pause),
        "continue" => ChangeKind::Event(JobEvent::Continue),
        "complete" => ChangeKind::Event(JobEvent::Complete {
            copies_left: state != JobState::Done,
        }),
        "fail" => ChangeKind::Event(JobEvent::Fail),
        "lease_expired" => ChangeKind::Event(JobEvent::LeaseExpired),
        "retry" => ChangeKind::Event(JobEvent::Retry {
            sliced: state == JobState::Ready,
        }),
        "confirm_resume" => ChangeKind::Event(JobEvent::ConfirmResume),
        "cancel" => ChangeKind::Event(JobEvent::Cancel),
        other => return Err(bad(2, format!("unknown change kind {other:?}"))),
    };
    Ok(Change {
        seq: unsigned(row, 0)?,
        job: JobId(row.get(1)?),
        kind,
        state,
        at: Timestamp(row.get(4)?),
    })
}

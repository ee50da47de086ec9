//! The machine state behind a print's progress, and resuming an interrupted print from its
//! checkpoint.
//!
//! The state at a line of a file is a function of the lines before it, so it is recomputed
//! from the file with easyprint-gcode's [`MachineState`] rather than trusted from memory:
//! [`StateFollower`] walks the file up to the printer's acknowledged position to fill the
//! queue's checkpoints (E, temperatures, fan, feedrate, modes), and [`resume`] replays the file
//! up to the checkpoint to build the prelude that brings a power-cycled printer back before
//! streaming the rest. Nothing here runs without a person asking for it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use easyprint_gcode::machine_state::{MachineState, ResumeOptions as PreludeOptions};
use easyprint_gcode::{LineParser, Mode, RawLine};
use easyprint_marlin::printer::PrinterState;
use easyprint_queue::{
    resume_point, ExtrusionMode, Job, JobState, Positioning, ResumeConfirmation, ResumeError,
    ResumeFrom, Store,
};
use serde::Deserialize;

use super::analysis::FileAnalysis;
use super::runner::{self, StartPoint};
use super::{print_worker, queue_changed, LEASE};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::printers::PrinterHandle;
use crate::state::AppState;

/// Longest line the follower keeps (longer ones are skipped: no command is that long).
const MAX_LINE: u64 = 64 * 1024;

/// Applies a file's lines to a [`MachineState`] as a print advances, reading each line once.
#[derive(Debug)]
pub struct StateFollower {
    reader: BufReader<File>,
    parser: LineParser,
    state: MachineState,
    /// Byte offset of the next line to read.
    offset: u64,
    line: u64,
    analysis: Arc<FileAnalysis>,
    /// The next layer (index into the analysis' layers) whose start has not been passed.
    next_layer: usize,
    /// E at the start of the last layer passed: (layer start offset, E).
    layer_e: Option<(u64, f64)>,
    buf: Vec<u8>,
}

impl StateFollower {
    /// Opens `path` (blocking) at its start.
    pub fn open(path: &Path, analysis: Arc<FileAnalysis>) -> std::io::Result<StateFollower> {
        Ok(StateFollower {
            reader: BufReader::new(File::open(path)?),
            parser: LineParser::new(Mode::Lenient),
            state: MachineState::new(),
            offset: 0,
            line: 0,
            analysis,
            next_layer: 0,
            layer_e: None,
            buf: Vec::new(),
        })
    }

    /// Applies every line that starts before byte `offset` (blocking); earlier offsets than
    /// already reached change nothing.
    pub fn advance_to(&mut self, offset: u64) -> std::io::Result<&MachineState> {
        while self.offset < offset && self.advance_line()? {}
        Ok(&self.state)
    }

    /// Applies the next line; `false` at the end of the file.
    pub fn advance_line(&mut self) -> std::io::Result<bool> {
        {
            let start = self.offset;
            self.buf.clear();
            let n = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(false);
            }
            let mut consumed = n as u64;
            let complete = self.buf.last() == Some(&b'\n');
            if !complete && n as u64 == MAX_LINE {
                // An overlong line: skip the rest of it.
                let mut sink = Vec::new();
                loop {
                    sink.clear();
                    let m = (&mut self.reader)
                        .take(MAX_LINE)
                        .read_until(b'\n', &mut sink)?;
                    consumed += m as u64;
                    if m == 0 || sink.last() == Some(&b'\n') {
                        break;
                    }
                }
                self.buf.clear();
            }
            self.line += 1;
            self.offset += consumed;
            let layers = &self.analysis.analysis.layers;
            while layers
                .get(self.next_layer)
                .is_some_and(|l| l.offset <= start)
            {
                if layers[self.next_layer].offset == start {
                    self.layer_e = Some((start, self.state.position()[3]));
                }
                self.next_layer += 1;
            }
            let bytes = trim_terminator(&self.buf);
            let raw = RawLine::Line {
                bytes,
                number: self.line,
                offset: start,
            };
            if let Ok(line) = self.parser.parse(raw) {
                self.state.apply(&line);
            }
        }
        Ok(true)
    }

    /// Byte offset of the next line.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines applied so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The state after the lines applied so far.
    pub fn state(&self) -> &MachineState {
        &self.state
    }

    /// E when the layer starting at byte `layer_offset` began, if it was the last one passed.
    pub fn e_at_layer_start(&self, layer_offset: u64) -> Option<f64> {
        self.layer_e
            .filter(|&(at, _)| at == layer_offset)
            .map(|(_, e)| e)
    }

    /// The queue's view of the state.
    pub fn modes(&self) -> (ExtrusionMode, Positioning) {
        (
            if self.state.absolute_extrusion() {
                ExtrusionMode::Absolute
            } else {
                ExtrusionMode::Relative
            },
            if self.state.absolute_positioning() {
                Positioning::Absolute
            } else {
                Positioning::Relative
            },
        )
    }
}

fn trim_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `POST /api/v1/jobs/{id}/resume` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResumeRequest {
    /// The printer to resume on (default: the job's target, else the first printer).
    pub printer: Option<String>,
    /// Where to continue: the line after the last confirmed one (default) or the start of the
    /// layer it was in.
    pub from: ResumePoint,
    /// Filament to prime before continuing (mm, default 0).
    pub prime_mm: Option<f64>,
    /// How far to lift before homing X and Y (mm, default 5).
    pub lift_mm: Option<f64>,
}

/// Where a resumed print continues.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResumePoint {
    /// The line after the last one the printer confirmed.
    #[default]
    LastLine,
    /// The first line of the layer the print was in.
    LayerStart,
}

/// A resumed print: the job and what is being sent.
#[derive(Debug, Clone)]
pub struct Resumed {
    /// The job, printing again.
    pub job: Job,
    /// The prelude lines sent before the file's.
    pub prelude: Vec<String>,
    /// 1-based file line the stream continues with.
    pub start_line: u64,
    /// Its byte offset.
    pub start_byte_offset: u64,
}

/// Resumes interrupted job `id` on an idle printer: recomputes the machine state at the
/// checkpoint from the file, takes a new lease through the queue's `confirm_resume` (a
/// person's confirmation: the caller), and streams the prelude followed by the file from the
/// checkpoint's byte offset.
pub async fn resume(
    state: &AppState,
    principal: &Principal,
    job: Job,
    request: ResumeRequest,
) -> Result<Resumed, ApiError> {
    if job.state != JobState::Interrupted {
        return Err(ApiError::conflict(
            "not_interrupted",
            format!(
                "job {} is {}, only an interrupted print resumes",
                job.id.0,
                job.state.as_str()
            ),
        ));
    }
    let handle = match request.printer.as_deref().or(match &job.target {
        easyprint_queue::Target::Printer(id) => Some(id.as_str()),
        _ => None,
    }) {
        Some(id) => state.printers.get(id)?.clone(),
        None => state
            .printers
            .handles()
            .first()
            .cloned()
            .ok_or(ApiError::NotFound("printer"))?,
    };
    let id = job.id;
    let record = state
        .queue
        .call(move |s, _| s.resume_record(id))
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "no_checkpoint",
                "the print stopped before its first checkpoint",
            )
        })?;
    let from = match request.from {
        ResumePoint::LastLine => ResumeFrom::LastConfirmedLine,
        ResumePoint::LayerStart => ResumeFrom::LayerStart,
    };
    let offset = match resume_point(&record, from) {
        Ok(point) => point.start_byte_offset,
        Err(ResumeError::NoLayerMark) => {
            return Err(ApiError::conflict(
                "no_layer",
                "the checkpoint is not inside a layer",
            ))
        }
        Err(e) => return Err(ApiError::conflict("cannot_resume", e.to_string())),
    };
    let gcode = job
        .gcode
        .as_ref()
        .ok_or_else(|| ApiError::conflict("no_gcode", "the job has no G-code"))?
        .as_str()
        .to_owned();
    let (_, file) = runner::owned_file(state, job.owner.clone(), gcode).await?;
    let path = state.files.path_of(&file.stored_name);
    let analysis = state.analyses.get(&file.sha256, path.clone()).await?;
    let defaults = PreludeOptions::default();
    let options = PreludeOptions {
        prime_mm: request.prime_mm.unwrap_or(defaults.prime_mm),
        lift_mm: request.lift_mm.unwrap_or(defaults.lift_mm),
        ..defaults
    };
    let (prelude, offset, start_line) = prelude_at(
        path.clone(),
        analysis.clone(),
        (offset, request.from == ResumePoint::LayerStart),
        options,
    )
    .await?;

    let _starting = handle.starting.lock().await;
    handle.operational()?;
    if !idle(&handle) {
        return Err(ApiError::conflict(
            "printer_busy",
            format!("printer {} is busy", handle.id()),
        ));
    }
    let confirmation = ResumeConfirmation {
        confirmed_by: principal.user.name.clone(),
        from,
    };
    let (profile, worker) = (runner::profile(handle.id()), print_worker(handle.id()));
    let start = state
        .queue
        .call(move |s, now| s.confirm_resume(id, &confirmation, &profile, &worker, LEASE, now))
        .await?;
    let point = StartPoint {
        prelude: prelude.clone(),
        byte_offset: offset,
    };
    runner::launch(state, &handle, start.job.clone(), start.lease, Some(point)).await;
    queue_changed(state);
    Ok(Resumed {
        job: start.job,
        prelude,
        start_line,
        start_byte_offset: offset,
    })
}

/// The prelude lines for resuming at byte `offset`, and where the file continues (byte
/// offset, 1-based line). From a layer start the lines up to the layer's first change of Z
/// are taken as done, so the prelude declares the layer's height, which is where the head
/// stopped: declaring the previous layer's would print the layer one layer too high.
async fn prelude_at(
    path: PathBuf,
    analysis: Arc<FileAnalysis>,
    (offset, layer_start): (u64, bool),
    options: PreludeOptions,
) -> Result<(Vec<String>, u64, u64), ApiError> {
    let (state, offset, line) = tokio::task::spawn_blocking(move || {
        let mut follower = StateFollower::open(&path, analysis)?;
        let z = follower.advance_to(offset)?.position()[2];
        if layer_start {
            while follower.state().position()[2] == z && follower.advance_line()? {}
        }
        Ok::<_, std::io::Error>((*follower.state(), follower.offset(), follower.line() + 1))
    })
    .await
    .map_err(ApiError::internal)??;
    let prelude = state
        .resume_prelude(&options)
        .map_err(|e| ApiError::conflict("cannot_resume", e.to_string()))?;
    Ok((prelude.lines().map(str::to_owned).collect(), offset, line))
}

/// Whether `handle` may start a job now.
pub fn idle(handle: &PrinterHandle) -> bool {
    handle
        .printer()
        .is_some_and(|p| p.status().borrow().state == PrinterState::Ready)
        && handle.active_job().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_tracks_state_and_layer_start_e_through_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gcode");
        let long = format!(";{}\n", "x".repeat(200_000));
        let gcode = format!(
            "M140 S60\nM104 S200\nG28\nM82\nG1 Z0.2 F600\n;LAYER:0\nG1 X10 Y10 E1 F1800\n{long}G1 X20 E2\nG1 Z0.4\n;LAYER:1\nG1 X10 E3\nM106 S255\nG1 X20 E4\n"
        );
        std::fs::write(&path, &gcode).unwrap();
        let analysis = Arc::new(FileAnalysis::of_file(&path).unwrap());
        let layer1 = analysis.analysis.layers[1].offset;
        let mut f = StateFollower::open(&path, analysis.clone()).unwrap();
        let at = gcode.find("M106").unwrap() as u64;
        let s = *f.advance_to(at).unwrap();
        assert_eq!(s.position(), [10.0, 10.0, 0.4, 3.0]);
        assert_eq!(
            (s.hotend_target(0), s.bed_target(), s.fan(0)),
            (Some(200.0), Some(60.0), None)
        );
        assert_eq!(f.e_at_layer_start(layer1), Some(2.0));
        // Going back changes nothing; going on applies the rest.
        assert_eq!(f.advance_to(10).unwrap().position()[3], 3.0);
        let end = f.advance_to(u64::MAX).unwrap();
        assert_eq!((end.position()[3], end.fan(0)), (4.0, Some(255)));
        assert_eq!(end.lines(), gcode.lines().count() as u64);
    }
}

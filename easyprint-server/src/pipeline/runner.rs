//! One runner per printer: claims ready jobs while the printer is idle, streams them, and
//! reports progress (cheaply: at most one queue write per [`CHECKPOINT_EVERY`]), completion
//! and failure to the queue and the WebSocket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_marlin::printer::{JobProgress, PrinterEvent, PrinterState};
use easyprint_queue::{
    BuildVolume, Job, LayerMark, Lease, PrinterProfile, Progress, ProgressCheckpointer, Store,
    StoreError, Usage,
};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::analysis::command_lines_from;
use super::resume::{idle, StateFollower};
use super::{now, print_worker, queue_changed, LEASE};
use crate::auth::store as users;
use crate::error::ApiError;
use crate::files::store::{self as file_store, FileRecord};
use crate::printers::eta::PaceTracker;
use crate::printers::{ActiveJob, JobSummary, PrinterHandle};
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

/// Minimum time between two progress writes to the queue.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// What this printer offers when claiming (a generic 0.4 mm, 220×220×250 mm machine).
pub(crate) fn profile(id: &str) -> PrinterProfile {
    PrinterProfile {
        id: id.to_owned(),
        nozzle_um: 400,
        material: None,
        build_volume: BuildVolume::new(220.0, 220.0, 250.0),
    }
}

/// Where a resumed print picks up: the prelude restoring the machine state, then the file
/// from this byte offset.
#[derive(Debug, Clone)]
pub struct StartPoint {
    /// G-code lines sent before the file's.
    pub prelude: Vec<String>,
    /// Byte offset of the first file line to send.
    pub byte_offset: u64,
}

/// Runs until the server shuts down or the printer is removed or replaced.
pub async fn run_printer(state: AppState, handle: Arc<PrinterHandle>) {
    let stop = state.shutdown.clone();
    loop {
        if stop.is_cancelled() || handle.retired.is_cancelled() {
            return;
        }
        if idle(&handle) {
            // Held while claiming and starting, so a person resuming a print cannot start a
            // second job on this printer in between.
            let starting = handle.starting.lock().await;
            let (id, worker) = (handle.id().to_owned(), print_worker(handle.id()));
            let claimed = if idle(&handle) {
                state
                    .queue
                    .call(move |store, now| store.claim_print(&profile(&id), &worker, LEASE, now))
                    .await
            } else {
                Ok(None)
            };
            match claimed {
                Ok(Some(claim)) => {
                    launch(&state, &handle, claim.job, claim.lease, None).await;
                    drop(starting);
                    queue_changed(&state);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(printer = %handle.id(), error = %e, "claim failed"),
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = handle.retired.cancelled() => return,
            () = handle.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Starts streaming `job` (from the top, or resumed at `from`) and follows it to its end on a
/// task of its own. Call with the printer's `starting` lock held.
pub(crate) async fn launch(
    state: &AppState,
    handle: &Arc<PrinterHandle>,
    job: Job,
    lease: Lease,
    from: Option<StartPoint>,
) {
    match start_job(state, handle, &job, &lease, from).await {
        Ok((events, follower)) => {
            let (state, handle) = (state.clone(), handle.clone());
            tokio::spawn(async move {
                follow_job(&state, &handle, lease, events, follower).await;
                queue_changed(&state);
            });
        }
        Err(reason) => {
            tracing::warn!(printer = %handle.id(), job = job.id.0, %reason, "print failed to start");
            finish(
                state,
                handle,
                &lease,
                Outcome::Failed(reason),
                Usage::default(),
            )
            .await;
        }
    }
}

/// Finds the G-code, analyses it and starts streaming; returns the printer's event stream and
/// the machine-state follower for checkpoints.
async fn start_job(
    state: &AppState,
    handle: &Arc<PrinterHandle>,
    job: &Job,
    lease: &Lease,
    from: Option<StartPoint>,
) -> Result<
    (
        tokio::sync::broadcast::Receiver<PrinterEvent>,
        Option<StateFollower>,
    ),
    String,
> {
    let gcode = job
        .gcode
        .clone()
        .ok_or("the job has no G-code")?
        .as_str()
        .to_owned();
    let owner = job.owner.clone();
    let (owner_id, file) = owned_file(state, owner, gcode)
        .await
        .map_err(|e| format!("cannot find the G-code file: {e}"))?;
    let path = state.files.path_of(&file.stored_name);
    let analysis = state
        .analyses
        .get(&file.sha256, path.clone())
        .await
        .map_err(|e| format!("cannot read the G-code file: {e}"))?;
    let printer = handle
        .operational()
        .map_err(|_| "the printer is not operational".to_owned())?;
    let follower = match StateFollower::open(&path, analysis.clone()) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(printer = %handle.id(), error = %e, "checkpoints will lack the machine state");
            None
        }
    };
    let (prelude, byte_offset) = from.map_or((Vec::new(), 0), |p| (p.prelude, p.byte_offset));
    let skipped_commands = analysis
        .commands
        .partition_point(|&(_, past)| past <= byte_offset) as u64;
    let prelude_lines = prelude.len() as u64;
    let lines = command_lines_from(&path, byte_offset)
        .map_err(|e| format!("cannot open the G-code file: {e}"))?;
    let events = printer.events();
    let mut active = ActiveJob {
        job_id: job.id,
        lease: lease.clone(),
        owner_id,
        file_name: job.source.file_name.clone(),
        gcode_path: file.display_name.clone(),
        size: file.size,
        analysis: analysis.clone(),
        started: Instant::now(),
        position: analysis.position_after(skipped_commands),
        paused: false,
        skipped_commands,
        prelude_lines,
        pace: PaceTracker::default(),
    };
    active.advance(active.position, active.started);
    *handle.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(active);
    let total = prelude_lines + analysis.commands.len() as u64 - skipped_commands;
    if let Err(e) = printer
        .stream(prelude.into_iter().chain(lines), Some(total))
        .await
    {
        *handle.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        return Err(format!("the printer refused the job: {e}"));
    }
    tracing::info!(printer = %handle.id(), job = job.id.0, file = %file.display_name, from = byte_offset, "printing");
    Ok((events, follower))
}

/// The owner's id and their file with content `sha256`.
pub(crate) async fn owned_file(
    state: &AppState,
    owner: String,
    sha256: String,
) -> Result<(i64, FileRecord), ApiError> {
    state
        .db
        .call(move |conn| {
            let (user, _) =
                users::find_user_with_hash(conn, &owner)?.ok_or(ApiError::NotFound("user"))?;
            let file = file_store::file_by_sha256(conn, user.id, &sha256)?
                .ok_or(ApiError::NotFound("file"))?;
            Ok((user.id, file))
        })
        .await
}

enum Outcome {
    Done,
    Cancelled,
    Failed(String),
}

async fn follow_job(
    state: &AppState,
    handle: &Arc<PrinterHandle>,
    mut lease: Lease,
    mut events: tokio::sync::broadcast::Receiver<PrinterEvent>,
    mut follower: Option<StateFollower>,
) {
    let stop = state.shutdown.clone();
    let Some(printer) = handle.printer() else {
        return finish(
            state,
            handle,
            &lease,
            Outcome::Failed("printer disconnected".into()),
            Usage::default(),
        )
        .await;
    };
    let mut status = printer.status();
    // Hold the printer only weakly: a disconnect must be able to close it.
    drop(printer);
    let mut checkpointer = ProgressCheckpointer::new(CHECKPOINT_EVERY);
    let mut heartbeat = tokio::time::interval(LEASE / 3);
    heartbeat.tick().await;
    let outcome = loop {
        tokio::select! {
            // Shutdown first: it closes the printer right after, and that `Closed` must not be
            // taken for a disconnect (select! otherwise picks a ready branch at random).
            biased;
            // Shutting down: leave the job as it is; the next start marks it interrupted.
            () = stop.cancelled() => return,
            _ = heartbeat.tick() => {
                let l = lease.clone();
                match state.queue.call(move |s, now| s.heartbeat(&l, LEASE, now)).await {
                    Ok(renewed) => lease = renewed,
                    Err(e) => {
                        // Cancelled through the queue, or the lease was taken away: stop.
                        tracing::warn!(printer = %handle.id(), error = %e, "lease lost, cancelling");
                        if let Some(p) = handle.printer() { let _ = p.cancel(); }
                        break Outcome::Cancelled;
                    }
                }
            }
            changed = status.changed() => {
                let failed = match changed {
                    Err(_) => Some("printer disconnected".to_owned()),
                    Ok(()) => match &status.borrow().state {
                        PrinterState::Failed(text) => Some(format!("printer failed: {text}")),
                        PrinterState::Closed => Some("printer disconnected".to_owned()),
                        _ => None,
                    },
                };
                if let Some(reason) = failed {
                    break Outcome::Failed(reason);
                }
            }
            event = events.recv() => match event {
                Ok(PrinterEvent::Progress(p)) => {
                    progress(state, handle, &lease, p, &mut checkpointer, &mut follower).await;
                }
                Ok(PrinterEvent::JobFinished(p)) => {
                    progress(state, handle, &lease, p, &mut checkpointer, &mut follower).await;
                    break Outcome::Done;
                }
                Ok(PrinterEvent::JobCancelled(_)) => break Outcome::Cancelled,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    let job = status.borrow().job;
                    if let Some(p) = job {
                        progress(state, handle, &lease, p, &mut checkpointer, &mut follower).await;
                    }
                }
                Err(RecvError::Closed) => break Outcome::Failed("printer disconnected".into()),
            },
        }
    };
    let usage = handle
        .active_job()
        .map_or_else(Usage::default, |job| Usage {
            print_time: job.started.elapsed(),
            filament_mm: match outcome {
                Outcome::Done => job.analysis.filament_mm(),
                _ => 0.0,
            },
        });
    finish(state, handle, &lease, outcome, usage).await;
}

/// Records a progress report: position, WebSocket update, and a queue checkpoint when due
/// (with the machine state at the acknowledged line, from `follower`).
async fn progress(
    state: &AppState,
    handle: &PrinterHandle,
    lease: &Lease,
    p: JobProgress,
    checkpointer: &mut ProgressCheckpointer,
    follower: &mut Option<StateFollower>,
) {
    let (summary, layer) = {
        let mut active = handle.active.lock().unwrap_or_else(|e| e.into_inner());
        let Some(job) = active.as_mut() else { return };
        job.advance(job.position_after(p.acknowledged), Instant::now());
        (
            JobSummary::of(job),
            job.analysis.layer_at(job.position.line),
        )
    };
    state.hub.publish(
        Topic::JobProgress,
        handle.id(),
        Audience::Everyone,
        &summary,
    );
    let record = Progress {
        line: summary.position.line,
        byte_offset: summary.position.byte_offset,
        layer: layer.map(|(number, l)| LayerMark {
            number,
            line: l.line,
            byte_offset: l.offset,
            z: l.z,
            e: 0.0,
        }),
        z: layer.map_or(0.0, |(_, l)| l.z),
        e: 0.0,
        extrusion: Default::default(),
        positioning: Default::default(),
        hotend_c: 0.0,
        bed_c: 0.0,
        fan: 0,
        feedrate_mm_min: None,
    };
    let Some(mut due) = checkpointer.offer(record, now()) else {
        return;
    };
    if let Some(mut f) = follower.take() {
        let offset = due.byte_offset;
        let advanced = tokio::task::spawn_blocking(move || {
            let result = f.advance_to(offset).map(|_| ());
            (f, result)
        })
        .await;
        match advanced {
            Ok((f, Ok(()))) => {
                with_machine_state(&mut due, &f);
                *follower = Some(f);
            }
            Ok((_, Err(e))) => {
                tracing::warn!(printer = %handle.id(), error = %e, "cannot follow the machine state")
            }
            Err(e) => tracing::warn!(printer = %handle.id(), error = %e, "state follower failed"),
        }
    }
    let l = lease.clone();
    if let Err(e) = state
        .queue
        .call(move |s, now| s.record_progress(&l, &due, now))
        .await
    {
        tracing::warn!(printer = %handle.id(), error = %e, "progress not recorded");
    }
}

/// Fills a checkpoint's E, modes, temperatures, fan and feedrate from the file's state at it.
fn with_machine_state(record: &mut Progress, follower: &StateFollower) {
    let s = follower.state();
    let [_, _, z, e] = s.position();
    record.z = z;
    record.e = e;
    (record.extrusion, record.positioning) = follower.modes();
    record.hotend_c = s.hotend_target(s.tool()).unwrap_or(0.0);
    record.bed_c = s.bed_target().unwrap_or(0.0);
    record.fan = s.fan(0).unwrap_or(0);
    record.feedrate_mm_min = s.feedrate_mm_min();
    if let Some(mark) = &mut record.layer {
        if let Some(e) = follower.e_at_layer_start(mark.byte_offset) {
            mark.e = e;
        }
    }
}

async fn finish(
    state: &AppState,
    handle: &PrinterHandle,
    lease: &Lease,
    outcome: Outcome,
    usage: Usage,
) {
    let l = lease.clone();
    let (text, result) = match outcome {
        Outcome::Done => (
            "finished",
            state
                .queue
                .call(move |s, now| s.complete(&l, &usage, now))
                .await,
        ),
        Outcome::Cancelled => (
            "cancelled",
            state
                .queue
                .call(move |s, now| match s.cancel(l.job, now) {
                    // Already cancelled by whoever asked.
                    Err(StoreError::Transition { .. }) => s.job(l.job),
                    other => other,
                })
                .await,
        ),
        Outcome::Failed(reason) => (
            "failed",
            state
                .queue
                .call(move |s, now| match s.fail(&l, &reason, &usage, now) {
                    Err(StoreError::LeaseLost { .. }) => s.job(l.job),
                    other => other,
                })
                .await,
        ),
    };
    let active = handle
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match result {
        Ok(job) => {
            tracing::info!(printer = %handle.id(), job = job.id.0, state = job.state.as_str(), "print {text}");
            let audience = active
                .as_ref()
                .map_or(Audience::Everyone, |a| Audience::UserAndAdmins(a.owner_id));
            state.hub.publish(
                Topic::Notifications,
                handle.id(),
                audience,
                &json!({
                    "event": format!("print_{text}"),
                    "job": job.id.0,
                    "file": job.source.file_name,
                    "printer": handle.id(),
                    "state": job.state.as_str(),
                    "reason": job.failure,
                    "failure": job.failure,
                }),
            );
        }
        Err(e) => {
            tracing::warn!(printer = %handle.id(), error = %e, "could not record the end of a print")
        }
    }
    super::refresh_last_job(state, handle).await;
    state.hub.publish(
        Topic::JobProgress,
        handle.id(),
        Audience::Everyone,
        &serde_json::Value::Null,
    );
    handle.wake.notify_one();
}

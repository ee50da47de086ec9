//! What people do to a running print or a printer, shared by the native and OctoPrint APIs:
//! pause, resume, cancel, send commands. Each checks that the caller owns the job (or is an
//! administrator) before touching the printer and the queue.

use std::sync::Arc;
use std::time::Duration;

use easyprint_marlin::printer::{Printer, PrinterState};
use easyprint_queue::{JobId, Store};

use super::queue_changed;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::printers::commands::Command;
use crate::printers::{ActiveJob, PrinterHandle};
use crate::state::AppState;

/// The active job, if the caller may control it.
///
/// A job the queue already shows as printing may still be starting (its G-code being found
/// and analysed, under the printer's `starting` lock); waiting for that lock means a person
/// who cancels as soon as they see "printing" cancels that job instead of hearing "not
/// printing anything".
async fn controllable(
    handle: &PrinterHandle,
    principal: &Principal,
) -> Result<ActiveJob, ApiError> {
    let job = match handle.active_job() {
        Some(job) => Some(job),
        None => {
            drop(handle.starting.lock().await);
            handle.active_job()
        }
    };
    let job = job.ok_or_else(|| {
        ApiError::conflict("no_active_job", "the printer is not printing anything")
    })?;
    if job.owner_id != principal.user.id && !principal.user.admin {
        return Err(ApiError::Forbidden);
    }
    Ok(job)
}

/// How long pause/resume wait for the I/O thread to report the new state, so that a client
/// reading `/api/printer` right after a 204 sees it. The thread answers within one poll tick;
/// the bound only matters if the printer is wedged, and then the request still succeeds.
const STATE_SETTLE: Duration = Duration::from_secs(2);

async fn settle(printer: &Printer, leaving: PrinterState) {
    let mut status = printer.status();
    let _ = tokio::time::timeout(STATE_SETTLE, status.wait_for(|s| s.state != leaving)).await;
}

fn set_paused(handle: &PrinterHandle, paused: bool) {
    if let Some(job) = handle
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_mut()
    {
        job.paused = paused;
    }
}

/// Pauses the running print (no new lines are sent; the queue records the pause).
pub async fn pause(
    state: &AppState,
    handle: &PrinterHandle,
    principal: &Principal,
) -> Result<(), ApiError> {
    let job = controllable(handle, principal).await?;
    if job.paused {
        return Ok(());
    }
    let printer = handle.operational()?;
    printer
        .pause()
        .map_err(|e| ApiError::conflict("command_failed", e.to_string()))?;
    set_paused(handle, true);
    settle(&printer, PrinterState::Printing).await;
    let lease = job.lease.clone();
    state.queue.call(move |s, now| s.pause(&lease, now)).await?;
    queue_changed(state);
    Ok(())
}

/// Resumes a paused print.
pub async fn resume(
    state: &AppState,
    handle: &PrinterHandle,
    principal: &Principal,
) -> Result<(), ApiError> {
    let job = controllable(handle, principal).await?;
    if !job.paused {
        return Ok(());
    }
    let printer = handle.operational()?;
    let lease = job.lease.clone();
    state
        .queue
        .call(move |s, now| s.continue_print(&lease, now))
        .await?;
    printer
        .resume()
        .map_err(|e| ApiError::conflict("command_failed", e.to_string()))?;
    set_paused(handle, false);
    settle(&printer, PrinterState::Paused).await;
    queue_changed(state);
    Ok(())
}

/// Cancels the running print: queued lines are dropped, the job is cancelled in the queue.
pub async fn cancel(
    state: &AppState,
    handle: &PrinterHandle,
    principal: &Principal,
) -> Result<(), ApiError> {
    let job = controllable(handle, principal).await?;
    cancel_job(state, job.job_id).await?;
    if let Some(printer) = handle.printer() {
        let _ = printer.cancel();
    }
    Ok(())
}

/// Cancels a job in the queue (the runner printing it stops at its next heartbeat, or at once
/// when cancelled through [`cancel`]).
pub async fn cancel_job(state: &AppState, id: JobId) -> Result<(), ApiError> {
    state.queue.call(move |s, now| s.cancel(id, now)).await?;
    queue_changed(state);
    Ok(())
}

/// Sends validated commands in order, echoing them and the replies on the terminal topic.
pub async fn send_commands(
    state: &AppState,
    handle: &Arc<PrinterHandle>,
    commands: &[Command],
) -> Result<(), ApiError> {
    handle.operational()?;
    for command in commands {
        crate::printers::terminal(state, handle, &format!("> {}", command.as_str()));
        let reply = handle.send(command).await?;
        for line in reply {
            crate::printers::terminal(state, handle, &line);
        }
    }
    Ok(())
}

/// Queues the file OctoPrint clients selected on this printer (`/api/job` `start`).
pub async fn start_selected(
    state: &AppState,
    handle: &PrinterHandle,
    principal: &Principal,
) -> Result<easyprint_queue::Job, ApiError> {
    handle.operational()?;
    let selected = handle
        .selected
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .ok_or_else(|| ApiError::conflict("no_file_selected", "no file is selected"))?;
    if handle.active_job().is_some() {
        return Err(ApiError::conflict(
            "printer_busy",
            "the printer is already printing",
        ));
    }
    let record = crate::files::find_by_id(state, principal, selected).await?;
    super::enqueue_file(
        state,
        &principal.user.name,
        &record,
        Some(handle.id().to_owned()),
    )
    .await
}

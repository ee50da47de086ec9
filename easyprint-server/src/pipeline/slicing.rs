//! The slicing worker: one model at a time through easyprint-slicer's supervised CuraEngine
//! (idle priority, timeout), progress on the `slicing_progress` topic, the G-code stored as a
//! new file of the model's owner (never replacing one), and the job made ready to print — or
//! done, for a slice-only job. Cancelling the job stops the engine.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use easyprint_queue::{Claim, ContentHash, JobId, JobState, Store, StoreError, Usage};
use easyprint_slicer::{CancelToken, CuraOptions, CuraSlicer, SliceRequest, Slicer};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::profiles::SliceSettings;
use super::runner::owned_file;
use super::{queue_changed, SLICING_WORKER};
use crate::config::SlicerConfig;
use crate::error::ApiError;
use crate::files::names::FileKind;
use crate::files::store as file_store;
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

/// A slice's lease; generous, as slicing a large model can take minutes.
const SLICE_LEASE: Duration = Duration::from_secs(3600);

/// The slice in progress: cancelling its job stops the engine at once.
#[derive(Debug, Clone)]
pub struct CurrentSlice {
    /// The job being sliced.
    pub job: JobId,
    /// Stops the engine (its whole process group is killed).
    pub cancel: CancelToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops the engine if `job` is being sliced; true if it was. Call after cancelling the job
/// in the queue.
pub fn cancel_slice(state: &AppState, job: JobId) -> bool {
    match lock(&state.slicing).as_ref() {
        Some(current) if current.job == job => {
            current.cancel.cancel();
            true
        }
        _ => false,
    }
}

/// Runs until the server shuts down.
pub async fn run_slicer(state: AppState) {
    let stop = state.shutdown.clone();
    let options = slicer_options(&state.config.slicer);
    let slicer = match tokio::task::spawn_blocking(move || CuraSlicer::discover(options)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("CuraEngine is not available: {e}")),
        Err(e) => Err(format!("CuraEngine is not available: {e}")),
    };
    if let Err(e) = &slicer {
        tracing::warn!("{e}; model uploads will fail to slice");
    }
    loop {
        let claimed = state
            .queue
            .call(|s, now| s.claim_slicing(SLICING_WORKER, SLICE_LEASE, now))
            .await;
        match claimed {
            Ok(Some(claim)) => {
                run_claim(&state, &slicer, claim).await;
                queue_changed(&state);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "slicing claim failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = state.slicing_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Slices one claimed job and records the outcome in the queue and on the WebSocket.
async fn run_claim(state: &AppState, slicer: &Result<CuraSlicer, String>, claim: Claim) {
    let cancel = CancelToken::new();
    *lock(&state.slicing) = Some(CurrentSlice {
        job: claim.job.id,
        cancel: cancel.clone(),
    });
    // A cancel between the claim and the line above found no slice to stop: look again.
    let id = claim.job.id;
    let still_wanted = matches!(
        state.queue.call(move |s, _| s.job(id)).await,
        Ok(job) if job.state == JobState::Slicing
    );
    let result = match slicer {
        _ if !still_wanted => Err("slice cancelled".to_owned()),
        Ok(slicer) => slice(state, slicer, &claim, cancel.clone()).await,
        Err(e) => Err(e.clone()),
    };
    *lock(&state.slicing) = None;
    let cancelled = cancel.is_cancelled() || !still_wanted;
    let l = claim.lease.clone();
    let outcome = match &result {
        Ok(hash) => {
            let (hash, print) = (hash.clone(), super::prints(&claim.job));
            state
                .queue
                .call(move |s, now| {
                    if print {
                        s.finish_slicing(&l, &hash, now)
                    } else {
                        s.finish_slicing_only(&l, &hash, now)
                    }
                })
                .await
        }
        Err(reason) => {
            if !cancelled {
                tracing::warn!(job = id.0, %reason, "slicing failed");
            }
            let reason = reason.clone();
            state
                .queue
                .call(
                    move |s, now| match s.fail(&l, &reason, &Usage::default(), now) {
                        // Cancelled meanwhile: the queue already says so.
                        Err(StoreError::LeaseLost { .. }) => s.job(l.job),
                        other => other,
                    },
                )
                .await
        }
    };
    let job = match outcome {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(job = id.0, error = %e, "could not record the slice");
            state.hub.forget(Topic::SlicingProgress, &id.0.to_string());
            return;
        }
    };
    let Some(owner_id) = owner_id(state, &claim.job.owner).await else {
        return;
    };
    let key = id.0.to_string();
    state.hub.publish(
        Topic::SlicingProgress,
        &key,
        Audience::UserAndAdmins(owner_id),
        &json!({
            "job": id.0,
            "stage": job.state.as_str(),
            "progress": 1.0,
            "error": job.failure,
        }),
    );
    // Finished: new subscribers need no snapshot of it (keeps the hub's memory bounded).
    state.hub.forget(Topic::SlicingProgress, &key);
    if let (Err(reason), false) = (&result, cancelled) {
        state.hub.publish(
            Topic::Notifications,
            &key,
            Audience::UserAndAdmins(owner_id),
            &json!({
                "event": "slice_failed",
                "job": id.0,
                "file": job.source.file_name,
                "reason": reason,
            }),
        );
    }
}

fn slicer_options(config: &SlicerConfig) -> CuraOptions {
    let mut options = CuraOptions::default();
    options.run.timeout = Some(Duration::from_secs(config.timeout_secs.max(1)));
    options.run.idle_priority = true;
    options
}

/// The id of the user called `name`.
async fn owner_id(state: &AppState, name: &str) -> Option<i64> {
    let name = name.to_owned();
    let user = state
        .db
        .call(move |c| crate::auth::store::find_user_with_hash(c, &name))
        .await;
    match user {
        Ok(Some((user, _))) => Some(user.id),
        _ => None,
    }
}

/// Slices the job's model with its settings and stores the G-code under a fresh name; returns
/// its content hash.
async fn slice(
    state: &AppState,
    slicer: &CuraSlicer,
    claim: &Claim,
    cancel: CancelToken,
) -> Result<ContentHash, String> {
    let owner = claim.job.owner.clone();
    let (owner_id, model) = owned_file(
        state,
        owner.clone(),
        claim.job.source.hash.as_str().to_owned(),
    )
    .await
    .map_err(|e| format!("cannot find the model file: {e}"))?;
    let settings = SliceSettings::from_job(&claim.job.settings)
        .map_err(|e| format!("invalid slicing settings: {e}"))?;
    let profile = settings.profile(&state.config.slicer)?;
    let model_path = state.files.path_of(&model.stored_name);
    // Cura picks the reader by extension; the stored name carries ours.
    let output = state
        .files
        .tmp_dir()
        .join(format!("slice-{}.gcode", claim.lease.run.0));
    let (slicer, job, hub_state) = (slicer.clone(), claim.job.id.0, state.clone());
    let out = output.clone();
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || {
        let mut last = -1.0;
        let mut progress = |p: &easyprint_slicer::Progress| {
            if p.fraction - last >= 0.01 {
                last = p.fraction;
                hub_state.hub.publish(
                    Topic::SlicingProgress,
                    &job.to_string(),
                    Audience::UserAndAdmins(owner_id),
                    &json!({ "job": job, "stage": p.stage.to_string(), "progress": p.fraction }),
                );
            }
        };
        slicer.slice(SliceRequest {
            model: &model_path,
            profile: &profile,
            output: &out,
            progress: Some(&mut progress),
            cancel,
        })
    })
    .await
    .map_err(|e| format!("slicer task failed: {e}"))?
    .map_err(|e| format!("slicing failed: {e}"))?;
    tracing::info!(job, seconds = started.elapsed().as_secs_f64(), "sliced");
    let stored = store_output(
        state,
        &report.output,
        owner_id,
        gcode_stem(&model.display_name),
    )
    .await;
    let _ = tokio::fs::remove_file(&output).await;
    // The code leads, so that the job's failure says which limit it hit.
    let sha = stored.map_err(|e| format!("{}: cannot store the G-code: {e}", e.code()))?;
    ContentHash::parse(&sha).map_err(|e| e.to_string())
}

/// `cube.stl` → `cube` (the G-code becomes `cube.gcode`, or `cube (2).gcode`...).
fn gcode_stem(model: &str) -> &str {
    Path::new(model)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("model")
}

/// Copies the slicer's output into the upload store as a new file of `owner_id` (never
/// replacing one); returns its hash. The G-code counts against the owner's upload quota like
/// an upload: output that would exceed it is refused (`quota_exceeded`) before it is copied,
/// and checked again exactly when it is recorded.
async fn store_output(
    state: &AppState,
    output: &PathBuf,
    owner_id: i64,
    stem: &str,
) -> Result<String, ApiError> {
    let quota = state.config.limits.user_quota_bytes;
    let mut source = tokio::fs::File::open(output).await?;
    let size = source.metadata().await?.len();
    let used = state
        .db
        .call(move |conn| file_store::bytes_used(conn, owner_id))
        .await?;
    if used.saturating_add(size) > quota {
        return Err(ApiError::QuotaExceeded { quota, used });
    }
    let mut upload = state.files.begin().await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = source.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        upload.write(&buf[..n]).await?;
    }
    let stored = upload.finish(&state.files, FileKind::Gcode).await?;
    let sha = stored.sha256.clone();
    let stored_name = stored.stored_name.clone();
    let stem = stem.to_owned();
    let recorded = state
        .db
        .call(move |conn| {
            // Exact here: uploads of the same user may have landed meanwhile.
            let used = file_store::bytes_used(conn, owner_id)?;
            if used.saturating_add(stored.size) > quota {
                return Err(ApiError::QuotaExceeded { quota, used });
            }
            file_store::record_numbered(conn, owner_id, &stem, FileKind::Gcode, &stored)
        })
        .await;
    match recorded {
        Ok(_) => Ok(sha),
        Err(e) => {
            let _ = tokio::fs::remove_file(state.files.path_of(&stored_name)).await;
            Err(e)
        }
    }
}

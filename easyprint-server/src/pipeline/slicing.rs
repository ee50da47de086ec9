//! The slicing worker: one model at a time through easyprint-slicer's supervised CuraEngine
//! (idle priority, timeout), progress on the `slicing_progress` topic, the G-code stored as a
//! new file of the model's owner, and the job made ready to print.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use easyprint_queue::{Claim, ContentHash, Store, StoreError, Usage};
use easyprint_slicer::{CancelToken, CuraOptions, CuraSlicer, Profile, SliceRequest, Slicer};
use serde_json::json;
use tokio::io::AsyncReadExt;

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
                let l = claim.lease.clone();
                let result = match &slicer {
                    Ok(slicer) => slice(&state, slicer, &claim).await,
                    Err(e) => Err(e.clone()),
                };
                let (id, owner) = (claim.job.id.0, claim.job.owner.clone());
                let outcome = match result {
                    Ok(hash) => {
                        state
                            .queue
                            .call(move |s, now| s.finish_slicing(&l, &hash, now))
                            .await
                    }
                    Err(reason) => {
                        tracing::warn!(job = id, %reason, "slicing failed");
                        state
                            .queue
                            .call(
                                move |s, now| match s.fail(&l, &reason, &Usage::default(), now) {
                                    Err(StoreError::LeaseLost { .. }) => s.job(l.job),
                                    other => other,
                                },
                            )
                            .await
                    }
                };
                match outcome {
                    Ok(job) => {
                        publish(
                            &state,
                            &owner,
                            id,
                            job.state.as_str(),
                            1.0,
                            job.failure.as_deref(),
                        )
                        .await
                    }
                    Err(e) => tracing::warn!(job = id, error = %e, "could not record the slice"),
                }
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

fn slicer_options(config: &SlicerConfig) -> CuraOptions {
    let mut options = CuraOptions::default();
    options.run.timeout = Some(Duration::from_secs(config.timeout_secs.max(1)));
    options.run.idle_priority = true;
    options
}

/// Publishes slicing progress to the job's owner.
async fn publish(
    state: &AppState,
    owner: &str,
    job: i64,
    stage: &str,
    fraction: f64,
    error: Option<&str>,
) {
    let owner = owner.to_owned();
    let user = state
        .db
        .call(move |c| crate::auth::store::find_user_with_hash(c, &owner))
        .await;
    if let Ok(Some((user, _))) = user {
        state.hub.publish(
            Topic::SlicingProgress,
            &job.to_string(),
            Audience::User(user.id),
            &json!({ "job": job, "stage": stage, "progress": fraction, "error": error }),
        );
    }
}

/// Slices the job's model and stores the G-code; returns its content hash.
async fn slice(
    state: &AppState,
    slicer: &CuraSlicer,
    claim: &Claim,
) -> Result<ContentHash, String> {
    let owner = claim.job.owner.clone();
    let (owner_id, model) = owned_file(
        state,
        owner.clone(),
        claim.job.source.hash.as_str().to_owned(),
    )
    .await
    .map_err(|e| format!("cannot find the model file: {e}"))?;
    let mut profile = Profile::machine(&state.config.slicer.machine);
    for setting in &state.config.slicer.settings {
        profile = profile
            .set(setting)
            .map_err(|e| format!("slicer setting {setting:?}: {e}"))?;
    }
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
                    Audience::User(owner_id),
                    &json!({ "job": job, "stage": p.stage.to_string(), "progress": p.fraction }),
                );
            }
        };
        slicer.slice(SliceRequest {
            model: &model_path,
            profile: &profile,
            output: &out,
            progress: Some(&mut progress),
            cancel: CancelToken::new(),
        })
    })
    .await
    .map_err(|e| format!("slicer task failed: {e}"))?
    .map_err(|e| format!("slicing failed: {e}"))?;
    tracing::info!(job, seconds = started.elapsed().as_secs_f64(), "sliced");
    let name = gcode_name(&model.display_name);
    let stored = store_output(state, &report.output, owner_id, &name).await;
    let _ = tokio::fs::remove_file(&output).await;
    let sha = stored.map_err(|e| format!("cannot store the G-code: {e}"))?;
    ContentHash::parse(&sha).map_err(|e| e.to_string())
}

/// `cube.stl` → `cube.gcode`.
fn gcode_name(model: &str) -> String {
    let stem = Path::new(model)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("model");
    format!("{stem}.gcode")
}

/// Copies the slicer's output into the upload store as a file of `owner_id`; returns its hash.
async fn store_output(
    state: &AppState,
    output: &PathBuf,
    owner_id: i64,
    name: &str,
) -> Result<String, ApiError> {
    let mut source = tokio::fs::File::open(output).await?;
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
    let name = name.to_owned();
    let recorded = state
        .db
        .call(move |conn| {
            file_store::record_upload(conn, owner_id, &name, FileKind::Gcode, &stored, None, false)
        })
        .await;
    match recorded {
        Ok(r) => {
            if let Some(old) = r.replaced {
                let _ = tokio::fs::remove_file(state.files.path_of(&old)).await;
            }
            Ok(sha)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(state.files.path_of(&stored_name)).await;
            Err(e)
        }
    }
}

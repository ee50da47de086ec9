//! `/api/v1/jobs` and `/api/v1/history`: the queue as its owner sees it (administrators see
//! everyone's).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use easyprint_queue::{HistoryFilter, JobFilter, JobId, RunKind, Store};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::pipeline::{self, control, job_json};
use crate::state::AppState;

/// `/api/v1/jobs[/...]`, `/api/v1/history`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list).post(create))
        .route("/api/v1/jobs/{id}", get(one))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
        .route("/api/v1/jobs/{id}/retry", post(retry))
        .route("/api/v1/jobs/{id}/abandon", post(abandon))
        .route("/api/v1/history", get(history))
}

fn owner_filter(principal: &Principal) -> Option<String> {
    (!principal.user.admin).then(|| principal.user.name.clone())
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let filter = JobFilter {
        owner: owner_filter(&principal),
        limit: 500,
        ..Default::default()
    };
    let jobs = state.queue.call(move |s, _| s.jobs(&filter)).await?;
    Ok(axum::Json(json!({
        "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
    })))
}

/// `{"file_id": "...", "printer": "id"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    file_id: String,
    printer: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewJob>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    if let Some(id) = &body.printer {
        state.printers.get(id)?;
    }
    let record = crate::files::find_by_id(&state, &principal, body.file_id).await?;
    let job = pipeline::enqueue_file(&state, &principal.user.name, &record, body.printer).await?;
    Ok((StatusCode::CREATED, axum::Json(job_json(&job))))
}

async fn own_job(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> Result<easyprint_queue::Job, ApiError> {
    let job = state.queue.call(move |s, _| s.job(JobId(id))).await?;
    if job.owner != principal.user.name && !principal.user.admin {
        return Err(ApiError::NotFound("job"));
    }
    Ok(job)
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = own_job(&state, &principal, id).await?;
    let progress = state
        .queue
        .call(move |s, _| s.resume_record(JobId(id)))
        .await?;
    let mut value = job_json(&job);
    value["progress"] = progress.map_or(Value::Null, |p| {
        json!({
            "line": p.line,
            "byte_offset": p.byte_offset,
            "layer": p.layer.map(|l| l.number),
            "z": p.z,
            "e": p.e,
            "hotend_c": p.hotend_c,
            "bed_c": p.bed_c,
            "fan": p.fan,
            "feedrate_mm_min": p.feedrate_mm_min,
        })
    });
    Ok(axum::Json(value))
}

async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let job = own_job(&state, &principal, id).await?;
    // A job on a printer is stopped there at once; the queue cancels it either way.
    for handle in state.printers.handles() {
        if handle.active_job().is_some_and(|a| a.job_id == job.id) {
            control::cancel(&state, handle, &principal).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    control::cancel_job(&state, job.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A failed or interrupted job starts again from the beginning.
async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = own_job(&state, &principal, id).await?;
    let job = state.queue.call(move |s, now| s.retry(job.id, now)).await?;
    pipeline::queue_changed(&state);
    Ok(axum::Json(job_json(&job)))
}

/// A person gives up on an interrupted print.
async fn abandon(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = own_job(&state, &principal, id).await?;
    let reason = format!("abandoned by {}", principal.user.name);
    let job = state
        .queue
        .call(move |s, now| s.abandon(job.id, &reason, now))
        .await?;
    pipeline::queue_changed(&state);
    Ok(axum::Json(job_json(&job)))
}

async fn history(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let filter = HistoryFilter {
        owner: owner_filter(&principal),
        limit: 200,
        ..Default::default()
    };
    let runs = state.queue.call(move |s, _| s.history(&filter)).await?;
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run": r.id.0,
                "job": r.job.0,
                "owner": r.owner,
                "file": r.file_name,
                "kind": match r.kind { RunKind::Slice => "slice", _ => "print" },
                "printer": r.printer,
                "started_at": r.started_at.0,
                "ended_at": r.ended_at.map(|t| t.0),
                "result": r.result.map(|x| x.as_str()),
                "print_time_secs": r.usage.print_time.as_secs_f64(),
                "filament_mm": r.usage.filament_mm,
                "failure": r.failure,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "runs": runs })))
}

//! `/api/v1/jobs` and `/api/v1/history`: the queue as its owner sees it (administrators see
//! everyone's).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use easyprint_queue::{
    HistoryFilter, JobFilter, JobId, Placement, RunKind, Store, Target, Timestamp,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::pipeline::{self, control, job_json, job_json_at};
use crate::state::AppState;

/// `/api/v1/jobs[/...]`, `/api/v1/history`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list).post(create))
        .route("/api/v1/jobs/{id}", get(one).patch(update))
        .route("/api/v1/jobs/{id}/move", post(move_job))
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
    let positions = pipeline::positions(&state).await?;
    Ok(axum::Json(json!({
        "jobs": jobs.iter().map(|j| job_json_at(j, &positions, &state.printers)).collect::<Vec<_>>(),
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
    let mut value = job_json_at(&job, &pipeline::positions(&state).await?, &state.printers);
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
            control::cancel(&state, &handle, &principal).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    control::cancel_job(&state, job.id).await?;
    // A job being sliced: stop the engine now rather than discard its result later.
    pipeline::slicing::cancel_slice(&state, job.id);
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
                "duration_s": r.ended_at.map(|end| end.millis_since(r.started_at) as f64 / 1000.0),
                "result": r.result.map(|x| x.as_str()),
                "print_time_secs": r.usage.print_time.as_secs_f64(),
                "filament_mm": r.usage.filament_mm,
                "failure": r.failure,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "runs": runs })))
}

/// `{"to": "top"|"bottom"}`, `{"before": id}` or `{"after": id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    to: Option<End>,
    before: Option<i64>,
    after: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum End {
    Top,
    Bottom,
}

/// Only waiting jobs have a place in the queue.
fn check_waiting(job: &easyprint_queue::Job) -> Result<(), ApiError> {
    if pipeline::WAITING.contains(&job.state) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "not_waiting",
            format!(
                "job {} is {}, not waiting in the queue",
                job.id.0,
                job.state.as_str()
            ),
        ))
    }
}

/// Moves a waiting job within the queue. It takes the priority of its new neighbour (or the
/// highest / lowest of the waiting jobs), so the place shown is the place it is claimed in.
async fn move_job(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Move>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = own_job(&state, &principal, id).await?;
    check_waiting(&job)?;
    let place = match (body.to, body.before, body.after) {
        (Some(End::Top), None, None) => Placement::First,
        (Some(End::Bottom), None, None) => Placement::Last,
        (None, Some(other), None) => Placement::Before(JobId(other)),
        (None, None, Some(other)) => Placement::After(JobId(other)),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_move",
                "give exactly one of \"to\" (\"top\" or \"bottom\"), \"before\" or \"after\"",
            ))
        }
    };
    let priority = match place {
        Placement::Before(other) | Placement::After(other) => {
            // The neighbour must be visible to the caller (404 otherwise, like any job).
            own_job(&state, &principal, other.0).await?.priority
        }
        Placement::First | Placement::Last => {
            let filter = JobFilter {
                states: pipeline::WAITING.to_vec(),
                limit: pipeline::MAX_WAITING,
                ..Default::default()
            };
            let waiting = state.queue.call(move |s, _| s.jobs(&filter)).await?;
            let priorities = waiting.iter().map(|j| j.priority);
            let extreme = if place == Placement::First {
                priorities.max()
            } else {
                priorities.min()
            };
            extreme.unwrap_or(job.priority)
        }
    };
    let job = state
        .queue
        .call(move |s, now| {
            if priority != job.priority {
                s.set_priority(job.id, priority, now)?;
            }
            s.reorder(job.id, place, now)
        })
        .await?;
    pipeline::queue_changed(&state);
    let positions = pipeline::positions(&state).await?;
    Ok(axum::Json(job_json_at(&job, &positions, &state.printers)))
}

/// `{"not_before": "2026-11-23T18:30:00Z" | <ms since epoch> | null, "priority": <int>,
/// "printer": "<printer id>" | null}`; any may be left out. `printer` retargets a waiting or
/// interrupted job (`null`: any printer), which is how a job whose printer was removed is
/// unblocked.
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<axum::Json<Value>, ApiError> {
    let mut not_before: Option<Option<Timestamp>> = None;
    let mut priority: Option<i32> = None;
    let mut target: Option<Target> = None;
    for (key, value) in &body {
        match key.as_str() {
            "printer" => {
                target = Some(match value {
                    Value::Null => Target::Any(Default::default()),
                    Value::String(id) => {
                        state.printers.get(id).map_err(|_| {
                            ApiError::bad_request(
                                "unknown_printer",
                                format!("printer: no printer {id:?}"),
                            )
                        })?;
                        Target::Printer(id.clone())
                    }
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_printer",
                            "printer: expected a printer id or null",
                        ))
                    }
                })
            }
            "not_before" => not_before = Some(parse_not_before(value)?),
            "priority" => {
                priority = Some(
                    value
                        .as_i64()
                        .and_then(|p| i32::try_from(p).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "invalid_priority",
                                format!("priority: expected a whole number, got {value}"),
                            )
                        })?,
                )
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!(
                    "unknown field {other:?}, expected \"not_before\", \"priority\" or \"printer\""
                ),
                ))
            }
        }
    }
    let job = own_job(&state, &principal, id).await?;
    if job.state.is_final() {
        return Err(ApiError::conflict(
            "job_finished",
            format!("job {id} is {}", job.state.as_str()),
        ));
    }
    let job = state
        .queue
        .call(move |s, now| {
            let mut job = job;
            if let Some(p) = priority {
                job = s.set_priority(job.id, p, now)?;
            }
            if let Some(t) = not_before {
                job = s.set_not_before(job.id, t, now)?;
            }
            if let Some(t) = &target {
                job = s.set_target(job.id, t, now)?;
            }
            Ok(job)
        })
        .await?;
    pipeline::queue_changed(&state);
    let positions = pipeline::positions(&state).await?;
    Ok(axum::Json(job_json_at(&job, &positions, &state.printers)))
}

fn parse_not_before(value: &Value) -> Result<Option<Timestamp>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => super::timestamps::parse_rfc3339(text)
            .map(|ms| Some(Timestamp(ms)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_not_before",
                    format!("not_before: {text:?} is not an RFC 3339 date-time like 2026-11-23T18:30:00Z"),
                )
            }),
        Value::Number(n) => n.as_i64().map(|ms| Some(Timestamp(ms))).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_not_before",
                "not_before: milliseconds since the epoch must be a whole number",
            )
        }),
        _ => Err(ApiError::bad_request(
            "invalid_not_before",
            "not_before: expected an RFC 3339 string, milliseconds since the epoch, or null",
        )),
    }
}

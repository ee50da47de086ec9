//! `POST /api/v1/jobs/{id}/resume`: a person resumes an interrupted print from its last
//! checkpoint (see [`crate::pipeline::resume`]).

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use easyprint_queue::{JobId, Store};
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::pipeline::job_json;
use crate::pipeline::resume::{self, ResumeRequest};
use crate::state::AppState;

/// The resume route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/jobs/{id}/resume", post(resume_job))
}

async fn resume_job(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(request): ApiJson<ResumeRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = state.queue.call(move |s, _| s.job(JobId(id))).await?;
    if job.owner != principal.user.name && !principal.user.admin {
        return Err(ApiError::NotFound("job"));
    }
    let resumed = resume::resume(&state, &principal, job, request).await?;
    let mut value = job_json(&resumed.job);
    value["resume"] = json!({
        "start_line": resumed.start_line,
        "start_byte_offset": resumed.start_byte_offset,
        "prelude": resumed.prelude,
    });
    Ok(axum::Json(value))
}

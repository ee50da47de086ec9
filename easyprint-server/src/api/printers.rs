//! `/api/v1/printers`: the printers, their connection, commands and the running job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::pipeline::control;
use crate::printers::commands;
use crate::printers::PrinterSlot;
use crate::state::AppState;

/// `/api/v1/printers[/...]`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/printers", get(list))
        .route("/api/v1/printers/{id}", get(one))
        .route("/api/v1/printers/{id}/connect", post(connect))
        .route("/api/v1/printers/{id}/disconnect", post(disconnect))
        .route("/api/v1/printers/{id}/commands", post(send))
        .route("/api/v1/printers/{id}/temperatures", post(temperatures))
        .route("/api/v1/printers/{id}/home", post(home))
        .route("/api/v1/printers/{id}/emergency_stop", post(emergency_stop))
        .route("/api/v1/printers/{id}/job/{action}", post(job_action))
}

async fn list(State(state): State<AppState>, _: Principal) -> axum::Json<Vec<PrinterSlot>> {
    axum::Json(state.printers.list())
}

async fn one(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<PrinterSlot>, ApiError> {
    Ok(axum::Json(state.printers.get(&id)?.slot()))
}

async fn connect(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<PrinterSlot>, ApiError> {
    let handle = state.printers.get(&id)?.clone();
    handle.connect(&state).await?;
    Ok(axum::Json(handle.slot()))
}

async fn disconnect(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let handle = state.printers.get(&id)?;
    if let Some(job) = handle.active_job() {
        if job.owner_id != principal.user.id && !principal.user.admin {
            return Err(ApiError::Forbidden);
        }
    }
    handle.disconnect().await;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"commands": ["G28", ...]}`.
#[derive(Debug, Deserialize)]
struct Commands {
    commands: Vec<String>,
}

async fn send(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Commands>,
) -> Result<StatusCode, ApiError> {
    let handle = state.printers.get(&id)?;
    let commands = commands::raw_batch(&body.commands)?;
    control::send_commands(&state, handle, &commands).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"tool0": 200, "bed": 60}` (either may be left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Temperatures {
    tool0: Option<f64>,
    bed: Option<f64>,
}

async fn temperatures(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Temperatures>,
) -> Result<StatusCode, ApiError> {
    let handle = state.printers.get(&id)?;
    let mut list = Vec::new();
    if let Some(t) = body.tool0 {
        list.push(commands::tool_target(0, t)?);
    }
    if let Some(t) = body.bed {
        list.push(commands::bed_target(t)?);
    }
    control::send_commands(&state, handle, &list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"axes": ["x", "y"]}` (empty: all).
#[derive(Debug, Deserialize)]
struct Home {
    #[serde(default)]
    axes: Vec<String>,
}

async fn home(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Home>,
) -> Result<StatusCode, ApiError> {
    let handle = state.printers.get(&id)?;
    control::send_commands(&state, handle, &[commands::home(&body.axes)?]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn emergency_stop(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Anyone who can see the printer may stop it: safety first.
    let printer = state.printers.get(&id)?.operational()?;
    printer
        .emergency_stop()
        .map_err(|e| ApiError::conflict("command_failed", e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn job_action(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let handle = state.printers.get(&id)?;
    match action.as_str() {
        "pause" => control::pause(&state, handle, &principal).await?,
        "resume" => control::resume(&state, handle, &principal).await?,
        "cancel" => control::cancel(&state, handle, &principal).await?,
        _ => return Err(ApiError::NotFound("route")),
    }
    Ok(StatusCode::NO_CONTENT)
}

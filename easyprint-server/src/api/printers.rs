//! `/api/v1/printers`: the printers, their connection, commands and the running job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

use crate::auth::{Admin, Principal};
use crate::config::{HostScriptsConfig, PrinterConfig, SimulationConfig};
use crate::error::{ApiError, ApiJson};
use crate::pipeline::control;
use crate::printers::commands;
use crate::printers::{store, PrinterHandle, PrinterSlot};
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

/// `/api/v1/printers[/...]`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/printers", get(list).post(add))
        .route(
            "/api/v1/printers/{id}",
            get(one).put(replace).delete(remove),
        )
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
    control::send_commands(&state, &handle, &commands).await?;
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
    control::send_commands(&state, &handle, &list).await?;
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
    control::send_commands(&state, &handle, &[commands::home(&body.axes)?]).await?;
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
        "pause" => control::pause(&state, &handle, &principal).await?,
        "resume" => control::resume(&state, &handle, &principal).await?,
        "cancel" => control::cancel(&state, &handle, &principal).await?,
        _ => return Err(ApiError::NotFound("route")),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A printer as administrators add or change it: `{"id", "name"?, "port": "/dev/..." |
/// "virtual", "baudrate"?, "autoconnect"?, "simulation"?, "host_scripts"?}` (`id` only when
/// adding).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrinterBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    port: String,
    #[serde(default = "default_baud")]
    baudrate: u32,
    #[serde(default = "default_autoconnect")]
    autoconnect: bool,
    #[serde(default)]
    simulation: SimulationConfig,
    #[serde(default)]
    host_scripts: HostScriptsConfig,
}

fn default_baud() -> u32 {
    115_200
}

fn default_autoconnect() -> bool {
    true
}

impl PrinterBody {
    fn into_config(self, id: String) -> Result<PrinterConfig, ApiError> {
        let config = PrinterConfig {
            id,
            name: self.name,
            port: self.port,
            baudrate: self.baudrate,
            autoconnect: self.autoconnect,
            simulation: self.simulation,
            host_scripts: self.host_scripts,
        };
        store::validate(&config)?;
        Ok(config)
    }
}

fn refuse_if_printing(handle: &PrinterHandle) -> Result<(), ApiError> {
    match handle.active_job() {
        Some(job) => Err(ApiError::conflict(
            "printer_busy",
            format!(
                "printer {} is printing job {}; cancel it first",
                handle.id(),
                job.job_id.0
            ),
        )),
        None => Ok(()),
    }
}

/// Stops a printer that is removed or replaced: its runner ends, the connection closes, and
/// WebSocket clients drop its status.
async fn retire(state: &AppState, handle: &PrinterHandle) {
    handle.retired.cancel();
    handle.disconnect().await;
    for topic in [
        Topic::PrinterStatus,
        Topic::Temperatures,
        Topic::JobProgress,
        Topic::Terminal,
    ] {
        state.hub.forget(topic, handle.id());
    }
}

/// Puts a new printer in place (replacing any with its id) and starts it.
fn install(state: &AppState, config: PrinterConfig) -> PrinterSlot {
    let handle = Arc::new(PrinterHandle::new(config));
    state.printers.put(handle.clone());
    crate::pipeline::start_printer(state, handle.clone());
    // A printer of a removed one's id takes over its history.
    let (s, h) = (state.clone(), handle.clone());
    tokio::spawn(async move { crate::pipeline::refresh_last_job(&s, &h).await });
    // Jobs held for a printer of this id can run again.
    state.queue_republish.notify_one();
    let slot = handle.slot();
    // WebSocket clients learn of it now, not only once it connects.
    state
        .hub
        .publish(Topic::PrinterStatus, handle.id(), Audience::Everyone, &slot);
    slot
}

/// `POST /api/v1/printers` (administrators): adds a printer, persisted across restarts.
async fn add(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<PrinterBody>,
) -> Result<(StatusCode, axum::Json<PrinterSlot>), ApiError> {
    let id = body
        .id
        .clone()
        .ok_or_else(|| ApiError::bad_request("invalid_printer", "id: missing"))?;
    let config = body.into_config(id)?;
    let _changes = state.printers.changes.lock().await;
    if state.printers.get(&config.id).is_ok() {
        return Err(ApiError::conflict(
            "printer_exists",
            format!("a printer {:?} exists already", config.id),
        ));
    }
    let saved = config.clone();
    state.db.call(move |c| store::save(c, &saved)).await?;
    Ok((StatusCode::CREATED, axum::Json(install(&state, config))))
}

/// `PUT /api/v1/printers/{id}` (administrators): changes a printer and reconnects it.
async fn replace(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PrinterBody>,
) -> Result<axum::Json<PrinterSlot>, ApiError> {
    if body.id.as_ref().is_some_and(|b| b != &id) {
        return Err(ApiError::bad_request(
            "invalid_printer",
            "id: a printer's id cannot change",
        ));
    }
    let config = body.into_config(id.clone())?;
    let _changes = state.printers.changes.lock().await;
    let old = state.printers.get(&id)?;
    refuse_if_printing(&old)?;
    let saved = config.clone();
    state.db.call(move |c| store::save(c, &saved)).await?;
    retire(&state, &old).await;
    Ok(axum::Json(install(&state, config)))
}

/// `DELETE /api/v1/printers/{id}` (administrators): removes a printer (a configured one stays
/// removed across restarts).
async fn remove(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let _changes = state.printers.changes.lock().await;
    let handle = state.printers.get(&id)?;
    refuse_if_printing(&handle)?;
    let configured = state.config.printers.iter().any(|p| p.id == id);
    let key = id.clone();
    state
        .db
        .call(move |c| store::remove(c, &key, configured))
        .await?;
    retire(&state, &handle).await;
    state.printers.remove(&id);
    // Its waiting jobs are now blocked: subscribers see it at once.
    state.queue_republish.notify_one();
    state.hub.publish(
        Topic::PrinterStatus,
        &id,
        Audience::Everyone,
        &serde_json::json!({ "id": id, "removed": true }),
    );
    state.hub.forget(Topic::PrinterStatus, &id);
    Ok(StatusCode::NO_CONTENT)
}

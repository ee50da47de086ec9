//! `/api/connection`, `/api/printer[/command|/tool|/bed|/printhead]` and `/api/job`, on the
//! caller's current printer: OctoPrint has exactly one, so each user's is the printer they
//! chose with `/api/connection` `connect` (kept across restarts, see [`super::current`]), else
//! the configured `default_printer`, else the only printer (see
//! [`crate::printers::PrinterRegistry::target_for`]). Commands with several
//! printers and no choice answer 409 `printer_ambiguous`; state reads then fall back to the
//! first operational printer so that status displays keep working.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::pipeline::control;
use crate::printers::commands::{self, Command};
use crate::printers::{ConnectionState, HeaterReading, PrinterHandle};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/connection", get(connection).post(connection_command))
        .route("/api/printer", get(printer_state))
        .route("/api/printer/command", post(printer_command))
        .route("/api/printer/tool", get(tool_state).post(tool_command))
        .route("/api/printer/bed", get(bed_state).post(bed_command))
        .route("/api/printer/printhead", post(printhead_command))
        .route("/api/job", get(job).post(job_command))
}

/// The printer commands from `principal` act on (see the module docs).
pub(super) fn target(
    state: &AppState,
    principal: &Principal,
) -> Result<Arc<PrinterHandle>, ApiError> {
    state
        .printers
        .target_for(principal.user.id, state.config.default_printer.as_deref())
}

/// The printer state reads describe: the target, else (several printers, none chosen) the
/// first operational one.
fn shown(state: &AppState, principal: &Principal) -> Option<Arc<PrinterHandle>> {
    target(state, principal)
        .ok()
        .or_else(|| state.printers.current())
}

fn operational(state: &AppState, principal: &Principal) -> Result<Arc<PrinterHandle>, ApiError> {
    let handle = target(state, principal)?;
    handle.operational()?;
    Ok(handle)
}

fn shown_operational(
    state: &AppState,
    principal: &Principal,
) -> Result<Arc<PrinterHandle>, ApiError> {
    let handle = shown(state, principal).ok_or(ApiError::PrinterNotOperational)?;
    handle.operational()?;
    Ok(handle)
}

/// The printer a `port` of `/api/connection` names: a printer id, else the one printer on
/// that serial port (several `virtual` printers share theirs, so their ids name them).
fn printer_on_port(state: &AppState, port: &str) -> Result<Arc<PrinterHandle>, ApiError> {
    let printers = state.printers.handles();
    if let Some(found) = printers.iter().find(|p| p.id() == port) {
        return Ok(found.clone());
    }
    let mut on_port = printers.iter().filter(|p| p.config.port == port);
    match (on_port.next(), on_port.next()) {
        (Some(found), None) => Ok(found.clone()),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "invalid_port",
            format!("several printers use port {port:?}: name one by its printer id"),
        )),
        (None, _) => Err(ApiError::bad_request(
            "invalid_port",
            "port is not a configured printer",
        )),
    }
}

/// How a printer appears in `options.ports`: its serial port, or its id when the port is
/// shared (simulated printers).
fn port_name<'a>(printer: &'a PrinterHandle, all: &[Arc<PrinterHandle>]) -> &'a str {
    let shared = all
        .iter()
        .filter(|p| p.config.port == printer.config.port)
        .count()
        > 1;
    if shared {
        printer.id()
    } else {
        &printer.config.port
    }
}

async fn connection(State(state): State<AppState>, principal: Principal) -> axum::Json<Value> {
    let printers = state.printers.handles();
    let current = shown(&state, &principal);
    let current = current.as_ref();
    let connected = current.filter(|p| p.state() != ConnectionState::Closed);
    let ports: Vec<&str> = printers.iter().map(|p| port_name(p, &printers)).collect();
    axum::Json(json!({
        "current": {
            "state": current.map_or("Closed", |p| p.state().octoprint_text()),
            "port": connected.map(|p| port_name(p, &printers)),
            "baudrate": connected.map(|p| p.config.baudrate),
            "printerProfile": "_default",
        },
        "options": {
            "ports": ports,
            "baudrates": [250000, 230400, 115200, 57600, 38400, 19200, 9600],
            "printerProfiles": [{ "id": "_default", "name": "Default" }],
            "portPreference": printers.first().map(|p| p.config.port.as_str()),
            "baudratePreference": printers.first().map(|p| p.config.baudrate),
            "printerProfilePreference": "_default",
            "autoconnect": printers.first().is_some_and(|p| p.config.autoconnect),
        },
    }))
}

/// `POST /api/connection` body.
#[derive(Debug, Deserialize)]
struct ConnectionCommand {
    command: String,
    port: Option<String>,
}

async fn connection_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ConnectionCommand>,
) -> Result<StatusCode, ApiError> {
    // The port names a configured printer; anything else is refused, never opened.
    let handle = match &body.port {
        Some(port) => printer_on_port(&state, port)?,
        None => target(&state, &principal)?,
    };
    match body.command.as_str() {
        "connect" => {
            // Connecting makes it the caller's current printer, as in OctoPrint.
            super::current::choose(&state, principal.user.id, handle.id()).await?;
            handle.connect(&state).await?
        }
        "disconnect" => handle.disconnect().await,
        "fake_ack" => {}
        other => {
            return Err(ApiError::bad_request(
                "unknown_command",
                format!("unknown command {other:?}"),
            ))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

fn heater(reading: Option<HeaterReading>) -> Value {
    reading.map_or(
        Value::Null,
        |r| json!({ "actual": r.actual, "target": r.target, "offset": 0 }),
    )
}

fn temperature_object(handle: &PrinterHandle) -> (Value, Value) {
    let t = handle.temperatures().unwrap_or_default();
    (heater(t.tool0), heater(t.bed))
}

async fn printer_state(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let handle = shown_operational(&state, &principal)?;
    let s = handle.state();
    let (tool0, bed) = temperature_object(&handle);
    let mut temperature = Map::new();
    if !tool0.is_null() {
        temperature.insert("tool0".into(), tool0);
    }
    if !bed.is_null() {
        temperature.insert("bed".into(), bed);
    }
    let printing = s == ConnectionState::Printing;
    let paused = s == ConnectionState::Paused;
    Ok(axum::Json(json!({
        "temperature": temperature,
        "sd": { "ready": false },
        "state": {
            "text": s.octoprint_text(),
            "flags": {
                "operational": s.is_operational(),
                "printing": printing,
                "paused": paused,
                "pausing": false,
                "cancelling": false,
                "resuming": false,
                "finishing": false,
                "sdReady": false,
                "error": s == ConnectionState::Error,
                "ready": s == ConnectionState::Operational,
                "closedOrError": !s.is_operational(),
            },
        },
    })))
}

async fn tool_state(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let handle = shown_operational(&state, &principal)?;
    let (tool0, _) = temperature_object(&handle);
    Ok(axum::Json(json!({ "tool0": tool0 })))
}

async fn bed_state(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let handle = shown_operational(&state, &principal)?;
    let (_, bed) = temperature_object(&handle);
    Ok(axum::Json(json!({ "bed": bed })))
}

/// `POST /api/printer/command`: `{"command": "..."}` or `{"commands": [...]}`.
#[derive(Debug, Deserialize)]
struct RawCommands {
    command: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
}

async fn printer_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<RawCommands>,
) -> Result<StatusCode, ApiError> {
    let handle = operational(&state, &principal)?;
    let commands = commands::raw_batch(body.command.into_iter().chain(body.commands))?;
    control::send_commands(&state, &handle, &commands).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/printer/tool`.
#[derive(Debug, Deserialize)]
struct ToolCommand {
    command: String,
    #[serde(default)]
    targets: std::collections::BTreeMap<String, f64>,
    amount: Option<f64>,
    speed: Option<f64>,
    tool: Option<String>,
    factor: Option<f64>,
}

/// `tool0` → 0 (tools 0–7).
fn tool_index(name: &str) -> Result<u8, ApiError> {
    name.strip_prefix("tool")
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| *n < 8)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "unknown tool {:?}",
                    name.chars().take(20).collect::<String>()
                ),
            )
        })
}

async fn tool_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ToolCommand>,
) -> Result<StatusCode, ApiError> {
    let handle = operational(&state, &principal)?;
    let commands = match body.command.as_str() {
        "target" => body
            .targets
            .iter()
            .map(|(tool, c)| commands::tool_target(tool_index(tool)?, *c))
            .collect::<Result<Vec<_>, _>>()?,
        "select" => {
            let tool = tool_index(body.tool.as_deref().unwrap_or(""))?;
            vec![Command::raw(&format!("T{tool}"))?]
        }
        "extrude" => commands::extrude(body.amount.ok_or_else(|| missing("amount"))?, body.speed)?,
        "flowrate" => vec![commands::flowrate(
            body.factor.ok_or_else(|| missing("factor"))?,
        )?],
        "offset" => return Ok(StatusCode::NO_CONTENT),
        other => return Err(unknown(other)),
    };
    control::send_commands(&state, &handle, &commands).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn missing(name: &str) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{name} is required"))
}

fn unknown(command: &str) -> ApiError {
    ApiError::bad_request(
        "unknown_command",
        format!(
            "unknown command {:?}",
            command.chars().take(40).collect::<String>()
        ),
    )
}

/// `POST /api/printer/bed`.
#[derive(Debug, Deserialize)]
struct BedCommand {
    command: String,
    target: Option<f64>,
}

async fn bed_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<BedCommand>,
) -> Result<StatusCode, ApiError> {
    let handle = operational(&state, &principal)?;
    let command = match body.command.as_str() {
        "target" => commands::bed_target(body.target.ok_or_else(|| missing("target"))?)?,
        "offset" => return Ok(StatusCode::NO_CONTENT),
        other => return Err(unknown(other)),
    };
    control::send_commands(&state, &handle, &[command]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/printer/printhead`.
#[derive(Debug, Deserialize)]
struct PrintheadCommand {
    command: String,
    x: Option<f64>,
    y: Option<f64>,
    z: Option<f64>,
    #[serde(default)]
    absolute: bool,
    speed: Option<f64>,
    #[serde(default)]
    axes: Vec<String>,
    factor: Option<f64>,
}

async fn printhead_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<PrintheadCommand>,
) -> Result<StatusCode, ApiError> {
    let handle = operational(&state, &principal)?;
    let commands = match body.command.as_str() {
        "jog" => commands::jog(body.x, body.y, body.z, body.absolute, body.speed)?,
        "home" => vec![commands::home(&body.axes)?],
        "feedrate" => vec![commands::feedrate(
            body.factor.ok_or_else(|| missing("factor"))?,
        )?],
        other => return Err(unknown(other)),
    };
    control::send_commands(&state, &handle, &commands).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/job`: the current printer's job, or OctoPrint's null shape.
async fn job(State(state): State<AppState>, principal: Principal) -> axum::Json<Value> {
    let handle = shown(&state, &principal);
    let handle = handle.as_ref();
    let active = handle.and_then(|h| h.active_job());
    let state_text = handle.map_or("Offline", |h| match h.state() {
        ConnectionState::Closed => "Offline",
        s => s.octoprint_text(),
    });
    let Some(job) = active else {
        return axum::Json(json!({
            "job": {
                "file": { "name": null, "path": null, "display": null, "origin": null, "size": null, "date": null },
                "estimatedPrintTime": null,
                "averagePrintTime": null,
                "lastPrintTime": null,
                "filament": null,
                "user": null,
            },
            "progress": {
                "completion": null,
                "filepos": null,
                "printTime": null,
                "printTimeLeft": null,
                "printTimeLeftOrigin": null,
            },
            "state": state_text,
        }));
    };
    let analysis = job.analysis.octoprint_json();
    let (time_left, origin) = job.time_left();
    // OctoPrint names the file being printed: the G-code, by base name and path.
    let (_, name) = crate::files::folders::split_display_path(&job.gcode_path);
    axum::Json(json!({
        "job": {
            "file": {
                "name": name,
                "path": job.gcode_path,
                "display": name,
                "origin": "local",
                "size": job.size,
                "date": null,
            },
            "estimatedPrintTime": analysis["estimatedPrintTime"],
            "averagePrintTime": null,
            "lastPrintTime": null,
            "filament": analysis["filament"],
            "user": null,
        },
        "progress": {
            "completion": job.completion_percent(),
            "filepos": job.position.byte_offset,
            "printTime": job.started.elapsed().as_secs(),
            "printTimeLeft": time_left.round() as u64,
            "printTimeLeftOrigin": origin.as_str(),
        },
        "state": state_text,
    }))
}

/// `POST /api/job` body.
#[derive(Debug, Deserialize)]
struct JobCommand {
    command: String,
    action: Option<String>,
}

async fn job_command(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<JobCommand>,
) -> Result<StatusCode, ApiError> {
    let handle = target(&state, &principal)?;
    match (body.command.as_str(), body.action.as_deref()) {
        ("start", _) => {
            control::start_selected(&state, &handle, &principal).await?;
        }
        ("cancel", _) => control::cancel(&state, &handle, &principal).await?,
        ("pause", Some("pause")) => control::pause(&state, &handle, &principal).await?,
        ("pause", Some("resume")) => control::resume(&state, &handle, &principal).await?,
        ("pause", None | Some("toggle")) => {
            let paused = handle.active_job().is_some_and(|j| j.paused);
            if paused {
                control::resume(&state, &handle, &principal).await?;
            } else {
                control::pause(&state, &handle, &principal).await?;
            }
        }
        ("restart", _) => {
            return Err(ApiError::conflict(
                "not_supported",
                "restart is not supported: start the file again",
            ))
        }
        (other, _) => return Err(unknown(other)),
    }
    Ok(StatusCode::NO_CONTENT)
}

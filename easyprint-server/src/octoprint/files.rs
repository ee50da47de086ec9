//! `/api/files`, `/api/files/local[/<name>]` and `/downloads/files/local/<name>`.
//!
//! Each user has a flat namespace: the OctoPrint `path` of a file is its display name, looked
//! up among the caller's own files only.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{base_url, path_segment, printer};
use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::files::{self, store::FileRecord};
use crate::pipeline::{self, control};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/files", get(list))
        .route("/api/files/local", get(list).post(upload))
        .route(
            "/api/files/local/{*path}",
            get(info).delete(remove).post(command),
        )
        .route("/downloads/files/local/{*path}", get(download))
}

fn file_object(record: &FileRecord, owner: &str, base: &str) -> Value {
    let (kind, type_path) = record.kind.octoprint_type();
    let segment = path_segment(&record.display_name);
    json!({
        "name": record.display_name,
        "path": record.display_name,
        "display": record.display_name,
        "origin": "local",
        "type": kind,
        "typePath": type_path,
        "size": record.size,
        "date": record.created_at,
        // SHA-256 (OctoPrint uses SHA-1 here; clients treat it as opaque).
        "hash": record.sha256,
        "user": owner,
        "refs": {
            "resource": format!("{base}/api/files/local/{segment}"),
            "download": format!("{base}/downloads/files/local/{segment}"),
        },
    })
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let base = base_url(&headers, state.config.listen);
    let records = files::list(&state, &principal).await?;
    // Analyses already computed are included; the rest appear once a file is opened or printed.
    let files: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut object = file_object(r, &principal.user.name, &base);
            if let Some(a) = state.analyses.cached(&r.sha256) {
                object["gcodeAnalysis"] = a.octoprint_json();
            }
            object
        })
        .collect();
    let (free, total) = state.files.disk_space().unwrap_or((0, 0));
    Ok(axum::Json(
        json!({ "files": files, "free": free, "total": total }),
    ))
}

/// `POST /api/files/local`: 201, `Location` of the new file, OctoPrint's upload body.
async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let upload =
        files::receive_upload(&state, &principal, &headers, query.as_deref(), body).await?;
    let base = base_url(&headers, state.config.listen);
    let name = &upload.record.display_name;
    let segment = path_segment(name);
    let location = format!("{base}/api/files/local/{segment}");
    // Selecting or printing needs the caller's current printer, operational; when it is not
    // the upload still succeeds and reports that neither happened (OctoPrint's
    // effectiveSelect/effectivePrint). Several printers and none chosen is a 409, never a
    // print on a guessed printer; the upload is then undone so that a retry starts clean.
    let printer = if upload.select || upload.print {
        match printer::target(&state, &principal) {
            Ok(handle) => handle.state().is_operational().then_some(handle),
            Err(ApiError::PrinterNotOperational) => None,
            Err(e) => {
                files::remove_file(&state, &principal, &upload.record).await?;
                return Err(e);
            }
        }
    } else {
        None
    };
    let mut selected = false;
    let mut printing = false;
    if let Some(handle) = &printer {
        if upload.select {
            *handle.selected.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(upload.record.id.clone());
            selected = true;
        }
        if upload.print {
            pipeline::enqueue_file(
                &state,
                &principal.user.name,
                &upload.record,
                Some(handle.id().to_owned()),
            )
            .await?;
            printing = true;
        }
    }
    let body = json!({
        "done": true,
        "effectiveSelect": selected,
        "effectivePrint": printing,
        "files": {
            "local": {
                "name": name,
                "path": name,
                "display": name,
                "origin": "local",
                "refs": {
                    "resource": location,
                    "download": format!("{base}/downloads/files/local/{segment}"),
                },
            },
        },
    });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::LOCATION,
        location.parse().map_err(ApiError::internal)?,
    );
    Ok(response)
}

async fn info(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let record = files::find_by_name(&state, &principal, path).await?;
    let base = base_url(&headers, state.config.listen);
    let mut object = file_object(&record, &principal.user.name, &base);
    if let Some(analysis) = pipeline::file_analysis(&state, &record).await? {
        object["gcodeAnalysis"] = analysis.octoprint_json();
    }
    Ok(axum::Json(object))
}

async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = files::find_by_name(&state, &principal, path).await?;
    files::remove_file(&state, &principal, &record).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/files/local/<name>` with `{"command": "select", "print": bool}`.
#[derive(Debug, Deserialize)]
struct FileCommand {
    command: String,
    #[serde(default)]
    print: bool,
}

async fn command(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<String>,
    ApiJson(body): ApiJson<FileCommand>,
) -> Result<StatusCode, ApiError> {
    let record = files::find_by_name(&state, &principal, path).await?;
    let handle = printer::target(&state, &principal)?;
    handle.operational()?;
    let select = |file: Option<String>| {
        *handle.selected.lock().unwrap_or_else(|e| e.into_inner()) = file;
    };
    match body.command.as_str() {
        "select" => {
            select(Some(record.id.clone()));
            if body.print {
                control::start_selected(&state, &handle, &principal).await?;
            }
            Ok(StatusCode::NO_CONTENT)
        }
        "unselect" => {
            select(None);
            Ok(StatusCode::NO_CONTENT)
        }
        other => Err(ApiError::bad_request(
            "unknown_command",
            format!("unsupported file command {other:?}"),
        )),
    }
}

async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let record = files::find_by_name(&state, &principal, path).await?;
    files::download(&state, &record).await
}

//! Native file routes: `/api/v1/files`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiError, ApiJson};
use crate::files::{self, store::FileRecord};
use crate::state::AppState;

/// `/api/v1/files...`
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/files", get(list).post(upload))
        .route("/api/v1/files/{id}", get(info).delete(remove))
        .route("/api/v1/files/{id}/download", get(download))
        .route("/api/v1/files/{id}/copy", post(copy_file))
        .route("/api/v1/folders/copy", post(copy_folder))
        .route("/api/v1/files/{id}/analysis", get(analysis))
        .route("/api/v1/files/{id}/layers", get(layers))
        .route("/api/v1/files/{id}/layers/{n}", get(layer))
}

/// A file as the native API shows it.
#[derive(Debug, Serialize)]
pub struct FileInfo {
    /// Random id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `gcode` or `model`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Upload time, seconds since the Unix epoch.
    pub created_at: i64,
}

impl From<&FileRecord> for FileInfo {
    fn from(r: &FileRecord) -> Self {
        FileInfo {
            id: r.id.clone(),
            name: r.display_name.clone(),
            kind: match r.kind {
                files::names::FileKind::Gcode => "gcode",
                files::names::FileKind::Model(_) => "model",
            },
            size: r.size,
            sha256: r.sha256.clone(),
            created_at: r.created_at,
        }
    }
}

async fn list(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    let records = files::list(&state, &principal).await?;
    let infos: Vec<FileInfo> = records.iter().map(FileInfo::from).collect();
    Ok(axum::Json(infos).into_response())
}

async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    match files::receive_upload(&state, &principal, &headers, query.as_deref(), body).await? {
        files::Received::File(upload) => Ok((
            StatusCode::CREATED,
            axum::Json(FileInfo::from(&upload.record)),
        )
            .into_response()),
        files::Received::Folder(folder) => Ok((
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "folder": folder.as_str() })),
        )
            .into_response()),
    }
}

async fn info(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    Ok(axum::Json(FileInfo::from(&record)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    files::remove_file(&state, &principal, &record).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"destination": "folder/or/new/path"}`: into an existing folder (keeping the name), or to
/// a new path whose folder exists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyFile {
    destination: String,
}

/// `POST /api/v1/files/{id}/copy`: 201 with the copy (a new file with its own id).
async fn copy_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CopyFile>,
) -> Result<Response, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    let copy = files::copy_file(&state, &principal, &record, &body.destination).await?;
    Ok((StatusCode::CREATED, axum::Json(FileInfo::from(&copy))).into_response())
}

/// `{"folder": "a/b", "destination": "folder/or/new/path"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyFolder {
    folder: String,
    destination: String,
}

/// `POST /api/v1/folders/copy`: copies a folder with everything in it; 201 `{"folder": path}`
/// of the copy.
async fn copy_folder(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CopyFolder>,
) -> Result<Response, ApiError> {
    let folder = files::folders::FolderPath::parse(&body.folder)?;
    if folder.is_root() || !files::folder_exists(&state, &principal, folder.clone()).await? {
        return Err(ApiError::NotFound("folder"));
    }
    let copy = files::copy_folder(&state, &principal, &folder, &body.destination).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "folder": copy.as_str() })),
    )
        .into_response())
}

async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    files::download(&state, &record).await
}

/// `GET /api/v1/files/{id}/analysis`: estimated time, filament, layers of a G-code file.
async fn analysis(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    let analysis = crate::pipeline::file_analysis(&state, &record)
        .await?
        .ok_or_else(|| ApiError::bad_request("not_gcode", "only G-code files have an analysis"))?;
    let a = &analysis.analysis;
    Ok(axum::Json(serde_json::json!({
        "estimated_time_secs": a.estimated_time,
        "filament_mm": analysis.filament_mm(),
        "layers": a.layer_count,
        "lines": a.lines,
        "commands": analysis.commands.len(),
    })))
}

/// The layer index of a G-code file (built once per content).
async fn layer_index(
    state: &AppState,
    record: &FileRecord,
) -> Result<std::sync::Arc<crate::preview::LayerIndex>, ApiError> {
    let analysis = crate::pipeline::file_analysis(state, record)
        .await?
        .ok_or_else(|| ApiError::bad_request("not_gcode", "only G-code files have layers"))?;
    let path = state.files.path_of(&record.stored_name);
    Ok(state
        .layer_indexes
        .get_or_compute(&record.sha256, move || {
            crate::preview::LayerIndex::build(&path, &analysis.analysis)
        })
        .await?)
}

/// `GET /api/v1/files/{id}/layers`: `{"layers": [{"index", "z", "moves"}], "bounds":
/// {"min": [x, y, z], "max": [x, y, z]} | null}`.
async fn layers(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let record = files::find_by_id(&state, &principal, id).await?;
    let index = layer_index(&state, &record).await?;
    Ok(axum::Json(serde_json::json!({
        "layers": index.layers(),
        "bounds": index.bounds().map(|b| serde_json::json!({ "min": b.min, "max": b.max })),
    })))
}

/// `GET /api/v1/files/{id}/layers/{n}`: `{"index", "z", "extrude": [x0, y0, x1, y1, ...],
/// "travel": [...], "truncated"}`.
async fn layer(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, n)): Path<(String, String)>,
) -> Result<axum::Json<crate::preview::LayerMoves>, ApiError> {
    let n: usize = n.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_layer",
            format!("layer {n:?} is not a layer number"),
        )
    })?;
    let record = files::find_by_id(&state, &principal, id).await?;
    let index = layer_index(&state, &record).await?;
    let path = state.files.path_of(&record.stored_name);
    let moves = tokio::task::spawn_blocking(move || index.layer(&path, n)).await??;
    moves.map(axum::Json).ok_or(ApiError::NotFound("layer"))
}

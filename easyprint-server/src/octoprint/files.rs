//! `/api/files`, `/api/files/local[/<name>]` and `/downloads/files/local/<name>`.
//!
//! Each user has their own tree: the OctoPrint `path` of a file is its display path
//! (`folder/sub/name.gcode`), looked up among the caller's own files and folders only. Folders
//! are virtual ([`crate::files::folders`]): created with `foldername`, implied by uploads with
//! `path`, listed with `type: "folder"` and `children`, deleted with everything in them.

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
use crate::files::folders::{self, FolderPath};
use crate::files::{self, store::FileRecord, Relocation};
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

/// A display path as URL path segments (`a b/c.gcode` → `a%20b/c.gcode`).
fn url_path(path: &str) -> String {
    path.split('/')
        .map(path_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn file_object(record: &FileRecord, owner: &str, base: &str) -> Value {
    let (kind, type_path) = record.kind.octoprint_type();
    let segment = url_path(&record.display_name);
    let (_, name) = folders::split_display_path(&record.display_name);
    json!({
        "name": name,
        "path": record.display_name,
        "display": name,
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

/// Everything of one user, for building folder listings.
struct Tree<'a> {
    records: Vec<FileRecord>,
    folders: Vec<String>,
    owner: &'a str,
    base: &'a str,
    state: &'a AppState,
    /// Levels of `children` listed (see [`Tree::entries`]).
    depth: usize,
}

impl<'a> Tree<'a> {
    /// Reads `principal`'s files and folders; `query` decides the depth (OctoPrint's
    /// `recursive=true`: everything; otherwise a folder's own entries).
    async fn load(
        state: &'a AppState,
        principal: &'a Principal,
        base: &'a str,
        query: Option<&str>,
    ) -> Result<Tree<'a>, ApiError> {
        let recursive = query
            .and_then(|q| crate::auth::form_urlencoded_value(q, "recursive"))
            .is_some_and(|v| v == "true");
        Ok(Tree {
            records: files::list(state, principal).await?,
            folders: files::list_folders(state, principal).await?,
            owner: &principal.user.name,
            base,
            state,
            depth: if recursive { folders::MAX_DEPTH } else { 1 },
        })
    }

    /// The entries directly in `folder`: its files, then its sub-folders; sub-folders carry
    /// their own `children` down to `depth` more levels (OctoPrint's `recursive`: all of them;
    /// otherwise only the folder's own entries are listed, sub-folders without `children`).
    fn entries(&self, folder: &FolderPath, depth: usize) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .records
            .iter()
            .filter(|r| folders::split_display_path(&r.display_name).0 == folder.as_str())
            .map(|r| {
                let mut object = file_object(r, self.owner, self.base);
                // Analyses already computed are included; the rest appear once a file is opened
                // or printed.
                if let Some(a) = self.state.analyses.cached(&r.sha256) {
                    object["gcodeAnalysis"] = a.octoprint_json();
                }
                object
            })
            .collect();
        out.extend(
            self.folders
                .iter()
                .filter(|f| folders::split_display_path(f).0 == folder.as_str())
                .filter_map(|f| FolderPath::parse(f).ok())
                .map(|f| self.folder_object(&f, depth)),
        );
        out
    }

    /// OctoPrint's folder shape; `children` when `depth` > 0.
    fn folder_object(&self, folder: &FolderPath, depth: usize) -> Value {
        let size: u64 = self
            .records
            .iter()
            .filter(|r| folders::contains(folder, &r.display_name))
            .map(|r| r.size)
            .sum();
        let mut object = json!({
            "name": folder.name(),
            "path": folder.as_str(),
            "display": folder.name(),
            "origin": "local",
            "type": "folder",
            "typePath": ["folder"],
            "size": size,
            "refs": { "resource": format!("{}/api/files/local/{}", self.base, url_path(folder.as_str())) },
        });
        if depth > 0 {
            object["children"] = Value::Array(self.entries(folder, depth - 1));
        }
        object
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let base = base_url(&headers, state.config.listen);
    let tree = Tree::load(&state, &principal, &base, query.as_deref()).await?;
    let files = tree.entries(&FolderPath::root(), tree.depth);
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
    let base = base_url(&headers, state.config.listen);
    let upload =
        match files::receive_upload(&state, &principal, &headers, query.as_deref(), body).await? {
            files::Received::File(upload) => upload,
            files::Received::Folder(folder) => return Ok(folder_created(&folder, &base)),
        };
    let path = &upload.record.display_name;
    let (_, name) = folders::split_display_path(path);
    let segment = url_path(path);
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
                "path": path,
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

/// `201 Created` for a new folder, with its `Location`.
fn folder_created(folder: &FolderPath, base: &str) -> Response {
    let location = format!("{base}/api/files/local/{}", url_path(folder.as_str()));
    let body = json!({
        "done": true,
        "folder": {
            "name": folder.name(),
            "path": folder.as_str(),
            "display": folder.name(),
            "origin": "local",
            "refs": { "resource": location },
        },
    });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A folder of the caller named by a URL path, if `path` is one (`None`: not a folder; 400 for
/// a path no folder could have).
async fn folder_at(
    state: &AppState,
    principal: &Principal,
    path: &str,
) -> Result<Option<FolderPath>, ApiError> {
    let folder = FolderPath::parse(path)?;
    if folder.is_root() {
        return Ok(None);
    }
    Ok(files::folder_exists(state, principal, folder.clone())
        .await?
        .then_some(folder))
}

async fn info(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let base = base_url(&headers, state.config.listen);
    let record = match files::find_by_name(&state, &principal, path.clone()).await {
        Ok(record) => record,
        Err(ApiError::NotFound(_)) => {
            let folder = folder_at(&state, &principal, &path)
                .await?
                .ok_or(ApiError::NotFound("file"))?;
            let tree = Tree::load(&state, &principal, &base, query.as_deref()).await?;
            return Ok(axum::Json(tree.folder_object(&folder, tree.depth)));
        }
        Err(e) => return Err(e),
    };
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
    match files::find_by_name(&state, &principal, path.clone()).await {
        Ok(record) => files::remove_file(&state, &principal, &record).await?,
        Err(ApiError::NotFound(_)) => {
            // A folder goes with everything in it, as in OctoPrint.
            let folder = folder_at(&state, &principal, &path)
                .await?
                .ok_or(ApiError::NotFound("file"))?;
            files::remove_folder(&state, &principal, folder).await?;
        }
        Err(e) => return Err(e),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/files/local/<path>` with `{"command": "select", "print": bool}`, or
/// `{"command": "move" | "copy", "destination": "folder/or/new/path"}`.
#[derive(Debug, Deserialize)]
struct FileCommand {
    command: String,
    #[serde(default)]
    print: bool,
    destination: Option<String>,
}

async fn command(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(path): Path<String>,
    ApiJson(body): ApiJson<FileCommand>,
) -> Result<Response, ApiError> {
    let relocation = match body.command.as_str() {
        "move" => Some(Relocation::Move),
        "copy" => Some(Relocation::Copy),
        _ => None,
    };
    if let Some(relocation) = relocation {
        let destination = body.destination.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "invalid_json",
                format!("{} needs a \"destination\"", body.command),
            )
        })?;
        let base = base_url(&headers, state.config.listen);
        return relocate(&state, &principal, relocation, &path, destination, &base).await;
    }
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
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "unselect" => {
            select(None);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(ApiError::bad_request(
            "unknown_command",
            format!("unsupported file command {other:?}"),
        )),
    }
}

/// OctoPrint's `move` and `copy`: 201 with the entry at its new place (the moved one, or the
/// copy) and its `Location`.
async fn relocate(
    state: &AppState,
    principal: &Principal,
    relocation: Relocation,
    path: &str,
    destination: &str,
    base: &str,
) -> Result<Response, ApiError> {
    let new_path = match files::find_by_name(state, principal, path.to_owned()).await {
        Ok(record) => match relocation {
            Relocation::Move => files::move_file(state, principal, &record, destination).await?,
            Relocation::Copy => {
                files::copy_file(state, principal, &record, destination)
                    .await?
                    .display_name
            }
        },
        Err(ApiError::NotFound(_)) => {
            let folder = folder_at(state, principal, path)
                .await?
                .ok_or(ApiError::NotFound("file"))?;
            let to = match relocation {
                Relocation::Move => {
                    files::move_folder(state, principal, &folder, destination).await?
                }
                Relocation::Copy => {
                    files::copy_folder(state, principal, &folder, destination).await?
                }
            };
            to.as_str().to_owned()
        }
        Err(e) => return Err(e),
    };
    let location = format!("{base}/api/files/local/{}", url_path(&new_path));
    let (_, name) = folders::split_display_path(&new_path);
    let body = json!({
        "name": name,
        "path": new_path,
        "origin": "local",
        "refs": { "resource": location },
    });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let record = files::find_by_name(&state, &principal, path).await?;
    files::download(&state, &record).await
}

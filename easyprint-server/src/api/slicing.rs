//! The slice dialog's API: the slicer's machines, qualities and defaults
//! (`/api/v1/slicer/profiles`), and slicing a model with chosen settings
//! (`POST /api/v1/files/{id}/slice`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{form_urlencoded_value, Principal};
use crate::error::{ApiError, ApiJson};
use crate::files::names::FileKind;
use crate::pipeline::{self, job_json, profiles::SliceSettings};
use crate::state::AppState;

/// `/api/v1/slicer/profiles`, `/api/v1/files/{id}/slice`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/slicer/profiles", get(profiles))
        .route("/api/v1/files/{id}/slice", post(slice))
}

/// `{"machines": [...], "machine": {"id", "qualities", "defaults"}}`; the machine part is the
/// one named by `?machine=`, else the configured machine.
async fn profiles(
    State(state): State<AppState>,
    _: Principal,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let asked = query
        .as_deref()
        .and_then(|q| form_urlencoded_value(q, "machine"));
    let s = state.clone();
    tokio::task::spawn_blocking(move || {
        let machines = s.profiles.machines()?;
        let id = asked.as_deref().unwrap_or(&s.config.slicer.machine);
        let machine = match s.profiles.machine(id, &s.config.slicer) {
            Ok(m) => serde_json::to_value(&*m).map_err(ApiError::internal)?,
            // The configured machine may be missing from this host's definitions: the list
            // is still useful.
            Err(ApiError::NotFound(_)) if asked.is_none() => Value::Null,
            Err(e) => return Err(e),
        };
        Ok(axum::Json(json!({
            "machines": &*machines,
            "machine": machine,
        })))
    })
    .await?
}

/// `{"printer": "id"?, "print": bool, "slicing": {...}?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SliceBody {
    #[serde(default)]
    printer: Option<String>,
    #[serde(default = "print_by_default")]
    print: bool,
    #[serde(default)]
    slicing: SliceSettings,
}

fn print_by_default() -> bool {
    true
}

async fn slice(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SliceBody>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    if let Some(printer) = &body.printer {
        state.printers.get(printer)?;
    }
    let record = crate::files::find_by_id(&state, &principal, id).await?;
    if !matches!(record.kind, FileKind::Model(_)) {
        return Err(ApiError::bad_request(
            "not_a_model",
            "only models (STL, 3MF, OBJ) can be sliced",
        ));
    }
    let (s, settings) = (state.clone(), body.slicing.clone());
    tokio::task::spawn_blocking(move || s.profiles.validate(&settings, &s.config.slicer)).await??;
    let job = pipeline::enqueue_slice(
        &state,
        &principal.user.name,
        &record,
        body.printer,
        &body.slicing,
        body.print,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(job_json(&job))))
}

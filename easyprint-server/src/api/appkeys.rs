//! Approving app-key requests (the user side of [`crate::octoprint::appkeys`]).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::auth::{store, Principal};
use crate::error::{ApiError, ApiJson};
use crate::octoprint::appkeys::PendingRequest;
use crate::state::AppState;

/// `/api/v1/appkeys/pending[/{id}]`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/appkeys/pending", get(pending))
        .route("/api/v1/appkeys/pending/{id}", post(decide))
}

async fn pending(State(state): State<AppState>, _: Principal) -> axum::Json<Vec<PendingRequest>> {
    axum::Json(state.app_keys.pending(Instant::now()))
}

/// The user's decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    approve: bool,
}

/// Approving creates an API key for the approving user, labelled with the app's name.
async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<StatusCode, ApiError> {
    let app = state
        .app_keys
        .app_of(&id, Instant::now())
        .ok_or(ApiError::NotFound("app key request"))?;
    let grant = if body.approve {
        let user = principal.user.id;
        let label = format!("app: {app}");
        Some(
            state
                .db
                .call(move |c| store::create_api_key(c, user, &label))
                .await?,
        )
    } else {
        None
    };
    if state.app_keys.decide(&id, grant.clone(), Instant::now()) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        // Expired or decided meanwhile: do not leave an unused key behind.
        if let Some(key) = grant {
            let user = principal.user.id;
            state
                .db
                .call(move |c| {
                    if let Some((_, key_id)) = store::api_key_user(c, &key)? {
                        store::delete_api_key(c, user, key_id)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Err(ApiError::NotFound("app key request"))
    }
}

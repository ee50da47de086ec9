//! Account management (administrators) and the caller's own API keys.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::session::{check_credentials, hash_password};
use crate::auth::revocation::Revoked;
use crate::auth::store::{self, ApiKeyInfo, User};
use crate::auth::{Admin, Principal};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// `/api/v1/users` and `/api/v1/keys`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", delete(delete_user))
        .route("/api/v1/keys", get(list_keys).post(create_key))
        .route("/api/v1/keys/{id}", delete(delete_key))
}

async fn list_users(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    Ok(axum::Json(state.db.call(|c| store::list_users(c)).await?))
}

/// A new account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

async fn create_user(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<Response, ApiError> {
    store::validate_user_name(&body.name)?;
    store::validate_new_password(&body.password)?;
    let hash = hash_password(&state, body.password).await?;
    let user = state
        .db
        .call(move |conn| store::insert_user(conn, &body.name, &hash, body.admin))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
}

async fn delete_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if id == admin.user.id {
        return Err(ApiError::conflict(
            "cannot_delete_self",
            "an administrator cannot delete their own account",
        ));
    }
    if state.db.call(move |c| store::delete_user(c, id)).await? {
        state.revocations.revoke(Revoked::User(id));
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("user"))
    }
}

async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<ApiKeyInfo>>, ApiError> {
    let id = principal.user.id;
    Ok(axum::Json(
        state.db.call(move |c| store::list_api_keys(c, id)).await?,
    ))
}

/// A key request; the password is re-checked (CVE-2024-51493: a hijacked session must not
/// mint keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    label: String,
    password: String,
}

async fn create_key(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    principal: Principal,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<Response, ApiError> {
    let label = body.label.trim().to_owned();
    if label.is_empty() || label.len() > 100 || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_label",
            "label must be 1-100 bytes without control characters",
        ));
    }
    let user = check_credentials(
        &state,
        peer,
        &headers,
        principal.user.name.clone(),
        body.password,
    )
    .await?;
    let key = state
        .db
        .call(move |c| store::create_api_key(c, user.id, &label))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "api_key": key }))).into_response())
}

async fn delete_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = principal.user.id;
    if state
        .db
        .call(move |c| store::delete_api_key(c, user, id))
        .await?
    {
        state.revocations.revoke(Revoked::ApiKey(id));
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("api key"))
    }
}

//! First-run setup, login, logout and password change (native API, `/api/v1`).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use crate::auth::client_ip::client_ip;
use crate::auth::revocation::Revoked;
use crate::auth::store::{self, User};
use crate::auth::{cleared_cookies, secrets, session_cookies, AuthMethod, Principal};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// Routes that need no login.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/setup", get(setup_status).post(setup))
        .route("/api/v1/login", axum::routing::post(login))
}

/// Routes for logged-in users.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", get(current).delete(logout))
        .route("/api/v1/users/me/password", put(change_password))
}

/// Name and password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    name: String,
    password: String,
}

async fn setup_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let count = state.db.call(|c| store::user_count(c)).await?;
    Ok(axum::Json(json!({ "needed": count == 0 })).into_response())
}

/// Creates the first administrator; refused (409) once any account exists.
async fn setup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    store::validate_user_name(&body.name)?;
    store::validate_new_password(&body.password)?;
    if state.db.call(|c| store::user_count(c)).await? > 0 {
        return Err(setup_done());
    }
    let hash = hash_password(&state, body.password).await?;
    let ttl = state.config.limits.session_ttl_secs;
    let (user, session) = state
        .db
        .call(move |conn| {
            // Re-checked inside the transaction: two racing setups cannot both win.
            let tx = conn.transaction()?;
            if store::user_count(&tx)? > 0 {
                return Err(setup_done());
            }
            let user = store::insert_user(&tx, &body.name, &hash, true)?;
            let session = store::create_session(&tx, user.id, ttl)?;
            tx.commit()?;
            Ok((user, session))
        })
        .await?;
    tracing::info!(user = %user.name, "first administrator created");
    Ok(with_session(StatusCode::CREATED, &user, &session, &state))
}

fn setup_done() -> ApiError {
    ApiError::conflict("setup_done", "setup is already done")
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let user = check_credentials(&state, peer, &headers, body.name, body.password).await?;
    let ttl = state.config.limits.session_ttl_secs;
    let user_id = user.id;
    let session = state
        .db
        .call(move |conn| store::create_session(conn, user_id, ttl))
        .await?;
    Ok(with_session(StatusCode::OK, &user, &session, &state))
}

/// Verifies a name and password under the per-address failure limit.
pub async fn check_credentials(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    name: String,
    password: String,
) -> Result<User, ApiError> {
    let ip = client_ip(peer, headers, &state.config.trusted_proxies);
    let limited = |now| {
        state
            .login_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(ip, now)
    };
    if let Err(wait) = limited(Instant::now()) {
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: wait.as_secs(),
        });
    }
    if password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let found = state
        .db
        .call(move |conn| store::find_user_with_hash(conn, &name))
        .await?;
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = verify_password(state, password, stored).await?;
    match user {
        Some(user) if ok => Ok(user),
        _ => {
            state
                .login_limiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record_failure(ip, Instant::now());
            tracing::info!(%ip, "failed login");
            Err(ApiError::InvalidCredentials)
        }
    }
}

async fn current(principal: Principal) -> axum::Json<User> {
    axum::Json(principal.user)
}

async fn logout(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    if let AuthMethod::Session { token_hash, .. } = principal.method {
        state
            .db
            .call(move |conn| store::delete_session(conn, &token_hash))
            .await?;
        state.revocations.revoke(Revoked::Session(token_hash));
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    for cookie in cleared_cookies() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Current and new password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password after re-checking the current one; every session of the
/// account ends, and the caller gets a fresh one.
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    principal: Principal,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    store::validate_new_password(&body.new_password)?;
    let user = check_credentials(
        &state,
        peer,
        &headers,
        principal.user.name.clone(),
        body.current_password,
    )
    .await?;
    let hash = hash_password(&state, body.new_password).await?;
    let ttl = state.config.limits.session_ttl_secs;
    let user_id = user.id;
    let session = state
        .db
        .call(move |conn| {
            store::set_password(conn, user_id, &hash)?;
            store::create_session(conn, user_id, ttl)
        })
        .await?;
    state.revocations.revoke(Revoked::SessionsOf(user_id));
    tracing::info!(user = %user.name, "password changed, sessions ended");
    Ok(with_session(StatusCode::OK, &user, &session, &state))
}

fn with_session(
    status: StatusCode,
    user: &User,
    session: &store::NewSession,
    state: &AppState,
) -> Response {
    crate::pipeline::warm_profiles(state);
    let mut response = (status, axum::Json(user)).into_response();
    for cookie in session_cookies(
        session,
        state.config.limits.session_ttl_secs,
        state.config.secure_cookies,
    ) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Hashes a password on a blocking thread, at most two at a time.
pub async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    let _permit = state
        .password_hashing
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn verify_password(
    state: &AppState,
    password: String,
    stored: Option<String>,
) -> Result<bool, ApiError> {
    let _permit = state
        .password_hashing
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    Ok(
        tokio::task::spawn_blocking(move || secrets::verify_password(&password, stored.as_deref()))
            .await?,
    )
}

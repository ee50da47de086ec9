//! Version, server, login, settings, printer profiles, connection, printer and job state.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::appkeys::PollOutcome;
use super::{base_url, OCTOPRINT_VERSION};
use crate::api::session::check_credentials;
use crate::auth::client_ip::client_ip;
use crate::auth::store::{self, User};
use crate::auth::{session_cookies, AuthMethod, Principal};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/version", get(version))
        .route("/api/server", get(server))
        .route("/api/settings", get(settings))
        .route("/api/printerprofiles", get(printer_profiles))
}

pub(super) fn public_router() -> Router<AppState> {
    Router::new()
        // Login is public so that `{"user", "pass"}` can create a session; a passive login
        // still needs a key or a session, checked in the handler.
        .route("/api/login", post(login))
        .route(
            "/plugin/appkeys/probe",
            get(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/plugin/appkeys/request", post(appkey_request))
        .route("/plugin/appkeys/request/{token}", get(appkey_poll))
}

async fn version() -> axum::Json<Value> {
    axum::Json(json!({
        "api": "0.1",
        "server": OCTOPRINT_VERSION,
        "text": format!("OctoPrint {OCTOPRINT_VERSION} (easyprint {})", env!("CARGO_PKG_VERSION")),
    }))
}

async fn server() -> axum::Json<Value> {
    axum::Json(json!({ "version": OCTOPRINT_VERSION, "safemode": null }))
}

/// `POST /api/login` body: passive (`{"passive": true}`) or with credentials.
#[derive(Debug, Deserialize)]
struct LoginBody {
    #[serde(default)]
    passive: bool,
    user: Option<String>,
    pass: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    principal: Option<Principal>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    if let (Some(name), Some(pass)) = (body.user, body.pass) {
        let user = check_credentials(&state, peer, &headers, name, pass).await?;
        let ttl = state.config.limits.session_ttl_secs;
        let id = user.id;
        let session = state
            .db
            .call(move |c| store::create_session(c, id, ttl))
            .await?;
        let mut response = axum::Json(user_object(&user, "password")).into_response();
        for cookie in session_cookies(&session, ttl, state.config.secure_cookies) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        return Ok(response);
    }
    if !body.passive {
        return Err(ApiError::bad_request(
            "invalid_login",
            "expected {\"passive\": true} or user and pass",
        ));
    }
    let principal = principal.ok_or(ApiError::Forbidden)?;
    let mechanism = match principal.method {
        AuthMethod::ApiKey { .. } => "apikey",
        AuthMethod::Session { .. } => "remember_me",
    };
    Ok(axum::Json(user_object(&principal.user, mechanism)).into_response())
}

/// OctoPrint's user object. `apikey` stays null: keys are stored hashed and never shown again.
fn user_object(user: &User, mechanism: &str) -> Value {
    let groups: &[&str] = if user.admin {
        &["admins", "users"]
    } else {
        &["users"]
    };
    json!({
        "name": user.name,
        "active": true,
        "admin": user.admin,
        "user": true,
        "groups": groups,
        "permissions": [],
        "needs": { "role": [], "group": groups },
        "apikey": null,
        "settings": {},
        "_is_external_client": false,
        "_login_mechanism": mechanism,
    })
}

/// The part of OctoPrint's settings that clients (Cura's plugin) read.
async fn settings() -> axum::Json<Value> {
    axum::Json(json!({
        "api": { "allowCrossOrigin": false },
        "appearance": { "name": "easyprint", "color": "default" },
        "feature": { "sdSupport": false, "temperatureGraph": true },
        "folder": {},
        "gcodeAnalysis": { "runAt": "idle" },
        "plugins": {},
        "serial": { "autoconnect": false },
        "server": { "allowFraming": false },
        "webcam": {
            "webcamEnabled": false,
            "streamUrl": "",
            "snapshotUrl": "",
            "flipH": false,
            "flipV": false,
            "rotate90": false,
        },
    }))
}

/// The default printer profile (a generic 220×220×250 mm printer, one 0.4 mm nozzle).
fn default_profile() -> Value {
    json!({
        "id": "_default",
        "name": "Default",
        "model": "Generic RepRap Printer",
        "color": "default",
        "current": true,
        "default": true,
        "volume": {
            "width": 220.0, "depth": 220.0, "height": 250.0,
            "formFactor": "rectangular", "origin": "lowerleft",
            "custom_box": false,
        },
        "heatedBed": true,
        "heatedChamber": false,
        "extruder": {
            "count": 1, "nozzleDiameter": 0.4, "offsets": [[0.0, 0.0]],
            "sharedNozzle": false, "defaultExtrusionLength": 5,
        },
        "axes": {
            "x": { "speed": 6000, "inverted": false },
            "y": { "speed": 6000, "inverted": false },
            "z": { "speed": 200, "inverted": false },
            "e": { "speed": 300, "inverted": false },
        },
    })
}

async fn printer_profiles() -> axum::Json<Value> {
    axum::Json(json!({ "profiles": { "_default": default_profile() } }))
}

/// `POST /plugin/appkeys/request` body.
#[derive(Debug, Deserialize)]
struct AppKeyRequestBody {
    app: String,
    user: Option<String>,
}

async fn appkey_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AppKeyRequestBody>,
) -> Result<Response, ApiError> {
    // Every request counts against the address (3 a minute, 5 in 10 minutes, 10 an hour), so
    // one client cannot fill the pending list that everyone shares.
    let ip = client_ip(peer, &headers, &state.config.trusted_proxies);
    {
        let mut limiter = state
            .app_key_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if let Err(wait) = limiter.check(ip, now) {
            return Err(ApiError::TooManyAttempts {
                retry_after_secs: wait.as_secs(),
            });
        }
        limiter.record_failure(ip, now);
    }
    let app = body.app.trim().to_owned();
    if app.is_empty() || app.len() > 64 || app.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_app",
            "app must be 1-64 bytes without control characters",
        ));
    }
    let user = body.user.filter(|u| store::validate_user_name(u).is_ok());
    let token = state
        .app_keys
        .request(app, user, Instant::now())
        .ok_or(ApiError::Unavailable("too many pending app key requests"))?;
    let base = base_url(&headers, state.config.listen);
    let poll = format!("{base}/plugin/appkeys/request/{token}");
    let mut response = (
        StatusCode::CREATED,
        axum::Json(json!({
            "app_token": token,
            "auth_dialog": format!("{base}/appkeys"),
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, poll.parse().map_err(ApiError::internal)?);
    Ok(response)
}

async fn appkey_poll(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.app_keys.poll(&token, Instant::now()) {
        PollOutcome::Pending => StatusCode::ACCEPTED.into_response(),
        PollOutcome::Granted(key) => axum::Json(json!({ "api_key": key })).into_response(),
        PollOutcome::Gone => ApiError::NotFound("app key request").into_response(),
    }
}

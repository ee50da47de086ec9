//! Who is asking: API keys, cookie sessions with CSRF protection, roles, login throttling.
//!
//! [`authenticate`] runs on every request and attaches an optional [`Principal`]. The router
//! puts every route behind [`require_principal`] unless it is on the short public list
//! (default-deny). Credentials, in order:
//!
//! 1. An API key (`X-Api-Key`, `Authorization: Bearer`, or `?apikey=` as OctoPrint allows).
//!    A key that is present but unknown is a 403 at once: we never fall back to a cookie, so a
//!    forged request cannot borrow the browser's session by adding a junk key.
//! 2. The session cookie. For every method other than GET/HEAD/OPTIONS the request must carry
//!    `X-CSRF-Token` equal to the `csrf_token` cookie *and* to the token issued with that session
//!    (double submit, bound to the session, compared in constant time).

pub mod client_ip;
pub mod key_cache;
pub mod rate_limit;
pub mod revocation;
pub mod secrets;
pub mod store;

use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;
use crate::state::AppState;
use secrets::{constant_time_eq, token_hash};
use store::User;

/// Name of the HttpOnly session cookie.
pub const SESSION_COOKIE: &str = "easyprint_session";
/// Name of the JavaScript-readable CSRF cookie.
pub const CSRF_COOKIE: &str = "csrf_token";
/// Header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A session cookie (browser); the hash identifies the session for logout.
    Session {
        /// SHA-256 of the session token.
        token_hash: [u8; 32],
        /// When the session expires (Unix seconds): connections opened with it end then.
        expires_at: i64,
    },
    /// An API key (tools and slicers).
    ApiKey {
        /// Database id of the key.
        key_id: i64,
    },
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub user: User,
    /// The credential used.
    pub method: AuthMethod,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// A principal with the administrator role; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.user.admin {
            Ok(Admin(principal))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The API key a request presents, if any.
fn presented_api_key(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    let query = request.uri().query()?;
    form_urlencoded_value(query, "apikey")
}

/// First value of `name` in a URL query string, percent-decoded.
pub fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The credential material of a request, copied out so no borrow of the request is held
/// across an await.
#[derive(Debug)]
struct Presented {
    api_key: Option<String>,
    session_token: Option<String>,
    csrf_header: String,
    csrf_cookie: String,
    safe_method: bool,
}

impl Presented {
    fn of(request: &Request) -> Presented {
        let headers = request.headers();
        Presented {
            api_key: presented_api_key(request),
            session_token: cookie(headers, SESSION_COOKIE).map(str::to_owned),
            csrf_header: headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            csrf_cookie: cookie(headers, CSRF_COOKIE).unwrap_or("").to_owned(),
            safe_method: matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            ),
        }
    }
}

/// Middleware: resolves credentials into a [`Principal`] extension and enforces CSRF.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = Presented::of(&request);
    match resolve_principal(&state, presented).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => next.run(request).await,
        // OctoPrint answers a CSRF failure with 400; its clients expect that status.
        Err(ApiError::CsrfFailed) if is_octoprint_route(request.uri().path()) => {
            ApiError::bad_request("csrf_failed", ApiError::CsrfFailed.to_string()).into_response()
        }
        Err(err) => err.into_response(),
    }
}

/// Routes of the OctoPrint-compatible API (everything under `/api/` but the native `/api/v1`
/// and the WebSocket, plus plugin and download routes).
fn is_octoprint_route(path: &str) -> bool {
    (path.starts_with("/api/") && !path.starts_with("/api/v1/") && path != "/api/ws")
        || path.starts_with("/plugin/")
        || path.starts_with("/downloads/")
}

async fn resolve_principal(
    state: &AppState,
    presented: Presented,
) -> Result<Option<Principal>, ApiError> {
    if let Some(key) = presented.api_key {
        if key.is_empty() || key.len() > 256 {
            return Err(ApiError::InvalidApiKey);
        }
        // Verified keys are remembered (until revoked): no database round trip per request.
        let cache = state.revocations.api_keys();
        let hash = token_hash(&key);
        let (user, key_id) = match cache.get(&hash, Instant::now()) {
            Ok(known) => known,
            Err(generation) => {
                let found = state
                    .db
                    .call(move |conn| store::api_key_user(conn, &key))
                    .await?;
                let (user, key_id) = found.ok_or(ApiError::InvalidApiKey)?;
                cache.remember(generation, hash, user.clone(), key_id, Instant::now());
                (user, key_id)
            }
        };
        return Ok(Some(Principal {
            user,
            method: AuthMethod::ApiKey { key_id },
        }));
    }
    let Some(token) = presented.session_token else {
        return Ok(None);
    };
    let hash = token_hash(&token);
    let Some((user, csrf_hash, expires_at)) = state
        .db
        .call(move |conn| store::session_user(conn, &hash))
        .await?
    else {
        // Expired or logged out: the request is simply anonymous.
        return Ok(None);
    };
    if !presented.safe_method {
        let header_token = presented.csrf_header.as_bytes();
        let matches_cookie = constant_time_eq(header_token, presented.csrf_cookie.as_bytes());
        let matches_session = constant_time_eq(&token_hash(&presented.csrf_header), &csrf_hash);
        if header_token.is_empty() || !(matches_cookie & matches_session) {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(Some(Principal {
        user,
        method: AuthMethod::Session {
            token_hash: hash,
            expires_at,
        },
    }))
}

/// Middleware for the protected part of the router: anonymous requests never reach a handler.
///
/// Browser pages redirect to the login page; the native API answers 401; OctoPrint-compatible
/// routes answer 403 as OctoPrint does.
pub async fn require_principal(request: Request, next: Next) -> Response {
    if request.extensions().get::<Principal>().is_some() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if path.starts_with("/api/v1/") || path == "/api/ws" {
        ApiError::Unauthenticated.into_response()
    } else if path.starts_with("/api/")
        || path.starts_with("/plugin/")
        || path.starts_with("/downloads/")
    {
        ApiError::Forbidden.into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// `Set-Cookie` values that start a session.
pub fn session_cookies(
    session: &store::NewSession,
    ttl_secs: u64,
    secure: bool,
) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl_secs}{secure}",
            session.token
        ),
        format!(
            "{CSRF_COOKIE}={}; Path=/; SameSite=Strict; Max-Age={ttl_secs}{secure}",
            session.csrf
        ),
    ]
    .map(|c| HeaderValue::from_str(&c).expect("tokens are hex"))
}

/// `Set-Cookie` values that end a session in the browser.
pub fn cleared_cookies() -> [HeaderValue; 2] {
    [
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        format!("{CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0"),
    ]
    .map(|c| HeaderValue::from_str(&c).expect("static cookie"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; csrf_token=abc".parse().unwrap());
        h.append(header::COOKIE, "easyprint_session=def".parse().unwrap());
        assert_eq!(cookie(&h, "csrf_token"), Some("abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("def"));
        assert_eq!(cookie(&h, "csrf"), None);
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            form_urlencoded_value("x=1&apikey=a%2Bb+c", "apikey").as_deref(),
            Some("a+b c")
        );
        assert_eq!(form_urlencoded_value("apikeyx=1", "apikey"), None);
    }
}

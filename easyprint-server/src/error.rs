//! The one error type every handler returns, and its JSON shape.
//!
//! Every error answers `{"error": "<human message>", "code": "<stable_code>"}`. OctoPrint clients
//! read only `error`; our own UI and tools switch on `code`, which never changes once released.
//! Internal failures answer a generic 500; the real cause travels to [`log_internal_errors`] as a
//! response extension and is logged once there, inside the request's span.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Boxed cause of an internal error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every failure a request can end in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No credentials were presented (401 `unauthenticated`).
    #[error("authentication required")]
    Unauthenticated,
    /// An API key was presented but is unknown or revoked (403 `invalid_api_key`).
    #[error("You don't have the permission to access the requested resource")]
    InvalidApiKey,
    /// Authenticated, but the role does not allow this (403 `forbidden`).
    #[error("You don't have the permission to access the requested resource")]
    Forbidden,
    /// A cookie-authenticated request that changes state came without a matching
    /// `X-CSRF-Token` header (403 `csrf_failed`).
    #[error("missing or wrong CSRF token")]
    CsrfFailed,
    /// A WebSocket handshake from a foreign `Origin` (403 `origin_not_allowed`).
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// Wrong user name or password (401 `invalid_credentials`). Deliberately does not say which.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// Too many failed logins from this address (429 `too_many_attempts`).
    #[error("too many failed attempts, try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the next attempt may succeed.
        retry_after_secs: u64,
    },
    /// The resource does not exist or belongs to someone else (404 `not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409 with the given code).
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// A printer command while no printer is connected (409 `printer_not_operational`).
    #[error("Printer is not operational")]
    PrinterNotOperational,
    /// The body exceeded a configured limit (413 `payload_too_large`).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The upload would take the user beyond their storage quota (413 `quota_exceeded`).
    #[error("upload quota of {quota} bytes exceeded ({used} bytes already stored)")]
    QuotaExceeded {
        /// The configured quota (`limits.user_quota_bytes`).
        quota: u64,
        /// Bytes the user stores already.
        used: u64,
    },
    /// The upload would leave less free disk space than configured (507 `insufficient_storage`).
    #[error(
        "not enough free disk space: the server keeps {floor} bytes free (limits.min_free_bytes)"
    )]
    InsufficientStorage {
        /// The configured floor (`limits.min_free_bytes`).
        floor: u64,
    },
    /// A write failed because the disk, the user's filesystem quota or the process' file-size
    /// limit is full (ENOSPC, EDQUOT, EFBIG; SQLite's "database or disk is full"): 507
    /// `insufficient_storage`. Nothing was stored.
    #[error("the server's storage is full ({0}), nothing was stored")]
    StorageFull(String),
    /// The client stopped sending in the middle of a body (408 `request_timeout`).
    #[error("the client stopped sending the request body")]
    RequestTimeout,
    /// An upload whose extension is not on the allowed list (415 `unsupported_file_type`).
    #[error("Could not upload file, invalid type")]
    UnsupportedFileType,
    /// The request is malformed (400 with the given code).
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation naming what was wrong.
        message: String,
    },
    /// The server is at a configured capacity (503 `unavailable`).
    #[error("{0}")]
    Unavailable(&'static str),
    /// Anything the client cannot fix (500 `internal`); the cause is logged, not returned.
    #[error("internal server error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// A 400 with a stable `code` and a message naming what was wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 409 with a stable `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// Wraps any error as a 500.
    pub fn internal(err: impl Into<BoxError>) -> ApiError {
        ApiError::Internal(err.into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::InvalidApiKey
            | ApiError::Forbidden
            | ApiError::CsrfFailed
            | ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::PrinterNotOperational => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge | ApiError::QuotaExceeded { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::InsufficientStorage { .. } | ApiError::StorageFull(_) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedFileType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::Forbidden => "forbidden",
            ApiError::CsrfFailed => "csrf_failed",
            ApiError::OriginNotAllowed => "origin_not_allowed",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::BadRequest { code, .. } => code,
            ApiError::PrinterNotOperational => "printer_not_operational",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::InsufficientStorage { .. } | ApiError::StorageFull(_) => {
                "insufficient_storage"
            }
            ApiError::RequestTimeout => "request_timeout",
            ApiError::UnsupportedFileType => "unsupported_file_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => ApiError::StorageFull(err.to_string()),
            _ => ApiError::internal(err),
        }
    }
}

/// Whether a failed write means "no room": the disk is full (ENOSPC), the user's filesystem
/// quota is (EDQUOT), or the file outgrew the process' file-size limit (EFBIG, with SIGXFSZ
/// ignored).
pub fn is_storage_full(err: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let full = [Errno::NOSPC, Errno::DQUOT, Errno::FBIG].map(Errno::raw_os_error);
    err.raw_os_error().is_some_and(|code| full.contains(&code))
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        if is_storage_full(&err) {
            ApiError::StorageFull(err.to_string())
        } else {
            ApiError::internal(err)
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::internal(err)
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Human-readable message (the field OctoPrint clients show).
    pub error: &'a str,
    /// Stable machine-readable code.
    pub code: &'a str,
}

/// Cause of a 500, carried from [`ApiError::into_response`] to [`log_internal_errors`].
#[derive(Debug, Clone)]
struct InternalCause(Arc<str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let body = ErrorBody {
            error: &message,
            code: self.code(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::TooManyAttempts { retry_after_secs } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if let ApiError::Internal(cause) = &self {
            let mut chain = cause.to_string();
            let mut source = cause.source();
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            response
                .extensions_mut()
                .insert(InternalCause(chain.into()));
        }
        response
    }
}

/// Middleware that logs the cause of every 500 once, in the request's context.
pub async fn log_internal_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, error = %cause, "request failed");
    }
    response
}

/// `axum::Json` whose rejections answer in our error shape (400 `invalid_json`, 413, 415).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::bad_request(
                    "expected_json",
                    "expected a body with Content-Type: application/json",
                ),
                _ => ApiError::bad_request("invalid_json", rejection.body_text()),
            }),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_full_device_is_507_not_500() {
        // /dev/full answers every write with a real ENOSPC from the kernel.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = full.write_all(&[0; 4096]).and_then(|()| full.flush());
        let err = ApiError::from(err.unwrap_err());
        assert!(matches!(err, ApiError::StorageFull(_)), "{err:?}");
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
        );
        assert!(err.to_string().contains("No space left on device"), "{err}");
        // Other I/O failures stay internal.
        let missing = std::fs::File::open("/nonexistent/easyprint").unwrap_err();
        assert_eq!(
            ApiError::from(missing).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_full_database_is_507() {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("small.sqlite")).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 4;")
            .unwrap();
        let err = conn
            .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
            .unwrap_err();
        let err = ApiError::from(err);
        assert_eq!(err.status(), StatusCode::INSUFFICIENT_STORAGE, "{err:?}");
    }
}

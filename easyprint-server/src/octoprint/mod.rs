//! The OctoPrint-compatible subset that slicers and OctoPrint clients use, shaped field by
//! field after OctoPrint 1.11's documented responses.
//!
//! Errors keep OctoPrint's status codes (403 for a missing or bad key, 409 when the printer is
//! not operational); bodies carry OctoPrint's `error` text plus our stable `code`.

pub mod appkeys;
pub mod current;
mod files;
mod printer;
mod status;

use axum::http::{header, HeaderMap};
use axum::Router;

use crate::state::AppState;

/// The version of OctoPrint whose API shapes this layer follows.
pub const OCTOPRINT_VERSION: &str = "1.11.8";

/// OctoPrint routes that require credentials.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(status::router())
        .merge(files::router())
        .merge(printer::router())
}

/// OctoPrint routes open to anyone: the app-keys handshake.
pub fn public_router() -> Router<AppState> {
    status::public_router()
}

/// `http://host` for absolute URLs in responses (`Location`, `refs`).
///
/// The `Host` header is reflected only to the client that sent it, and only when it looks like
/// a host name or address; anything else falls back to the address the request arrived on.
pub fn base_url(headers: &HeaderMap, local: std::net::SocketAddr) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .map_or_else(|| local.to_string(), str::to_owned);
    format!("http://{host}")
}

/// Percent-encodes a file name as one URL path segment (RFC 3986 unreserved characters stay).
pub fn path_segment(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

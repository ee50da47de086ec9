//! Pages and documents served to browsers: the web interface (built from `web/` by
//! `scripts/build-web` and embedded at compile time by `build.rs`), and the API description at
//! `/api/openapi.json` and `/api/docs`.
//!
//! Everything is embedded in the binary (no CDN, works offline). HTML answers carry a strict
//! Content-Security-Policy (no inline script, nothing from elsewhere, no framing). The bundles
//! under `/assets/` have content-hashed names, so they are cached for a year; `index.html` is
//! revalidated on every load. Assets are public (they hold no data); the page itself asks the API
//! who is logged in and shows the login or first-run form when nobody is.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::state::AppState;

/// The OpenAPI 3.1 description of the native API.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The command that builds the web interface, named wherever it is missing.
pub const BUILD_COMMAND: &str = "scripts/build-web";

/// One file of the built web interface.
#[derive(Debug)]
pub struct WebAsset {
    /// Path under `web/dist/`, e.g. `assets/app-3FJ2K.js`.
    pub path: &'static str,
    /// `Content-Type` to send.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static [u8],
    /// Its gzip encoding, when the web build made one.
    pub gzip: Option<&'static [u8]>,
}

/// Every file of `web/dist/` as it was when this binary was compiled (empty when it was not built).
pub static WEB_ASSETS: &[WebAsset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The embedded file at `path` (relative to `web/dist/`).
pub fn web_asset(path: &str) -> Option<&'static WebAsset> {
    WEB_ASSETS.iter().find(|a| a.path == path)
}

/// Pages and assets anyone may load: the login page and the interface's bundles.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login", get(index))
        .route(
            "/assets/{*file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                match web_asset(&format!("assets/{file}")) {
                    Some(asset) => serve_asset(asset, &headers, true),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/assets/style.css",
            get(|| async {
                static_text(
                    "text/css; charset=utf-8",
                    include_str!("../assets/style.css"),
                )
            }),
        )
}

/// Pages for logged-in users: the interface and the API documents.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/appkeys", get(index))
        .route(
            "/api/openapi.json",
            get(|| async { static_text("application/json", OPENAPI) }),
        )
        .route("/api/docs", get(|| async { html(docs_page()) }))
}

async fn index(headers: HeaderMap) -> Response {
    match web_asset("index.html") {
        Some(asset) => {
            let mut response = serve_asset(asset, &headers, false);
            response.headers_mut().extend(html_headers());
            response
        }
        None => html(missing_interface_page()),
    }
}

/// Answers with the asset, gzipped when the client accepts it and a gzip twin exists.
fn serve_asset(asset: &'static WebAsset, headers: &HeaderMap, immutable: bool) -> Response {
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip);
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = match asset.gzip {
        Some(gzip) if accepts_gzip => (
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            gzip,
        )
            .into_response(),
        _ => asset.body.into_response(),
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether an `Accept-Encoding` value allows gzip (named, or `*`, without `q=0`).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// What `/` says when the binary was compiled without the web interface.
fn missing_interface_page() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>easyprint</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><main class=\"card\"><h1>easyprint</h1>\
         <p>The web interface was not built into this binary. From the repository root run \
         <code>{BUILD_COMMAND}</code> (it needs Node.js and npm), then build the server again.</p>\
         <p>The API works without it: <a href=\"/api/docs\">/api/docs</a>.</p></main></body></html>\n"
    )
}

fn static_text(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn html_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h
}

fn html(body: String) -> Response {
    (html_headers(), body).into_response()
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `/api/docs`: the OpenAPI document rendered as a self-contained HTML listing.
fn docs_page() -> String {
    let spec: Value = serde_json::from_str(OPENAPI).unwrap_or_default();
    let text = |v: &Value| escape_html(v.as_str().unwrap_or(""));
    let mut rows = String::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let statuses: Vec<&str> = operation["responses"]
                    .as_object()
                    .map(|r| r.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    escape_html(&method.to_uppercase()),
                    escape_html(path),
                    text(&operation["summary"]),
                    escape_html(&statuses.join(", ")),
                ));
            }
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><main class=\"card\" style=\"max-width:60rem\"><h1>{title} {version}</h1><p>{description}</p>\
         <p><a href=\"/api/openapi.json\">OpenAPI document (JSON)</a></p>\
         <table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>\n{rows}</table></main></body></html>\n",
        title = text(&spec["info"]["title"]),
        version = text(&spec["info"]["version"]),
        description = text(&spec["info"]["description"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn gzip_negotiation() {
        for yes in ["gzip", "gzip, deflate, br", "br;q=1, GZIP;q=0.5", "*"] {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in ["", "br", "identity", "gzip;q=0", "gzip; q=0.0", "x-gzip2"] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }

    #[test]
    fn embedded_assets_are_consistent() {
        let mut paths: Vec<&str> = WEB_ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), WEB_ASSETS.len(), "unique paths");
        for asset in WEB_ASSETS {
            assert!(!asset.path.ends_with(".gz"), "{}", asset.path);
            assert_ne!(
                asset.content_type, "application/octet-stream",
                "{}",
                asset.path
            );
            if let Some(gzip) = asset.gzip {
                assert!(gzip.starts_with(&[0x1f, 0x8b]) && gzip.len() < asset.body.len());
            }
        }
        if let Some(index) = web_asset("index.html") {
            let index = std::str::from_utf8(index.body).unwrap();
            for reference in index.split('"').filter(|s| s.starts_with("/assets/")) {
                assert!(web_asset(&reference[1..]).is_some(), "{reference}");
            }
        }
    }

    #[test]
    fn docs_list_every_operation() {
        let spec: Value = serde_json::from_str(OPENAPI).unwrap();
        let page = docs_page();
        let mut operations = 0;
        for (path, ops) in spec["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                operations += 1;
                assert!(
                    page.contains(&format!(
                        "<code>{}</code></td><td><code>{}</code>",
                        method.to_uppercase(),
                        escape_html(path)
                    )),
                    "{method} {path}"
                );
            }
        }
        assert!(operations >= 20);
        assert!(!page.contains("<script"));
    }
}

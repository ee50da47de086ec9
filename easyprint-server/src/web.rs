//! Pages and documents served to browsers: the login page (public, with its two assets), a
//! placeholder dashboard, and the API description at `/api/openapi.json` and `/api/docs`.
//!
//! Everything is embedded in the binary (no CDN, works offline). HTML answers carry a strict
//! Content-Security-Policy (no inline script, nothing from elsewhere, no framing).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::state::AppState;

/// The OpenAPI 3.1 description of the native API.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Pages and assets anyone may load (the login page).
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            get(|| async { html(include_str!("../assets/login.html").into()) }),
        )
        .route(
            "/assets/login.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../assets/login.js"),
                )
            }),
        )
        .route(
            "/assets/style.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("../assets/style.css"),
                )
            }),
        )
}

/// Pages for logged-in users.
pub fn router() -> Router<AppState> {
    let dashboard = || async { html(include_str!("../assets/dashboard.html").into()) };
    Router::new()
        .route("/", get(dashboard))
        .route("/appkeys", get(dashboard))
        .route(
            "/assets/app.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../assets/app.js"),
                )
            }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { asset("application/json", OPENAPI) }),
        )
        .route("/api/docs", get(|| async { html(docs_page()) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
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

fn html(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
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

//! Pages, assets, the OpenAPI document and its agreement with the router.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn only_the_login_page_and_its_assets_are_public() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let response = app.get("/login").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let page = response.text().await.unwrap();
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script type=\"module\" src=").count(),
        "no inline script"
    );
    let client = no_redirects();
    for page in ["/", "/appkeys"] {
        let response = client.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()["location"], "/login", "{page}");
    }
    let response = app.get("/assets/nope.js").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for doc in ["/api/docs", "/api/openapi.json"] {
        let response = app.get(doc).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{doc}");
    }
}

/// The page loads its bundles by content-hashed names, served with their type, cached for good
/// and gzipped on request; without a web build, the page names the command that makes one.
#[tokio::test]
async fn the_interface_and_its_bundles_are_served_from_the_binary() {
    let app = spawn_app().await;
    let page = app
        .get("/login")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if easyprint_server::web::WEB_ASSETS.is_empty() {
        assert!(
            page.contains(easyprint_server::web::BUILD_COMMAND),
            "{page}"
        );
        return;
    }
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script");
    assert!(
        script.starts_with("/assets/app-") && script.ends_with(".js"),
        "{script}"
    );
    // reqwest is built without gzip support here, so Accept-Encoding is ours to set.
    let plain = app.get(script).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(plain.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let gzipped = app
        .get(script)
        .header("accept-encoding", "br;q=1, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let gzipped = gzipped.bytes().await.unwrap();
    assert!(gzipped.starts_with(&[0x1f, 0x8b]) && gzipped.len() < plain.len());
    let css = page
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let response = app.get(css).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn logged_in_users_get_the_interface_and_the_docs() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for page in ["/", "/appkeys"] {
        let response = admin.get(page).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let text = response.text().await.unwrap();
        assert!(
            text.contains("/assets/app-") || text.contains(easyprint_server::web::BUILD_COMMAND),
            "{text}"
        );
    }
    let response = admin.get("/api/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    let docs = response.text().await.unwrap();
    assert!(docs.contains("<code>/api/v1/files/{id}/download</code>"));
    let spec = body(admin.get("/api/openapi.json").await).await;
    assert_eq!(spec["openapi"], "3.1.0");
}

/// Every operation the OpenAPI document lists is routed (no 405, no "route not found").
#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let (app, _, key) = spawn_app_with_key().await;
    let spec: Value = serde_json::from_str(easyprint_server::web::OPENAPI).unwrap();
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "0");
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let mut request = app
                .http
                .request(method.clone(), app.url(&concrete))
                .header("x-api-key", &key);
            if method != Method::GET {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("route not found")),
                "{method} {path} is not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

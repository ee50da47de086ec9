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
        page.matches("<script src=").count(),
        "no inline script"
    );
    for asset in ["/assets/login.js", "/assets/style.css"] {
        let response = app.get(asset).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let client = no_redirects();
    for page in ["/", "/appkeys", "/assets/app.js", "/assets/nope.js"] {
        let response = client.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()["location"], "/login", "{page}");
    }
    for doc in ["/api/docs", "/api/openapi.json"] {
        let response = app.get(doc).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{doc}");
    }
}

#[tokio::test]
async fn logged_in_users_get_the_dashboard_and_the_docs() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let response = admin.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("/assets/app.js"));
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
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let key = app.api_key(&admin).await;
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

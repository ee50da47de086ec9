//! Setup, sessions, CSRF, API keys, roles, throttling, default-deny.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// `GET /api/v1/session` with an API key.
async fn session_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.get("/api/v1/session")
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn first_run_setup_works_only_while_no_user_exists() {
    let app = spawn_app().await;
    let status = body(app.get("/api/v1/setup").send().await.unwrap()).await;
    assert_eq!(status["needed"], true);

    let response = app
        .post("/api/v1/setup")
        .json(&json!({ "name": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let session = set_cookie_line(&response, "easyprint_session").unwrap();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Max-Age="), "{session}");
    let csrf = set_cookie_line(&response, "csrf_token").unwrap();
    assert!(!csrf.contains("HttpOnly"), "the UI must read it: {csrf}");
    let user = body(response).await;
    assert_eq!(user["name"], ADMIN);
    assert_eq!(user["admin"], true);

    let again = app
        .post("/api/v1/setup")
        .json(&json!({ "name": "mallory", "password": "another password" }))
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::CONFLICT, "setup_done").await;
    let status = body(app.get("/api/v1/setup").send().await.unwrap()).await;
    assert_eq!(status["needed"], false);
}

#[tokio::test]
async fn setup_validates_input() {
    let app = spawn_app().await;
    for (body, code) in [
        (
            json!({ "name": "a b", "password": PASSWORD }),
            "invalid_user_name",
        ),
        (
            json!({ "name": "admin", "password": "short" }),
            "invalid_password",
        ),
        (json!({ "name": "admin" }), "invalid_json"),
        (
            json!({ "name": "admin", "password": PASSWORD, "admin": false }),
            "invalid_json",
        ),
    ] {
        let response = app.post("/api/v1/setup").json(&body).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let response = app
        .post("/api/v1/setup")
        .header("content-type", "application/json")
        .body(vec![b'['; 200_000])
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn every_route_is_denied_without_credentials() {
    let app = spawn_app().await;
    app.setup_admin().await;
    for path in [
        "/api/v1/session",
        "/api/v1/files",
        "/api/v1/users",
        "/api/v1/no-such-route",
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let response = app.post("/api/v1/files").send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login");
}

#[tokio::test]
async fn login_session_and_logout() {
    let app = spawn_app().await;
    app.setup_admin().await;
    for (name, password) in [(ADMIN, "wrong password"), ("nobody", PASSWORD)] {
        let response = app
            .post("/api/v1/login")
            .json(&json!({ "name": name, "password": password }))
            .send()
            .await
            .unwrap();
        // The same answer for a wrong password and an unknown user: no user enumeration.
        let value = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(value["error"], "wrong user name or password");
    }
    let browser = app.login(ADMIN, PASSWORD).await;
    let me = body(browser.get("/api/v1/session").await).await;
    assert_eq!(me["name"], ADMIN);

    let response = browser
        .bare(Method::DELETE, "/api/v1/session")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "csrf_failed").await;
    let response = browser
        .request(Method::DELETE, "/api/v1/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie_line(&response, "easyprint_session")
        .unwrap()
        .contains("Max-Age=0"));
    let response = browser.get("/api/v1/session").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn csrf_token_must_match_cookie_and_session() {
    let app = spawn_app().await;
    let alice = app.setup_admin().await;
    let other = app.login(ADMIN, PASSWORD).await;
    let attempt = |browser: Browser, header: Option<String>| async move {
        let mut request = browser
            .bare(Method::POST, "/api/v1/keys")
            .json(&json!({ "label": "x", "password": PASSWORD }));
        if let Some(h) = header {
            request = request.header("x-csrf-token", h);
        }
        request.send().await.unwrap()
    };
    // No header.
    assert_error(
        attempt(alice.clone(), None).await,
        StatusCode::FORBIDDEN,
        "csrf_failed",
    )
    .await;
    // A token from another session.
    assert_error(
        attempt(alice.clone(), Some(other.csrf.clone())).await,
        StatusCode::FORBIDDEN,
        "csrf_failed",
    )
    .await;
    // Cookie and header agree but belong to another session (cookie tossing).
    let tossed = Browser {
        csrf: other.csrf.clone(),
        ..alice.clone()
    };
    assert_error(
        attempt(tossed, Some(other.csrf.clone())).await,
        StatusCode::FORBIDDEN,
        "csrf_failed",
    )
    .await;
    // The right token.
    let response = attempt(alice.clone(), Some(alice.csrf.clone())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Safe methods need no token.
    let response = alice.get("/api/v1/keys").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_keys_in_header_bearer_and_query() {
    let (app, admin, key) = spawn_app_with_key().await;
    for request in [
        app.get("/api/v1/session").header("x-api-key", &key),
        app.get("/api/v1/session").bearer_auth(&key),
        app.get(&format!("/api/v1/session?apikey={key}")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(response).await["name"], ADMIN);
    }
    // API-key requests are exempt from CSRF: there is no ambient credential to abuse.
    let response = app
        .post("/api/v1/keys")
        .header("x-api-key", &key)
        .json(&json!({ "label": "second", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // A wrong key is refused even when a valid session cookie rides along: it never falls
    // back to the cookie, so a forged request cannot skip CSRF by adding a junk key.
    let response = admin
        .bare(Method::POST, "/api/v1/keys")
        .header("x-api-key", "not-a-key")
        .json(&json!({ "label": "x", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "invalid_api_key").await;
    // Keys are listed without their secret and can be revoked.
    let keys = body(admin.get("/api/v1/keys").await).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(&key));
    let id = keys[0]["id"].as_i64().unwrap();
    let response = admin
        .request(Method::DELETE, &format!("/api/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = session_with_key(&app, &key).await;
    assert_error(response, StatusCode::FORBIDDEN, "invalid_api_key").await;
}

#[tokio::test]
async fn creating_a_key_needs_the_password() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let response = admin
        .request(Method::POST, "/api/v1/keys")
        .json(&json!({ "label": "x", "password": "not my password" }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn password_change_ends_every_session() {
    let app = spawn_app().await;
    let first = app.setup_admin().await;
    let second = app.login(ADMIN, PASSWORD).await;
    let new_password = "a brand new password";
    let response = first
        .request(Method::PUT, "/api/v1/users/me/password")
        .json(&json!({ "current_password": PASSWORD, "new_password": new_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = Browser::from_response(&app, &response);
    for stale in [&first, &second] {
        let response = stale.get("/api/v1/session").await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let response = renewed.get("/api/v1/session").await;
    assert_eq!(response.status(), StatusCode::OK);
    app.login(ADMIN, new_password).await;
}

#[tokio::test]
async fn expired_sessions_are_rejected() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.state
        .db
        .call(|c| Ok(c.execute("UPDATE sessions SET expires_at = 0", [])?))
        .await
        .unwrap();
    let response = admin.get("/api/v1/session").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn roles_guard_user_management() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_user(&admin, "bob").await;
    let response = bob.get("/api/v1/users").await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = bob
        .request(Method::POST, "/api/v1/users")
        .json(&json!({ "name": "eve", "password": PASSWORD, "admin": true }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let users = body(admin.get("/api/v1/users").await).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    let response = admin
        .request(Method::POST, "/api/v1/users")
        .json(&json!({ "name": "BOB", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "user_exists").await;

    // Deleting an account ends its sessions and revokes its keys at once (even a key that
    // was just used, so the server remembers it as verified).
    let bob_key = app.api_key(&bob).await;
    let response = session_with_key(&app, &bob_key).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bob_id = users[1]["id"].as_i64().unwrap();
    let response = admin
        .request(Method::DELETE, &format!("/api/v1/users/{bob_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        bob.get("/api/v1/session").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let response = session_with_key(&app, &bob_key).await;
    assert_error(response, StatusCode::FORBIDDEN, "invalid_api_key").await;
    let admin_id = users[0]["id"].as_i64().unwrap();
    let response = admin
        .request(Method::DELETE, &format!("/api/v1/users/{admin_id}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "cannot_delete_self").await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_real_address() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let wrong = |xff: &'static str| {
        app.post("/api/v1/login")
            .header("x-forwarded-for", xff)
            .json(&json!({ "name": ADMIN, "password": "wrong password" }))
            .send()
    };
    // A spoofed X-Forwarded-For from an untrusted peer does not give fresh counters.
    for xff in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_eq!(wrong(xff).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .post("/api/v1/login")
        .header("x-forwarded-for", "10.0.0.4")
        .json(&json!({ "name": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.setup_admin().await;
    let attempt = |xff: &'static str, password: &'static str| {
        app.post("/api/v1/login")
            .header("x-forwarded-for", xff)
            .json(&json!({ "name": ADMIN, "password": password }))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            attempt("198.51.100.1", "wrong password")
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt("198.51.100.1", PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind the trusted proxy, another client is a different address.
    assert_eq!(
        attempt("198.51.100.2", PASSWORD).await.unwrap().status(),
        StatusCode::OK
    );
}

/// OctoPrint answers a CSRF failure with 400, so its clients see the status they expect; the
/// native API keeps 403.
#[tokio::test]
async fn csrf_failure_is_400_on_octoprint_routes() {
    let app = spawn_app().await;
    let alice = app.setup_admin().await;
    let response = alice
        .bare(Method::POST, "/api/printer/command")
        .json(&json!({ "command": "M105" }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "csrf_failed").await;
    let response = alice
        .bare(Method::POST, "/api/v1/keys")
        .json(&json!({ "label": "x", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "csrf_failed").await;
}

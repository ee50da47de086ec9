//! Open WebSockets close when the credential they were opened with ends: logout, password
//! change, account deletion, API key revocation. Others stay open.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::ws::{connect, next_json, send_json, Socket};

async fn with_session(app: &TestApp, browser: &Browser) -> Socket {
    connect(
        app,
        &[("cookie", format!("easyprint_session={}", browser.session))],
    )
    .await
    .unwrap()
}

async fn with_key(app: &TestApp, key: &str) -> Socket {
    connect(app, &[("x-api-key", key.to_owned())])
        .await
        .unwrap()
}

/// The socket answers a ping: it is open and served.
async fn assert_open(socket: &mut Socket, what: &str) {
    send_json(socket, json!({ "ping": what })).await;
    assert_eq!(next_json(socket).await, json!({ "pong": what }), "{what}");
}

/// The server closes the socket with 1008 "credentials revoked".
async fn assert_revoked(socket: &mut Socket, what: &str) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: still open after 10 s"));
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Policy, "{what}");
                assert_eq!(frame.reason.as_str(), "credentials revoked", "{what}");
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("{what}: expected a close frame, got {other:?}"),
        }
    }
}

async fn key_ids(browser: &Browser) -> Vec<i64> {
    let keys = body(browser.get("/api/v1/keys").await).await;
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn websockets_close_when_their_credentials_end() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let admin_again = app.login(ADMIN, PASSWORD).await;
    let admin_key = app.api_key(&admin).await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    let bob_key_id = key_ids(&bob).await[0];

    let mut admin_ws = with_session(&app, &admin).await;
    let mut admin_again_ws = with_session(&app, &admin_again).await;
    let mut admin_key_ws = with_key(&app, &admin_key).await;
    let mut bob_ws = with_session(&app, &bob).await;
    let mut bob_key_ws = with_key(&app, &bob_key).await;
    for (socket, what) in [
        (&mut admin_ws, "admin"),
        (&mut admin_again_ws, "admin's second session"),
        (&mut admin_key_ws, "admin's key"),
        (&mut bob_ws, "bob"),
        (&mut bob_key_ws, "bob's key"),
    ] {
        assert_open(socket, what).await;
    }

    // Logout ends that session's socket only.
    let response = admin
        .request(Method::DELETE, "/api/v1/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_revoked(&mut admin_ws, "logged-out session").await;
    assert_open(&mut admin_again_ws, "admin's second session").await;

    // A password change ends every session of the account, not its keys.
    let response = admin_again
        .request(Method::PUT, "/api/v1/users/me/password")
        .json(&json!({ "current_password": PASSWORD, "new_password": "another long password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_revoked(&mut admin_again_ws, "session after a password change").await;
    assert_open(&mut admin_key_ws, "admin's key").await;
    assert_open(&mut bob_ws, "bob").await;

    // A revoked key ends its socket only.
    let response = bob
        .request(Method::DELETE, &format!("/api/v1/keys/{bob_key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_revoked(&mut bob_key_ws, "revoked key").await;
    assert_open(&mut bob_ws, "bob").await;

    // A deleted account ends all of its sockets.
    let bob_id = body(bob.get("/api/v1/session").await).await["id"]
        .as_i64()
        .unwrap();
    let response = app
        .http
        .delete(app.url(&format!("/api/v1/users/{bob_id}")))
        .header("x-api-key", &admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_revoked(&mut bob_ws, "deleted account").await;
    assert_open(&mut admin_key_ws, "admin's key").await;
}

#[tokio::test]
async fn websockets_close_when_their_session_expires() {
    // Sessions live 2 s (stored with second precision, so they end 1–2 s after login).
    let app = spawn_app_with(|c| c.limits.session_ttl_secs = 2).await;
    let (admin, key) = app.admin_and_key().await;
    let mut session_ws = with_session(&app, &admin).await;
    let mut key_ws = with_key(&app, &key).await;
    assert_open(&mut session_ws, "fresh session").await;
    assert_open(&mut key_ws, "key").await;

    // Nobody logs out: the socket closes by itself when the session's lifetime is over…
    assert_revoked(&mut session_ws, "expired session").await;
    // …at which point the cookie no longer authenticates anything either.
    assert_eq!(
        admin.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // API keys do not expire with sessions.
    assert_open(&mut key_ws, "key after the session expired").await;
}

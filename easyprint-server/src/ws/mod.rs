//! The native WebSocket, `/api/ws`: JSON updates by topic.
//!
//! Protocol (one JSON object per text frame):
//! - client → server: `{"subscribe": ["printer_status", ...]}`, `{"unsubscribe": [...]}`,
//!   `{"ping": <any>}`;
//! - server → client: updates `{"topic", "key", "data"}` (a snapshot of every status key and,
//!   for `terminal`, one `{"history": [data, ...]}` per printer with its recent lines, right
//!   after subscribing, then changes), `{"subscribed": [...]}`, `{"pong": <any>}`, and
//!   `{"error", "code"}` for a message it did not understand.
//!
//! The handshake requires a session cookie or an API key (the router's default-deny) and an
//! `Origin` that is this server or an allowed origin (cross-site WebSocket hijacking: a page
//! elsewhere cannot use the visitor's cookie). A full server closes new connections with 1008.
//! The server pings every third of the idle timeout (at most every [`PING_INTERVAL`]); a
//! client silent (no frame, not even a pong) for the idle timeout is closed,
//! and one that does not accept a frame within [`SEND_TIMEOUT`] is dropped.

pub mod hub;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::auth::revocation::{revoked, Revoked};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use hub::{ClientQueue, Drained, Hub, Topic};

/// Longest interval between two server pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Longest wait for the client to accept one frame before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message accepted from a client.
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// Read buffer per connection. Clients send small requests; tungstenite's default (128 KiB)
/// is zero-filled on every read, which made each connection cost 128 KiB of resident memory
/// and a 128 KiB memset per client message.
const READ_BUFFER: usize = 4 * 1024;

/// Close code for policy violations (full server, too slow, bad frames).
const POLICY: u16 = 1008;

/// `/api/ws`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_origins)?;
    // Listening before the upgrade: a logout from here on closes this connection.
    let revocations = state.revocations.subscribe();
    let idle = Duration::from_secs(state.config.limits.ws_idle_timeout_secs);
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            match state
                .hub
                .register_user(principal.user.id, principal.user.admin)
            {
                Some(client) => {
                    serve_client(socket, &state.hub, &client, idle, (revocations, principal)).await;
                    state.hub.unregister(&client);
                }
                None => close(socket, POLICY, "too many connections").await,
            }
        }))
}

/// Accepts a missing `Origin` (non-browser clients, which cannot carry a victim's cookie) and
/// same-origin or configured origins; refuses everything else with 403 `origin_not_allowed`.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_origin = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    if same_origin || allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed)
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Runs one connection until either side ends it.
async fn serve_client(
    socket: WebSocket,
    hub: &Hub,
    client: &Arc<ClientQueue>,
    idle: Duration,
    (mut revocations, principal): (broadcast::Receiver<Revoked>, Principal),
) {
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    // Milliseconds since `started` at which the client was last heard from.
    let last_heard = AtomicU64::new(0);
    let heard = || last_heard.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);

    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            heard();
            match message {
                Message::Text(text) => handle_client_message(hub, client, text.as_str()),
                Message::Binary(_) => {
                    client.reply(error_message("binary_frame", "only JSON text frames"))
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => break,
            }
        }
    };
    let writer = async {
        let every = (idle / 3).clamp(Duration::from_millis(100), PING_INTERVAL);
        let mut ping = tokio::time::interval(every);
        ping.tick().await;
        loop {
            tokio::select! {
                () = client.notified() => match client.drain() {
                    Drained::Messages(messages) => {
                        // Frames are buffered and flushed together: one write for a burst.
                        for message in messages {
                            let fed = tokio::time::timeout(SEND_TIMEOUT, sink.feed(Message::Text(message))).await;
                            if !matches!(fed, Ok(Ok(()))) {
                                return;
                            }
                        }
                        let flushed = tokio::time::timeout(SEND_TIMEOUT, sink.flush()).await;
                        if !matches!(flushed, Ok(Ok(()))) {
                            return;
                        }
                    }
                    Drained::Overflowed => {
                        let frame = CloseFrame { code: POLICY, reason: Utf8Bytes::from_static("too slow") };
                        let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                        return;
                    }
                },
                () = revoked(&mut revocations, &principal) => {
                    let frame = CloseFrame { code: POLICY, reason: Utf8Bytes::from_static("credentials revoked") };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                _ = ping.tick() => {
                    let silent = started.elapsed().saturating_sub(Duration::from_millis(last_heard.load(Ordering::Relaxed)));
                    if silent > idle {
                        let frame = CloseFrame { code: 1001, reason: Utf8Bytes::from_static("idle") };
                        let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                        return;
                    }
                    let pinged = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default()))).await;
                    if !matches!(pinged, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = reader => {},
        () = writer => {},
    }
}

/// A client's request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
enum ClientMessage {
    #[serde(rename = "subscribe")]
    Subscribe(Vec<Topic>),
    #[serde(rename = "unsubscribe")]
    Unsubscribe(Vec<Topic>),
    #[serde(rename = "ping")]
    Ping(Value),
}

fn handle_client_message(hub: &Hub, client: &ClientQueue, text: &str) {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Subscribe(topics)) => {
            // Acknowledge first so the snapshot follows the acknowledgement.
            client.reply(Utf8Bytes::from(
                json!({ "subscribed": union(client.subscriptions(), &topics) }).to_string(),
            ));
            hub.subscribe(client, &topics);
        }
        Ok(ClientMessage::Unsubscribe(topics)) => {
            hub.unsubscribe(client, &topics);
            client.reply(Utf8Bytes::from(
                json!({ "subscribed": client.subscriptions() }).to_string(),
            ));
        }
        Ok(ClientMessage::Ping(payload)) => {
            client.reply(Utf8Bytes::from(json!({ "pong": payload }).to_string()));
        }
        Err(err) => client.reply(error_message("invalid_message", &err.to_string())),
    }
}

fn union(mut current: Vec<Topic>, more: &[Topic]) -> Vec<Topic> {
    for topic in more {
        if !current.contains(topic) {
            current.push(*topic);
        }
    }
    current.sort_by_key(|t| *t as u8);
    current
}

fn error_message(code: &str, message: &str) -> Utf8Bytes {
    Utf8Bytes::from(json!({ "error": message, "code": code }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "printer.local:5000".parse().unwrap());
        assert!(check_origin(&h, &[]).is_ok(), "no Origin: not a browser");
        h.insert(header::ORIGIN, "http://printer.local:5000".parse().unwrap());
        assert!(check_origin(&h, &[]).is_ok());
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(check_origin(&h, &[]).is_err());
        assert!(check_origin(&h, &["http://evil.example".into()]).is_ok());
        h.insert(
            header::ORIGIN,
            "http://printer.local:5000.evil.example".parse().unwrap(),
        );
        assert!(check_origin(&h, &[]).is_err());
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(check_origin(&h, &[]).is_err());
    }

    #[test]
    fn client_messages() {
        let hub = Hub::new(1, 10);
        let client = hub.register(1).unwrap();
        handle_client_message(&hub, &client, r#"{"subscribe": ["terminal", "queue"]}"#);
        handle_client_message(&hub, &client, r#"{"ping": 7}"#);
        handle_client_message(&hub, &client, r#"{"subscribe": ["nope"]}"#);
        handle_client_message(&hub, &client, r#"{"unsubscribe": ["queue"]}"#);
        let Drained::Messages(replies) = client.drain() else {
            panic!("overflowed")
        };
        let replies: Vec<Value> = replies
            .iter()
            .map(|m| serde_json::from_str(m.as_str()).unwrap())
            .collect();
        assert_eq!(replies[0], json!({ "subscribed": ["terminal", "queue"] }));
        assert_eq!(replies[1], json!({ "pong": 7 }));
        assert_eq!(replies[2]["code"], "invalid_message");
        assert_eq!(replies[3], json!({ "subscribed": ["terminal"] }));
    }
}

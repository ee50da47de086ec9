//! The WebSocket hub with real tokio-tungstenite clients.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyprint_server::ws::hub::{Audience, Topic};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(
    app: &TestApp,
    headers: &[(&'static str, String)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    connect_to(app.addr, headers).await
}

/// [`connect`] by address, for tasks that do not hold the app.
pub(crate) async fn connect_to(
    addr: std::net::SocketAddr,
    headers: &[(&'static str, String)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(s, _)| s)
}

pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s (a bound for loaded machines, not a delay)")
            .expect("socket open")
            .expect("no error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub(crate) async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

fn http_status(err: tokio_tungstenite::tungstenite::Error) -> u16 {
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn handshake_needs_credentials_and_a_same_site_origin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    assert_eq!(http_status(connect(&app, &[]).await.unwrap_err()), 401);
    let cookie = format!("easyprint_session={}", admin.session);
    let evil = connect(
        &app,
        &[
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".into()),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(http_status(evil), 403);
    let mut ok = connect(
        &app,
        &[
            ("cookie", cookie),
            ("origin", format!("http://{}", app.addr)),
        ],
    )
    .await
    .unwrap();
    send_json(&mut ok, json!({ "ping": 1 })).await;
    assert_eq!(next_json(&mut ok).await, json!({ "pong": 1 }));
    let bad_key = connect(&app, &[("x-api-key", "nope".into())])
        .await
        .unwrap_err();
    assert_eq!(http_status(bad_key), 403);
}

#[tokio::test]
async fn snapshot_on_subscribe_then_updates_and_protocol_pings() {
    let (app, _, key) = spawn_app_with_key().await;
    let hub = &app.state.hub;
    hub.publish(
        Topic::PrinterStatus,
        "anet",
        Audience::Everyone,
        &json!({ "state": "Closed" }),
    );
    hub.publish(
        Topic::Temperatures,
        "anet",
        Audience::Everyone,
        &json!({ "bed": 20.5 }),
    );

    let mut socket = connect(&app, &[("x-api-key", key)]).await.unwrap();
    send_json(
        &mut socket,
        json!({ "subscribe": ["printer_status", "terminal"] }),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "subscribed": ["printer_status", "terminal"] })
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "topic": "printer_status", "key": "anet", "data": { "state": "Closed" } })
    );
    hub.publish(
        Topic::Temperatures,
        "anet",
        Audience::Everyone,
        &json!({ "bed": 21 }),
    );
    hub.publish(
        Topic::Terminal,
        "anet",
        Audience::Everyone,
        &"Recv: ok T:21.0",
    );
    let update = next_json(&mut socket).await;
    assert_eq!(
        update["topic"], "terminal",
        "not subscribed to temperatures: {update}"
    );
    assert_eq!(update["data"], "Recv: ok T:21.0");

    // WebSocket-level ping is answered with a pong.
    socket
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Message::Pong(data))) = socket.next().await {
                return data;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong.as_ref(), b"hi");

    send_json(&mut socket, json!({ "subscribe": "terminal" })).await;
    assert_eq!(next_json(&mut socket).await["code"], "invalid_message");
}

#[tokio::test]
async fn a_full_server_closes_new_connections_with_1008() {
    let app = spawn_app_with(|c| c.limits.max_ws_clients = 2).await;
    let (_, key) = app.admin_and_key().await;
    let mut first = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    let _second = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    send_json(&mut first, json!({ "ping": 0 })).await;
    next_json(&mut first).await;
    let mut third = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), third.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert_eq!(frame.reason.as_str(), "too many connections");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // A slot frees when a client leaves.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.hub.client_count() > 1 {
        assert!(Instant::now() < deadline, "slot not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = connect(&app, &[("x-api-key", key)]).await.unwrap();
    send_json(&mut fourth, json!({ "ping": 4 })).await;
    assert_eq!(next_json(&mut fourth).await, json!({ "pong": 4 }));
}

/// 200 clients — readers, clients that never read, and clients that connect and leave in a
/// loop — while a publisher on a plain OS thread publishes as fast as it can. `Hub::publish`
/// is synchronous and the publisher thread has no async runtime, so it cannot wait for any
/// client; the test checks the consequences: stuck clients are dropped with bounded queues,
/// readers still end with the latest status, and everything is cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_never_slow_the_publisher() {
    const READERS: usize = 100;
    const STALLERS: usize = 50;
    const CHURNERS: usize = 50;
    const QUEUE: usize = 64;
    const PUBLISHES: u32 = 5_000;
    let app = spawn_app_with(|c| {
        c.limits.max_ws_clients = 300;
        c.limits.ws_client_queue = QUEUE;
    })
    .await;
    let (_, key) = app.admin_and_key().await;
    let auth = [("x-api-key", key.clone())];

    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut socket = connect(&app, &auth).await.unwrap();
        // Status topics only: at this unrealistic rate (tens of thousands of terminal lines a
        // second) even a reading client would rightly be dropped from the terminal topic.
        let topics = json!(["job_progress", "printer_status"]);
        send_json(&mut socket, json!({ "subscribe": topics })).await;
        assert!(next_json(&mut socket).await["subscribed"].is_array());
        readers.push(socket);
    }
    let mut stallers = Vec::new();
    for _ in 0..STALLERS {
        let mut socket = connect(&app, &auth).await.unwrap();
        send_json(
            &mut socket,
            json!({ "subscribe": ["terminal", "job_progress"] }),
        )
        .await;
        stallers.push(socket); // never read again
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut churn = Vec::new();
    for _ in 0..CHURNERS {
        let (app_addr, key, stop) = (app.addr, key.clone(), stop.clone());
        churn.push(tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut request = format!("ws://{app_addr}/api/ws")
                    .into_client_request()
                    .unwrap();
                request
                    .headers_mut()
                    .insert("x-api-key", key.parse().unwrap());
                let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
                socket
                    .send(Message::Text(
                        json!({ "subscribe": ["terminal"] }).to_string().into(),
                    ))
                    .await
                    .unwrap();
                let _ = socket.next().await;
                drop(socket);
                rounds += 1;
            }
            rounds
        }));
    }
    // Every reader drains in the background and remembers the last job progress it saw.
    let mut reading = Vec::new();
    for mut socket in readers {
        reading.push(tokio::spawn(async move {
            let mut last = Value::Null;
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap();
                    if v["topic"] == "job_progress" {
                        last = v["data"].clone();
                        if last["done"] == true {
                            break;
                        }
                    }
                }
            }
            last
        }));
    }

    let state = app.state.clone();
    let line = "x".repeat(2000);
    let publisher = std::thread::spawn(move || {
        let hub = &state.hub;
        let mut longest = Duration::ZERO;
        let mut previous = Instant::now();
        for i in 0..PUBLISHES {
            hub.publish(
                Topic::Terminal,
                "anet",
                Audience::Everyone,
                &format!("{i} {line}"),
            );
            hub.publish(
                Topic::JobProgress,
                "job",
                Audience::Everyone,
                &json!({ "line": i }),
            );
            let now = Instant::now();
            longest = longest.max(now - previous);
            previous = now;
        }
        hub.publish(
            Topic::JobProgress,
            "job",
            Audience::Everyone,
            &json!({ "done": true }),
        );
        longest
    });
    let publish_started = Instant::now();
    let longest_gap = tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();
    let publish_time = publish_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut churned = 0;
    for task in churn {
        churned += task.await.unwrap();
    }
    for task in reading {
        let last = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("reader finished")
            .unwrap();
        assert_eq!(
            last,
            json!({ "done": true }),
            "every reader ends on the latest status"
        );
    }
    let stats = &app.state.hub.stats;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.dropped_slow.load(Ordering::Relaxed) < STALLERS as u64 {
        assert!(Instant::now() < deadline, "stuck clients were not dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stats.max_event_queue.load(Ordering::Relaxed) <= QUEUE + 1,
        "queues stay bounded"
    );
    // Readers have left too: only the stuck sockets' server halves may still be closing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.state.hub.client_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} clients left",
            app.state.hub.client_count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stallers);
    eprintln!(
        "ws fan-out: {} publishes in {publish_time:?}, longest publish gap {longest_gap:?}, \
         {churned} churn connections, {} values coalesced, {} stuck clients dropped",
        PUBLISHES * 2 + 1,
        stats.coalesced.load(Ordering::Relaxed),
        stats.dropped_slow.load(Ordering::Relaxed)
    );
}

/// Keepalive: a client that answers pings stays; one that is silent (does not even read, so
/// never pongs) is closed after the idle timeout and its slot is freed.
#[tokio::test]
async fn silent_clients_are_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| c.limits.ws_idle_timeout_secs = 1).await;
    let (_, key) = app.admin_and_key().await;
    let mut alive = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    let silent = connect(&app, &[("x-api-key", key)]).await.unwrap();
    // Reading lets tungstenite answer the server's pings.
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            if let Ok(Some(Ok(Message::Ping(_)))) =
                tokio::time::timeout(Duration::from_millis(100), alive.next()).await
            {
                pings += 1;
            }
        }
        (alive, pings)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.hub.client_count() > 1 {
        assert!(Instant::now() < deadline, "silent client not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut alive, pings) = reader.await.unwrap();
    assert!(pings >= 2, "server pings: {pings}");
    send_json(&mut alive, json!({ "ping": "still here" })).await;
    assert_eq!(next_json(&mut alive).await, json!({ "pong": "still here" }));
    assert_eq!(app.state.hub.client_count(), 1);
    drop(silent);
}

#[tokio::test]
async fn client_messages_span_several_reads_up_to_the_size_limit() {
    let (app, _, key) = spawn_app_with_key().await;
    let mut socket = connect(&app, &[("x-api-key", key)]).await.unwrap();
    // Three times the server's 4 KiB read buffer, under the 16 KiB message limit.
    let payload = "x".repeat(12 * 1024);
    send_json(&mut socket, json!({ "ping": payload })).await;
    assert_eq!(next_json(&mut socket).await, json!({ "pong": payload }));
    // Over the limit: the connection ends.
    let payload = "x".repeat(easyprint_server::ws::MAX_CLIENT_MESSAGE + 1);
    let _ = socket
        .send(Message::Text(json!({ "ping": payload }).to_string().into()))
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(t))) => panic!("answered an oversized message: {t}"),
                _ => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "an oversized message must end the connection"
    );
}

#[tokio::test]
async fn a_late_terminal_subscriber_gets_the_recent_lines_then_live_ones() {
    use crate::pipeline::{post_json, ready_app, PRINTER};
    use easyprint_server::config::SimulationConfig;
    use reqwest::StatusCode;
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    let commands = format!("/api/v1/printers/{PRINTER}/commands");
    // Sent and answered before any WebSocket exists (a page that is still connecting).
    let response = post_json(&app, &key, &commands, json!({ "commands": ["M115"] })).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let mut socket = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    send_json(&mut socket, json!({ "subscribe": ["terminal"] })).await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "subscribed": ["terminal"] })
    );
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["key"], PRINTER, "{snapshot}");
    let lines: Vec<&str> = snapshot["data"]["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|d| d["line"].as_str().unwrap())
        .collect();
    let echo = lines.iter().position(|l| *l == "> M115").expect("the echo");
    assert!(
        lines[echo + 1..]
            .iter()
            .any(|l| l.contains("FIRMWARE_NAME")),
        "the reply follows the echo: {lines:?}"
    );

    // Then each new line once, live.
    let response = post_json(&app, &key, &commands, json!({ "commands": ["M105"] })).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "topic": "terminal", "key": PRINTER, "data": { "line": "> M105" } })
    );

    // A removed printer's lines are gone for the next subscriber.
    let response = app
        .http
        .delete(app.url(&format!("/api/v1/printers/{PRINTER}")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let mut late = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    send_json(&mut late, json!({ "subscribe": ["terminal"] })).await;
    send_json(&mut late, json!({ "ping": "end" })).await;
    assert_eq!(
        next_json(&mut late).await,
        json!({ "subscribed": ["terminal"] })
    );
    assert_eq!(next_json(&mut late).await, json!({ "pong": "end" }));
}

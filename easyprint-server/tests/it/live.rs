//! Live updates the web UI needs over the WebSocket: whole jobs on the `queue` topic (to their
//! owner and administrators), slicing progress, and notifications of finished and failed
//! prints and slices.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{cube_stl, post_json, ready_app, slow_gcode, slow_moves, upload};
use crate::ws::{connect, next_json, send_json, Socket};

pub(crate) async fn subscribed(app: &TestApp, key: &str, topics: Value) -> Socket {
    let mut socket = connect(app, &[("x-api-key", key.to_owned())])
        .await
        .unwrap();
    send_json(&mut socket, json!({ "subscribe": topics })).await;
    while next_json(&mut socket).await.get("subscribed").is_none() {}
    socket
}

/// The next message on `topic` (others are skipped), within 60 s.
async fn next_on(socket: &mut Socket, topic: &str) -> Value {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing on {topic}"
        );
        let m = next_json(socket).await;
        if m["topic"] == topic {
            return m;
        }
    }
}

/// Queue messages until `done` accepts one; returns it.
pub(crate) async fn queue_until(socket: &mut Socket, done: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = next_on(socket, "queue").await;
        if done(&m) {
            return m;
        }
    }
}

/// Whether an update is about job `id`.
pub(crate) fn key_is(m: &Value, id: i64) -> bool {
    m["key"].as_str().and_then(|k| k.parse().ok()) == Some(id)
}

async fn file_id(app: &TestApp, key: &str, name: &str) -> String {
    file_named(app, key, name).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn queue_file(app: &TestApp, key: &str, name: &str) -> i64 {
    assert_eq!(
        upload_gcode(app, key, name).await.status(),
        StatusCode::CREATED
    );
    let id = file_id(app, key, name).await;
    let response = post_json(app, key, "/api/v1/jobs", json!({ "file_id": id })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body(response).await["id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_queue_topic_carries_whole_jobs_to_their_owner_and_administrators() {
    let app = spawn_app().await;
    let (admin, admin_key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    let mut admin_ws = subscribed(&app, &admin_key, json!(["queue"])).await;
    let mut bob_ws = subscribed(&app, &bob_key, json!(["queue"])).await;

    let bobs = queue_file(&app, &bob_key, "bob.gcode").await;
    for socket in [&mut admin_ws, &mut bob_ws] {
        let m = queue_until(socket, |m| key_is(m, bobs)).await;
        let job = &m["data"];
        // The same object as the REST API's.
        assert_eq!(job["id"], bobs);
        assert_eq!(job["file"], "bob.gcode");
        assert_eq!(job["owner"], "bob");
        assert_eq!(job["state"], "ready");
        assert_eq!(job["position"], 0);
        assert_eq!(job["not_before"], Value::Null);
        assert!(job["priority"].is_i64() && job["created_at"].is_i64());
    }
    let rest = body(bob.get(&format!("/api/v1/jobs/{bobs}")).await).await;
    assert_eq!(rest["position"], 0);

    let admins = queue_file(&app, &admin_key, "admin.gcode").await;
    let m = queue_until(&mut admin_ws, |m| key_is(m, admins)).await;
    assert_eq!(m["data"]["position"], 1);
    // Bob's next queue message is about his own job: the admin's never reaches him.
    let path = format!("/api/v1/jobs/{bobs}");
    let response = send(
        &bob,
        Method::PATCH,
        &path,
        json!({ "not_before": "2031-05-06T07:08:09Z" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let m = next_on(&mut bob_ws, "queue").await;
    assert_eq!(m["key"], bobs.to_string(), "{m}");
    assert_eq!(m["data"]["not_before"], 1_935_817_689_000_i64);

    // Moving the admin's job first moves Bob's to second place: Bob hears of his new position.
    let path = format!("/api/v1/jobs/{admins}/move");
    let response = send(&admin, Method::POST, &path, json!({ "to": "top" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let m = next_on(&mut bob_ws, "queue").await;
    assert_eq!(m["key"], bobs.to_string(), "{m}");
    assert_eq!(m["data"]["position"], 1);

    // A late subscriber gets a snapshot of the unfinished jobs it may see.
    let mut late_bob = subscribed(&app, &bob_key, json!(["queue"])).await;
    let snapshot = next_on(&mut late_bob, "queue").await;
    assert_eq!(snapshot["key"], bobs.to_string());

    // A cancelled job is published once, then no longer part of the snapshot.
    let response = bob
        .request(Method::POST, &format!("/api/v1/jobs/{bobs}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let m = queue_until(&mut bob_ws, |m| key_is(m, bobs)).await;
    assert_eq!(m["data"]["state"], "cancelled");
    assert_eq!(m["data"]["position"], Value::Null);
    let mut admin_late = subscribed(&app, &admin_key, json!(["queue", "terminal"])).await;
    // The snapshot follows the acknowledgement at once; a ping marks its end.
    send_json(&mut admin_late, json!({ "ping": "end" })).await;
    let mut keys = Vec::new();
    loop {
        let m = next_json(&mut admin_late).await;
        if m.get("pong").is_some() {
            break;
        }
        keys.push(m["key"].as_str().unwrap().to_owned());
    }
    assert_eq!(keys, [admins.to_string()]);
}

/// Uploads a model and asks for it to be sliced only; returns the job id.
async fn slice_only(app: &TestApp, key: &str, name: &str, model: &[u8]) -> i64 {
    upload(app, key, name, model, false).await;
    let id = file_id(app, key, name).await;
    let path = format!("/api/v1/files/{id}/slice");
    let response = post_json(app, key, &path, json!({ "print": false })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body(response).await["id"].as_i64().unwrap()
}

#[tokio::test]
async fn slicing_progress_and_a_failed_slice_reach_the_owner() {
    let (app, _, key) = spawn_app_with_key().await;
    let mut socket = subscribed(&app, &key, json!(["slicing_progress", "notifications"])).await;
    let job = slice_only(&app, &key, "cube.stl", &cube_stl(10.0)).await;
    let mut last = 0.0;
    loop {
        let m = next_on(&mut socket, "slicing_progress").await;
        assert_eq!(m["key"], job.to_string());
        assert_eq!(m["data"]["job"], job);
        let progress = m["data"]["progress"].as_f64().unwrap();
        assert!((last..=1.0).contains(&progress), "{last} then {progress}");
        last = progress;
        if m["data"]["stage"] == "done" {
            assert_eq!(progress, 1.0);
            break;
        }
        assert_ne!(m["data"]["stage"], "failed", "{m}");
    }

    let job = slice_only(&app, &key, "broken.stl", b"solid nothing\nendsolid\n").await;
    let m = next_on(&mut socket, "notifications").await;
    let event = &m["data"];
    assert_eq!(event["event"], "slice_failed", "{m}");
    assert_eq!(event["job"], job);
    assert_eq!(event["file"], "broken.stl");
    assert!(
        event["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{event}"
    );
}

#[tokio::test]
async fn finished_and_failed_prints_are_notified() {
    let (app, key) = ready_app(slow_moves()).await;
    let mut socket = subscribed(&app, &key, json!(["notifications"])).await;
    upload(&app, &key, "quick.gcode", GCODE, true).await;
    let m = next_on(&mut socket, "notifications").await;
    assert_eq!(m["data"]["event"], "print_finished", "{m}");
    assert_eq!(m["data"]["file"], "quick.gcode");
    assert!(m["data"]["job"].is_i64());
    assert_eq!(m["data"]["reason"], Value::Null);

    upload(&app, &key, "long.gcode", &slow_gcode(200), true).await;
    let start = Instant::now();
    loop {
        let (_, printer) = get_json(&app, &key, "/api/v1/printers/sim").await;
        if printer["job"]["file"] == "long.gcode" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{printer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = post_json(&app, &key, "/api/v1/printers/sim/disconnect", json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let m = next_on(&mut socket, "notifications").await;
    assert_eq!(m["data"]["event"], "print_failed", "{m}");
    assert_eq!(m["data"]["file"], "long.gcode");
    assert!(
        m["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("disconnected")),
        "{m}"
    );
}

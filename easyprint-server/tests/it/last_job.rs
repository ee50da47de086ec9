//! The printer's last ended print in its status (REST and the WebSocket snapshot), read back
//! from the queue's SQLite history: a reloaded page and a restarted server still show it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{
    post_json, ready, restartable_config, slow_gcode, slow_moves, upload, wait_for, wait_job_state,
    wait_printer, PRINTER,
};
use crate::ws::{connect, next_json, send_json};

/// The printer's `last_job` in the snapshot a new WebSocket subscriber gets.
async fn last_job_in_snapshot(app: &TestApp, key: &str) -> Value {
    let mut socket = connect(app, &[("x-api-key", key.to_owned())])
        .await
        .unwrap();
    send_json(&mut socket, json!({ "subscribe": ["printer_status"] })).await;
    loop {
        let m = next_json(&mut socket).await;
        if m["topic"] == "printer_status" && m["key"] == PRINTER {
            return m["data"]["last_job"].clone();
        }
    }
}

async fn last_job(app: &TestApp, key: &str) -> Value {
    let (status, printer) = get_json(app, key, &format!("/api/v1/printers/{PRINTER}")).await;
    assert_eq!(status, StatusCode::OK);
    printer["last_job"].clone()
}

/// Waits until the printer's `last_job` is job `id`'s print, and returns it.
async fn wait_last_job(app: &TestApp, key: &str, id: i64) -> Value {
    wait_for(
        app,
        key,
        &format!("/api/v1/printers/{PRINTER}"),
        Duration::from_secs(20),
        &format!("job {id} as the printer's last job"),
        |p| p["last_job"]["id"] == id,
    )
    .await["last_job"]
        .clone()
}

#[tokio::test]
async fn the_last_ended_print_survives_a_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = restartable_config(dir.path(), slow_moves());
    let (first, key) = ready(spawn_app_from(config.clone()).await).await;
    assert_eq!(last_job(&first, &key).await, Value::Null);

    upload(&first, &key, "first.gcode", &slow_gcode(2), true).await;
    let first_id = crate::pipeline::only_job(&first, &key).await["id"]
        .as_i64()
        .unwrap();
    wait_job_state(&first, &key, first_id, "done", Duration::from_secs(30)).await;
    let done = wait_last_job(&first, &key, first_id).await;
    assert_eq!(done["file"], "first.gcode", "{done}");
    assert_eq!(done["result"], "completed", "{done}");
    let ended = done["ended_at"].as_i64().unwrap();
    assert!(ended >= done["started_at"].as_i64().unwrap(), "{done}");
    assert_eq!(last_job_in_snapshot(&first, &key).await, done);

    // While the next one prints, the last ended one stays; cancelled, it takes its place.
    upload(&first, &key, "second.gcode", &slow_gcode(400), true).await;
    let (_, jobs) = get_json(&first, &key, "/api/v1/jobs").await;
    let second_id = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["file"] == "second.gcode")
        .unwrap_or_else(|| panic!("{jobs}"))["id"]
        .as_i64()
        .unwrap();
    wait_job_state(&first, &key, second_id, "printing", Duration::from_secs(10)).await;
    assert_eq!(last_job(&first, &key).await["id"], first_id);
    let cancel = format!("/api/v1/printers/{PRINTER}/job/cancel");
    let response = post_json(&first, &key, &cancel, json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cancelled = wait_last_job(&first, &key, second_id).await;
    assert_eq!(cancelled["result"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["file"], "second.gcode", "{cancelled}");
    assert_eq!(last_job_in_snapshot(&first, &key).await, cancelled);
    first.stop().await;

    // The next server reads it from the queue's history before it answers anyone.
    let second = spawn_app_from(config).await;
    assert_eq!(last_job(&second, &key).await, cancelled);
    wait_printer(&second, &key).await;
    assert_eq!(last_job_in_snapshot(&second, &key).await, cancelled);
    second.stop().await;
}

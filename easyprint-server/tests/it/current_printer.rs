//! OctoPrint's single-printer API on a server with two printers: select and print go to the
//! printer the caller chose with `/api/connection`, else the configured default, and with
//! neither the answer is a clear 409, never a guess.

use std::time::Duration;

use easyprint_server::config::{Config, PrinterConfig, SimulationConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{post_json, wait_job_state};

fn two_printers(default: Option<&str>) -> impl FnOnce(&mut Config) {
    let default = default.map(str::to_owned);
    move |c| {
        c.printers = ["left", "right"]
            .map(|id| PrinterConfig::simulated(id, SimulationConfig::instant()))
            .to_vec();
        c.default_printer = default;
    }
}

async fn ready(app: &TestApp, key: &str) {
    for id in ["left", "right"] {
        crate::printer_admin::wait_operational(app, key, id).await;
    }
}

async fn upload_printing(app: &TestApp, key: &str, name: &str) -> reqwest::Response {
    let (ct, body) = multipart(&[(&text_part("print"), b"true"), (&file_part(name), GCODE)]);
    upload_raw(app, key, "", &ct, body).await
}

async fn jobs(app: &TestApp, key: &str) -> Vec<Value> {
    let (_, jobs) = get_json(app, key, "/api/v1/jobs").await;
    jobs["jobs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn select_and_print_go_to_the_chosen_printer_or_answer_409() {
    let app = spawn_app_with(two_printers(None)).await;
    let (admin, key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    ready(&app, &key).await;

    // Both simulated printers share the port "virtual", so OctoPrint clients see their ids.
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["options"]["ports"], json!(["left", "right"]), "{c}");

    // Nobody chose: printing on upload is refused, naming the printers and the way out, and
    // the upload is undone.
    let error = assert_error(
        upload_printing(&app, &key, "a.gcode").await,
        StatusCode::CONFLICT,
        "printer_ambiguous",
    )
    .await;
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("left, right") && message.contains("/api/connection"),
        "{message}"
    );
    assert!(file_named(&app, &key, "a.gcode").await.is_none());
    assert!(jobs(&app, &key).await.is_empty());
    // A plain upload is fine; selecting it or starting the job is not.
    assert_eq!(
        upload_gcode(&app, &key, "b.gcode").await.status(),
        StatusCode::CREATED
    );
    let select = json!({ "command": "select", "print": true });
    let response = post_json(&app, &key, "/api/files/local/b.gcode", select.clone()).await;
    assert_error(response, StatusCode::CONFLICT, "printer_ambiguous").await;
    let response = post_json(&app, &key, "/api/job", json!({ "command": "start" })).await;
    assert_error(response, StatusCode::CONFLICT, "printer_ambiguous").await;
    let response = post_json(
        &app,
        &key,
        "/api/printer/bed",
        json!({ "command": "target", "target": 40 }),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "printer_ambiguous").await;

    // Choosing a printer (connect names it by id) makes it the target of everything after.
    let connect = json!({ "command": "connect", "port": "right" });
    let response = post_json(&app, &key, "/api/connection", connect).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["port"], "right", "{c}");
    let response = upload_printing(&app, &key, "a.gcode").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let answer = body(response).await;
    assert_eq!(
        (&answer["effectiveSelect"], &answer["effectivePrint"]),
        (&json!(true), &json!(true))
    );
    let queued = jobs(&app, &key).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["printer"], "right");
    let id = queued[0]["id"].as_i64().unwrap();
    wait_job_state(&app, &key, id, "done", Duration::from_secs(30)).await;
    // Select + print of a stored file goes there too.
    let response = post_json(&app, &key, "/api/files/local/b.gcode", select).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let second = jobs(&app, &key)
        .await
        .into_iter()
        .find(|j| j["id"] != id)
        .unwrap();
    assert_eq!(
        (&second["printer"], &second["file"]),
        (&json!("right"), &json!("b.gcode")),
        "{second}"
    );

    // The choice is the caller's: bob has not chosen.
    assert_error(
        upload_printing(&app, &bob_key, "c.gcode").await,
        StatusCode::CONFLICT,
        "printer_ambiguous",
    )
    .await;
    // An unknown port is refused, a shared port must be named by id.
    for (port, what) in [
        ("/dev/ttyS9", "not a configured"),
        ("virtual", "several printers"),
    ] {
        let connect = json!({ "command": "connect", "port": port });
        let error = assert_error(
            post_json(&app, &bob_key, "/api/connection", connect).await,
            StatusCode::BAD_REQUEST,
            "invalid_port",
        )
        .await;
        assert!(error["error"].as_str().unwrap().contains(what), "{error}");
    }
}

#[tokio::test]
async fn without_a_choice_the_configured_default_printer_is_used() {
    let app = spawn_app_with(two_printers(Some("left"))).await;
    let (_, key) = app.admin_and_key().await;
    ready(&app, &key).await;
    let response = upload_printing(&app, &key, "a.gcode").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let queued = jobs(&app, &key).await;
    assert_eq!(queued[0]["printer"], "left", "{queued:?}");
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["port"], "left", "{c}");
}

#[tokio::test]
async fn the_chosen_printer_is_still_chosen_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    two_printers(None)(&mut config);
    let app = spawn_app_from(config.clone()).await;
    let (admin, key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    ready(&app, &key).await;
    // The administrator chooses twice (the last choice counts); bob never chooses.
    for port in ["left", "right"] {
        let connect = json!({ "command": "connect", "port": port });
        let response = post_json(&app, &key, "/api/connection", connect).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    app.stop().await;

    let app = spawn_app_from(config).await;
    ready(&app, &key).await;
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["port"], "right", "{c}");
    let response = upload_printing(&app, &key, "a.gcode").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(jobs(&app, &key).await[0]["printer"], "right");
    assert_error(
        upload_printing(&app, &bob_key, "b.gcode").await,
        StatusCode::CONFLICT,
        "printer_ambiguous",
    )
    .await;
}

//! Administrators add, change and remove printers at runtime; the changes survive a restart.

use std::sync::Arc;
use std::time::Duration;

use easyprint_server::config::{PrinterConfig, SimulationConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{
    post_json, restartable_config, slow_gcode, slow_moves, upload, wait_for, wait_job_state,
    PRINTER,
};

pub(crate) async fn wait_operational(app: &TestApp, key: &str, id: &str) -> Value {
    wait_for(
        app,
        key,
        &format!("/api/v1/printers/{id}"),
        Duration::from_secs(20),
        &format!("printer {id} to connect"),
        |p| p["state"] == "operational",
    )
    .await
}

fn instant() -> Value {
    serde_json::to_value(SimulationConfig::instant()).unwrap()
}

#[tokio::test]
async fn printers_are_added_changed_and_removed_at_runtime_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let config = restartable_config(dir.path(), SimulationConfig::instant());
    let app = spawn_app_from(config.clone()).await;
    let (admin, key) = app.admin_and_key().await;

    let added = send(
        &admin,
        Method::POST,
        "/api/v1/printers",
        json!({ "id": "extra", "name": "Extra", "port": "virtual", "simulation": instant() }),
    )
    .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added = body(added).await;
    assert_eq!(added["id"], "extra");
    assert_eq!(added["baudrate"], 115_200);
    assert_eq!(added["autoconnect"], true);
    wait_operational(&app, &key, "extra").await;
    let (_, list) = get_json(&app, &key, "/api/v1/printers").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [PRINTER, "extra"]);

    // It takes jobs: its runner is running.
    upload(&app, &key, "on-extra.gcode", GCODE, false).await;
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    let response = post_json(
        &app,
        &key,
        "/api/v1/jobs",
        json!({ "file_id": files[0]["id"], "printer": "extra" }),
    )
    .await;
    let job = body(response).await["id"].as_i64().unwrap();
    let done = wait_job_state(&app, &key, job, "done", Duration::from_secs(30)).await;
    assert_eq!(done["printer"], "extra");

    // A change reconnects it: a new connection under the new settings.
    let before = app.state.printers.get("extra").unwrap().printer().unwrap();
    let changed = send(
        &admin,
        Method::PUT,
        "/api/v1/printers/extra",
        json!({ "name": "Renamed", "port": "virtual", "baudrate": 250000, "simulation": instant() }),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(body(changed).await["name"], "Renamed");
    let now = wait_operational(&app, &key, "extra").await;
    assert_eq!(now["baudrate"], 250_000);
    let after = app.state.printers.get("extra").unwrap().printer().unwrap();
    assert!(!Arc::ptr_eq(&before, &after), "the printer was reconnected");
    drop((before, after));

    // The configured printer is removed.
    let response = admin
        .request(Method::DELETE, &format!("/api/v1/printers/{PRINTER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = admin.get(&format!("/api/v1/printers/{PRINTER}")).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;

    // After a restart: the configuration file's printer stays removed, the added one is back
    // with its changes.
    let app = spawn_app_from(config).await;
    let key = {
        let admin = app.login(ADMIN, PASSWORD).await;
        app.api_key(&admin).await
    };
    let (_, list) = get_json(&app, &key, "/api/v1/printers").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "extra");
    assert_eq!(list[0]["name"], "Renamed");
    wait_operational(&app, &key, "extra").await;
    app.stop().await;
}

#[tokio::test]
async fn printer_changes_are_for_administrators_and_validated() {
    let app = spawn_app_with(|c| {
        c.printers = vec![PrinterConfig::simulated(PRINTER, slow_moves())];
    })
    .await;
    let (admin, key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let printer = json!({ "id": "p2", "port": "virtual" });
    for (method, path) in [
        (Method::POST, "/api/v1/printers".to_owned()),
        (Method::PUT, format!("/api/v1/printers/{PRINTER}")),
        (Method::DELETE, format!("/api/v1/printers/{PRINTER}")),
    ] {
        let response = send(&bob, method, &path, printer.clone()).await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // Bob may still look.
    assert_eq!(bob.get("/api/v1/printers").await.status(), StatusCode::OK);

    for (body, field) in [
        (json!({ "id": "p2", "port": "/etc/passwd" }), "port"),
        (json!({ "id": "p2", "port": "/dev/../etc/shadow" }), "port"),
        (json!({ "id": "../p2", "port": "virtual" }), "id"),
        (json!({ "port": "virtual" }), "id"),
        (
            json!({ "id": "p2", "port": "virtual", "baudrate": 0 }),
            "baudrate",
        ),
        (
            json!({ "id": "p2", "port": "virtual", "simulation": { "heating_rate": -1.0 } }),
            "simulation",
        ),
    ] {
        let response = send(&admin, Method::POST, "/api/v1/printers", body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_printer").await;
        assert!(
            error["error"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    let response = send(
        &admin,
        Method::POST,
        "/api/v1/printers",
        json!({ "id": "p2", "port": "virtual", "colour": "red" }),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    let response = send(
        &admin,
        Method::POST,
        "/api/v1/printers",
        json!({ "id": PRINTER, "port": "virtual" }),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "printer_exists").await;
    let response = send(
        &admin,
        Method::PUT,
        &format!("/api/v1/printers/{PRINTER}"),
        json!({ "id": "other", "port": "virtual" }),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_printer").await;
    let response = send(
        &admin,
        Method::PUT,
        "/api/v1/printers/nope",
        json!({ "port": "virtual" }),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;

    // A printing printer is neither changed nor removed.
    wait_operational(&app, &key, PRINTER).await;
    upload(&app, &key, "long.gcode", &slow_gcode(200), true).await;
    wait_for(
        &app,
        &key,
        &format!("/api/v1/printers/{PRINTER}"),
        Duration::from_secs(20),
        "the print to start",
        |p| p["job"]["file"] == "long.gcode",
    )
    .await;
    let response = send(
        &admin,
        Method::PUT,
        &format!("/api/v1/printers/{PRINTER}"),
        json!({ "port": "virtual" }),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "printer_busy").await;
    let response = admin
        .request(Method::DELETE, &format!("/api/v1/printers/{PRINTER}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "printer_busy").await;
    let (_, printer) = get_json(&app, &key, &format!("/api/v1/printers/{PRINTER}")).await;
    assert_eq!(printer["state"], "printing", "{printer}");
}

#[tokio::test]
async fn jobs_of_a_removed_printer_are_held_visibly_until_moved_or_cancelled() {
    let app = spawn_app_with(|c| {
        let mut idle = PrinterConfig::simulated("idle", SimulationConfig::instant());
        // Never connected, so jobs aimed at it wait.
        idle.autoconnect = false;
        c.printers = vec![
            PrinterConfig::simulated(PRINTER, SimulationConfig::instant()),
            idle,
        ];
    })
    .await;
    let (admin, key) = app.admin_and_key().await;
    wait_operational(&app, &key, PRINTER).await;
    upload(&app, &key, "held.gcode", GCODE, false).await;
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    let file_id = files[0]["id"].clone();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let body_json = json!({ "file_id": file_id, "printer": "idle" });
        let response = post_json(&app, &key, "/api/v1/jobs", body_json).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        jobs.push(body(response).await["id"].as_i64().unwrap());
    }
    let job = |id: i64| {
        let app = &app;
        let key = &key;
        async move { get_json(app, key, &format!("/api/v1/jobs/{id}")).await.1 }
    };
    let before = job(jobs[0]).await;
    assert_eq!(
        (&before["state"], &before["blocked"]),
        (&json!("ready"), &Value::Null)
    );
    let mut socket = crate::live::subscribed(&app, &key, json!(["queue"])).await;

    let response = admin
        .request(Method::DELETE, "/api/v1/printers/idle")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Subscribers learn at once that the jobs are held, and why; the REST API says the same.
    let update = crate::live::queue_until(&mut socket, |m| {
        crate::live::key_is(m, jobs[0]) && !m["data"]["blocked"].is_null()
    })
    .await;
    assert!(
        update["data"]["blocked"]
            .as_str()
            .unwrap()
            .starts_with("printer removed"),
        "{update}"
    );
    for id in &jobs {
        let held = job(*id).await;
        assert_eq!(held["state"], "ready", "{held}");
        assert!(held["blocked"].as_str().unwrap().contains("idle"), "{held}");
    }

    // Moving it to a printer that does not exist is refused; to one that does, it prints.
    let path = format!("/api/v1/jobs/{}", jobs[0]);
    let response = send(&admin, Method::PATCH, &path, json!({ "printer": "nope" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_printer").await;
    let response = send(&admin, Method::PATCH, &path, json!({ "printer": PRINTER })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let moved = body(response).await;
    assert_eq!(
        (&moved["printer"], &moved["blocked"]),
        (&json!(PRINTER), &Value::Null)
    );
    let done = wait_job_state(&app, &key, jobs[0], "done", Duration::from_secs(30)).await;
    assert_eq!(done["printer"], PRINTER);
    // A finished job's printer cannot change.
    let response = send(&admin, Method::PATCH, &path, json!({ "printer": null })).await;
    assert_error(response, StatusCode::CONFLICT, "job_finished").await;

    // The other one is cancelled.
    let response = post_json(
        &app,
        &key,
        &format!("/api/v1/jobs/{}/cancel", jobs[1]),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cancelled = job(jobs[1]).await;
    assert_eq!(
        (&cancelled["state"], &cancelled["blocked"]),
        (&json!("cancelled"), &Value::Null)
    );
}

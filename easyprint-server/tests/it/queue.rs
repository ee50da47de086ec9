//! Queue management through the native API: positions, moving, scheduling, priorities, and
//! who may do it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Uploads a G-code file and queues it; returns the job id. No printer is configured, so the
/// job stays waiting.
async fn queued(app: &TestApp, browser: &Browser, key: &str, name: &str) -> i64 {
    let response = upload_gcode(app, key, name).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file = file_named(app, key, name).await.unwrap();
    let response = send(
        browser,
        Method::POST,
        "/api/v1/jobs",
        json!({ "file_id": file["id"] }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body(response).await["id"].as_i64().unwrap()
}

/// Job ids in queue order, checked against their `position`.
async fn order(browser: &Browser) -> Vec<i64> {
    let jobs = body(browser.get("/api/v1/jobs").await).await;
    let mut waiting: Vec<(u64, i64)> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "ready")
        .map(|j| (j["position"].as_u64().unwrap(), j["id"].as_i64().unwrap()))
        .collect();
    let listed: Vec<i64> = waiting.iter().map(|(_, id)| *id).collect();
    waiting.sort();
    let by_position: Vec<i64> = waiting.iter().map(|(_, id)| *id).collect();
    assert_eq!(listed, by_position, "the list is in queue order");
    by_position
}

#[tokio::test]
async fn jobs_move_within_the_queue_and_show_their_position() {
    let (app, admin, key) = spawn_app_with_key().await;
    let a = queued(&app, &admin, &key, "a.gcode").await;
    let b = queued(&app, &admin, &key, "b.gcode").await;
    let c = queued(&app, &admin, &key, "c.gcode").await;
    assert_eq!(order(&admin).await, [a, b, c]);

    let moved = send(
        &admin,
        Method::POST,
        &format!("/api/v1/jobs/{c}/move"),
        json!({ "to": "top" }),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(body(moved).await["position"], 0);
    assert_eq!(order(&admin).await, [c, a, b]);
    for (id, how, expected) in [
        (a, json!({ "after": b }), [c, b, a]),
        (a, json!({ "before": c }), [a, c, b]),
        (a, json!({ "to": "bottom" }), [c, b, a]),
        (b, json!({ "before": c }), [b, c, a]),
    ] {
        let response = send(
            &admin,
            Method::POST,
            &format!("/api/v1/jobs/{id}/move"),
            how,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(order(&admin).await, expected);
    }
    // A higher priority goes first, whatever the order.
    let response = send(
        &admin,
        Method::PATCH,
        &format!("/api/v1/jobs/{a}"),
        json!({ "priority": 5 }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["priority"], 5);
    assert_eq!(order(&admin).await, [a, b, c]);
    // Moving below a job takes its priority, so the place shown is the place it prints.
    let response = send(
        &admin,
        Method::POST,
        &format!("/api/v1/jobs/{a}/move"),
        json!({ "after": c }),
    )
    .await;
    let moved = body(response).await;
    assert_eq!(moved["priority"], 0);
    assert_eq!(order(&admin).await, [b, c, a]);

    for (how, code) in [
        (json!({}), "invalid_move"),
        (json!({ "to": "top", "before": b }), "invalid_move"),
        (json!({ "to": "middle" }), "invalid_json"),
        (json!({ "above": b }), "invalid_json"),
    ] {
        let response = send(&admin, Method::POST, &format!("/api/v1/jobs/{a}/move"), how).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let response = send(
        &admin,
        Method::POST,
        &format!("/api/v1/jobs/{a}/move"),
        json!({ "before": 9999 }),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        order(&admin).await,
        [b, c, a],
        "failed moves changed nothing"
    );

    // A finished job has no place to move to and no schedule.
    let response = admin
        .request(Method::POST, &format!("/api/v1/jobs/{c}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cancelled = body(admin.get(&format!("/api/v1/jobs/{c}")).await).await;
    assert_eq!(cancelled["position"], Value::Null);
    let response = send(
        &admin,
        Method::POST,
        &format!("/api/v1/jobs/{c}/move"),
        json!({ "to": "top" }),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "not_waiting").await;
    let response = send(
        &admin,
        Method::PATCH,
        &format!("/api/v1/jobs/{c}"),
        json!({ "not_before": null }),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "job_finished").await;
}

#[tokio::test]
async fn jobs_are_scheduled_with_rfc3339_or_milliseconds_and_validated() {
    let (app, admin, key) = spawn_app_with_key().await;
    let id = queued(&app, &admin, &key, "later.gcode").await;
    let path = format!("/api/v1/jobs/{id}");
    for (value, expected) in [
        (json!("2030-01-02T03:04:05Z"), json!(1_893_553_445_000_i64)),
        (
            json!("2030-01-02T04:04:05.5+01:00"),
            json!(1_893_553_445_500_i64),
        ),
        (json!(1_893_553_445_000_i64), json!(1_893_553_445_000_i64)),
        (Value::Null, Value::Null),
    ] {
        let response = send(&admin, Method::PATCH, &path, json!({ "not_before": value })).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(response).await["not_before"], expected);
        assert_eq!(body(admin.get(&path).await).await["not_before"], expected);
    }
    for (patch, code, names) in [
        (
            json!({ "not_before": "tomorrow" }),
            "invalid_not_before",
            "not_before",
        ),
        (
            json!({ "not_before": true }),
            "invalid_not_before",
            "not_before",
        ),
        (
            json!({ "not_before": 1.5 }),
            "invalid_not_before",
            "not_before",
        ),
        (
            json!({ "priority": "high" }),
            "invalid_priority",
            "priority",
        ),
        (json!({ "priority": 1e12 }), "invalid_priority", "priority"),
        (json!({ "when": 1 }), "invalid_json", "when"),
    ] {
        let response = send(&admin, Method::PATCH, &path, patch).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert!(error["error"].as_str().unwrap().contains(names), "{error}");
    }
    let response = admin
        .request(Method::PATCH, &path)
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_moves_and_schedules_a_job() {
    let app = spawn_app().await;
    let (admin, admin_key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    let mine = queued(&app, &admin, &admin_key, "admin.gcode").await;
    let bobs = queued(&app, &bob, &bob_key, "bob.gcode").await;

    // Bob sees only his job, at its place in the whole queue.
    let jobs = body(bob.get("/api/v1/jobs").await).await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["position"], 1);
    for (method, path, patch) in [
        (
            Method::POST,
            format!("/api/v1/jobs/{mine}/move"),
            json!({ "to": "bottom" }),
        ),
        (
            Method::PATCH,
            format!("/api/v1/jobs/{mine}"),
            json!({ "priority": 9 }),
        ),
        // His own job cannot be placed next to a job he cannot see.
        (
            Method::POST,
            format!("/api/v1/jobs/{bobs}/move"),
            json!({ "before": mine }),
        ),
    ] {
        let response = send(&bob, method, &path, patch).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = send(
        &bob,
        Method::POST,
        &format!("/api/v1/jobs/{bobs}/move"),
        json!({ "to": "top" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(order(&admin).await, [bobs, mine]);
    let response = send(
        &admin,
        Method::PATCH,
        &format!("/api/v1/jobs/{bobs}"),
        json!({ "priority": -3 }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(order(&admin).await, [mine, bobs]);
    // Without the CSRF header a browser cannot do it.
    let response = bob
        .bare(Method::PATCH, &format!("/api/v1/jobs/{bobs}"))
        .json(&json!({ "priority": 1 }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "csrf_failed").await;
}

//! A printer's pause/resume/cancel scripts: set through the printer admin API, validated,
//! persisted, and in effect on the next print.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::pipeline::{
    print_and_wait, restartable_config, slow_gcode, slow_moves, wait_for, PRINTER,
};
use crate::printer_admin::wait_operational;

#[tokio::test]
async fn host_scripts_are_configured_validated_persisted_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = restartable_config(dir.path(), slow_moves());
    let app = spawn_app_from(config.clone()).await;
    let (admin, key) = app.admin_and_key().await;
    let path = format!("/api/v1/printers/{PRINTER}");

    // The defaults are easyprint-marlin's.
    let (_, printer) = get_json(&app, &key, &path).await;
    assert_eq!(printer["host_scripts"]["pause"]["lift_mm"], 10.0);
    assert_eq!(printer["host_scripts"]["pause"]["park"], true);
    assert_eq!(printer["host_scripts"]["cancel"]["heaters_off"], true);

    // A bad template or number is refused, naming the field.
    for (scripts, field) in [
        (
            json!({ "pause": { "after_pause": "G1 X{q}" } }),
            "host_scripts.pause.after_pause: line 1",
        ),
        (
            json!({ "pause": { "z_feedrate": 0.0 } }),
            "host_scripts.pause.z_feedrate",
        ),
        (
            json!({ "cancel": { "after_cancel": "M117 ok\nG1 X{x" } }),
            "host_scripts.cancel.after_cancel: line 2",
        ),
    ] {
        let body =
            json!({ "port": "virtual", "simulation": slow_moves(), "host_scripts": scripts });
        let response = send(&admin, Method::PUT, &path, body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_printer").await;
        let text = error["error"].as_str().unwrap();
        assert!(text.starts_with(field), "{text}");
    }
    let response = send(
        &admin,
        Method::PUT,
        &path,
        json!({ "port": "virtual", "host_scripts": { "pause": { "colour": 1 } } }),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;

    // Heaters stay on at a cancel and the script sets the hotend to 123 °C.
    let scripts = json!({
        "pause": { "lift_mm": 5.0, "park": false, "hotend_off_after_secs": 600 },
        "cancel": { "heaters_off": false, "after_cancel": "M104 S123" },
    });
    let printer = json!({ "port": "virtual", "simulation": slow_moves(), "host_scripts": scripts });
    let response = send(&admin, Method::PUT, &path, printer).await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed = body(response).await;
    assert_eq!(changed["host_scripts"]["pause"]["lift_mm"], 5.0);
    assert_eq!(changed["host_scripts"]["pause"]["park"], false);
    assert_eq!(changed["host_scripts"]["pause"]["retract_mm"], 2.0);
    assert_eq!(
        changed["host_scripts"]["cancel"]["after_cancel"],
        "M104 S123"
    );
    wait_operational(&app, &key, PRINTER).await;

    print_and_wait(&app, &key, "long.gcode", &slow_gcode(400)).await;
    let response = send(
        &admin,
        Method::POST,
        &format!("{path}/job/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    wait_for(
        &app,
        &key,
        &path,
        Duration::from_secs(30),
        "the cancel script's M104 S123",
        |p| p["temperatures"]["tool0"]["target"] == 123.0,
    )
    .await;
    app.stop().await;

    // After a restart the scripts are still the changed ones.
    let app = spawn_app_from(config).await;
    let key = {
        let admin = app.login(ADMIN, PASSWORD).await;
        app.api_key(&admin).await
    };
    let (_, printer) = get_json(&app, &key, &path).await;
    assert_eq!(printer["host_scripts"], changed["host_scripts"]);
    app.stop().await;
}

//! The print pipeline end to end: real HTTP clients, easyprint-marlin's simulator on a real
//! pty, real CuraEngine, real SQLite queue.

use std::time::{Duration, Instant};

use easyprint_server::config::{Config, PrinterConfig, SimulationConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const PRINTER: &str = "sim";

/// A server configuration whose one printer is the simulator serving on `pty`, a real
/// pseudo-terminal that outlives the servers started with it (like a real printer).
pub(crate) fn config_for_pty(pty: &std::path::Path, data: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.join("data"),
        printers: vec![PrinterConfig {
            port: pty.display().to_string(),
            ..PrinterConfig::simulated(PRINTER, Default::default())
        }],
        ..Config::default()
    }
}

/// A server configuration keeping its data in `dir`, so a second server started from it
/// finds the first one's database (a restart), with one simulated printer.
pub(crate) fn restartable_config(dir: &std::path::Path, simulation: SimulationConfig) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        printers: vec![PrinterConfig::simulated(PRINTER, simulation)],
        ..Config::default()
    }
}

pub(crate) fn with_printer(simulation: SimulationConfig) -> impl FnOnce(&mut Config) {
    move |c| c.printers = vec![PrinterConfig::simulated(PRINTER, simulation)]
}

/// Moves that take real time (so a print can be paused and cancelled half way), everything
/// else instant.
pub(crate) fn slow_moves() -> SimulationConfig {
    SimulationConfig {
        instant_moves: false,
        ..SimulationConfig::instant()
    }
}

/// `count` moves of 10 mm at 20 mm/s (0.5 s each on the simulator).
pub(crate) fn slow_gcode(count: usize) -> Vec<u8> {
    let mut g = String::from("; slow test print\nG28\nG90\n");
    for i in 0..count {
        let x = if i % 2 == 0 { 20 } else { 10 };
        g.push_str(&format!("G1 X{x} Y10 F1200 ; move {i}\n"));
    }
    g.push_str("M84\n");
    g.into_bytes()
}

/// A closed binary STL cube of `size` mm standing on the bed.
pub(crate) fn cube_stl(size: f32) -> Vec<u8> {
    let v = |x: u8, y: u8, z: u8| {
        [
            f32::from(x) * size,
            f32::from(y) * size,
            f32::from(z) * size,
        ]
    };
    // Two triangles per face, counter-clockwise seen from outside.
    let faces: [[[u8; 3]; 4]; 6] = [
        [[0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0]], // bottom (-z)
        [[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], // top (+z)
        [[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]], // front (-y)
        [[0, 1, 0], [0, 1, 1], [1, 1, 1], [1, 1, 0]], // back (+y)
        [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0]], // left (-x)
        [[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 1]], // right (+x)
    ];
    let mut out = vec![0u8; 80];
    out.extend_from_slice(&12u32.to_le_bytes());
    for f in faces {
        let p: Vec<[f32; 3]> = f.iter().map(|c| v(c[0], c[1], c[2])).collect();
        for tri in [[p[0], p[1], p[2]], [p[0], p[2], p[3]]] {
            out.extend_from_slice(&[0u8; 12]); // normal: readers recompute it
            for vertex in tri {
                for c in vertex {
                    out.extend_from_slice(&c.to_le_bytes());
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
    }
    out
}

pub(crate) async fn post_json(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.post(path)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls `path` until `done` accepts its JSON, or fails after `limit`.
pub(crate) async fn wait_for(
    app: &TestApp,
    key: &str,
    path: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (status, value) = get_json(app, key, path).await;
        if status == StatusCode::OK && done(&value) {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; last {path}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn ready_app(simulation: SimulationConfig) -> (TestApp, String) {
    ready(spawn_app_with(with_printer(simulation)).await).await
}

/// `app` with its administrator set up (returned: an API key of theirs) and its simulated
/// printer operational.
pub(crate) async fn ready(app: TestApp) -> (TestApp, String) {
    let (_, key) = app.admin_and_key().await;
    wait_printer(&app, &key).await;
    (app, key)
}

pub(crate) async fn wait_printer(app: &TestApp, key: &str) {
    wait_for(
        app,
        key,
        &format!("/api/v1/printers/{PRINTER}"),
        Duration::from_secs(20),
        "the simulated printer to connect",
        |p| p["state"] == "operational",
    )
    .await;
}

pub(crate) async fn upload(
    app: &TestApp,
    key: &str,
    name: &str,
    content: &[u8],
    print: bool,
) -> Value {
    let flag = if print { b"true" as &[u8] } else { b"false" };
    let (ct, body) = multipart(&[
        (&text_part("print"), flag),
        (&text_part("path"), b""),
        (&file_part(name), content),
    ]);
    let response = upload_raw(app, key, "", &ct, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    crate::helpers::body(response).await
}

/// Uploads G-code with `print`, and returns the id of its job once it is printing.
pub(crate) async fn print_and_wait(app: &TestApp, key: &str, name: &str, gcode: &[u8]) -> i64 {
    upload(app, key, name, gcode, true).await;
    let id = only_job(app, key).await["id"].as_i64().unwrap();
    wait_job_state(app, key, id, "printing", Duration::from_secs(10)).await;
    id
}

pub(crate) async fn only_job(app: &TestApp, key: &str) -> Value {
    let (_, jobs) = get_json(app, key, "/api/v1/jobs").await;
    let jobs = jobs["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].clone()
}

pub(crate) async fn wait_job_state(
    app: &TestApp,
    key: &str,
    id: i64,
    state: &str,
    limit: Duration,
) -> Value {
    wait_for(
        app,
        key,
        &format!("/api/v1/jobs/{id}"),
        limit,
        &format!("job {id} to be {state}"),
        |j| {
            assert!(
                j["state"] != "failed" || state == "failed",
                "job failed: {j}"
            );
            j["state"] == state
        },
    )
    .await
}

#[tokio::test]
async fn uploaded_stl_is_sliced_by_curaengine_and_printed_to_the_end() {
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    let answer = upload(&app, &key, "cube.stl", &cube_stl(8.0), true).await;
    assert_eq!(answer["effectivePrint"], true);
    let job = only_job(&app, &key).await;
    assert_eq!(job["kind"], "model");
    let id = job["id"].as_i64().unwrap();
    let done = wait_job_state(&app, &key, id, "done", Duration::from_secs(90)).await;
    // The slicer's G-code is a file of its own, with an analysis.
    let (_, files) = get_json(&app, &key, "/api/files").await;
    let names: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"cube.gcode"), "{names:?}");
    assert_eq!(done["gcode_sha256"].as_str().map(str::len), Some(64));
    // History: one slice, one print, both ended well; the print used filament.
    let (_, history) = get_json(&app, &key, "/api/v1/history").await;
    let runs = history["runs"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("slice", "completed")), "{history}");
    assert!(kinds.contains(&("print", "completed")), "{history}");
    let print = runs.iter().find(|r| r["kind"] == "print").unwrap();
    assert!(print["filament_mm"].as_f64().unwrap() > 10.0, "{print}");
    assert_eq!(print["printer"], PRINTER);
    // The printer is idle again.
    let (_, printer) = get_json(&app, &key, "/api/printer").await;
    assert_eq!(printer["state"]["flags"]["ready"], true);
}

/// A sliced model prints under the name the queue and history give it (the model's); the
/// G-code it streams is named beside it, and OctoPrint's job API names that G-code.
#[tokio::test]
async fn a_sliced_model_prints_under_its_own_name_beside_its_gcode() {
    let (app, key) = ready_app(slow_moves()).await;
    upload(&app, &key, "cube.stl", &cube_stl(8.0), true).await;
    let printer = wait_for(
        &app,
        &key,
        &format!("/api/v1/printers/{PRINTER}"),
        Duration::from_secs(90),
        "the sliced print to start",
        |p| p["job"].is_object(),
    )
    .await;
    assert_eq!(printer["job"]["file"], "cube.stl", "{printer}");
    assert_eq!(printer["job"]["gcode"], "cube.gcode", "{printer}");
    let (_, job) = get_json(&app, &key, "/api/job").await;
    assert_eq!(job["job"]["file"]["name"], "cube.gcode", "{job}");
    assert_eq!(job["job"]["file"]["path"], "cube.gcode", "{job}");
    let id = only_job(&app, &key).await["id"].as_i64().unwrap();
    let cancel = json!({ "command": "cancel" });
    assert_eq!(
        post_json(&app, &key, "/api/job", cancel).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_job_state(&app, &key, id, "cancelled", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn prusaslicer_upload_with_print_true_prints_the_gcode() {
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    let gcode = slow_gcode(40);
    let answer = upload(&app, &key, "part.gcode", &gcode, true).await;
    assert_eq!(answer["effectivePrint"], true);
    assert_eq!(answer["effectiveSelect"], true);
    let job = only_job(&app, &key).await;
    assert_eq!(job["kind"], "gcode");
    assert_eq!(job["printer"], PRINTER);
    let id = job["id"].as_i64().unwrap();
    let done = wait_job_state(&app, &key, id, "done", Duration::from_secs(30)).await;
    assert_eq!(done["attempts"], 1);
    let (_, history) = get_json(&app, &key, "/api/v1/history").await;
    assert_eq!(history["runs"][0]["result"], "completed", "{history}");
    assert_eq!(history["runs"][0]["file"], "part.gcode");
    // easyprint-gcode's analysis as file metadata: 40 moves of 10 mm at 20 mm/s.
    let (_, info) = get_json(&app, &key, "/api/files/local/part.gcode").await;
    let estimate = info["gcodeAnalysis"]["estimatedPrintTime"]
        .as_f64()
        .unwrap();
    assert!((18.0..40.0).contains(&estimate), "{info}");
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    let id = files[0]["id"].as_str().unwrap();
    let (status, a) = get_json(&app, &key, &format!("/api/v1/files/{id}/analysis")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["commands"], 43, "{a}");
}

#[tokio::test]
async fn pause_resume_and_cancel_through_the_octoprint_job_api() {
    let (app, key) = ready_app(slow_moves()).await;
    let id = print_and_wait(&app, &key, "slow.gcode", &slow_gcode(200)).await;
    let job = wait_for(
        &app,
        &key,
        "/api/job",
        Duration::from_secs(10),
        "streaming",
        |j| j["state"] == "Printing" && j["progress"]["filepos"].as_u64() > Some(0),
    )
    .await;
    let size = slow_gcode(200).len() as u64;
    assert!(job["progress"]["filepos"].as_u64().unwrap() < size, "{job}");
    assert!(
        job["progress"]["completion"].as_f64().unwrap() < 100.0,
        "{job}"
    );
    assert_eq!(job["job"]["file"]["name"], "slow.gcode");
    assert!(
        job["job"]["estimatedPrintTime"].as_f64().unwrap() > 50.0,
        "{job}"
    );
    assert_eq!(job["progress"]["printTimeLeftOrigin"], "analysis");

    let pause = json!({ "command": "pause", "action": "pause" });
    assert_eq!(
        post_json(&app, &key, "/api/job", pause).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_job_state(&app, &key, id, "paused", Duration::from_secs(5)).await;
    let (_, printer) = get_json(&app, &key, "/api/printer").await;
    assert_eq!(printer["state"]["flags"]["paused"], true, "{printer}");
    // While paused no new line goes out: the confirmed position stops moving once the lines
    // already in the firmware's buffers are acknowledged (a running print moves every 0.5 s, so
    // it would never hold still for 1.5 s).
    let (_, mut b) = get_json(&app, &key, "/api/job").await;
    for attempt in 0.. {
        assert!(attempt < 10, "the position kept moving while paused: {b}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, now) = get_json(&app, &key, "/api/job").await;
        let still = now["progress"]["filepos"] == b["progress"]["filepos"];
        b = now;
        if still {
            break;
        }
    }

    let resume = json!({ "command": "pause", "action": "resume" });
    assert_eq!(
        post_json(&app, &key, "/api/job", resume).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_job_state(&app, &key, id, "printing", Duration::from_secs(5)).await;
    wait_for(
        &app,
        &key,
        "/api/job",
        Duration::from_secs(10),
        "progress after resume",
        |j| j["progress"]["filepos"].as_u64() > b["progress"]["filepos"].as_u64(),
    )
    .await;

    let cancel = json!({ "command": "cancel" });
    assert_eq!(
        post_json(&app, &key, "/api/job", cancel).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_job_state(&app, &key, id, "cancelled", Duration::from_secs(5)).await;
    wait_for(
        &app,
        &key,
        "/api/printer",
        Duration::from_secs(20),
        "the printer to be idle",
        |p| p["state"]["flags"]["ready"] == true,
    )
    .await;
    let (_, job) = get_json(&app, &key, "/api/job").await;
    assert_eq!(job["state"], "Operational");
    assert_eq!(job["job"]["file"]["name"], Value::Null);
}

#[tokio::test]
async fn command_injection_never_reaches_the_serial_line() {
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    let hostile: &[(&str, Value)] = &[
        ("/api/printer/command", json!({ "command": "M105\nM112" })),
        ("/api/printer/command", json!({ "command": "M105\rM112" })),
        (
            "/api/printer/command",
            json!({ "commands": ["M105", "M117 x;M112"] }),
        ),
        ("/api/printer/command", json!({ "command": "N1 M112*33" })),
        ("/api/printer/command", json!({ "command": "M117 \u{0}" })),
        (
            "/api/printer/tool",
            json!({ "command": "target", "targets": { "tool0\nM112": 200 } }),
        ),
        (
            "/api/printer/tool",
            json!({ "command": "target", "targets": { "tool0": 1e9 } }),
        ),
        (
            "/api/printer/tool",
            json!({ "command": "select", "tool": "tool0\nM112" }),
        ),
        (
            "/api/printer/bed",
            json!({ "command": "target", "target": "60\nM112" }),
        ),
        (
            "/api/printer/bed",
            json!({ "command": "target", "target": -5 }),
        ),
        (
            "/api/printer/printhead",
            json!({ "command": "home", "axes": ["x\nM112"] }),
        ),
        (
            "/api/printer/printhead",
            json!({ "command": "jog", "x": "1\nM112" }),
        ),
        (
            "/api/printer/printhead",
            json!({ "command": "jog", "x": 1e12 }),
        ),
        (
            "/api/v1/printers/sim/commands",
            json!({ "commands": ["G28 ; M112"] }),
        ),
        (
            "/api/v1/printers/sim/temperatures",
            json!({ "tool0": 200, "bed": "60\nM112" }),
        ),
    ];
    for (path, body) in hostile {
        let response = post_json(&app, &key, path, body.clone()).await;
        assert!(
            matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{path} {body}: {}",
            response.status()
        );
    }
    // Had any M112 got through, the firmware would have halted.
    let valid: &[(&str, Value)] = &[
        (
            "/api/printer/command",
            json!({ "commands": ["M105", "G28 X"] }),
        ),
        (
            "/api/printer/tool",
            json!({ "command": "target", "targets": { "tool0": 30 } }),
        ),
        (
            "/api/printer/bed",
            json!({ "command": "target", "target": 25 }),
        ),
        (
            "/api/printer/printhead",
            json!({ "command": "jog", "x": 5, "y": -2 }),
        ),
    ];
    for (path, body) in valid {
        let response = post_json(&app, &key, path, body.clone()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path} {body}");
    }
    let printer = wait_for(
        &app,
        &key,
        "/api/printer",
        Duration::from_secs(5),
        "targets",
        |p| p["temperature"]["tool0"]["target"] == 30.0,
    )
    .await;
    assert_eq!(printer["state"]["flags"]["operational"], true);
    assert_eq!(printer["state"]["flags"]["error"], false);
}

#[tokio::test]
async fn printer_endpoints_report_real_temperatures_and_connection() {
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["state"], "Operational");
    assert_eq!(c["current"]["port"], "virtual");
    let t = json!({ "tool0": 60, "bed": 40 });
    let response = post_json(&app, &key, "/api/v1/printers/sim/temperatures", t).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The simulator heats; the reports come from M105 polling.
    let printer = wait_for(
        &app,
        &key,
        "/api/printer",
        Duration::from_secs(10),
        "heating",
        |p| {
            p["temperature"]["tool0"]["actual"].as_f64().unwrap_or(0.0) > 55.0
                && p["temperature"]["bed"]["target"] == 40.0
        },
    )
    .await;
    assert_eq!(printer["temperature"]["tool0"]["offset"], 0);
    let disconnect = json!({ "command": "disconnect" });
    let response = post_json(&app, &key, "/api/connection", disconnect).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["state"], "Closed");
    let response = app
        .get("/api/printer")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let connect = json!({ "command": "connect", "port": "virtual" });
    let response = post_json(&app, &key, "/api/connection", connect).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    wait_printer(&app, &key).await;
    let unknown = json!({ "command": "connect", "port": "/etc/passwd" });
    let response = post_json(&app, &key, "/api/connection", unknown).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_print_running_at_shutdown_is_interrupted_after_restart_and_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let config = restartable_config(dir.path(), slow_moves());
    let (first, key) = ready(spawn_app_from(config.clone()).await).await;
    let id = print_and_wait(&first, &key, "long.gcode", &slow_gcode(400)).await;
    // Let a progress checkpoint reach the queue.
    wait_for(
        &first,
        &key,
        &format!("/api/v1/jobs/{id}"),
        Duration::from_secs(10),
        "a checkpoint",
        |j| j["progress"]["line"].as_u64().unwrap_or(0) > 3,
    )
    .await;
    first.stop().await;

    let second = spawn_app_from(config).await;
    wait_printer(&second, &key).await;
    let job = wait_job_state(&second, &key, id, "interrupted", Duration::from_secs(5)).await;
    assert!(job["progress"]["line"].as_u64().unwrap() > 3, "{job}");
    // Never resumed on its own: the printer stays idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, job) = get_json(&second, &key, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "interrupted");
    let (_, printer) = get_json(&second, &key, "/api/printer").await;
    assert_eq!(printer["state"]["flags"]["printing"], false);
    // A person decides: printing it again from the start.
    let response = post_json(
        &second,
        &key,
        &format!("/api/v1/jobs/{id}/retry"),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    wait_job_state(&second, &key, id, "printing", Duration::from_secs(10)).await;
    let (_, history) = get_json(&second, &key, "/api/v1/history").await;
    assert_eq!(history["runs"][1]["result"], "interrupted", "{history}");
    second.stop().await;
}

#[tokio::test]
async fn websocket_topics_carry_the_printer_status_terminal_and_job_progress() {
    use crate::ws::{connect, next_json, send_json};
    let (app, key) = ready_app(slow_moves()).await;
    let mut socket = connect(&app, &[("x-api-key", key.clone())]).await.unwrap();
    let topics = json!(["printer_status", "temperatures", "job_progress", "terminal"]);
    send_json(&mut socket, json!({ "subscribe": topics })).await;
    while next_json(&mut socket).await.get("subscribed").is_none() {}
    // Collect messages until each expectation was seen (or 20 s pass).
    let command = json!({ "commands": ["M115"] });
    let response = post_json(&app, &key, "/api/v1/printers/sim/commands", command).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    upload(&app, &key, "ws.gcode", &slow_gcode(30), true).await;
    let (mut status, mut temperature, mut terminal, mut progress) = (false, false, false, false);
    let start = Instant::now();
    while !(status && temperature && terminal && progress) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "missing: status {status} temperature {temperature} terminal {terminal} progress {progress}"
        );
        let m = next_json(&mut socket).await;
        match m["topic"].as_str() {
            Some("printer_status") if m["key"] == PRINTER => {
                status |= m["data"]["state"] == "operational" || m["data"]["state"] == "printing";
            }
            Some("temperatures") => temperature |= m["data"]["tool0"]["actual"].is_number(),
            Some("terminal") => terminal |= m["data"]["line"] == "> M115",
            Some("job_progress") => {
                progress |= m["data"]["file"] == "ws.gcode"
                    && m["data"]["print_time_left"]
                        .as_f64()
                        .is_some_and(|t| t > 0.0);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_model_curaengine_cannot_read_fails_with_the_reason_in_history() {
    let (app, key) = ready_app(SimulationConfig::instant()).await;
    upload(&app, &key, "broken.stl", b"solid nothing\nendsolid\n", true).await;
    let id = only_job(&app, &key).await["id"].as_i64().unwrap();
    let job = wait_job_state(&app, &key, id, "failed", Duration::from_secs(30)).await;
    assert!(
        job["failure"].as_str().is_some_and(|f| !f.is_empty()),
        "{job}"
    );
    let (_, history) = get_json(&app, &key, "/api/v1/history").await;
    assert_eq!(history["runs"][0]["kind"], "slice");
    assert_eq!(history["runs"][0]["result"], "failed");
    // Nothing reached the printer.
    let (_, printer) = get_json(&app, &key, "/api/printer").await;
    assert_eq!(printer["state"]["flags"]["ready"], true);
}

#[tokio::test]
async fn emergency_stop_halts_the_printer_and_fails_the_print() {
    let (app, key) = ready_app(slow_moves()).await;
    upload(&app, &key, "estop.gcode", &slow_gcode(100), true).await;
    let id = only_job(&app, &key).await["id"].as_i64().unwrap();
    wait_for(
        &app,
        &key,
        "/api/job",
        Duration::from_secs(10),
        "streaming",
        |j| j["state"] == "Printing",
    )
    .await;
    let response = post_json(&app, &key, "/api/v1/printers/sim/emergency_stop", json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let job = wait_job_state(&app, &key, id, "failed", Duration::from_secs(10)).await;
    assert!(
        job["failure"].as_str().unwrap().contains("printer failed"),
        "{job}"
    );
    let (_, slot) = get_json(&app, &key, "/api/v1/printers/sim").await;
    assert_eq!(slot["state"], "error", "{slot}");
    // Connecting again brings it back.
    let response = post_json(&app, &key, "/api/v1/printers/sim/connect", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    wait_printer(&app, &key).await;
}

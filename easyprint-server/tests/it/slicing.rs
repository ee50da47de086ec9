//! The slice dialog's API with real CuraEngine: profiles, per-job settings reaching the
//! G-code, generated names that never replace a file, cancelling a running slice.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{cube_stl, post_json, upload, wait_job_state};

/// A closed binary STL sphere of `radius` mm on the bed, `rings` × `2 rings` facets: heavy
/// enough that CuraEngine runs for a while.
fn sphere_stl(radius: f32, rings: u32) -> Vec<u8> {
    let segments = rings * 2;
    let point = |ring: u32, seg: u32| {
        let theta = std::f32::consts::PI * ring as f32 / rings as f32;
        let phi = 2.0 * std::f32::consts::PI * seg as f32 / segments as f32;
        [
            radius * theta.sin() * phi.cos(),
            radius * theta.sin() * phi.sin(),
            radius * (1.0 - theta.cos()),
        ]
    };
    let mut triangles = Vec::new();
    for ring in 0..rings {
        for seg in 0..segments {
            let (a, b) = (point(ring, seg), point(ring, seg + 1));
            let (c, d) = (point(ring + 1, seg), point(ring + 1, seg + 1));
            if ring > 0 {
                triangles.push([a, c, b]);
            }
            if ring + 1 < rings {
                triangles.push([b, c, d]);
            }
        }
    }
    let mut out = vec![0u8; 80];
    out.extend_from_slice(&(triangles.len() as u32).to_le_bytes());
    for tri in triangles {
        out.extend_from_slice(&[0u8; 12]);
        for vertex in tri {
            for c in vertex {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    out
}

async fn admin_key(app: &TestApp) -> String {
    let admin = app.setup_admin().await;
    app.api_key(&admin).await
}

async fn download(app: &TestApp, key: &str, id: &str) -> String {
    String::from_utf8(download_by_id(app, key, id).await).unwrap()
}

#[tokio::test]
async fn profiles_list_machines_qualities_and_defaults() {
    let app = spawn_app_with(|c| c.slicer.preload_profiles = true).await;
    assert!(
        !app.state.profiles.warming_started(),
        "no load before a sign-in"
    );
    let key = admin_key(&app).await;
    assert!(
        app.state.profiles.warming_started(),
        "the sign-in starts the load"
    );
    // Nothing is loaded until somebody signs in (idle memory stays small); the admin's
    // sign-in above started the load in the background, and requests then share that one
    // load, however many arrive at once.
    tokio::time::timeout(Duration::from_secs(60), app.state.profiles.warmed())
        .await
        .expect("profiles preloaded");
    assert_eq!(
        app.state.profiles.loads(),
        2,
        "machine list + configured machine"
    );
    let (a, b, (status, profiles)) = tokio::join!(
        get_json(&app, &key, "/api/v1/slicer/profiles"),
        get_json(&app, &key, "/api/v1/slicer/profiles"),
        get_json(&app, &key, "/api/v1/slicer/profiles"),
    );
    assert_eq!(status, StatusCode::OK, "{profiles}");
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!((&a.1, &b.1), (&profiles, &profiles));
    assert_eq!(
        app.state.profiles.loads(),
        2,
        "served from the preloaded catalogue"
    );
    let machines = profiles["machines"].as_array().unwrap();
    assert!(machines.len() > 50, "{} machines", machines.len());
    let ender = machines
        .iter()
        .find(|m| m["id"] == "creality_ender3")
        .unwrap();
    assert_eq!(ender["name"], "Creality Ender-3");
    assert!(ender["manufacturer"].is_string());
    // The configured machine's details come without asking.
    let machine = &profiles["machine"];
    assert_eq!(machine["id"], "creality_ender3");
    let qualities = machine["qualities"].as_array().unwrap();
    assert!(!qualities.is_empty());
    assert!(qualities.iter().all(|q| q["id"].is_string()
        && q["name"].is_string()
        && q["layer_height"]
            .as_f64()
            .is_some_and(|h| h > 0.0 && h < 1.0)));
    let defaults = &machine["defaults"];
    assert!(qualities.iter().any(|q| q["id"] == defaults["quality"]));
    assert!(defaults["infill_percent"].as_f64().is_some());
    assert!(["none", "buildplate", "everywhere"].contains(&defaults["support"].as_str().unwrap()));
    assert!(["none", "skirt", "brim", "raft"].contains(&defaults["adhesion"].as_str().unwrap()));
    assert!(
        defaults["nozzle_temp"].as_f64().unwrap() > 150.0,
        "{defaults}"
    );
    assert!(defaults["bed_temp"].as_f64().is_some());

    let (status, other) = get_json(&app, &key, "/api/v1/slicer/profiles?machine=anet3d_a8").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other["machine"]["id"], "anet3d_a8");
    assert_eq!(
        app.state.profiles.loads(),
        3,
        "another machine resolves once"
    );
    let response = app
        .get("/api/v1/slicer/profiles?machine=no_such_printer")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn chosen_settings_reach_the_gcode_and_reslicing_never_replaces_a_file() {
    let app = spawn_app().await;
    let key = admin_key(&app).await;
    upload(&app, &key, "cube.stl", &cube_stl(12.0), false).await;
    let model = file_named(&app, &key, "cube.stl").await.unwrap();
    let model_id = model["id"].as_str().unwrap().to_owned();
    let (_, profiles) = get_json(&app, &key, "/api/v1/slicer/profiles").await;
    let quality = profiles["machine"]["qualities"][0]["id"].clone();

    let first = post_json(
        &app,
        &key,
        &format!("/api/v1/files/{model_id}/slice"),
        json!({
            "print": false,
            "slicing": {
                "quality": quality,
                "infill_percent": 0,
                "support": "none",
                "adhesion": "none",
                "nozzle_temp": 213,
                "bed_temp": 67,
            },
        }),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body(first).await;
    assert_eq!(first["print"], false);
    assert_eq!(first["slicing"]["nozzle_temp"].as_f64(), Some(213.0));
    let id = first["id"].as_i64().unwrap();
    let done = wait_job_state(&app, &key, id, "done", Duration::from_secs(120)).await;
    let gcode_file = file_named(&app, &key, "cube.gcode").await.unwrap();
    assert_eq!(gcode_file["sha256"], done["gcode_sha256"]);
    let first_gcode = download(&app, &key, gcode_file["id"].as_str().unwrap()).await;
    assert!(
        first_gcode.contains("M104 S213") || first_gcode.contains("M109 S213"),
        "nozzle temperature missing"
    );
    assert!(
        first_gcode.contains("M190 S67") || first_gcode.contains("M140 S67"),
        "bed temperature missing"
    );
    assert!(
        !first_gcode.contains(";TYPE:FILL"),
        "0 % infill has no sparse infill"
    );
    assert!(
        !first_gcode.contains(";TYPE:SKIRT"),
        "no adhesion: no skirt or brim"
    );
    // Slice-only: nothing was printed, the slice is the job's one run.
    let (_, history) = get_json(&app, &key, "/api/v1/history").await;
    assert_eq!(history["runs"].as_array().unwrap().len(), 1, "{history}");
    let run = &history["runs"][0];
    let (started, ended) = (
        run["started_at"].as_i64().unwrap(),
        run["ended_at"].as_i64().unwrap(),
    );
    assert!(started <= ended);
    assert_eq!(
        run["duration_s"].as_f64(),
        Some((ended - started) as f64 / 1000.0)
    );

    // Again with other settings: a second file, the first one untouched.
    let second = post_json(
        &app,
        &key,
        &format!("/api/v1/files/{model_id}/slice"),
        json!({
            "print": false,
            "slicing": { "infill_percent": 40, "adhesion": "raft", "nozzle_temp": 224 },
        }),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let id = body(second).await["id"].as_i64().unwrap();
    wait_job_state(&app, &key, id, "done", Duration::from_secs(120)).await;
    let again = file_named(&app, &key, "cube.gcode").await.unwrap();
    assert_eq!(again["id"], gcode_file["id"], "cube.gcode was replaced");
    assert_eq!(
        download(&app, &key, gcode_file["id"].as_str().unwrap()).await,
        first_gcode
    );
    let numbered = file_named(&app, &key, "cube (2).gcode").await.unwrap();
    let second_gcode = download(&app, &key, numbered["id"].as_str().unwrap()).await;
    assert!(second_gcode.contains(";TYPE:FILL"), "40 % infill");
    assert!(
        second_gcode.contains(";LAYER:-"),
        "a raft prints below layer 0"
    );
    assert!(second_gcode.contains("M104 S224") || second_gcode.contains("M109 S224"));
}

#[tokio::test]
async fn slice_requests_are_validated_with_the_field_named() {
    let (app, admin, key) = spawn_app_with_key().await;
    upload(&app, &key, "part.stl", &cube_stl(5.0), false).await;
    upload(&app, &key, "part.gcode", GCODE, false).await;
    let model = file_named(&app, &key, "part.stl").await.unwrap();
    let path = format!("/api/v1/files/{}/slice", model["id"].as_str().unwrap());
    for (slicing, code, field) in [
        (
            json!({ "infill_percent": 150 }),
            "invalid_slicing_setting",
            "slicing.infill_percent",
        ),
        (
            json!({ "nozzle_temp": 999 }),
            "invalid_slicing_setting",
            "slicing.nozzle_temp",
        ),
        (
            json!({ "bed_temp": -5 }),
            "invalid_slicing_setting",
            "slicing.bed_temp",
        ),
        (
            json!({ "quality": "ultra_mega" }),
            "invalid_slicing_setting",
            "slicing.quality",
        ),
        (
            json!({ "machine": "no_such_machine" }),
            "invalid_slicing_setting",
            "slicing.machine",
        ),
        (
            json!({ "support": "sideways" }),
            "invalid_json",
            "slicing.support",
        ),
        (json!({ "adhesion": 3 }), "invalid_json", "slicing.adhesion"),
        (
            json!({ "infil_percent": 20 }),
            "invalid_json",
            "infil_percent",
        ),
    ] {
        let response = post_json(
            &app,
            &key,
            &path,
            json!({ "print": false, "slicing": slicing }),
        )
        .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert!(error["error"].as_str().unwrap().contains(field), "{error}");
    }
    let gcode = file_named(&app, &key, "part.gcode").await.unwrap();
    let response = post_json(
        &app,
        &key,
        &format!("/api/v1/files/{}/slice", gcode["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "not_a_model").await;
    let response = post_json(&app, &key, &path, json!({ "printer": "nope" })).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // Another user's model is not there for them.
    let bob = app.add_user(&admin, "bob").await;
    let response = bob
        .request(Method::POST, &path)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // Nothing was queued by any of this.
    let (_, jobs) = get_json(&app, &key, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
}

/// CuraEngine processes (any owner) whose command line contains `marker`.
fn engines_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("CuraEngine") && cmdline.contains(marker) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn cancelling_a_job_while_it_slices_stops_curaengine() {
    let app = spawn_app().await;
    let key = admin_key(&app).await;
    upload(&app, &key, "ball.stl", &sphere_stl(45.0, 160), false).await;
    let model = file_named(&app, &key, "ball.stl").await.unwrap();
    // An unusual bed temperature marks this test's engine among others on the host.
    let marker = "material_bed_temperature=61.37";
    let response = post_json(
        &app,
        &key,
        &format!("/api/v1/files/{}/slice", model["id"].as_str().unwrap()),
        json!({ "print": false, "slicing": { "bed_temp": 61.37, "infill_percent": 100 } }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = body(response).await["id"].as_i64().unwrap();
    // The host runs one slice at a time: another program's slice may go first.
    let start = Instant::now();
    let pids = loop {
        let pids = engines_with(marker);
        if !pids.is_empty() {
            break pids;
        }
        let (_, job) = get_json(&app, &key, &format!("/api/v1/jobs/{id}")).await;
        assert!(
            job["state"] == "queued" || job["state"] == "slicing",
            "the slice ended before it could be cancelled: {job}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "CuraEngine never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let response = app
        .post(&format!("/api/v1/jobs/{id}/cancel"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let start = Instant::now();
    // A killed engine's cmdline is empty even before it is reaped.
    while pids.iter().any(|pid| engines_with(marker).contains(pid)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "CuraEngine still running after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = wait_job_state(&app, &key, id, "cancelled", Duration::from_secs(10)).await;
    assert_eq!(job["gcode_sha256"], Value::Null);
    // The worker has let go of the slice and stored nothing.
    let start = Instant::now();
    while app.state.slicing.lock().unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the worker is stuck"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(file_named(&app, &key, "ball.gcode").await.is_none());
    let (_, history) = get_json(&app, &key, "/api/v1/history").await;
    assert_eq!(history["runs"][0]["result"], "cancelled", "{history}");
}

#[tokio::test]
async fn sliced_gcode_counts_against_the_owners_quota() {
    // Room for the model, not for the G-code CuraEngine makes of it.
    let app = spawn_app_with(|c| c.limits.user_quota_bytes = 20_000).await;
    let key = admin_key(&app).await;
    upload(&app, &key, "cube.stl", &cube_stl(12.0), false).await;
    let model = file_named(&app, &key, "cube.stl").await.unwrap();
    let path = format!("/api/v1/files/{}/slice", model["id"].as_str().unwrap());
    let response = post_json(&app, &key, &path, json!({ "print": false })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = body(response).await["id"].as_i64().unwrap();
    let failed = wait_job_state(&app, &key, id, "failed", Duration::from_secs(120)).await;
    let failure = failed["failure"].as_str().unwrap();
    assert!(failure.starts_with("quota_exceeded: "), "{failure}");
    assert!(failure.contains("20000 bytes"), "{failure}");
    // Nothing was stored: only the model is there, and no temporary file is left.
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    assert_eq!((app.stored_files(), app.temp_files()), (1, 0));
}

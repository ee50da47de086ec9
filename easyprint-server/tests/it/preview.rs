//! Layer preview of a real CuraEngine slice.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::pipeline::{cube_stl, post_json, upload, wait_job_state};

#[tokio::test]
async fn layers_of_a_curaengine_slice_match_its_analysis_and_geometry() {
    let (app, admin, key) = spawn_app_with_key().await;
    upload(&app, &key, "block.stl", &cube_stl(10.0), false).await;
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    let model = files[0]["id"].as_str().unwrap().to_owned();
    let response = post_json(
        &app,
        &key,
        &format!("/api/v1/files/{model}/slice"),
        json!({ "print": false, "slicing": { "adhesion": "none", "infill_percent": 20 } }),
    )
    .await;
    let job = body(response).await["id"].as_i64().unwrap();
    let done = wait_job_state(&app, &key, job, "done", Duration::from_secs(120)).await;
    let (_, files) = get_json(&app, &key, "/api/v1/files").await;
    let gcode = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["sha256"] == done["gcode_sha256"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, index) = get_json(&app, &key, &format!("/api/v1/files/{gcode}/layers")).await;
    assert_eq!(status, StatusCode::OK, "{index}");
    let (_, analysis) = get_json(&app, &key, &format!("/api/v1/files/{gcode}/analysis")).await;
    let layers = index["layers"].as_array().unwrap();
    assert_eq!(layers.len() as u64, analysis["layers"].as_u64().unwrap());
    assert!(layers.len() >= 40, "a 10 mm cube at ≤ 0.25 mm layers");
    let bounds = &index["bounds"];
    let (min, max) = (&bounds["min"], &bounds["max"]);
    // The cube is 10 mm wide wherever Cura placed it.
    let width = max[0].as_f64().unwrap() - min[0].as_f64().unwrap();
    assert!((9.0..=10.5).contains(&width), "{bounds}");
    let mut last_z = 0.0;
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(layer["index"], i);
        let z = layer["z"].as_f64().unwrap();
        assert!(z > last_z, "layer {i} at {z} after {last_z}");
        last_z = z;
        let (status, moves) =
            get_json(&app, &key, &format!("/api/v1/files/{gcode}/layers/{i}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(moves["index"], i);
        assert_eq!(moves["z"], layer["z"]);
        assert_eq!(moves["truncated"], false);
        let extrude = moves["extrude"].as_array().unwrap();
        let travel = moves["travel"].as_array().unwrap();
        assert!(!extrude.is_empty(), "layer {i} prints something");
        assert_eq!(extrude.len() % 4, 0);
        assert_eq!(travel.len() % 4, 0);
        // Reading one layer from its recorded start state gives exactly the moves the index
        // counted in the full pass.
        assert_eq!(
            ((extrude.len() + travel.len()) / 4) as u64,
            layer["moves"].as_u64().unwrap(),
            "layer {i}"
        );
        // Extrusion stays on the object.
        let margin = 0.5;
        for pair in extrude.chunks(2) {
            for axis in 0..2 {
                let v = pair[axis].as_f64().unwrap();
                assert!(
                    v >= min[axis].as_f64().unwrap() - margin
                        && v <= max[axis].as_f64().unwrap() + margin,
                    "layer {i}: {v} outside {bounds}"
                );
            }
        }
    }
    let response = app
        .get(&format!("/api/v1/files/{gcode}/layers/{}", layers.len()))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app
        .get(&format!("/api/v1/files/{gcode}/layers/-1"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_layer").await;
    let response = app
        .get(&format!("/api/v1/files/{model}/layers"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "not_gcode").await;
    // Another user cannot see it.
    let bob = app.add_user(&admin, "bob").await;
    let response = bob.get(&format!("/api/v1/files/{gcode}/layers/0")).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // The index is kept for the file's content.
    let sha = done["gcode_sha256"].as_str().unwrap();
    assert!(app.state.layer_indexes.cached(sha).is_some());
}

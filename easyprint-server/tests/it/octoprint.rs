//! The OctoPrint-compatible endpoints against OctoPrint 1.11's documented shapes, and the
//! uploads of the slicers that use them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn version_satisfies_prusaslicer_and_needs_a_key() {
    let (app, _, key) = spawn_app_with_key().await;
    let (status, v) = get_json(&app, &key, "/api/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["api"], "0.1");
    assert!(v["server"].as_str().unwrap().starts_with("1."));
    assert!(v["text"].as_str().unwrap().starts_with("OctoPrint"), "{v}");

    // OctoPrint answers 403 both without a key and with a wrong one.
    let response = app.get("/api/version").send().await.unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app
        .get("/api/version")
        .header("x-api-key", "WRONG")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "invalid_api_key").await;
}

#[tokio::test]
async fn server_settings_and_profiles_have_the_fields_clients_read() {
    let (app, _, key) = spawn_app_with_key().await;
    let (_, server) = get_json(&app, &key, "/api/server").await;
    assert!(server["version"].is_string());
    assert!(server["safemode"].is_null());

    // Cura's plugin reads these.
    let (status, s) = get_json(&app, &key, "/api/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(s["feature"]["sdSupport"].is_boolean());
    assert!(s["webcam"]["streamUrl"].is_string());
    for flag in ["flipH", "flipV", "rotate90"] {
        assert!(s["webcam"][flag].is_boolean(), "{flag}");
    }
    assert!(s["gcodeAnalysis"]["runAt"].is_string());
    assert!(s["plugins"].is_object());
    assert!(s["api"]["allowCrossOrigin"].is_boolean());

    let (status, p) = get_json(&app, &key, "/api/printerprofiles").await;
    assert_eq!(status, StatusCode::OK);
    let profile = &p["profiles"]["_default"];
    assert_eq!(profile["id"], "_default");
    assert_eq!(profile["current"], true);
    assert!(profile["name"].is_string() && profile["model"].is_string());
    for axis in ["x", "y", "z"] {
        assert!(profile["axes"][axis]["speed"].is_number(), "{axis}");
        assert!(profile["axes"][axis]["inverted"].is_boolean(), "{axis}");
    }
    assert!(profile["heatedBed"].is_boolean());
    assert!(profile["heatedChamber"].is_boolean());
    assert_eq!(profile["extruder"]["count"], 1);
    assert!(profile["volume"]["width"].is_number());
}

#[tokio::test]
async fn passive_login_with_a_key_returns_the_user() {
    let (app, _, key) = spawn_app_with_key().await;
    let response = app
        .post("/api/login")
        .header("x-api-key", &key)
        .json(&json!({ "passive": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let user = body(response).await;
    assert_eq!(user["name"], ADMIN);
    assert_eq!(user["admin"], true);
    assert_eq!(user["active"], true);
    assert!(user["groups"].is_array());
    assert_eq!(user["_login_mechanism"], "apikey");

    let response = app
        .post("/api/login")
        .json(&json!({ "passive": true }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;

    // Credentials log in and start a session, under the same throttle as the native login.
    let response = app
        .post("/api/login")
        .json(&json!({ "user": ADMIN, "pass": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let browser = Browser::from_response(&app, &response);
    let me = body(browser.get("/api/v1/session").await).await;
    assert_eq!(me["name"], ADMIN);
}

#[tokio::test]
async fn printer_endpoints_say_not_operational_while_no_printer_is_connected() {
    let (app, _, key) = spawn_app_with_key().await;
    for path in ["/api/printer", "/api/printer/tool", "/api/printer/bed"] {
        let response = app
            .get(path)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        let v = assert_error(response, StatusCode::CONFLICT, "printer_not_operational").await;
        assert_eq!(v["error"], "Printer is not operational", "{path}");
    }
    let (status, job) = get_json(&app, &key, "/api/job").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "Offline");
    assert!(job["job"]["file"]["name"].is_null());
    for field in ["completion", "printTime", "printTimeLeft", "filepos"] {
        assert!(job["progress"][field].is_null(), "{field}");
    }
    for command in [
        json!({"command": "start"}),
        json!({"command": "pause", "action": "toggle"}),
    ] {
        let response = app
            .post("/api/job")
            .header("x-api-key", &key)
            .json(&command)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::CONFLICT, "printer_not_operational").await;
    }
    let (status, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["current"]["state"], "Closed");
    assert_eq!(c["options"]["ports"], json!([]));
    assert!(c["options"]["baudrates"]
        .as_array()
        .unwrap()
        .contains(&json!(115200)));
    assert_eq!(c["options"]["printerProfiles"][0]["id"], "_default");
}

#[tokio::test]
async fn configured_printers_are_listed_as_closed_ports() {
    let app = spawn_app_with(|c| {
        let mut printer =
            easyprint_server::config::PrinterConfig::simulated("anet", Default::default());
        printer.port = "/dev/ttyUSB0".into();
        printer.autoconnect = false;
        c.printers = vec![printer];
    })
    .await;
    let (_, key) = app.admin_and_key().await;
    let (_, c) = get_json(&app, &key, "/api/connection").await;
    assert_eq!(c["current"]["state"], "Closed");
    assert_eq!(c["options"]["ports"], json!(["/dev/ttyUSB0"]));
    assert_eq!(c["options"]["baudratePreference"], 115200);
    let response = app
        .get("/api/printer")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let (status, printers) = get_json(&app, &key, "/api/v1/printers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        printers,
        json!([{
            "id": "anet", "name": "anet", "port": "/dev/ttyUSB0", "baudrate": 115200,
            "autoconnect": false, "simulation": null,
            "host_scripts": easyprint_server::config::HostScriptsConfig::default(),
            "state": "closed", "error": null, "temperatures": null, "job": null, "last_job": null,
        }])
    );
}

/// PrusaSlicer's "Send to printer": libcurl mime parts `print`, `path`, `file`, in that order.
#[tokio::test]
async fn prusaslicer_upload() {
    let (app, _, key) = spawn_app_with_key().await;
    let (ct, body_bytes) = multipart(&[
        (&text_part("print"), b"false"),
        (&text_part("path"), b""),
        (&file_part("cube_0.2mm_PLA.gcode"), GCODE),
    ]);
    let response = upload_raw(&app, &key, "", &ct, body_bytes).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("http://{}/api/files/local/cube_0.2mm_PLA.gcode", app.addr)
    );
    let v = body(response).await;
    assert_eq!(v["done"], true);
    assert_eq!(v["effectiveSelect"], false);
    assert_eq!(v["effectivePrint"], false);
    let local = &v["files"]["local"];
    assert_eq!(local["name"], "cube_0.2mm_PLA.gcode");
    assert_eq!(local["path"], "cube_0.2mm_PLA.gcode");
    assert_eq!(local["origin"], "local");
    assert_eq!(local["refs"]["resource"], location);
    assert!(local["refs"]["download"]
        .as_str()
        .unwrap()
        .ends_with("/downloads/files/local/cube_0.2mm_PLA.gcode"));

    // The Location is a working resource URL (Cura uses it as the file's end point).
    let response = app
        .http
        .get(&location)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let file = body(response).await;
    assert_eq!(file["name"], "cube_0.2mm_PLA.gcode");
    assert_eq!(file["display"], "cube_0.2mm_PLA.gcode");
    assert_eq!(file["origin"], "local");
    assert_eq!(file["type"], "machinecode");
    assert_eq!(file["typePath"], json!(["machinecode", "gcode"]));
    assert_eq!(file["size"], GCODE.len());
    assert!(file["date"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(file["user"], ADMIN);
    let download = app
        .http
        .get(file["refs"]["download"].as_str().unwrap())
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), GCODE);
}

/// Cura's OctoPrint plugin: Qt multipart with `path` (text/plain), `file`, `select`, `print`.
#[tokio::test]
async fn cura_upload_with_select_and_print() {
    let (app, _, key) = spawn_app_with_key().await;
    let (ct, body_bytes) = multipart(&[
        (
            "Content-Type: text/plain\r\nContent-Disposition: form-data; name=\"path\"",
            b"",
        ),
        (
            "Content-Type: application/octet-stream\r\nContent-Disposition: form-data; name=\"file\"; filename=\"UM3_bracket.gcode\"",
            GCODE,
        ),
        (
            "Content-Type: text/plain\r\nContent-Disposition: form-data; name=\"select\"",
            b"true",
        ),
        (
            "Content-Type: text/plain\r\nContent-Disposition: form-data; name=\"print\"",
            b"true",
        ),
    ]);
    let response = app
        .post("/api/files/local")
        .header("x-api-key", &key)
        .header("user-agent", "Cura/5.7.0 OctoPrintPlugin/3.7.3")
        .header("content-type", ct)
        .body(body_bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    // Cura takes the part after "api/" as the file's end point.
    assert_eq!(
        location.split_once("api/").unwrap().1,
        "files/local/UM3_bracket.gcode"
    );
    let v = body(response).await;
    // No printer is connected, so the file is stored but neither selected nor printed.
    assert_eq!(v["effectiveSelect"], false);
    assert_eq!(v["effectivePrint"], false);

    // Cura's "select later" path: select needs an operational printer.
    let response = app
        .post("/api/files/local/UM3_bracket.gcode")
        .header("x-api-key", &key)
        .json(&json!({ "command": "select", "print": true }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "printer_not_operational").await;
}

/// octorest's `upload()`: only a `file` part, made by requests (reqwest here, as a real client).
#[tokio::test]
async fn file_only_upload_list_and_delete() {
    let (app, _, key) = spawn_app_with_key().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(GCODE.to_vec()).file_name("octorest.gcode"),
    );
    let response = app
        .post("/api/files/local")
        .header("x-api-key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (ct, b) = multipart(&[(&file_part("model.stl"), b"solid x\nendsolid x\n")]);
    assert_eq!(
        upload_raw(&app, &key, "", &ct, b).await.status(),
        StatusCode::CREATED
    );

    for path in [
        "/api/files",
        "/api/files/local",
        "/api/files?recursive=false",
    ] {
        let (status, listing) = get_json(&app, &key, path).await;
        assert_eq!(status, StatusCode::OK);
        let files = listing["files"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{path}");
        let stl = files.iter().find(|f| f["name"] == "model.stl").unwrap();
        assert_eq!(stl["type"], "model");
        assert_eq!(stl["typePath"], json!(["model", "stl"]));
        assert!(listing["free"].as_u64().unwrap() > 0);
        assert!(listing["total"].as_u64().unwrap() >= listing["free"].as_u64().unwrap());
    }
    let response = delete_with_key(&app, &key, "/api/files/local/octorest.gcode").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .get("/api/files/local/octorest.gcode")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.stored_files(), 1);
}

#[tokio::test]
async fn upload_without_a_file_is_400_and_bad_type_415() {
    let (app, _, key) = spawn_app_with_key().await;
    let (ct, b) = multipart(&[(&text_part("select"), b"true")]);
    let response = upload_raw(&app, &key, "", &ct, b).await;
    assert_error(response, StatusCode::BAD_REQUEST, "no_file").await;
    let (ct, b) = multipart(&[(&file_part("notes.txt"), b"hello")]);
    let response = upload_raw(&app, &key, "", &ct, b).await;
    let v = assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_file_type",
    )
    .await;
    assert_eq!(v["error"], "Could not upload file, invalid type");
}

/// Cura's key acquisition: probe, request, poll while a logged-in user approves.
#[tokio::test]
async fn appkeys_handshake() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let response = app.get("/plugin/appkeys/probe").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let request = || {
        app.post("/plugin/appkeys/request")
            .json(&json!({ "app": "Cura" }))
            .send()
    };
    let response = request().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let poll_url = response.headers()["location"].to_str().unwrap().to_owned();
    let v = body(response).await;
    let token = v["app_token"].as_str().unwrap().to_owned();
    assert!(poll_url.ends_with(&format!("/plugin/appkeys/request/{token}")));
    assert!(v["auth_dialog"].as_str().unwrap().starts_with("http://"));

    let poll = || app.http.get(&poll_url).send();
    assert_eq!(poll().await.unwrap().status(), StatusCode::ACCEPTED);

    // Only logged-in users see and decide requests.
    let response = app.get("/api/v1/appkeys/pending").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let pending = body(admin.get("/api/v1/appkeys/pending").await).await;
    assert_eq!(pending[0]["app"], "Cura");
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(id, token);
    let response = admin
        .request(Method::POST, &format!("/api/v1/appkeys/pending/{id}"))
        .json(&json!({ "approve": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = poll().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let key = body(response).await["api_key"].as_str().unwrap().to_owned();
    let (status, v) = get_json(&app, &key, "/api/version").await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["text"].as_str().unwrap().starts_with("OctoPrint"));
    assert_eq!(
        poll().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "handed out once"
    );
    let keys = body(admin.get("/api/v1/keys").await).await;
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["label"] == "app: Cura"));

    // A denied request answers 404 to the app.
    let response = request().await.unwrap();
    let poll_url = response.headers()["location"].to_str().unwrap().to_owned();
    let pending = body(admin.get("/api/v1/appkeys/pending").await).await;
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    let response = admin
        .request(Method::POST, &format!("/api/v1/appkeys/pending/{id}"))
        .json(&json!({ "approve": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.http.get(&poll_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Anyone may ask for an app key, so asking is throttled per client address like a failed
/// login (3 a minute), and one address cannot lock out another.
#[tokio::test]
async fn appkey_requests_are_limited_per_address() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let request = |from: &'static str| {
        app.post("/plugin/appkeys/request")
            .header("x-forwarded-for", from)
            .json(&json!({ "app": "Cura" }))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            request("10.0.0.1").await.unwrap().status(),
            StatusCode::CREATED
        );
    }
    let response = request("10.0.0.1").await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(
        request("10.0.0.2").await.unwrap().status(),
        StatusCode::CREATED
    );
}

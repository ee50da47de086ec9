//! Folders in the OctoPrint files API: created with `foldername`, implied by uploads with
//! `path`, listed in OctoPrint's folder shape (flat and recursive), deleted with their content,
//! private to their owner, and hostile names refused with a typed error.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn create_folder(app: &TestApp, key: &str, name: &[u8], path: &[u8]) -> reqwest::Response {
    let (ct, body) = multipart(&[(&text_part("foldername"), name), (&text_part("path"), path)]);
    upload_raw(app, key, "", &ct, body).await
}

async fn upload_into(app: &TestApp, key: &str, path: &str, name: &str) -> Value {
    let (ct, form) = multipart(&[
        (&text_part("path"), path.as_bytes()),
        (&file_part(name), GCODE),
    ]);
    let response = upload_raw(app, key, "", &ct, form).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let mut value = body(response).await;
    value["location"] = json!(location);
    value
}

/// What the move and copy tests start from: `parts/a.gcode`, `parts2/b.gcode` (a folder whose
/// name starts with another's) and `c.gcode` at the root.
async fn parts_parts2_and_root(app: &TestApp, key: &str) {
    upload_into(app, key, "parts", "a.gcode").await;
    upload_into(app, key, "parts2", "b.gcode").await;
    upload_into(app, key, "", "c.gcode").await;
}

/// OctoPrint's `{"command": "move" | "copy", "destination"}` on `path`.
async fn file_command(
    app: &TestApp,
    key: &str,
    command: &str,
    path: &str,
    destination: &str,
) -> reqwest::Response {
    let body = json!({ "command": command, "destination": destination });
    crate::pipeline::post_json(app, key, &format!("/api/files/local/{path}"), body).await
}

async fn copy(app: &TestApp, key: &str, path: &str, destination: &str) -> reqwest::Response {
    file_command(app, key, "copy", path, destination).await
}

fn names(entries: &Value) -> Vec<(String, String)> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn folders_are_created_listed_and_deleted_like_octoprints() {
    let (app, admin, key) = spawn_app_with_key().await;

    let response = create_folder(&app, &key, b"parts", b"").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.ends_with("/api/files/local/parts"), "{location}");
    let created = body(response).await;
    assert_eq!(created["done"], true);
    assert_eq!(
        (
            &created["folder"]["name"],
            &created["folder"]["path"],
            &created["folder"]["origin"]
        ),
        (&json!("parts"), &json!("parts"), &json!("local"))
    );
    // OctoPrint clients send the parent with a trailing slash.
    let response = create_folder(&app, &key, b"sub", b"parts/").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body(response).await["folder"]["path"], "parts/sub");

    let a = upload_into(&app, &key, "parts/sub/", "a.gcode").await;
    assert_eq!(
        (&a["files"]["local"]["name"], &a["files"]["local"]["path"]),
        (&json!("a.gcode"), &json!("parts/sub/a.gcode"))
    );
    assert!(a["location"]
        .as_str()
        .unwrap()
        .ends_with("/api/files/local/parts/sub/a.gcode"));
    // A folder that does not exist yet is created by the upload (as OctoPrint does).
    upload_into(&app, &key, "parts2", "b.gcode").await;
    upload_into(&app, &key, "", "c.gcode").await;

    // Flat: the root's entries; each folder lists its own entries, sub-folders without theirs.
    let (status, flat) = get_json(&app, &key, "/api/files").await;
    assert_eq!(status, StatusCode::OK);
    let root = &flat["files"];
    assert_eq!(
        names(root),
        [
            ("machinecode".into(), "c.gcode".into()),
            ("folder".into(), "parts".into()),
            ("folder".into(), "parts2".into())
        ]
    );
    let parts = &root[1];
    assert_eq!(parts["typePath"], json!(["folder"]));
    assert_eq!(
        (&parts["name"], &parts["display"]),
        (&json!("parts"), &json!("parts"))
    );
    assert_eq!(parts["origin"], "local");
    assert_eq!(parts["size"], GCODE.len());
    assert!(parts["refs"]["resource"]
        .as_str()
        .unwrap()
        .ends_with("/api/files/local/parts"));
    assert_eq!(
        names(&parts["children"]),
        [("folder".into(), "parts/sub".into())]
    );
    assert!(parts["children"][0].get("children").is_none());

    // Recursive: the whole tree.
    let (_, tree) = get_json(&app, &key, "/api/files?recursive=true").await;
    let sub = &tree["files"][1]["children"][0];
    assert_eq!(
        names(&sub["children"]),
        [("machinecode".into(), "parts/sub/a.gcode".into())]
    );
    assert_eq!(sub["children"][0]["name"], "a.gcode");
    assert!(sub["children"][0]["refs"]["download"]
        .as_str()
        .unwrap()
        .ends_with("/downloads/files/local/parts/sub/a.gcode"));

    // One folder, and one file in it, by URL.
    let (status, folder) = get_json(&app, &key, "/api/files/local/parts/sub").await;
    assert_eq!(status, StatusCode::OK, "{folder}");
    assert_eq!(
        (&folder["type"], &folder["path"]),
        (&json!("folder"), &json!("parts/sub"))
    );
    assert_eq!(
        names(&folder["children"]),
        [("machinecode".into(), "parts/sub/a.gcode".into())]
    );
    let (status, file) = get_json(&app, &key, "/api/files/local/parts/sub/a.gcode").await;
    assert_eq!((status, &file["name"]), (StatusCode::OK, &json!("a.gcode")));
    let response = app
        .get("/downloads/files/local/parts/sub/a.gcode")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("\"a.gcode\""));
    assert_eq!(response.bytes().await.unwrap(), GCODE);

    // Another user sees none of it.
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    let (_, bobs) = get_json(&app, &bob_key, "/api/files?recursive=true").await;
    assert_eq!(bobs["files"], json!([]));
    let (status, _) = get_json(&app, &bob_key, "/api/files/local/parts").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        delete_with_key(&app, &bob_key, "/api/files/local/parts")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Deleting a folder takes everything below it, and nothing of `parts2` (a prefix of the
    // name is not the folder).
    let stored = app.stored_files();
    let response = delete_with_key(&app, &key, "/api/files/local/parts").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.stored_files(), stored - 1);
    let (_, tree) = get_json(&app, &key, "/api/files?recursive=true").await;
    assert_eq!(
        names(&tree["files"]),
        [
            ("machinecode".into(), "c.gcode".into()),
            ("folder".into(), "parts2".into())
        ]
    );
    assert_eq!(
        names(&tree["files"][1]["children"]),
        [("machinecode".into(), "parts2/b.gcode".into())]
    );
    let (status, _) = get_json(&app, &key, "/api/files/local/parts/sub").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_folder_names_are_refused_with_a_typed_error() {
    let (app, _, key) = spawn_app_with_key().await;
    let long = "x".repeat(300);
    let cases: [(&str, &[u8], &[u8]); 10] = [
        ("dot-dot", b"..", b""),
        ("dot-dot parent", b"x", b"../"),
        ("nested dot-dot", b"x", b"a/../../etc/"),
        ("absolute parent", b"x", b"/etc/"),
        ("slash in the name", b"a/../b", b""),
        ("backslash", b"..\\x", b""),
        ("overlong", long.as_bytes(), b""),
        ("fullwidth dots", "\u{FF0E}\u{FF0E}".as_bytes(), b""),
        ("two-dot leader", "\u{2025}".as_bytes(), b""),
        ("decomposed accent", "cafe\u{301}".as_bytes(), b""),
    ];
    for (what, name, path) in cases {
        let response = create_folder(&app, &key, name, path).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_folder").await;
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid folder"),
            "{what}: {error}"
        );
    }
    // Uploads with such a path are refused the same way, and nothing is stored.
    let (ct, body) = multipart(&[
        (&text_part("path"), b"uploads/../../x"),
        (&file_part("a.gcode"), GCODE),
    ]);
    let response = upload_raw(&app, &key, "", &ct, body).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_folder").await;
    // In a URL too (percent-encoded separators and dots decode before the check).
    let (status, _) = get_json(&app, &key, "/api/files/local/..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Sending both a file and a folder is ambiguous.
    let (ct, body) = multipart(&[
        (&text_part("foldername"), b"x"),
        (&file_part("a.gcode"), GCODE),
    ]);
    let response = upload_raw(&app, &key, "", &ct, body).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!((app.stored_files(), app.temp_files()), (0, 0));
    let (_, all) = get_json(&app, &key, "/api/files?recursive=true").await;
    assert_eq!(all["files"], json!([]));
}

#[tokio::test]
async fn files_and_folders_move_and_rename_without_touching_their_neighbours() {
    let (app, _, key) = spawn_app_with_key().await;
    parts_parts2_and_root(&app, &key).await;
    upload_into(&app, &key, "archive", "c.gcode").await;
    let moving = |path, destination| file_command(&app, &key, "move", path, destination);

    // Into an existing folder: the name stays.
    let response = moving("parts2/b.gcode", "archive").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/api/files/local/archive/b.gcode"));
    assert_eq!(body(response).await["path"], "archive/b.gcode");
    let (status, _) = get_json(&app, &key, "/api/files/local/parts2/b.gcode").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // To a new path: a rename; the type cannot change.
    let response = moving("archive/b.gcode", "archive/renamed.gcode").await;
    assert_eq!(body(response).await["path"], "archive/renamed.gcode");
    let response = moving("archive/renamed.gcode", "archive/renamed.stl").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_file_name").await;
    // A folder moves with everything in it; `parts2` is not part of `parts`.
    let response = moving("parts", "archive").await;
    assert_eq!(body(response).await["path"], "archive/parts");
    let (status, file) = get_json(&app, &key, "/api/files/local/archive/parts/a.gcode").await;
    assert_eq!((status, &file["name"]), (StatusCode::OK, &json!("a.gcode")));
    let (_, tree) = get_json(&app, &key, "/api/files?recursive=true").await;
    assert_eq!(
        names(&tree["files"]),
        [
            ("machinecode".into(), "c.gcode".into()),
            ("folder".into(), "archive".into()),
            ("folder".into(), "parts2".into())
        ]
    );
    // Refused, and nothing moves: a taken name, into itself, a missing parent, a hostile path.
    let response = moving("c.gcode", "archive").await;
    assert_error(response, StatusCode::CONFLICT, "already_exists").await;
    let response = moving("archive", "archive/parts").await;
    assert_error(response, StatusCode::CONFLICT, "invalid_move").await;
    let response = moving("c.gcode", "nowhere/c.gcode").await;
    assert_error(response, StatusCode::CONFLICT, "no_such_folder").await;
    let response = moving("c.gcode", "../../c.gcode").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_folder").await;
    let (_, after) = get_json(&app, &key, "/api/files?recursive=true").await;
    assert_eq!(after["files"], tree["files"]);
}

async fn download(app: &TestApp, key: &str, name: &str) -> Vec<u8> {
    let file = file_named(app, key, name).await.expect("the file");
    download_by_id(app, key, file["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn files_and_folders_copy_with_their_content_and_outlive_their_originals() {
    let (app, _, key) = spawn_app_with_key().await;
    parts_parts2_and_root(&app, &key).await;
    assert_eq!(
        create_folder(&app, &key, b"empty", b"parts").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        create_folder(&app, &key, b"archive", b"").await.status(),
        StatusCode::CREATED
    );

    // A file into an existing folder: the name stays, the original too.
    let response = copy(&app, &key, "c.gcode", "archive").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/api/files/local/archive/c.gcode"));
    assert_eq!(body(response).await["path"], "archive/c.gcode");
    assert_eq!(download(&app, &key, "archive/c.gcode").await, GCODE);
    let (status, _) = get_json(&app, &key, "/api/files/local/c.gcode").await;
    assert_eq!(status, StatusCode::OK);
    // To a new path.
    let response = copy(&app, &key, "c.gcode", "archive/d.gcode").await;
    assert_eq!(body(response).await["path"], "archive/d.gcode");
    // A folder with its files and its empty folders; `parts2` is not part of `parts`.
    let response = copy(&app, &key, "parts", "archive").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body(response).await["path"], "archive/parts");
    let (_, tree) = get_json(&app, &key, "/api/files/local/archive?recursive=true").await;
    let mut copied: Vec<(String, String)> = names(&tree["children"]);
    for child in tree["children"].as_array().unwrap() {
        if let Some(children) = child.get("children") {
            copied.extend(names(children));
        }
    }
    copied.sort();
    assert_eq!(
        copied,
        [
            ("folder".into(), "archive/parts".into()),
            ("folder".into(), "archive/parts/empty".into()),
            ("machinecode".into(), "archive/c.gcode".into()),
            ("machinecode".into(), "archive/d.gcode".into()),
            ("machinecode".into(), "archive/parts/a.gcode".into()),
        ],
        "{tree}"
    );

    // The copies do not depend on the originals.
    assert_eq!(
        delete_with_key(&app, &key, "/api/files/local/parts")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(download(&app, &key, "archive/parts/a.gcode").await, GCODE);

    // Refused, and nothing is copied (no record, no stored bytes): a taken name, into itself,
    // a missing parent, a hostile path, a missing source.
    let (_, before) = get_json(&app, &key, "/api/files?recursive=true").await;
    let stored = app.stored_files();
    let response = copy(&app, &key, "c.gcode", "archive").await;
    assert_error(response, StatusCode::CONFLICT, "already_exists").await;
    let response = copy(&app, &key, "archive", "archive/parts").await;
    assert_error(response, StatusCode::CONFLICT, "invalid_copy").await;
    let response = copy(&app, &key, "c.gcode", "nowhere/c.gcode").await;
    assert_error(response, StatusCode::CONFLICT, "no_such_folder").await;
    let response = copy(&app, &key, "c.gcode", "../../c.gcode").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_folder").await;
    let response = copy(&app, &key, "missing.gcode", "archive").await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = crate::pipeline::post_json(
        &app,
        &key,
        "/api/files/local/c.gcode",
        json!({ "command": "copy" }),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    let (_, after) = get_json(&app, &key, "/api/files?recursive=true").await;
    assert_eq!(after["files"], before["files"]);
    assert_eq!(app.stored_files(), stored);
}

#[tokio::test]
async fn a_copy_counts_against_the_quota_and_leaves_nothing_when_refused() {
    let quota = GCODE.len() as u64 * 3 / 2;
    let app = spawn_app_with(|c| c.limits.user_quota_bytes = quota).await;
    let (_, key) = app.admin_and_key().await;
    upload_into(&app, &key, "parts", "a.gcode").await;
    let stored = app.stored_files();
    let response = copy(&app, &key, "parts", "more").await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded").await;
    let response = copy(&app, &key, "parts/a.gcode", "b.gcode").await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded").await;
    assert_eq!(app.stored_files(), stored, "the copied bytes went again");
    let (status, _) = get_json(&app, &key, "/api/files/local/more").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_native_api_copies_files_and_folders() {
    use crate::pipeline::post_json;
    let (app, admin, key) = spawn_app_with_key().await;
    upload_into(&app, &key, "parts", "a.gcode").await;
    let original = file_named(&app, &key, "parts/a.gcode").await.unwrap();
    let id = original["id"].as_str().unwrap();

    let path = format!("/api/v1/files/{id}/copy");
    let response = post_json(&app, &key, &path, json!({ "destination": "b.gcode" })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let copy = body(response).await;
    assert_eq!(copy["name"], "b.gcode");
    assert_ne!(copy["id"], original["id"]);
    assert_eq!(copy["sha256"], original["sha256"]);
    assert_eq!(download(&app, &key, "b.gcode").await, GCODE);
    let response = post_json(&app, &key, &path, json!({ "destination": "b.gcode" })).await;
    assert_error(response, StatusCode::CONFLICT, "already_exists").await;
    let response = post_json(&app, &key, &path, json!({ "to": "c.gcode" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;

    let folder = json!({ "folder": "parts", "destination": "copies" });
    let response = post_json(&app, &key, "/api/v1/folders/copy", folder).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body(response).await, json!({ "folder": "copies" }));
    assert!(file_named(&app, &key, "copies/a.gcode").await.is_some());
    let missing = json!({ "folder": "nowhere", "destination": "copies2" });
    let response = post_json(&app, &key, "/api/v1/folders/copy", missing).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // Another user's file is as missing as one that never existed.
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    let response = post_json(&app, &bob_key, &path, json!({ "destination": "x.gcode" })).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

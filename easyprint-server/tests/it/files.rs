//! Uploads: strict multipart (the CVE-2025-48067 / CVE-2026-54134 family), size caps, names,
//! ownership, durability and downloads.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// (what, query string, content type, body, expected status, expected code)
type Case<'a> = (&'a str, &'a str, String, Vec<u8>, StatusCode, &'a str);

/// Each hostile variant must be refused with the given status and code, store nothing, leave
/// no temporary file, and not disturb a normal upload right after it.
#[tokio::test]
async fn hostile_upload_variants_are_rejected_and_normal_uploads_still_work() {
    let (app, _, key) = spawn_app_with_key().await;
    let secret = app.dir.path().join("secret.gcode");
    std::fs::write(&secret, b"SECRET").unwrap();
    let secret_path = secret.display().to_string();
    let secret_bytes = secret_path.as_bytes();

    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let file = file_part("cube.gcode");
    let crlf_name = format!(
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''a.gcode%0d%0a--{BOUNDARY}%0d%0aContent-Disposition:%20form-data%3B%20name=%22file.path%22%0d%0a%0d%0a{}",
        secret_path.replace('/', "%2F")
    );
    let query_injection = format!("?file.path={secret_path}&file.name=x.gcode");
    let cases: Vec<Case> = vec![
        (
            "internal field file.path",
            "",
            ct.clone(),
            multipart(&[(&file, GCODE), (&text_part("file.path"), secret_bytes)]).1,
            StatusCode::BAD_REQUEST,
            "unexpected_field",
        ),
        (
            "internal field file.name",
            "",
            ct.clone(),
            multipart(&[(&text_part("file.name"), b"x.gcode"), (&file, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "unexpected_field",
        ),
        (
            "only internal fields, no file part",
            "",
            ct.clone(),
            multipart(&[
                (&text_part("file.path"), secret_bytes),
                (&text_part("file.name"), b"x.gcode"),
            ])
            .1,
            StatusCode::BAD_REQUEST,
            "unexpected_field",
        ),
        (
            "internal field in the query string",
            &query_injection,
            ct.clone(),
            multipart(&[(&file, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "unexpected_query_parameter",
        ),
        (
            "path in the query string",
            "?path=/etc",
            ct.clone(),
            multipart(&[(&file, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "unexpected_query_parameter",
        ),
        (
            "urlencoded body with odd-case content type",
            "",
            "aPplicaTion/X-wWW-FOrm-uRLenCodEd".into(),
            format!("file.path={secret_path}&file.name=x.gcode").into_bytes(),
            StatusCode::BAD_REQUEST,
            "expected_multipart",
        ),
        (
            "CRLF and a forged part inside filename*",
            "",
            ct.clone(),
            multipart(&[(&crlf_name, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_file_name",
        ),
        (
            "obs-fold continuation line in a part header",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\";\r\n filename=\"x.gcode\"",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
        ),
        (
            "escaped quote smuggling a parameter",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\"; filename=\"x.gcode\\\"; name=\\\"file.path\"",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "unquoted value with a backslash",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=file; filename=x\\.gcode",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "repeated name parameter",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\"; name=\"file.path\"; filename=\"x.gcode\"",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "unknown disposition parameter",
            "",
            ct.clone(),
            multipart(&[(
                &format!("Content-Disposition: form-data; name=\"file\"; filename=\"x.gcode\"; path=\"{secret_path}\""),
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "two Content-Disposition headers in one part",
            "",
            ct.clone(),
            multipart(&[(
                &format!("{file}\r\nContent-Disposition: form-data; name=\"file.path\""),
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "the same Content-Disposition twice in one part",
            "",
            ct.clone(),
            multipart(&[(&format!("{file}\r\n{file}"), GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "bare LF between part headers",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\"; filename=\"x.gcode\"\nX: y",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
        ),
        (
            "unexpected part header",
            "",
            ct.clone(),
            multipart(&[(&format!("{file}\r\nX-File-Path: {secret_path}"), GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "base64 transfer encoding",
            "",
            ct.clone(),
            multipart(&[(
                &format!("{file}\r\nContent-Transfer-Encoding: base64"),
                b"RzI4Cg==",
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "non-UTF-8 filename* charset",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\"; filename*=ISO-8859-1''x.gcode",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_part_header",
        ),
        (
            "file part twice",
            "",
            ct.clone(),
            multipart(&[(&file, GCODE), (&file_part("other.gcode"), GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "duplicate_field",
        ),
        (
            "print field twice",
            "",
            ct.clone(),
            multipart(&[
                (&text_part("print"), b"false"),
                (&text_part("print"), b"true"),
                (&file, GCODE),
            ])
            .1,
            StatusCode::BAD_REQUEST,
            "duplicate_field",
        ),
        (
            "text field with a file name",
            "",
            ct.clone(),
            multipart(&[
                (
                    &format!("Content-Disposition: form-data; name=\"path\"; filename=\"{secret_path}\""),
                    b"",
                ),
                (&file, GCODE),
            ])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "file part without a file name",
            "",
            ct.clone(),
            multipart(&[(&text_part("file"), GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "folder path pointing outside",
            "",
            ct.clone(),
            multipart(&[(&text_part("path"), b"../../etc"), (&file, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_folder",
        ),
        (
            "NUL byte in the file name",
            "",
            ct.clone(),
            multipart(&[(
                "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''x%00.gcode",
                GCODE,
            )])
            .1,
            StatusCode::BAD_REQUEST,
            "invalid_file_name",
        ),
        (
            "userdata that is not JSON",
            "",
            ct.clone(),
            multipart(&[(&text_part("userdata"), b"{not json"), (&file, GCODE)]).1,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "no file at all",
            "",
            ct.clone(),
            multipart(&[(&text_part("print"), b"true")]).1,
            StatusCode::BAD_REQUEST,
            "no_file",
        ),
        (
            "type that a browser would render",
            "",
            ct.clone(),
            multipart(&[(&file_part("page.html"), b"<script>alert(1)</script>")]).1,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        ),
    ];
    for (what, query, content_type, body, status, code) in cases {
        let response = upload_raw(&app, &key, query, &content_type, body).await;
        assert_eq!(response.status(), status, "{what}");
        let value = crate::helpers::body(response).await;
        assert_eq!(value["code"], code, "{what}: {value}");
        assert_eq!(app.stored_files(), 0, "{what}: nothing stored");
        assert_eq!(app.temp_files(), 0, "{what}: no temporary file left");
        // A normal upload right after still works.
        let response = upload_gcode(&app, &key, "cube.gcode").await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{what}: normal upload"
        );
        let response = delete_with_key(&app, &key, "/api/files/local/cube.gcode").await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{what}: cleanup");
    }
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        b"SECRET",
        "host file untouched"
    );
    let (_, listing) = get_json(&app, &key, "/api/files").await;
    assert_eq!(listing["files"], json!([]));
}

#[tokio::test]
async fn traversal_names_are_reduced_to_a_display_name_and_stored_randomly() {
    let (app, _, key) = spawn_app_with_key().await;
    for (raw, shown) in [
        ("../../etc/passwd.gcode", "passwd.gcode"),
        ("..\\..\\win.gcode", "win.gcode"),
        ("/abs/path.gcode", "path.gcode"),
        ("%2e%2e%2fenc.gcode", "%2e%2e%2fenc.gcode"),
        (
            "<img src=x onerror=alert(1)>.stl",
            "<img src=x onerror=alert(1)>.stl",
        ),
    ] {
        let response = upload_gcode(&app, &key, raw).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{raw}");
        let value = body(response).await;
        assert_eq!(value["files"]["local"]["name"], shown, "{raw}");
    }
    // On disk: only random names with our own extensions, all inside uploads/.
    for entry in std::fs::read_dir(app.state.files.uploads_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (stem, ext) = name.split_once('.').unwrap();
        assert_eq!(stem.len(), 32, "{name}");
        assert!(stem.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert!(["gcode", "stl"].contains(&ext), "{name}");
    }
    assert!(!app.dir.path().join("etc").exists());
}

#[tokio::test]
async fn oversized_uploads_get_413_and_leave_nothing_behind() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = 64 * 1024).await;
    let (_, key) = app.admin_and_key().await;
    let big = vec![b'G'; 200 * 1024];
    let (ct, body) = multipart(&[(&file_part("big.gcode"), &big)]);
    let response = upload_raw(&app, &key, "", &ct, body.clone()).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.temp_files(), 0);
    assert_eq!(app.stored_files(), 0);

    // Chunked transfer without Content-Length is capped the same way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .post("/api/files/local")
        .header("x-api-key", &key)
        .header("content-type", &ct)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.temp_files(), 0);
    assert_eq!(app.stored_files(), 0);

    // Exactly at the cap is fine.
    let (ct, body) = multipart(&[(&file_part("fits.gcode"), &big[..64 * 1024])]);
    let response = upload_raw(&app, &key, "", &ct, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn users_see_only_their_own_files() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_user(&admin, "bob").await;
    let admin_key = app.api_key(&admin).await;
    let response = upload_gcode(&app, &admin_key, "mine.gcode").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let native = body(admin.get("/api/v1/files").await).await;
    let id = native[0]["id"].as_str().unwrap().to_owned();

    for (method, path) in [
        (Method::GET, "/api/files/local/mine.gcode".to_owned()),
        (Method::GET, "/downloads/files/local/mine.gcode".to_owned()),
        (Method::DELETE, "/api/files/local/mine.gcode".to_owned()),
        (Method::GET, format!("/api/v1/files/{id}")),
        (Method::GET, format!("/api/v1/files/{id}/download")),
        (Method::DELETE, format!("/api/v1/files/{id}")),
    ] {
        let response = bob.request(method.clone(), &path).send().await.unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let listing = body(bob.get("/api/files").await).await;
    assert_eq!(listing["files"], json!([]));
    // Bob may use the same name in his own namespace.
    let bob_key = app.api_key(&bob).await;
    assert_eq!(
        upload_gcode(&app, &bob_key, "mine.gcode").await.status(),
        StatusCode::CREATED
    );
    let response = admin
        .bare(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn same_name_replaces_unless_no_overwrite() {
    let (app, _, key) = spawn_app_with_key().await;
    assert_eq!(
        upload_gcode(&app, &key, "a.gcode").await.status(),
        StatusCode::CREATED
    );
    let (ct, body) = multipart(&[(&file_part("a.gcode"), b"G28 ; second\n")]);
    assert_eq!(
        upload_raw(&app, &key, "", &ct, body).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.stored_files(), 1, "replaced file removed from disk");
    let download = app
        .get("/downloads/files/local/a.gcode")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"G28 ; second\n");

    let (ct, body) = multipart(&[
        (&text_part("noOverwrite"), b"true"),
        (&file_part("a.gcode"), b"G28 ; third\n"),
    ]);
    let response = upload_raw(&app, &key, "", &ct, body).await;
    assert_error(response, StatusCode::CONFLICT, "file_exists").await;
    assert_eq!(app.stored_files(), 1);
    assert_eq!(app.temp_files(), 0);
}

#[tokio::test]
async fn downloads_are_attachments_that_are_never_sniffed() {
    let (app, _, key) = spawn_app_with_key().await;
    let name = "wü \"rfel\".gcode";
    let (ct, body) = multipart(&[(
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''w%C3%BC%20%22rfel%22.gcode",
        GCODE,
    )]);
    assert_eq!(
        upload_raw(&app, &key, "", &ct, body).await.status(),
        StatusCode::CREATED
    );
    let path = format!("/downloads/files/local/{}", "w%C3%BC%20%22rfel%22.gcode");
    let response = app
        .get(&path)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"w_ _rfel_.gcode\"; filename*=UTF-8''w%C3%BC%20%22rfel%22.gcode"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), GCODE);
    let (_, listing) = get_json(&app, &key, "/api/files/local").await;
    assert_eq!(listing["files"][0]["name"], name);
}

#[tokio::test]
async fn start_up_sweeps_what_a_crash_left_behind() {
    let (app, _, key) = spawn_app_with_key().await;
    assert_eq!(
        upload_gcode(&app, &key, "kept.gcode").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        upload_gcode(&app, &key, "lost.gcode").await.status(),
        StatusCode::CREATED
    );
    let files = &app.state.files;
    std::fs::write(files.tmp_dir().join("interrupted.part"), b"half").unwrap();
    std::fs::write(
        files
            .uploads_dir()
            .join("0123456789abcdef0123456789abcdef.gcode"),
        b"orphan",
    )
    .unwrap();
    let lost = app
        .state
        .db
        .call(|c| {
            Ok(c.query_row(
                "SELECT stored_name FROM files WHERE display_name = 'lost.gcode'",
                [],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
        .unwrap();
    std::fs::remove_file(files.path_of(&lost)).unwrap();

    let report = files.sweep(&app.state.db).unwrap();
    assert_eq!(report.temp_files, 1);
    assert_eq!(report.orphan_files, 1);
    assert_eq!(report.dangling_rows, 1);
    assert_eq!(app.temp_files(), 0);
    assert_eq!(app.stored_files(), 1);
    let (_, listing) = get_json(&app, &key, "/api/files").await;
    assert_eq!(listing["files"].as_array().unwrap().len(), 1);
    assert_eq!(listing["files"][0]["name"], "kept.gcode");
}

#[tokio::test]
async fn server_start_removes_interrupted_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("tmp")).unwrap();
    std::fs::write(data.join("tmp").join("x.part"), b"partial").unwrap();
    let app = spawn_app_with(|c| c.data_dir = data.clone()).await;
    assert_eq!(app.temp_files(), 0);
}

/// A client that starts an upload and stops sending holds a slot only until the idle timeout;
/// meanwhile uploads beyond the concurrency limit get 503.
#[tokio::test]
async fn stalled_uploads_time_out_and_concurrency_is_bounded() {
    let app = spawn_app_with(|c| {
        c.limits.max_concurrent_uploads = 1;
        c.limits.upload_idle_timeout_secs = 1;
    })
    .await;
    let (_, key) = app.admin_and_key().await;
    let (ct, body) = multipart(&[(&file_part("slow.gcode"), &[b'G'; 4096])]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(body[..2048].to_vec())).await.unwrap();
    let stalled = {
        let request = app
            .post("/api/files/local")
            .header("x-api-key", &key)
            .header("content-type", &ct)
            .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)));
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.temp_files() == 0 {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let response = upload_gcode(&app, &key, "other.gcode").await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;

    let response = stalled.await.unwrap();
    assert_error(response, StatusCode::REQUEST_TIMEOUT, "request_timeout").await;
    drop(tx);
    assert_eq!(app.temp_files(), 0);
    assert_eq!(app.stored_files(), 0);
    let response = upload_gcode(&app, &key, "other.gcode").await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Each user's uploads count against their quota (413 `quota_exceeded` naming it); another
/// user is unaffected, and deleting files frees the quota.
#[tokio::test]
async fn uploads_beyond_the_user_quota_are_refused_with_413() {
    let quota = 2 * GCODE.len() as u64 + 10;
    let app = spawn_app_with(|c| c.limits.user_quota_bytes = quota).await;
    let (admin, key) = app.admin_and_key().await;
    let bob = app.add_user(&admin, "bob").await;
    let bob_key = app.api_key(&bob).await;
    for name in ["a.gcode", "b.gcode"] {
        assert_eq!(
            upload_gcode(&app, &key, name).await.status(),
            StatusCode::CREATED
        );
    }
    let value = assert_error(
        upload_gcode(&app, &key, "c.gcode").await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
    )
    .await;
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains(&quota.to_string()),
        "{value}"
    );
    assert_eq!(app.temp_files(), 0);
    assert_eq!(app.stored_files(), 2);
    assert_eq!(
        upload_gcode(&app, &bob_key, "c.gcode").await.status(),
        StatusCode::CREATED
    );
    let response = delete_with_key(&app, &key, "/api/files/local/a.gcode").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        upload_gcode(&app, &key, "c.gcode").await.status(),
        StatusCode::CREATED
    );
}

/// Uploads never eat the disk space the queue and history need: below the configured floor
/// the answer is 507 `insufficient_storage`, and nothing is left behind.
#[tokio::test]
async fn uploads_that_would_cross_the_free_space_floor_get_507() {
    let app = spawn_app_with(|c| c.limits.min_free_bytes = u64::MAX / 2).await;
    let (_, key) = app.admin_and_key().await;
    let value = assert_error(
        upload_gcode(&app, &key, "a.gcode").await,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
    )
    .await;
    assert!(value["error"].as_str().unwrap().contains("min_free_bytes"));
    assert_eq!((app.temp_files(), app.stored_files()), (0, 0));
}

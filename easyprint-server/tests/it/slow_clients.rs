//! Slow-loris: raw TCP clients that dribble a request byte by byte are cut off after the
//! header or body deadline, while uploads keep their own (longer) idle limit.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `bytes` one at a time, `gap` apart, while reading whatever the server answers; returns
/// the answer once the server closes the connection (or `None` if it never did before the
/// bytes ran out).
async fn dribble(app: &TestApp, bytes: &[u8], gap: Duration) -> Option<String> {
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        // Ends at EOF or a reset: the server closed the connection.
        let _ = read.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    for &b in bytes {
        if reader.is_finished() || write.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(gap).await;
    }
    if reader.is_finished() {
        Some(reader.await.unwrap())
    } else {
        reader.abort();
        None
    }
}

fn slow_limits(c: &mut easyprint_server::config::Config) {
    c.limits.header_timeout_secs = 1;
    c.limits.body_timeout_secs = 1;
    c.limits.upload_idle_timeout_secs = 5;
}

#[tokio::test]
async fn a_client_dribbling_headers_is_disconnected() {
    let app = spawn_app_with(slow_limits).await;
    let request = format!(
        "GET /api/version HTTP/1.1\r\nHost: {}\r\n{}\r\n",
        app.addr,
        "X-Padding: slow\r\n".repeat(10)
    );
    // About 250 bytes at 50 ms: 12 s if the server waited for them all.
    let answer = dribble(&app, request.as_bytes(), Duration::from_millis(50)).await;
    let answer = answer.expect("the server cut the connection before the headers were complete");
    // Hyper closes without an answer or with 408; never a 200 for the dribbled request.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Everyone else is served.
    let response = app.get("/api/v1/setup").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_dribbling_a_json_body_gets_408() {
    let app = spawn_app_with(slow_limits).await;
    let body = br#"{"name": "admin", "password": "correct horse battery staple"}"#;
    let mut request = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        body.len()
    )
    .into_bytes();
    // Headers at once, then the body at 100 ms a byte (6 s in all).
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(&request).await.unwrap();
    request.clear();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = read.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    for &b in body.iter() {
        if reader.is_finished() || write.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reader.is_finished(), "the body was read to the end");
    let answer = reader.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn a_slow_but_steady_upload_outlives_the_body_deadline() {
    let app = spawn_app_with(slow_limits).await;
    let (_, key) = app.admin_and_key().await;
    let (ct, body) = multipart(&[(&file_part("slow.gcode"), GCODE)]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let request = app
        .post("/api/files/local")
        .header("x-api-key", &key)
        .header("content-type", &ct)
        .header("content-length", body.len())
        .body(reqwest::Body::wrap_stream(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )));
    let upload = tokio::spawn(async move { request.send().await.unwrap() });
    // Eight chunks 300 ms apart: 2.4 s, beyond the 1 s body deadline, within the upload's
    // 5 s idle limit.
    let started = Instant::now();
    for chunk in body.chunks(body.len().div_ceil(8)) {
        tx.send(Ok(chunk.to_vec())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(tx);
    let response = upload.await.unwrap();
    assert!(started.elapsed() > Duration::from_secs(1));
    assert_eq!(response.status(), StatusCode::CREATED);
}

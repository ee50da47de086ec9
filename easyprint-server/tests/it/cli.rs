//! The `easyprint` binary: user and key administration, and `serve` with a TOML config.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_easyprint");

fn run(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `easyprint serve` and returns it with the address it logged.
fn serve(config: &std::path::Path) -> (Served, String) {
    let mut command = Command::new(BIN);
    command.args(["serve", "--config"]).arg(config);
    serve_with(command)
}

/// Starts `command` (which runs `easyprint serve`) and returns it with the address it logged.
fn serve_with(mut command: Command) -> (Served, String) {
    let mut child = command
        .env("EASYPRINT_LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_owned();
            return (served, addr);
        }
        assert!(Instant::now() < deadline, "no listening line");
    }
    panic!("server exited before listening");
}

#[tokio::test]
async fn users_keys_and_serve_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let hash = run(&["user", "hash"], "configured password\n")
        .trim()
        .to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let config = dir.path().join("easyprint.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[[users]]\nname = \"carol\"\npassword_hash = {:?}\n",
            dir.path().join("data"),
            hash
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let out = run(
        &["user", "add", "--config", config_arg, "--admin", "admin"],
        "admin password\n",
    );
    assert!(out.contains("created user admin (admin: true)"), "{out}");
    let key = run(&["apikey", "--config", config_arg, "--user", "admin"], "")
        .trim()
        .to_owned();
    assert_eq!(key.len(), 64);

    let (_server, addr) = serve(&config);
    let http = reqwest::Client::new();
    let response = http
        .get(format!("http://{addr}/api/version"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The user declared in the config file was created at start-up.
    let response = http
        .post(format!("http://{addr}/api/v1/login"))
        .json(&json!({ "name": "carol", "password": "configured password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn a_bad_config_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = 5000\n").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid config file"), "{stderr}");
}

/// `easyprint slice` runs real CuraEngine; `easyprint gcode info` reads the result, as text
/// and as JSON.
#[test]
fn slice_then_gcode_info() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cube.stl");
    std::fs::write(&model, crate::pipeline::cube_stl(10.0)).unwrap();
    let out = dir.path().join("cube.gcode");
    let sliced = run(
        &[
            "slice",
            model.to_str().unwrap(),
            "--machine",
            "creality_ender3",
            "-s",
            "layer_height=0.25",
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    // A 10 mm cube at 0.25 mm: 40 layers.
    assert!(sliced.contains("40 layers"), "{sliced}");
    let info = run(&["gcode", "info", out.to_str().unwrap()], "");
    // First layer 0.2 mm (the machine's default), then 39 of 0.25 mm.
    assert!(
        info.contains("layers      40 (Z 0.20 to 9.95 mm)"),
        "{info}"
    );
    assert!(info.contains("sliced by   Cura"), "{info}");
    let json: serde_json::Value = serde_json::from_str(&run(
        &["gcode", "info", "--json", out.to_str().unwrap()],
        "",
    ))
    .unwrap();
    assert_eq!(json["layer_count"], 40);
    assert!(json["estimated_time"].as_f64().unwrap() > 0.0);
    assert!(json.get("checkpoints").is_none());

    // A bad setting and a missing file are clear errors, not panics.
    let bad = Command::new(BIN)
        .args(["slice", model.to_str().unwrap(), "-s", "no_such_setting=1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no_such_setting"));
    let missing = Command::new(BIN)
        .args(["gcode", "info", "/nonexistent/x.gcode"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /nonexistent/x.gcode"));
}

/// A server whose writes hit "no room" mid-upload answers 507 `insufficient_storage`, keeps
/// nothing of the upload and goes on serving. The server runs as a child process under a
/// file-size limit (`ulimit -f`, SIGXFSZ ignored, so a write past it fails with EFBIG the way
/// a full disk fails with ENOSPC), which needs no mounted filesystem.
#[tokio::test]
async fn a_write_that_finds_no_room_is_507_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("easyprint.toml");
    std::fs::write(&config, format!("data_dir = {data:?}\n")).unwrap();
    let config_arg = config.to_str().unwrap();
    run(
        &["user", "add", "--config", config_arg, "--admin", "admin"],
        "admin password\n",
    );
    let key = run(&["apikey", "--config", config_arg, "--user", "admin"], "")
        .trim()
        .to_owned();

    // 4096 blocks: 2 MiB (dash) or 4 MiB (bash); the database stays far below either.
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("ulimit -f 4096 && trap '' XFSZ && exec \"$0\" serve --config \"$1\"")
        .arg(BIN)
        .arg(&config);
    let (_server, addr) = serve_with(command);
    let response = raw_upload(&addr, &key, "big.gcode", 8 << 20).await;
    assert!(
        response.starts_with("HTTP/1.1 507 "),
        "{}",
        &response[..response.len().min(500)]
    );
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["code"], "insufficient_storage", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("storage is full"),
        "{error}"
    );
    // Nothing half-written stays, and the server goes on working.
    let leftovers = std::fs::read_dir(data.join("tmp")).unwrap().count()
        + std::fs::read_dir(data.join("uploads")).unwrap().count();
    assert_eq!(leftovers, 0);
    let response = raw_upload(&addr, &key, "small.gcode", 1000).await;
    assert!(response.starts_with("HTTP/1.1 201 "), "{response}");
}

/// POSTs a multipart upload of `size` bytes over a plain TCP connection and returns the whole
/// response. The server answers a failed upload before the body is through; an HTTP client
/// library would report the reset of its unfinished send instead of that answer, so the body
/// is written on its own task and write errors are ignored, as a browser does.
async fn raw_upload(addr: &str, key: &str, name: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BOUNDARY: &str = "easyprintFullDisk";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(b"G28\n".repeat(size / 4));
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").into_bytes());
    let head = format!(
        "POST /api/files/local HTTP/1.1\r\nHost: {addr}\r\nX-Api-Key: {key}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut response = Vec::new();
    // The server closes the connection after its answer (`Connection: close`, or because the
    // rest of the body was refused).
    let _ = tokio::time::timeout(Duration::from_secs(30), read.read_to_end(&mut response)).await;
    drop(writer.await);
    String::from_utf8_lossy(&response).into_owned()
}

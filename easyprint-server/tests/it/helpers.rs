//! `spawn_app()`: a real server on 127.0.0.1 port 0 with a fresh data directory, and a tiny
//! browser-like client that keeps its cookies explicitly (so CSRF tests can tamper with them).

use std::net::SocketAddr;

use easyprint_server::config::Config;
use easyprint_server::{AppState, Server};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A fresh server with its administrator set up: the app, the administrator's browser and an
/// API key of theirs.
pub async fn spawn_app_with_key() -> (TestApp, Browser, String) {
    let app = spawn_app().await;
    let (admin, key) = app.admin_and_key().await;
    (app, admin, key)
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    start(config, dir).await
}

/// The configuration of a test server keeping its data under `dir`.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    // Each of the many test servers would read Cura's definitions (a second of CPU): the test
    // of preloading turns it back on.
    config.slicer.preload_profiles = false;
    config
}

/// A server on `config` as is (for restarts on the same data directory).
pub async fn spawn_app_from(config: Config) -> TestApp {
    start(config, tempfile::tempdir().unwrap()).await
}

async fn start(config: Config, dir: TempDir) -> TestApp {
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let state = server.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        state,
        // No idle keep-alive connections: a graceful shutdown would wait for them.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Shuts the server down the way a signal does and waits until it has stopped (printers
    /// closed, workers gone).
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        let server = self.server.take().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), server)
            .await
            .expect("server stops within 20 s")
            .unwrap()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    /// Runs first-run setup and returns the admin's browser.
    pub async fn setup_admin(&self) -> Browser {
        let response = self
            .post("/api/v1/setup")
            .json(&json!({ "name": ADMIN, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        Browser::from_response(self, &response)
    }

    /// Runs first-run setup; returns the administrator's browser and an API key of theirs.
    pub async fn admin_and_key(&self) -> (Browser, String) {
        let admin = self.setup_admin().await;
        let key = self.api_key(&admin).await;
        (admin, key)
    }

    /// Logs in and returns the browser.
    pub async fn login(&self, name: &str, password: &str) -> Browser {
        let response = self
            .post("/api/v1/login")
            .json(&json!({ "name": name, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login {name}");
        Browser::from_response(self, &response)
    }

    /// Creates a non-admin user through the admin's session and logs them in.
    pub async fn add_user(&self, admin: &Browser, name: &str) -> Browser {
        let response = admin
            .request(Method::POST, "/api/v1/users")
            .json(&json!({ "name": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        self.login(name, PASSWORD).await
    }

    /// A fresh API key for the browser's user.
    pub async fn api_key(&self, browser: &Browser) -> String {
        let response = browser
            .request(Method::POST, "/api/v1/keys")
            .json(&json!({ "label": "test", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        body(response).await["api_key"].as_str().unwrap().to_owned()
    }

    /// Files currently in the temporary upload directory.
    pub fn temp_files(&self) -> usize {
        std::fs::read_dir(self.state.files.tmp_dir())
            .unwrap()
            .count()
    }

    /// Files currently in the uploads directory.
    pub fn stored_files(&self) -> usize {
        std::fs::read_dir(self.state.files.uploads_dir())
            .unwrap()
            .count()
    }
}

/// A logged-in browser: session and CSRF cookies kept by hand.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
    pub session: String,
    pub csrf: String,
}

impl Browser {
    pub fn from_response(app: &TestApp, response: &Response) -> Browser {
        Browser {
            base: app.url(""),
            http: app.http.clone(),
            session: set_cookie(response, "easyprint_session").expect("session cookie"),
            csrf: set_cookie(response, "csrf_token").expect("csrf cookie"),
        }
    }

    /// A request with both cookies and the matching `X-CSRF-Token`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).header("x-csrf-token", &self.csrf)
    }

    /// A GET with the cookies (safe methods need no CSRF header).
    pub async fn get(&self, path: &str) -> Response {
        self.bare(Method::GET, path).send().await.unwrap()
    }

    /// A request with both cookies but no CSRF header.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header(
                "cookie",
                format!(
                    "easyprint_session={}; csrf_token={}",
                    self.session, self.csrf
                ),
            )
    }
}

/// Value of a cookie set by the response.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    set_cookie_line(response, name)
        .map(|line| line.split(';').next().unwrap()[name.len() + 1..].to_owned())
}

/// The whole `Set-Cookie` line for a cookie.
pub fn set_cookie_line(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

pub async fn body(response: Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts status and error code of an error response.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let value = body(response).await;
    assert_eq!(value["code"], code, "{value}");
    assert!(value["error"].as_str().is_some_and(|e| !e.is_empty()));
    value
}

pub const BOUNDARY: &str = "----easyprintTestBoundary7MA4YWxk";

/// A raw multipart body from `(part headers, part body)` pairs, so tests can send exactly the
/// bytes a hostile client would.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Headers of a file part.
pub fn file_part(name: &str) -> String {
    format!(
        "Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream"
    )
}

/// Headers of a text part.
pub fn text_part(name: &str) -> String {
    format!("Content-Disposition: form-data; name=\"{name}\"")
}

pub const GCODE: &[u8] = b"; generated by a test\nG28\nG1 X10 Y10 F3000\nM104 S0\n";

/// POSTs a raw body to `/api/files/local` with an API key.
pub async fn upload_raw(
    app: &TestApp,
    key: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Response {
    app.post(&format!("/api/files/local{query}"))
        .header("x-api-key", key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Uploads a G-code file the ordinary way and returns the response.
pub async fn upload_gcode(app: &TestApp, key: &str, name: &str) -> Response {
    let (ct, body) = multipart(&[(&file_part(name), GCODE)]);
    upload_raw(app, key, "", &ct, body).await
}

/// GET with an API key; status and JSON body.
pub async fn get_json(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).header("x-api-key", key).send().await.unwrap();
    let status = response.status();
    (status, body(response).await)
}

/// DELETE with an API key.
pub async fn delete_with_key(app: &TestApp, key: &str, path: &str) -> Response {
    app.http
        .delete(app.url(path))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// A browser request with a JSON body (cookies and CSRF header included).
pub async fn send(browser: &Browser, method: Method, path: &str, body: Value) -> Response {
    browser
        .request(method, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The bytes of the user's file `id` (native download).
pub async fn download_by_id(app: &TestApp, key: &str, id: &str) -> Vec<u8> {
    let response = app
        .get(&format!("/api/v1/files/{id}/download"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// The user's file called `name` (native API JSON), if any.
pub async fn file_named(app: &TestApp, key: &str, name: &str) -> Option<Value> {
    let (_, files) = get_json(app, key, "/api/v1/files").await;
    files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
}

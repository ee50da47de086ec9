//! OctoPrint as a peer measured in the same run, through the scripts of
//! `../shared/peers/octoprint/` (`start.sh`, `stop.sh`): the bench names that directory with
//! `--octoprint DIR` or `OCTOPRINT_PEER=DIR`. `OCTO_VENV` and `OCTO_BASE` pass through to the
//! scripts; the port is a free one chosen here.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The peer scripts' directory from `--octoprint DIR` or `OCTOPRINT_PEER`, if given.
pub fn peer_dir_from_args() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--octoprint")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("OCTOPRINT_PEER").ok())
        .map(PathBuf::from)
}

/// A running OctoPrint, stopped on drop.
pub struct OctoPrint {
    scripts: PathBuf,
    base: PathBuf,
    /// Its address.
    pub addr: SocketAddr,
    /// Its API key.
    pub key: String,
    /// Process id (for RSS).
    pub pid: u32,
    /// Process start to the first answer of `/api/version`, as `start.sh` measured it
    /// (polling every 0.1 s).
    pub startup: Duration,
}

impl OctoPrint {
    /// Starts OctoPrint fresh (stopping one the scripts left running) on a free port.
    pub fn start(scripts: &Path) -> Result<OctoPrint, String> {
        if !scripts.join("start.sh").exists() {
            return Err(format!("no start.sh in {}", scripts.display()));
        }
        let base = std::env::var("OCTO_BASE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("easyprint-bench-octoprint"));
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?;
        let run = |script: &str| {
            Command::new("bash")
                .arg(scripts.join(script))
                .env("OCTO_BASE", &base)
                .env("OCTO_PORT", addr.port().to_string())
                .output()
                .map_err(|e| format!("{script}: {e}"))
        };
        run("stop.sh")?;
        let out = run("start.sh")?;
        if !out.status.success() {
            return Err(format!(
                "start.sh failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let key = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_owned();
        let read = |name: &str| std::fs::read_to_string(base.join(name)).unwrap_or_default();
        let pid = read("octoprint.pid")
            .trim()
            .parse()
            .map_err(|_| "no pid file")?;
        let startup = read("startup_seconds")
            .trim()
            .parse()
            .map_err(|_| "no startup_seconds")?;
        Ok(OctoPrint {
            scripts: scripts.to_owned(),
            base,
            addr,
            key,
            pid,
            startup: Duration::from_secs_f64(startup),
        })
    }

    /// Connects OctoPrint's virtual printer and waits until it is operational.
    pub async fn connect_virtual_printer(&self, http: &reqwest::Client) -> Result<(), String> {
        self.post(
            http,
            "/api/connection",
            json!({ "command": "connect", "port": "VIRTUAL", "baudrate": 115200 }),
        )
        .await?;
        self.wait_state(http, |s| s.starts_with("Operational"))
            .await
    }

    /// Uploads `gcode` and prints it; returns once OctoPrint says it is printing.
    pub async fn print(&self, http: &reqwest::Client, gcode: String) -> Result<(), String> {
        let form = reqwest::multipart::Form::new().text("print", "true").part(
            "file",
            reqwest::multipart::Part::bytes(gcode.into_bytes()).file_name("bench.gcode"),
        );
        let response = http
            .post(format!("http://{}/api/files/local", self.addr))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("upload: {}", response.status()));
        }
        self.wait_state(http, |s| s.starts_with("Printing")).await
    }

    /// Cancels the print and waits until the printer is operational again.
    pub async fn cancel(&self, http: &reqwest::Client) -> Result<(), String> {
        self.post(http, "/api/job", json!({ "command": "cancel" }))
            .await?;
        self.wait_state(http, |s| s.starts_with("Operational"))
            .await
    }

    async fn post(&self, http: &reqwest::Client, path: &str, body: Value) -> Result<(), String> {
        let response = http
            .post(format!("http://{}{path}", self.addr))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {path}: {}", response.status()))
        }
    }

    async fn wait_state(
        &self,
        http: &reqwest::Client,
        done: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let state: Value = http
                .get(format!("http://{}/api/connection", self.addr))
                .header("x-api-key", &self.key)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let text = state["current"]["state"].as_str().unwrap_or("");
            if done(text) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("OctoPrint stayed {text:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OctoPrint {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.scripts.join("stop.sh"))
            .env("OCTO_BASE", &self.base)
            .output();
    }
}

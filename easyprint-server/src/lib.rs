//! `easyprint-server`: the reference host that composes the easyprint crates into one product,
//! with a native JSON API and an OctoPrint-compatible subset for slicers and apps.
//!
//! This crate is deliberately thin: protocol, G-code, slicing and queue logic live in the
//! library crates; here are HTTP, authentication, storage of uploads and fan-out to browsers.
//!
//! # Layout
//!
//! - [`config`]: TOML configuration with `EASYPRINT_*` environment overrides.
//! - [`error`]: [`ApiError`], the one error type of every handler, and its JSON shape.
//! - [`db`]: the server's SQLite database (WAL, versioned migrations).
//! - [`auth`]: API keys, cookie sessions with CSRF protection, roles, login throttling.
//! - [`files`]: strict upload parsing, durable storage under random names, per-user records.
//! - [`printers`]: one easyprint-marlin handle per configured printer (serial or simulated),
//!   typed commands, WebSocket feeds.
//! - [`pipeline`]: upload → slice (easyprint-slicer) → queue (easyprint-queue) → stream, with
//!   easyprint-gcode's analysis for estimates and ETAs.
//! - [`preview`]: layer-by-layer G-code preview (layer index per file, one layer's moves).
//! - [`cache`]: per-content caches (analyses, layer indexes).
//! - [`api`]: the native REST API under `/api/v1`.
//! - [`octoprint`]: the OctoPrint-compatible subset for slicers and OctoPrint clients.
//! - [`ws`]: the WebSocket hub (`/api/ws`): topics, snapshots, bounded per-client queues.
//! - [`web`]: login page, placeholder dashboard, OpenAPI document and `/api/docs`.
//! - [`server`]: [`app`] builds the router; [`Server`] binds and runs it.
//! - [`serve`]: the HTTP/1.1 accept loop with header and body deadlines (slow-loris).
//!
//! # Running
//!
//! A server on a free port with its data in a temporary directory, asked whether first-run
//! setup is needed (it is: no account exists yet), then shut down; the `easyprint` binary does
//! the same with a configuration file and Ctrl-C:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use easyprint_server::{config::Config, Server};
//!
//! let data = tempfile::tempdir()?;
//! let config = Config {
//!     listen: "127.0.0.1:0".parse()?,
//!     data_dir: data.path().to_owned(),
//!     ..Config::default()
//! };
//! let server = Server::bind(config).await?;
//! let base = format!("http://{}", server.local_addr());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(server.run(async {
//!     let _ = stopped.await;
//! }));
//!
//! let setup: serde_json::Value = reqwest::get(format!("{base}/api/v1/setup")).await?.json().await?;
//! assert_eq!(setup["needed"], true);
//! // Everything else needs a session or an API key.
//! let denied = reqwest::get(format!("{base}/api/v1/jobs")).await?;
//! assert_eq!(denied.status(), 401);
//!
//! let _ = stop.send(());
//! running.await??;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod octoprint;
pub mod pipeline;
pub mod preview;
pub mod printers;
pub mod serve;
pub mod server;
pub mod state;
pub mod web;
pub mod ws;

pub use error::ApiError;
pub use server::{app, Server};
pub use state::AppState;

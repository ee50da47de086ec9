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
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = easyprint_server::config::Config::default();
//! let server = easyprint_server::Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(std::future::pending()).await?;
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

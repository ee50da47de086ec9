//! Building the router and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::rate_limit::LoginLimiter;
use crate::auth::{authenticate, require_principal, secrets, store};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::error::{log_internal_errors, ApiError};
use crate::files::store::FileStore;
use crate::pipeline::JobQueue;
use crate::printers::PrinterRegistry;
use crate::serve::{body_deadline, serve};
use crate::state::{AppState, Shared};
use crate::ws::hub::Hub;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory could not be created or swept.
    #[error("cannot prepare data directory {0}")]
    DataDir(String, #[source] std::io::Error),
    /// The database could not be opened.
    #[error("cannot open database")]
    Db(#[from] DbError),
    /// Start-up housekeeping on the database failed.
    #[error("database start-up task failed")]
    Housekeeping(#[source] ApiError),
    /// A user in the configuration is invalid.
    #[error("configured user {0:?}: {1}")]
    ConfiguredUser(String, &'static str),
    /// The job queue could not be opened or recovered.
    #[error("cannot open the job queue")]
    Queue(#[from] easyprint_queue::StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}")]
    Bind(SocketAddr, #[source] std::io::Error),
}

/// Builds the whole router.
///
/// Every route is behind [`require_principal`] (default-deny) except the explicitly public
/// ones: login, first-run setup, the login page and its assets, and the app-key handshake.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .merge(crate::api::router())
        .merge(crate::octoprint::router())
        .merge(crate::ws::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(from_fn(require_principal));
    let public = Router::new()
        .merge(crate::api::public_router())
        .merge(crate::octoprint::public_router())
        .merge(crate::web::public_router());
    // Layers wrap from the inside out: the body limit is closest to the handlers, error logging
    // is outermost so it sees every response.
    Router::new()
        .merge(protected)
        .merge(public)
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes)) // <- inner
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn_with_state(state.clone(), body_deadline))
        .layer(from_fn(log_internal_errors)) // <- outer
        .with_state(state)
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Prepares the data directory and database, then binds the listen address.
    ///
    /// Start-up stays cheap on purpose (no scanning of file contents, no network): the first
    /// request is answered within milliseconds of the process starting.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let state = build_state(config)?;
        let addr = state.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Bind(addr, e))?;
        Ok(Server { listener, state })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Starts the printers and workers, serves until `shutdown` completes, then finishes
    /// in-flight requests, stops the workers and closes the printers (a running print stops
    /// where it is and shows as interrupted at the next start).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::pipeline::start(&self.state);
        let router = app(self.state.clone());
        let header_timeout =
            std::time::Duration::from_secs(self.state.config.limits.header_timeout_secs.max(1));
        let served = serve(self.listener, router, header_timeout, shutdown).await;
        self.state.shutdown.cancel();
        self.state.printers.shutdown().await;
        served
    }
}

/// Opens the database and storage and seeds configured users.
pub fn build_state(config: Config) -> Result<AppState, StartError> {
    let data_dir = config.data_dir.clone();
    let dir_err = |e| StartError::DataDir(data_dir.display().to_string(), e);
    std::fs::create_dir_all(&data_dir).map_err(dir_err)?;
    let db = Db::open(&data_dir.join("easyprint.sqlite"))?;
    let files = FileStore::open(&data_dir).map_err(dir_err)?;
    let swept = files.sweep(&db).map_err(StartError::Housekeeping)?;
    if swept != Default::default() {
        tracing::warn!(?swept, "cleaned up after an interrupted run");
    }
    for user in &config.users {
        store::validate_user_name(&user.name)
            .map_err(|_| StartError::ConfiguredUser(user.name.clone(), "invalid name"))?;
        if !secrets::is_valid_password_hash(&user.password_hash) {
            return Err(StartError::ConfiguredUser(
                user.name.clone(),
                "password_hash is not an argon2 PHC string",
            ));
        }
        let created = db.call_blocking(|conn| {
            match store::insert_user(conn, &user.name, &user.password_hash, user.admin) {
                Ok(_) => Ok(true),
                Err(ApiError::Conflict { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        });
        if created.map_err(StartError::Housekeeping)? {
            tracing::info!(user = %user.name, "created configured user");
        }
    }
    let stored = db
        .call_blocking(|c| crate::printers::store::load(c))
        .map_err(StartError::Housekeeping)?;
    let printer_configs = crate::printers::store::merge(&config.printers, stored);
    let printers = PrinterRegistry::from_config(&printer_configs);
    crate::octoprint::current::restore(&db, &printers).map_err(StartError::Housekeeping)?;
    let queue = JobQueue::open(&data_dir.join("queue.sqlite"))?;
    // Leases of printers removed since are released too.
    let ids: Vec<String> = printer_configs
        .iter()
        .chain(&config.printers)
        .map(|p| p.id.clone())
        .collect();
    for job in queue.recover(&ids)? {
        tracing::warn!(
            job = job.id.0,
            state = job.state.as_str(),
            "job left over from the previous run"
        );
    }
    for handle in printers.handles() {
        handle.set_last_job(queue.last_print_blocking(handle.id())?);
    }
    Ok(AppState::new(Shared {
        db,
        files,
        login_limiter: Mutex::new(LoginLimiter::new(10_000)),
        app_key_limiter: Mutex::new(LoginLimiter::new(10_000)),
        password_hashing: Semaphore::new(2),
        uploads: Semaphore::new(config.limits.max_concurrent_uploads),
        printers,
        app_keys: Default::default(),
        queue,
        analyses: Default::default(),
        layer_indexes: crate::cache::ContentCache::new(16),
        revocations: Default::default(),
        slicing_wake: Default::default(),
        queue_republish: Default::default(),
        slicing: Default::default(),
        profiles: Default::default(),
        shutdown: Default::default(),
        hub: Hub::new(config.limits.max_ws_clients, config.limits.ws_client_queue),
        config,
    }))
}

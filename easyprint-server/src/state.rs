//! Shared state handed to every handler.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::rate_limit::LoginLimiter;
use crate::auth::revocation::Revocations;
use crate::cache::ContentCache;
use crate::config::Config;
use crate::db::Db;
use crate::files::store::FileStore;
use crate::octoprint::appkeys::AppKeyRequests;
use crate::pipeline::analysis::AnalysisCache;
use crate::pipeline::profiles::Profiles;
use crate::pipeline::slicing::CurrentSlice;
use crate::pipeline::JobQueue;
use crate::preview::LayerIndex;
use crate::printers::PrinterRegistry;
use crate::ws::hub::Hub;

/// Cheap-to-clone handle to [`Shared`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// Everything the server shares between requests.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the server was started with.
    pub config: Config,
    /// The server database.
    pub db: Db,
    /// Upload storage.
    pub files: FileStore,
    /// Failed-login history per client address.
    pub login_limiter: Mutex<LoginLimiter>,
    /// App-key requests per client address (anyone may ask, so asking is throttled like a
    /// failed login, as OctoPrint does).
    pub app_key_limiter: Mutex<LoginLimiter>,
    /// Bounds concurrent argon2 computations (each needs ~19 MiB), keeping memory flat under a
    /// login flood.
    pub password_hashing: Semaphore,
    /// Bounds uploads in progress (each holds a file descriptor and disk space).
    pub uploads: Semaphore,
    /// Configured printers.
    pub printers: PrinterRegistry,
    /// Live-update fan-out to WebSocket clients.
    pub hub: Hub,
    /// Ended credentials, so connections opened with them close.
    pub revocations: Revocations,
    /// Pending app-key requests (OctoPrint's app-keys handshake).
    pub app_keys: AppKeyRequests,
    /// The job queue (easyprint-queue, `data/queue.sqlite`).
    pub queue: JobQueue,
    /// G-code analyses by content hash.
    pub analyses: AnalysisCache,
    /// Layer-preview indexes by content hash.
    pub layer_indexes: ContentCache<LayerIndex>,
    /// Asks the queue's WebSocket feed to republish every unfinished job (printers came or
    /// went, which changes whether jobs are `blocked`).
    pub queue_republish: Notify,
    /// Wakes the slicing worker when a model job is queued.
    pub slicing_wake: Notify,
    /// The slice in progress, so that cancelling its job stops the engine.
    pub slicing: Mutex<Option<CurrentSlice>>,
    /// The slicer's machine and quality catalogue.
    pub profiles: Profiles,
    /// Cancelled when the server shuts down; background workers stop.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

//! The print pipeline: upload → (slice) → queue → stream → history.
//!
//! Jobs live in easyprint-queue's SQLite store (`data/queue.sqlite`). One slicing worker
//! ([`slicing`]) takes model jobs one at a time and turns them into stored G-code files; one
//! runner per printer ([`runner`]) claims ready jobs, streams them through the printer's
//! easyprint-marlin handle and writes progress, completion or failure back. On start-up every
//! lease a previous run of this server held is released, so a print that was running shows as
//! `interrupted` and waits for a person — it is never resumed on its own.

pub mod analysis;
pub mod control;
pub mod resume;
pub mod runner;
pub mod slicing;

use std::sync::Arc;
use std::time::Duration;

use easyprint_queue::{
    ContentHash, Job, JobSource, NewJob, Requirements, SourceKind, SqliteOptions, SqliteStore,
    Store, StoreError, Target, Timestamp,
};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::files::names::FileKind;
use crate::files::store::FileRecord;
use crate::state::AppState;

/// Worker name of the slicing worker.
pub const SLICING_WORKER: &str = "easyprint/slicer";

/// Worker name of the runner of printer `id`.
pub fn print_worker(id: &str) -> String {
    format!("easyprint/printer/{id}")
}

/// The job queue, with its blocking store calls moved off the async runtime.
#[derive(Debug, Clone)]
pub struct JobQueue {
    store: Arc<SqliteStore>,
}

/// Milliseconds since the Unix epoch, the queue's clock.
pub fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(millis)
}

impl JobQueue {
    /// Opens (creating) the queue database.
    pub fn open(path: &std::path::Path) -> Result<JobQueue, StoreError> {
        Ok(JobQueue {
            store: Arc::new(SqliteStore::open(path, SqliteOptions::default())?),
        })
    }

    /// Runs one store operation on a blocking thread with the current time.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteStore, Timestamp) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store, now()))
            .await
            .map_err(ApiError::internal)?
            .map_err(store_error)
    }

    /// Releases every lease a previous run of this server held: prints become `interrupted`,
    /// slices go back to `queued`. Returns the jobs changed.
    pub fn recover(&self, printers: &[String]) -> Result<Vec<Job>, StoreError> {
        let now = now();
        let mut changed = self.store.release_worker(SLICING_WORKER, now)?;
        for id in printers {
            changed.extend(self.store.release_worker(&print_worker(id), now)?);
        }
        changed.extend(self.store.expire_leases(now)?);
        Ok(changed)
    }
}

/// Maps queue errors to API errors with stable codes.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::NotFound("job"),
        StoreError::Transition { .. } => ApiError::conflict("invalid_transition", e.to_string()),
        StoreError::LeaseLost { .. } => ApiError::conflict("lease_lost", e.to_string()),
        StoreError::InvalidJob(_) | StoreError::InvalidArgument { .. } => {
            ApiError::bad_request("invalid_job", e.to_string())
        }
        StoreError::Resume { .. } | StoreError::NoResumeRecord(_) => {
            ApiError::conflict("cannot_resume", e.to_string())
        }
        StoreError::PrinterMismatch { .. } => ApiError::conflict("printer_mismatch", e.to_string()),
        other => ApiError::internal(other),
    }
}

/// Adds a job printing (after slicing, for models) `file` for `owner`, on `printer` if given.
pub async fn enqueue_file(
    state: &AppState,
    owner: &str,
    file: &FileRecord,
    printer: Option<String>,
) -> Result<Job, ApiError> {
    let kind = match file.kind {
        FileKind::Gcode => SourceKind::Gcode,
        FileKind::Model(_) => SourceKind::Model,
    };
    let hash = ContentHash::parse(&file.sha256).map_err(ApiError::internal)?;
    let mut job = NewJob::new(
        owner,
        JobSource {
            hash,
            file_name: file.display_name.clone(),
            kind,
        },
    );
    job.target = match printer {
        Some(id) => Target::Printer(id),
        None => Target::Any(Requirements::default()),
    };
    // Slices yield to prints: a model job is claimed by the slicer, never by a printer, so a
    // lower priority only orders it behind G-code uploaded at the same time.
    if kind == SourceKind::Model {
        job.priority = -1;
    }
    let job = state
        .queue
        .call(move |store, now| store.enqueue(&job, now))
        .await?;
    queue_changed(state);
    Ok(job)
}

/// Wakes the workers and tells WebSocket clients the queue changed.
pub fn queue_changed(state: &AppState) {
    state.slicing_wake.notify_one();
    state.printers.wake_all();
    state.hub.publish(
        crate::ws::hub::Topic::Queue,
        "queue",
        crate::ws::hub::Audience::Everyone,
        &json!({ "changed": now().0 }),
    );
}

/// A job as the native API shows it.
pub fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id.0,
        "owner": job.owner,
        "file": job.source.file_name,
        "kind": job.source.kind.as_str(),
        "state": job.state.as_str(),
        "printer": job.lease.as_ref().and_then(|l| l.printer.clone()).or(match &job.target {
            Target::Printer(id) => Some(id.clone()),
            _ => None,
        }),
        "gcode_sha256": job.gcode.as_ref().map(|h| h.as_str().to_owned()),
        "priority": job.priority,
        "attempts": job.attempts,
        "failure": job.failure,
        "created_at": job.created_at.0,
        "finished_at": job.finished_at.map(|t| t.0),
    })
}

/// The analysis of a G-code file (computed once per content), `None` for models.
pub async fn file_analysis(
    state: &AppState,
    file: &FileRecord,
) -> Result<Option<Arc<analysis::FileAnalysis>>, ApiError> {
    if !matches!(file.kind, FileKind::Gcode) {
        return Ok(None);
    }
    let path = state.files.path_of(&file.stored_name);
    Ok(Some(state.analyses.get(&file.sha256, path).await?))
}

/// The lease length of prints and slices; runners renew at a third of it.
pub const LEASE: Duration = Duration::from_secs(60);

/// Starts the workers and connects printers marked `autoconnect`.
pub fn start(state: &AppState) {
    for handle in state.printers.handles() {
        tokio::spawn(runner::run_printer(state.clone(), handle.clone()));
        if handle.config.autoconnect {
            let (state, handle) = (state.clone(), handle.clone());
            tokio::spawn(async move {
                if let Err(e) = handle.connect(&state).await {
                    tracing::warn!(printer = %handle.id(), error = %e, "autoconnect failed");
                }
            });
        }
    }
    tokio::spawn(slicing::run_slicer(state.clone()));
}

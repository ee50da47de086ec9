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
pub mod feed;
pub mod profiles;
pub mod resume;
pub mod runner;
pub mod slicing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use easyprint_queue::{
    ContentHash, Job, JobFilter, JobSource, JobState, NewJob, Requirements, SourceKind,
    SqliteOptions, SqliteStore, Store, StoreError, Target, Timestamp,
};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::files::names::FileKind;
use crate::files::store::FileRecord;
use crate::printers::{LastJob, PrinterHandle};
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

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

    /// Live changes to jobs (see [`feed`]).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<easyprint_queue::Change> {
        self.store.subscribe_async()
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

    /// Printer `id`'s latest ended print, blocking (start-up; handlers use [`refresh_last_job`]).
    pub fn last_print_blocking(&self, printer: &str) -> Result<Option<LastJob>, StoreError> {
        last_print(&self.store, printer)
    }
}

fn last_print(store: &SqliteStore, printer: &str) -> Result<Option<LastJob>, StoreError> {
    Ok(store
        .history(&LastJob::filter(printer))?
        .first()
        .and_then(LastJob::of))
}

/// Reads the printer's latest ended print back from the queue's history into its status and
/// publishes that status, so pages (and, after a restart, the next server) show the same.
pub async fn refresh_last_job(state: &AppState, handle: &PrinterHandle) {
    let id = handle.id().to_owned();
    match state.queue.call(move |s, _| last_print(s, &id)).await {
        Ok(last) => {
            handle.set_last_job(last);
            state.hub.publish(
                Topic::PrinterStatus,
                handle.id(),
                Audience::Everyone,
                &handle.slot(),
            );
        }
        Err(e) => tracing::warn!(printer = %handle.id(), error = %e, "cannot read the last print"),
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
        StoreError::NotWaiting { .. } => ApiError::conflict("not_waiting", e.to_string()),
        StoreError::DiskFull { .. } => ApiError::StorageFull(e.to_string()),
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
    enqueue(state, new_job(owner, file, printer)?).await
}

/// Adds a job slicing the model `file` with `settings`; it prints afterwards (on `printer`, if
/// given) when `print`, else it ends with the G-code stored as a file.
pub async fn enqueue_slice(
    state: &AppState,
    owner: &str,
    file: &FileRecord,
    printer: Option<String>,
    settings: &profiles::SliceSettings,
    print: bool,
) -> Result<Job, ApiError> {
    let mut job = new_job(owner, file, printer)?;
    job.settings = json!({ "slicing": settings, "print": print });
    enqueue(state, job).await
}

/// Whether a job prints after slicing (a slice-only job says `"print": false`).
pub fn prints(job: &Job) -> bool {
    job.settings.get("print").and_then(Value::as_bool) != Some(false)
}

fn new_job(owner: &str, file: &FileRecord, printer: Option<String>) -> Result<NewJob, ApiError> {
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
    Ok(job)
}

async fn enqueue(state: &AppState, job: NewJob) -> Result<Job, ApiError> {
    let job = state
        .queue
        .call(move |store, now| store.enqueue(&job, now))
        .await?;
    queue_changed(state);
    Ok(job)
}

/// Wakes the workers: the queue changed. (WebSocket clients learn of it from [`feed`], which
/// follows the queue's own change stream.)
pub fn queue_changed(state: &AppState) {
    state.slicing_wake.notify_one();
    state.printers.wake_all();
}

/// A job as the native API shows it. Times are milliseconds since the Unix epoch; `position`
/// is the job's place among waiting jobs (0 = next), `null` when it is not waiting or not known.
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
        "print": prints(job),
        "slicing": job.settings.get("slicing").cloned().unwrap_or(Value::Null),
        "priority": job.priority,
        "rank": job.rank,
        "position": Value::Null,
        "not_before": job.not_before.map(|t| t.0),
        "attempts": job.attempts,
        "failure": job.failure,
        "blocked": Value::Null,
        "created_at": job.created_at.0,
        "updated_at": job.updated_at.0,
        "finished_at": job.finished_at.map(|t| t.0),
    })
}

/// Jobs waiting for a slicer or printer, in the order they are claimed.
pub const WAITING: [JobState; 2] = [JobState::Queued, JobState::Ready];

/// Most waiting jobs whose position is computed.
pub const MAX_WAITING: usize = 1000;

/// Every waiting job's place in the claim order (0 = next), by job id.
pub async fn positions(state: &AppState) -> Result<HashMap<i64, usize>, ApiError> {
    let filter = JobFilter {
        states: WAITING.to_vec(),
        limit: MAX_WAITING,
        ..Default::default()
    };
    let waiting = state.queue.call(move |s, _| s.jobs(&filter)).await?;
    Ok(waiting
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.0, i))
        .collect())
}

/// [`job_json`] with the job's `position` from `positions` and, when it cannot run because its
/// printer is gone, why (`blocked`).
pub fn job_json_at(
    job: &Job,
    positions: &HashMap<i64, usize>,
    printers: &crate::printers::PrinterRegistry,
) -> Value {
    let mut value = job_json(job);
    value["position"] = positions.get(&job.id.0).map_or(Value::Null, |&p| json!(p));
    value["blocked"] = blocked(job, printers).map_or(Value::Null, Value::String);
    value
}

/// Why a waiting or interrupted job cannot print: it names a printer that no longer exists
/// (removed at runtime or from the configuration). It stays in the queue, visibly held, until
/// its owner points it at another printer (`PATCH /api/v1/jobs/{id}` `printer`) or cancels it.
pub fn blocked(job: &Job, printers: &crate::printers::PrinterRegistry) -> Option<String> {
    let waits = matches!(
        job.state,
        JobState::Queued | JobState::Ready | JobState::Interrupted
    );
    match &job.target {
        Target::Printer(id) if waits && printers.get(id).is_err() => Some(format!(
            "printer removed: {id} no longer exists; choose another printer or cancel the job"
        )),
        _ => None,
    }
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
        start_printer(state, handle);
    }
    tokio::spawn(slicing::run_slicer(state.clone()));
    tokio::spawn(feed::run_queue_feed(state.clone(), state.queue.subscribe()));
}

/// Loads the slicer catalogue in the background the first time a person signs in (when
/// `slicer.preload_profiles` is on), so the slice dialog opens at once.
///
/// Not at start-up: the parsed catalogue holds about 18 MB, and a server nobody has used
/// yet should stay small (the idle-RSS target). Later calls do nothing.
pub fn warm_profiles(state: &AppState) {
    if state.config.slicer.preload_profiles && state.profiles.start_warming() {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.profiles.warm(&state.config.slicer));
    }
}

/// Starts a printer's job runner and, if marked `autoconnect`, connects it.
pub fn start_printer(state: &AppState, handle: Arc<PrinterHandle>) {
    tokio::spawn(runner::run_printer(state.clone(), handle.clone()));
    if handle.config.autoconnect {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.connect(&state).await {
                tracing::warn!(printer = %handle.id(), error = %e, "autoconnect failed");
            }
        });
    }
}

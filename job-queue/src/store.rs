//! The storage contract every backend implements, and the types its operations exchange.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::model::Timestamp;
use crate::model::{
    ContentHash, Job, JobId, JobSpecError, Lease, NewJob, PrinterProfile, RunId, Target,
};
use crate::progress::Progress;
use crate::resume::{ResumeError, ResumeFrom, ResumePoint};
use crate::state::{JobEvent, JobState, TransitionError};

/// A persistent job queue.
///
/// Every method is one atomic transaction: when it returns `Ok` the change is committed
/// (durable as configured by the backend), when it returns `Err` nothing changed. Every
/// state change appends a [`Change`] to a log in the same transaction, so
/// [`Store::changes_since`] never misses or invents one.
///
/// # Claiming
/// [`Store::claim_print`] and [`Store::claim_slicing`] pick the best eligible job and take a
/// lease on it in one step; concurrent claimers never get the same job. The operation is
/// shaped for PostgreSQL's work-queue idiom, so a farm backend can implement it as
///
/// ```sql
/// SELECT id FROM jobs
///  WHERE state = 'ready' AND (not_before IS NULL OR not_before <= $now) AND <printer matches>
///  ORDER BY priority DESC, rank, id
///  LIMIT 1 FOR UPDATE SKIP LOCKED;
/// UPDATE jobs SET state = 'printing', lease_run = $run, lease_worker = $w,
///        lease_expires_at = $now + $lease WHERE id = $id;
/// ```
///
/// in one transaction (the SQLite backend runs the same statements under `BEGIN IMMEDIATE`).
/// No row lock outlives the claim: a print holds a *lease* renewed by
/// [`Store::heartbeat`]. A lease that runs out is reaped by [`Store::expire_leases`]: a
/// slicing job goes back to `queued`, a printing or paused one becomes `interrupted` and waits
/// for a person. Worker calls present their [`Lease`]; if the job was cancelled, reaped or
/// claimed anew meanwhile they get [`StoreError::LeaseLost`] and must stop.
pub trait Store {
    /// Adds a job: a model starts `queued`, G-code starts `ready`. It goes last among its
    /// priority.
    fn enqueue(&self, job: &NewJob, now: Timestamp) -> Result<Job, StoreError>;

    /// Reads one job.
    fn job(&self, id: JobId) -> Result<Job, StoreError>;

    /// Moves a job within the queue order.
    fn reorder(&self, id: JobId, place: Placement, now: Timestamp) -> Result<Job, StoreError>;

    /// Changes a job's priority (higher is claimed first).
    fn set_priority(&self, id: JobId, priority: i32, now: Timestamp) -> Result<Job, StoreError>;

    /// Schedules a job: no printer claims it before `not_before` (`None`: as soon as possible).
    fn set_not_before(
        &self,
        id: JobId,
        not_before: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Job, StoreError>;

    /// Changes where a job may print (a printer, or requirements): for a job that waits
    /// (`queued`, `ready`) or was `interrupted` (so that it can resume elsewhere). A job that
    /// is being sliced or printed, or has ended, answers [`StoreError::NotWaiting`].
    fn set_target(&self, id: JobId, target: &Target, now: Timestamp) -> Result<Job, StoreError>;

    /// A person withdraws a job (from any state but done or cancelled). A running worker
    /// finds out at its next call through [`StoreError::LeaseLost`].
    fn cancel(&self, id: JobId, now: Timestamp) -> Result<Job, StoreError>;

    /// Takes the next `queued` job for slicing (priority, then order).
    fn claim_slicing(
        &self,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError>;

    /// Slicing succeeded: records the G-code and makes the job `ready`.
    fn finish_slicing(
        &self,
        lease: &Lease,
        gcode: &ContentHash,
        now: Timestamp,
    ) -> Result<Job, StoreError>;

    /// Slicing of a slice-only job succeeded: records the G-code and makes the job `done`
    /// (the G-code is the result; no printer claims it).
    fn finish_slicing_only(
        &self,
        lease: &Lease,
        gcode: &ContentHash,
        now: Timestamp,
    ) -> Result<Job, StoreError>;

    /// Takes the next `ready` job this printer may print: target printer or requirements
    /// match, `not_before` passed; highest priority, then queue order.
    fn claim_print(
        &self,
        printer: &PrinterProfile,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError>;

    /// Renews a lease to `now + lease`.
    fn heartbeat(
        &self,
        lease: &Lease,
        extend: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError>;

    /// Stores the latest confirmed progress of a print (overwrites the previous one; see
    /// [`crate::ProgressCheckpointer`] for how often to call it).
    fn record_progress(
        &self,
        lease: &Lease,
        progress: &Progress,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Pauses a print (the lease stays; keep heartbeating).
    fn pause(&self, lease: &Lease, now: Timestamp) -> Result<Job, StoreError>;

    /// Continues a paused print.
    fn continue_print(&self, lease: &Lease, now: Timestamp) -> Result<Job, StoreError>;

    /// A copy printed successfully; the job is `done` or `ready` for the next copy.
    fn complete(&self, lease: &Lease, usage: &Usage, now: Timestamp) -> Result<Job, StoreError>;

    /// Slicing or printing failed.
    fn fail(
        &self,
        lease: &Lease,
        reason: &str,
        usage: &Usage,
        now: Timestamp,
    ) -> Result<Job, StoreError>;

    /// A person gives up on an interrupted print.
    fn abandon(&self, id: JobId, reason: &str, now: Timestamp) -> Result<Job, StoreError>;

    /// A person retries a failed or interrupted job from the beginning (`ready` if it has
    /// G-code, else `queued`).
    fn retry(&self, id: JobId, now: Timestamp) -> Result<Job, StoreError>;

    /// Reaps every lease that expired before `now` (see the trait docs); returns the jobs
    /// it changed.
    fn expire_leases(&self, now: Timestamp) -> Result<Vec<Job>, StoreError>;

    /// Expires every lease held by `worker` now, e.g. when a host restarts and knows its
    /// previous incarnation is dead; returns the jobs it changed.
    fn release_worker(&self, worker: &str, now: Timestamp) -> Result<Vec<Job>, StoreError>;

    /// The last recorded progress of a job's latest print, if any.
    fn resume_record(&self, id: JobId) -> Result<Option<Progress>, StoreError>;

    /// A person confirmed resuming an interrupted print on `printer`: takes a new lease and
    /// returns where to continue. Nothing ever calls this on its own.
    fn confirm_resume(
        &self,
        id: JobId,
        confirmation: &ResumeConfirmation,
        printer: &PrinterProfile,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ResumeStart, StoreError>;

    /// Jobs matching `filter`, in queue order (priority, then rank).
    fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    /// History of slicing and printing attempts, newest first.
    fn history(&self, filter: &HistoryFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// Print time and filament totals per owner and per printer over print runs matching
    /// `filter` (its `limit` is ignored).
    fn statistics(&self, filter: &HistoryFilter) -> Result<Statistics, StoreError>;

    /// Logged changes with a sequence number above `after`, oldest first, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError>;
}

/// Where [`Store::reorder`] puts a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Before every other job.
    First,
    /// After every other job.
    Last,
    /// Just before that job.
    Before(JobId),
    /// Just after that job.
    After(JobId),
}

/// A job and the lease just taken on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The job, already in its new state.
    pub job: Job,
    /// Present it to every later worker call.
    pub lease: Lease,
}

/// What a finished or failed attempt used.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// Time spent printing.
    pub print_time: Duration,
    /// Filament extruded (mm).
    pub filament_mm: f64,
}

/// A person's explicit go-ahead for [`Store::confirm_resume`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeConfirmation {
    /// Who confirmed (recorded in the new run's note, see [`RunRecord::note`]).
    pub confirmed_by: String,
    /// Layer start or last confirmed line.
    pub from: ResumeFrom,
}

/// A confirmed resume: the new lease and where to continue (the prelude G-code is
/// easyprint-gcode's, see [`crate::resume_point`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeStart {
    /// The job, now `printing` again.
    pub job: Job,
    /// The new lease.
    pub lease: Lease,
    /// Where the file continues, and the checkpoint.
    pub point: ResumePoint,
}

/// Selects jobs for [`Store::jobs`]; empty fields match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobFilter {
    /// Only these states.
    pub states: Vec<JobState>,
    /// Only this owner's.
    pub owner: Option<String>,
    /// At most this many (0 = no limit).
    pub limit: usize,
}

/// What kind of attempt a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// Slicing.
    Slice,
    /// Printing (a resumed print is a new run).
    Print,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunResult {
    /// Succeeded.
    Completed,
    /// Reported failed.
    Failed,
    /// The job was cancelled while it ran.
    Cancelled,
    /// Its lease expired.
    Interrupted,
}

impl RunResult {
    /// Stable lowercase name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Completed => "completed",
            RunResult::Failed => "failed",
            RunResult::Cancelled => "cancelled",
            RunResult::Interrupted => "interrupted",
        }
    }

    /// Inverse of [`RunResult::as_str`].
    pub fn from_name(s: &str) -> Option<RunResult> {
        [
            RunResult::Completed,
            RunResult::Failed,
            RunResult::Cancelled,
            RunResult::Interrupted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// One slicing or printing attempt (history).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run (also the lease's fencing token).
    pub id: RunId,
    /// Its job.
    pub job: JobId,
    /// The job's owner.
    pub owner: String,
    /// The job's file name.
    pub file_name: String,
    /// Slice or print.
    pub kind: RunKind,
    /// Who ran it.
    pub worker: String,
    /// Printer, for prints.
    pub printer: Option<String>,
    /// Start.
    pub started_at: Timestamp,
    /// End, once it ended.
    pub ended_at: Option<Timestamp>,
    /// Outcome, once it ended.
    pub result: Option<RunResult>,
    /// What it used.
    pub usage: Usage,
    /// Failure reason.
    pub failure: Option<String>,
    /// Free text, e.g. who confirmed a resume and from where.
    pub note: Option<String>,
}

/// Selects history rows; empty fields match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryFilter {
    /// One job's runs.
    pub job: Option<JobId>,
    /// One owner's runs.
    pub owner: Option<String>,
    /// One printer's runs.
    pub printer: Option<String>,
    /// Only runs of this kind.
    pub kind: Option<RunKind>,
    /// Only runs that ended this way.
    pub result: Option<RunResult>,
    /// Only runs that ended (any result), e.g. a printer's last finished print.
    pub ended: bool,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// At most this many (0 = no limit).
    pub limit: usize,
}

/// Totals for one owner or printer.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// The owner or printer.
    pub key: String,
    /// Print runs that completed.
    pub completed: u64,
    /// Print runs that failed, were cancelled or interrupted.
    pub unsuccessful: u64,
    /// Print time over all ended print runs.
    pub print_time: Duration,
    /// Filament over all ended print runs (mm).
    pub filament_mm: f64,
}

/// [`Store::statistics`] result, each list sorted by key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statistics {
    /// Per job owner.
    pub per_owner: Vec<Totals>,
    /// Per printer.
    pub per_printer: Vec<Totals>,
}

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// It was added.
    Enqueued,
    /// A state machine event was applied.
    Event(JobEvent),
    /// Its place in the order changed.
    Reordered,
    /// Its priority changed.
    PriorityChanged,
    /// Its earliest start (`not_before`) changed.
    Rescheduled,
    /// Its target printer or requirements changed.
    Retargeted,
    /// New progress was recorded (live only: not in the log, so its `seq` is that of the
    /// latest logged change).
    Progress,
}

impl ChangeKind {
    /// Stable lowercase name used in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Enqueued => "enqueued",
            ChangeKind::Event(e) => e.as_str(),
            ChangeKind::Reordered => "reordered",
            ChangeKind::PriorityChanged => "priority_changed",
            ChangeKind::Rescheduled => "rescheduled",
            ChangeKind::Retargeted => "retargeted",
            ChangeKind::Progress => "progress",
        }
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log (increasing, gaps possible).
    pub seq: u64,
    /// The job.
    pub job: JobId,
    /// What happened.
    pub kind: ChangeKind,
    /// The job's state afterwards.
    pub state: JobState,
    /// When.
    pub at: Timestamp,
}

/// Why a store operation failed. Nothing was changed when one is returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No job with that id.
    #[error("job {0} does not exist")]
    NotFound(JobId),
    /// The job's state does not allow the operation.
    #[error("job {job}: {source}")]
    Transition {
        /// The job.
        job: JobId,
        /// The refused transition.
        #[source]
        source: TransitionError,
    },
    /// The caller's lease is gone (expired and reaped, job cancelled, or a newer run).
    #[error("job {job}: lease of {run} is no longer held, stop working on it")]
    LeaseLost {
        /// The job.
        job: JobId,
        /// The run the caller presented.
        run: RunId,
    },
    /// The operation needs a job that waits (or was interrupted), not one in this state.
    #[error("job {job} is {state}: only a queued, ready or interrupted job can change this")]
    NotWaiting {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
    },
    /// The job description is invalid.
    #[error("invalid job: {0}")]
    InvalidJob(#[from] JobSpecError),
    /// A text argument (reason, worker, name) is invalid.
    #[error("invalid {field}: {source}")]
    InvalidArgument {
        /// The argument.
        field: &'static str,
        /// What is wrong.
        #[source]
        source: JobSpecError,
    },
    /// The printer does not meet the job's target or requirements.
    #[error(
        "job {job} cannot print on printer {printer:?}: it does not meet the job's requirements"
    )]
    PrinterMismatch {
        /// The job.
        job: JobId,
        /// The printer offered.
        printer: String,
    },
    /// The job has no usable resume record.
    #[error("job {0} has no progress record to resume from")]
    NoResumeRecord(JobId),
    /// The resume record cannot give a resume point.
    #[error("job {job}: {source}")]
    Resume {
        /// The job.
        job: JobId,
        /// Why.
        #[source]
        source: ResumeError,
    },
    /// The database file is damaged. It is left untouched for inspection or restore.
    #[error("database {path} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite or the integrity check reported.
        detail: String,
    },
    /// The file is a database of some other application.
    #[error("database {path} is not an easyprint job queue (application id {application_id:#x})")]
    NotAQueueDatabase {
        /// The file.
        path: PathBuf,
        /// The application id found.
        application_id: i64,
    },
    /// The file was written by a newer version of this library.
    #[error("database {path} has schema version {found}, this library knows up to {supported}")]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this library can use.
        supported: i64,
    },
    /// Another connection held the write lock longer than the busy timeout.
    #[error("database {path} is locked by another connection ({operation} gave up after the busy timeout)")]
    Locked {
        /// The file.
        path: PathBuf,
        /// The operation that gave up.
        operation: &'static str,
    },
    /// No space left (disk full or the configured size limit reached). The operation was
    /// rolled back and the queue is intact.
    #[error("database {path} is full ({operation} was rolled back, the queue is unchanged)")]
    DiskFull {
        /// The file.
        path: PathBuf,
        /// The operation that was rolled back.
        operation: &'static str,
    },
    /// The file or its directory is read-only or cannot be opened.
    #[error("cannot open or write database {path}: {detail}")]
    CannotOpen {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Any other storage failure.
    #[error("database {path}: {operation} failed: {detail}")]
    Backend {
        /// The file.
        path: PathBuf,
        /// The operation.
        operation: &'static str,
        /// The backend's message.
        detail: String,
    },
}

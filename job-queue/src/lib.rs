//! Persistent, crash-safe print job queue.
//!
//! Every print is a [`Job`]: a model or G-code file (by content hash), where it may print,
//! its priority, copies and schedule, and its [`JobState`]. The state machine
//! ([`JobState::apply`]) is pure and validates every transition; the [`Store`] trait makes
//! each operation one atomic, durable transaction with a change log; [`SqliteStore`] is the
//! embedded backend (WAL, documented durability, versioned migrations, typed errors for a
//! corrupt, locked or full database).
//!
//! Nothing reads a clock: operations take `now` as a [`Timestamp`].
//!
//! ```
//! use std::time::Duration;
//! use easyprint_queue::*;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("q.db"), SqliteOptions::default()).unwrap();
//! let source = JobSource {
//!     hash: ContentHash::parse("00112233445566778899aabbccddeeff").unwrap(),
//!     file_name: "cube.gcode".into(),
//!     kind: SourceKind::Gcode,
//! };
//! let job = store.enqueue(&NewJob::new("ann", source), Timestamp(0)).unwrap();
//!
//! let printer = PrinterProfile {
//!     id: "ender3".into(),
//!     nozzle_um: 400,
//!     material: Some("PLA".into()),
//!     build_volume: BuildVolume::new(220.0, 220.0, 250.0),
//! };
//! let lease_time = Duration::from_secs(30);
//! let claim = store.claim_print(&printer, "host-1", lease_time, Timestamp(10)).unwrap().unwrap();
//! assert_eq!(claim.job.id, job.id);
//! let lease = store.heartbeat(&claim.lease, lease_time, Timestamp(20_000)).unwrap();
//! let usage = Usage { print_time: Duration::from_secs(600), filament_mm: 1234.0 };
//! let done = store.complete(&lease, &usage, Timestamp(600_000)).unwrap();
//! assert_eq!(done.state, JobState::Done);
//! ```

mod changes;
mod model;
mod progress;
mod resume;
mod sqlite;
mod state;
mod store;

pub use model::{
    BuildVolume, ContentHash, Job, JobId, JobSource, JobSpecError, Lease, NewJob, PrinterProfile,
    Requirements, RunId, SourceKind, Target, Timestamp, MAX_TEXT_LEN,
};
pub use progress::{ExtrusionMode, LayerMark, Positioning, Progress, ProgressCheckpointer};
pub use resume::{resume_point, ResumeError, ResumeFrom, ResumePoint};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use state::{JobEvent, JobState, TransitionError, ALL_EVENTS, ALL_STATES};
pub use store::{
    Change, ChangeKind, Claim, HistoryFilter, JobFilter, Placement, ResumeConfirmation,
    ResumeStart, RunKind, RunRecord, RunResult, Statistics, Store, StoreError, Totals, Usage,
};

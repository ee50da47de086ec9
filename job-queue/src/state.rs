//! The job state machine, sans-IO: `(state, event) → state` or a typed error.
//!
//! ```text
//!  enqueue(model) ─► queued ──start_slicing──► slicing ──slicing_done──► ready ◄── enqueue(gcode)
//!                      ▲  ◄──lease_expired──────┘                         │ ▲
//!                      │                                       start_print│ │complete (copies left)
//!                      │ retry (not sliced)                               ▼ │
//!   failed ◄──fail── interrupted ◄──lease_expired── paused ◄──pause──► printing ──complete──► done
//!     │  retry (sliced) ──► ready      │ confirm_resume ──────────────────►▲  │fail
//!     │                                                                     ▼
//!     └──────────────────────────────────────────────────────────────► failed
//!  cancel: from every state except done and cancelled ──► cancelled
//!  sliced_only: slicing ──► done (a slice-only job: the G-code is the result, nothing prints)
//! ```
//!
//! `done` and `cancelled` are final. `failed` is final unless someone retries it.
//! `interrupted` (the host or worker died while printing) always waits for a person:
//! nothing moves it on its own.

use std::fmt;

use thiserror::Error;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Waiting to be sliced.
    Queued,
    /// A slicer holds a lease on it.
    Slicing,
    /// Sliced (or G-code from the start): waiting for a printer.
    Ready,
    /// A printer holds a lease on it and is printing.
    Printing,
    /// Printing, paused by a person or the printer (lease still held).
    Paused,
    /// The host or worker died (lease expired) while printing; needs a person's decision.
    Interrupted,
    /// All copies printed.
    Done,
    /// Slicing or printing failed; can be retried.
    Failed,
    /// Withdrawn by a person.
    Cancelled,
}

/// Every state, for iteration in tests and UIs.
pub const ALL_STATES: [JobState; 9] = [
    JobState::Queued,
    JobState::Slicing,
    JobState::Ready,
    JobState::Printing,
    JobState::Paused,
    JobState::Interrupted,
    JobState::Done,
    JobState::Failed,
    JobState::Cancelled,
];

impl JobState {
    /// Stable lowercase name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Slicing => "slicing",
            JobState::Ready => "ready",
            JobState::Printing => "printing",
            JobState::Paused => "paused",
            JobState::Interrupted => "interrupted",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Inverse of [`JobState::as_str`].
    pub fn from_name(name: &str) -> Option<JobState> {
        ALL_STATES.iter().copied().find(|s| s.as_str() == name)
    }

    /// No event leaves this state.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Cancelled)
    }

    /// A worker holds a lease in this state (and must heartbeat).
    pub fn holds_lease(self) -> bool {
        matches!(
            self,
            JobState::Slicing | JobState::Printing | JobState::Paused
        )
    }

    /// Applies `event`, returning the next state or why it is not allowed.
    ///
    /// ```
    /// use easyprint_queue::{JobEvent, JobState};
    /// assert_eq!(JobState::Ready.apply(JobEvent::StartPrint), Ok(JobState::Printing));
    /// assert!(JobState::Done.apply(JobEvent::Cancel).is_err());
    /// ```
    pub fn apply(self, event: JobEvent) -> Result<JobState, TransitionError> {
        use JobEvent as E;
        use JobState as S;
        let next = match (self, event) {
            (S::Queued, E::StartSlicing) => S::Slicing,
            (S::Slicing, E::SlicingDone) => S::Ready,
            (S::Slicing, E::SlicedOnly) => S::Done,
            (S::Slicing, E::LeaseExpired) => S::Queued,
            (S::Ready, E::StartPrint) => S::Printing,
            (S::Printing, E::Pause) => S::Paused,
            (S::Paused, E::Continue) => S::Printing,
            (S::Printing, E::Complete { copies_left: true }) => S::Ready,
            (S::Printing, E::Complete { copies_left: false }) => S::Done,
            (S::Slicing | S::Printing | S::Paused | S::Interrupted, E::Fail) => S::Failed,
            (S::Printing | S::Paused, E::LeaseExpired) => S::Interrupted,
            (S::Failed | S::Interrupted, E::Retry { sliced: true }) => S::Ready,
            (S::Failed | S::Interrupted, E::Retry { sliced: false }) => S::Queued,
            (S::Interrupted, E::ConfirmResume) => S::Printing,
            (from, E::Cancel) if !from.is_final() => S::Cancelled,
            (from, event) => return Err(TransitionError { from, event }),
        };
        Ok(next)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    /// A slicer claimed it.
    StartSlicing,
    /// The slicer produced G-code.
    SlicingDone,
    /// The slicer produced G-code for a slice-only job: it is done, nothing prints.
    SlicedOnly,
    /// A printer claimed it.
    StartPrint,
    /// Printing paused.
    Pause,
    /// Paused printing continues.
    Continue,
    /// A copy finished printing.
    Complete {
        /// More copies remain, so the job goes back to `ready`.
        copies_left: bool,
    },
    /// Slicing or printing failed, or a person gave up on an interrupted print.
    Fail,
    /// The lease ran out without a heartbeat.
    LeaseExpired,
    /// A person asked to try again from the beginning.
    Retry {
        /// G-code exists, so the job skips slicing.
        sliced: bool,
    },
    /// A person confirmed resuming an interrupted print.
    ConfirmResume,
    /// A person withdrew the job.
    Cancel,
}

/// Every event (both variants of the ones with a flag), for iteration in tests and tools.
pub const ALL_EVENTS: [JobEvent; 14] = [
    JobEvent::StartSlicing,
    JobEvent::SlicingDone,
    JobEvent::SlicedOnly,
    JobEvent::StartPrint,
    JobEvent::Pause,
    JobEvent::Continue,
    JobEvent::Complete { copies_left: true },
    JobEvent::Complete { copies_left: false },
    JobEvent::Fail,
    JobEvent::LeaseExpired,
    JobEvent::Retry { sliced: true },
    JobEvent::Retry { sliced: false },
    JobEvent::ConfirmResume,
    JobEvent::Cancel,
];

impl JobEvent {
    /// Lowercase name used in the change log.
    pub fn as_str(self) -> &'static str {
        match self {
            JobEvent::StartSlicing => "start_slicing",
            JobEvent::SlicingDone => "slicing_done",
            JobEvent::SlicedOnly => "sliced_only",
            JobEvent::StartPrint => "start_print",
            JobEvent::Pause => "pause",
            JobEvent::Continue => "continue",
            JobEvent::Complete { .. } => "complete",
            JobEvent::Fail => "fail",
            JobEvent::LeaseExpired => "lease_expired",
            JobEvent::Retry { .. } => "retry",
            JobEvent::ConfirmResume => "confirm_resume",
            JobEvent::Cancel => "cancel",
        }
    }
}

impl fmt::Display for JobEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that is not allowed in the job's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cannot {event} a job that is {from}")]
pub struct TransitionError {
    /// The state the job was in.
    pub from: JobState,
    /// The refused event.
    pub event: JobEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = JobEvent> {
        prop::sample::select(ALL_EVENTS.to_vec())
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(JobState::from_name(s.as_str()), Some(s));
        }
        assert_eq!(JobState::from_name("bogus"), None);
    }

    #[test]
    fn every_state_is_reachable_and_none_is_stuck() {
        // Breadth-first over the whole graph from both entry states.
        let mut reached = vec![JobState::Queued, JobState::Ready];
        let mut i = 0;
        while i < reached.len() {
            for e in ALL_EVENTS {
                if let Ok(n) = reached[i].apply(e) {
                    if !reached.contains(&n) {
                        reached.push(n);
                    }
                }
            }
            i += 1;
        }
        assert_eq!(reached.len(), ALL_STATES.len(), "reached {reached:?}");
        for s in ALL_STATES.into_iter().filter(|s| !s.is_final()) {
            assert!(s.apply(JobEvent::Cancel).is_ok(), "{s} cannot be cancelled");
        }
    }

    #[test]
    fn lease_expiry_never_leaves_a_leased_state_stuck() {
        for s in ALL_STATES.into_iter().filter(|s| s.holds_lease()) {
            let next = s.apply(JobEvent::LeaseExpired).unwrap();
            assert!(!next.holds_lease(), "{s} → {next} still needs a lease");
        }
        assert_eq!(
            JobState::Printing.apply(JobEvent::LeaseExpired),
            Ok(JobState::Interrupted)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_walks_respect_the_invariants(
            start in prop::sample::select(vec![JobState::Queued, JobState::Ready]),
            events in prop::collection::vec(event(), 0..60),
        ) {
            let mut state = start;
            let mut finished = false;
            for e in events {
                match state.apply(e) {
                    Ok(next) => {
                        prop_assert!(!state.is_final(), "{} left final state {}", e, state);
                        // Printing is only entered by a claim, a continue or a confirmed resume.
                        if next == JobState::Printing && state != JobState::Printing {
                            prop_assert!(matches!(
                                e,
                                JobEvent::StartPrint | JobEvent::Continue | JobEvent::ConfirmResume
                            ));
                        }
                        // Interrupted is only entered by a lost lease, never by a request.
                        if next == JobState::Interrupted {
                            prop_assert_eq!(e, JobEvent::LeaseExpired);
                        }
                        // A lease state is only entered from a state a claim can take.
                        if next.holds_lease() && !state.holds_lease() {
                            prop_assert!(matches!(
                                state,
                                JobState::Queued | JobState::Ready | JobState::Interrupted
                            ));
                        }
                        if next == JobState::Done { finished = true; }
                        state = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(err.from, state);
                        prop_assert_eq!(err.event, e);
                        prop_assert!(!err.to_string().is_empty());
                    }
                }
            }
            if finished {
                prop_assert_eq!(state, JobState::Done);
            }
        }
    }
}

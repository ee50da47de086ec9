//! The `queue` WebSocket topic: whenever a job changes, its whole JSON (as `GET
//! /api/v1/jobs/{id}` shows it, with `position`) goes to its owner and the administrators,
//! keyed by job id.
//!
//! The source is the queue's own change stream, so every change is seen whoever made it (API,
//! slicer, runner, lease expiry). Changes that arrive together are published as one batch; a
//! waiting job whose position moved because another job came, went or moved is republished
//! too, and every unfinished job is when printers come or go (their `blocked` may change). Memory stays bounded: the hub keeps a snapshot only of unfinished jobs (a job that is
//! done, cancelled or failed is published once, then forgotten), and this task remembers at most
//! the positions of the [`MAX_WAITING`] waiting jobs.

use std::collections::{BTreeSet, HashMap};

use easyprint_queue::{Change, ChangeKind, Job, JobFilter, JobId, JobState, Store};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use super::{job_json_at, MAX_WAITING, WAITING};
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

/// Users whose ids are remembered (beyond this the cache starts over).
const MAX_USERS_KEPT: usize = 10_000;

/// What the feed remembers between batches.
#[derive(Debug, Default)]
struct Feed {
    /// Last published position of each waiting job.
    positions: HashMap<i64, usize>,
    /// User ids by name.
    users: HashMap<String, i64>,
}

/// Why a batch is published.
enum Batch {
    /// These jobs changed.
    Jobs(BTreeSet<JobId>),
    /// Changes were missed: publish every unfinished job.
    Everything,
}

/// Runs until the server shuts down or the queue goes away.
pub async fn run_queue_feed(state: AppState, mut changes: Receiver<Change>) {
    let stop = state.shutdown.clone();
    let mut feed = Feed::default();
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            () = state.queue_republish.notified() => {
                if let Err(e) = feed.publish(&state, Batch::Everything).await {
                    tracing::warn!(error = %e, "queue updates not published");
                }
                continue;
            }
            change = changes.recv() => change,
        };
        let mut jobs = BTreeSet::new();
        let mut missed = false;
        let mut next = Some(first);
        while let Some(received) = next.take() {
            match received {
                Ok(change) if change.kind != ChangeKind::Progress => {
                    jobs.insert(change.job);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => missed = true,
                Err(RecvError::Closed) => return,
            }
            next = match changes.try_recv() {
                Ok(change) => Some(Ok(change)),
                Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Empty | TryRecvError::Closed) => None,
            };
        }
        let batch = if missed {
            Batch::Everything
        } else if jobs.is_empty() {
            continue;
        } else {
            Batch::Jobs(jobs)
        };
        if let Err(e) = feed.publish(&state, batch).await {
            tracing::warn!(error = %e, "queue updates not published");
        }
    }
}

impl Feed {
    async fn publish(&mut self, state: &AppState, batch: Batch) -> Result<(), crate::ApiError> {
        let (changed, waiting) = state
            .queue
            .call(move |s, _| {
                let changed = match batch {
                    Batch::Jobs(ids) => ids
                        .into_iter()
                        .filter_map(|id| s.job(id).ok())
                        .collect::<Vec<Job>>(),
                    Batch::Everything => s.jobs(&JobFilter {
                        states: unfinished(),
                        limit: MAX_WAITING,
                        ..Default::default()
                    })?,
                };
                let waiting = s.jobs(&JobFilter {
                    states: WAITING.to_vec(),
                    limit: MAX_WAITING,
                    ..Default::default()
                })?;
                Ok((changed, waiting))
            })
            .await?;
        let positions: HashMap<i64, usize> = waiting
            .iter()
            .enumerate()
            .map(|(i, j)| (j.id.0, i))
            .collect();
        let changed_ids: BTreeSet<i64> = changed.iter().map(|j| j.id.0).collect();
        let moved = waiting.iter().filter(|j| {
            !changed_ids.contains(&j.id.0) && self.positions.get(&j.id.0) != positions.get(&j.id.0)
        });
        let to_publish: Vec<Job> = changed.iter().chain(moved).cloned().collect();
        for job in &to_publish {
            let owner = self.user_id(state, &job.owner).await;
            let key = job.id.0.to_string();
            state.hub.publish(
                Topic::Queue,
                &key,
                // A deleted owner's job: administrators only.
                Audience::UserAndAdmins(owner.unwrap_or(-1)),
                &job_json_at(job, &positions, &state.printers),
            );
            if leaves_the_queue(job.state) {
                state.hub.forget(Topic::Queue, &key);
            }
        }
        self.positions = positions;
        Ok(())
    }

    async fn user_id(&mut self, state: &AppState, name: &str) -> Option<i64> {
        if let Some(&id) = self.users.get(name) {
            return Some(id);
        }
        let owned = name.to_owned();
        let found = state
            .db
            .call(move |c| crate::auth::store::find_user_with_hash(c, &owned))
            .await
            .ok()
            .flatten()
            .map(|(user, _)| user.id)?;
        if self.users.len() >= MAX_USERS_KEPT {
            self.users.clear();
        }
        self.users.insert(name.to_owned(), found);
        Some(found)
    }
}

/// States in which a job stays in the hub's snapshot.
fn unfinished() -> Vec<JobState> {
    easyprint_queue::ALL_STATES
        .into_iter()
        .filter(|s| !leaves_the_queue(*s))
        .collect()
}

/// Done, cancelled and failed jobs are history: published once, not kept for new subscribers.
fn leaves_the_queue(state: JobState) -> bool {
    matches!(
        state,
        JobState::Done | JobState::Cancelled | JobState::Failed
    )
}

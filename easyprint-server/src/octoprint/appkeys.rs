//! The app-keys handshake (OctoPrint's `appkeys` plugin) that Cura's OctoPrint plugin uses to
//! obtain an API key without the user copying it by hand.
//!
//! 1. `GET /plugin/appkeys/probe` → 204: supported.
//! 2. `POST /plugin/appkeys/request {"app": "Cura"}` → 201 with `app_token`, an `auth_dialog`
//!    URL and a `Location` to poll.
//! 3. A logged-in user sees the request (`GET /api/v1/appkeys/pending`, or the page at
//!    `auth_dialog`) and approves or denies it (`POST /api/v1/appkeys/pending/{id}`).
//! 4. `GET /plugin/appkeys/request/{app_token}` → 202 while pending, 200 `{"api_key"}` once
//!    (then forgotten), 404 when denied, expired or unknown.
//!
//! Pending requests live only in memory, bounded in number and age: anyone may ask, so asking
//! must not be able to grow memory. The approval id differs from the polling token, so the
//! requester cannot approve its own request and the approver never handles the secret token.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::auth::secrets::random_token;

/// Most pending requests at once.
pub const MAX_PENDING: usize = 32;
/// A request not polled for this long is dropped (the app gave up).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(60);
/// A request older than this is dropped regardless.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// What the polling app learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Not decided yet (202).
    Pending,
    /// Approved: the key, handed out once (200).
    Granted(String),
    /// Denied, expired or unknown (404).
    Gone,
}

/// A pending request as shown to the approving user.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingRequest {
    /// Approval id (not the polling token).
    pub id: String,
    /// Application name the requester gave.
    pub app: String,
    /// User name the requester suggested, if any.
    pub user: Option<String>,
    /// Seconds since the request was made.
    pub age_secs: u64,
}

#[derive(Debug)]
enum Decision {
    Pending,
    Granted(String),
    Denied,
}

#[derive(Debug)]
struct Entry {
    id: String,
    app: String,
    user: Option<String>,
    created: Instant,
    last_poll: Instant,
    decision: Decision,
}

/// All pending app-key requests (time is a parameter, so the logic is testable).
#[derive(Debug, Default)]
pub struct AppKeyRequests {
    by_token: Mutex<HashMap<String, Entry>>,
}

impl AppKeyRequests {
    /// Registers a request; `None` when [`MAX_PENDING`] requests are already waiting.
    pub fn request(&self, app: String, user: Option<String>, now: Instant) -> Option<String> {
        let mut map = self.lock();
        expire(&mut map, now);
        if map.len() >= MAX_PENDING {
            return None;
        }
        let token = random_token();
        map.insert(
            token.clone(),
            Entry {
                id: random_token()[..16].to_owned(),
                app,
                user,
                created: now,
                last_poll: now,
                decision: Decision::Pending,
            },
        );
        Some(token)
    }

    /// The app polls with its token.
    pub fn poll(&self, token: &str, now: Instant) -> PollOutcome {
        let mut map = self.lock();
        expire(&mut map, now);
        let Some(entry) = map.get_mut(token) else {
            return PollOutcome::Gone;
        };
        entry.last_poll = now;
        match &entry.decision {
            Decision::Pending => PollOutcome::Pending,
            Decision::Denied => {
                map.remove(token);
                PollOutcome::Gone
            }
            Decision::Granted(_) => match map.remove(token).map(|e| e.decision) {
                Some(Decision::Granted(key)) => PollOutcome::Granted(key),
                _ => PollOutcome::Gone,
            },
        }
    }

    /// Undecided requests, oldest first.
    pub fn pending(&self, now: Instant) -> Vec<PendingRequest> {
        let mut map = self.lock();
        expire(&mut map, now);
        let mut list: Vec<(Instant, PendingRequest)> = map
            .values()
            .filter(|e| matches!(e.decision, Decision::Pending))
            .map(|e| {
                (
                    e.created,
                    PendingRequest {
                        id: e.id.clone(),
                        app: e.app.clone(),
                        user: e.user.clone(),
                        age_secs: now.saturating_duration_since(e.created).as_secs(),
                    },
                )
            })
            .collect();
        list.sort_by_key(|(created, _)| *created);
        list.into_iter().map(|(_, p)| p).collect()
    }

    /// The app name of an undecided request.
    pub fn app_of(&self, id: &str, now: Instant) -> Option<String> {
        self.pending(now)
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.app)
    }

    /// Records a decision; `grant` is the key to hand out (`None` denies). Returns false when
    /// the request is unknown, expired or already decided.
    pub fn decide(&self, id: &str, grant: Option<String>, now: Instant) -> bool {
        let mut map = self.lock();
        expire(&mut map, now);
        let Some(entry) = map
            .values_mut()
            .find(|e| e.id == id && matches!(e.decision, Decision::Pending))
        else {
            return false;
        };
        entry.decision = match grant {
            Some(key) => Decision::Granted(key),
            None => Decision::Denied,
        };
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn expire(map: &mut HashMap<String, Entry>, now: Instant) {
    map.retain(|_, e| {
        now.saturating_duration_since(e.last_poll) < POLL_TIMEOUT
            && now.saturating_duration_since(e.created) < MAX_AGE
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_is_handed_out_once() {
        let t0 = Instant::now();
        let requests = AppKeyRequests::default();
        let token = requests.request("Cura".into(), None, t0).unwrap();
        assert_eq!(requests.poll(&token, t0), PollOutcome::Pending);
        let pending = requests.pending(t0);
        assert_eq!(pending.len(), 1);
        assert_ne!(pending[0].id, token, "approval id is not the polling token");
        assert!(requests.decide(&pending[0].id, Some("KEY".into()), t0));
        assert!(!requests.decide(&pending[0].id, None, t0), "decided once");
        assert_eq!(
            requests.poll(&token, t0),
            PollOutcome::Granted("KEY".into())
        );
        assert_eq!(requests.poll(&token, t0), PollOutcome::Gone);
    }

    #[test]
    fn denied_and_abandoned_requests_disappear() {
        let t0 = Instant::now();
        let requests = AppKeyRequests::default();
        let denied = requests.request("a".into(), None, t0).unwrap();
        let abandoned = requests.request("b".into(), None, t0).unwrap();
        let pending = requests.pending(t0);
        let id = &pending.iter().find(|p| p.app == "a").unwrap().id;
        requests.decide(id, None, t0);
        assert_eq!(requests.poll(&denied, t0), PollOutcome::Gone);
        assert_eq!(
            requests.poll(&abandoned, t0 + POLL_TIMEOUT),
            PollOutcome::Gone
        );
        assert!(requests.pending(t0 + POLL_TIMEOUT).is_empty());
    }

    #[test]
    fn polling_keeps_a_request_alive_until_max_age() {
        let t0 = Instant::now();
        let requests = AppKeyRequests::default();
        let token = requests.request("a".into(), None, t0).unwrap();
        let mut now = t0;
        while now < t0 + MAX_AGE - Duration::from_secs(30) {
            now += Duration::from_secs(30);
            assert_eq!(requests.poll(&token, now), PollOutcome::Pending);
        }
        assert_eq!(requests.poll(&token, t0 + MAX_AGE), PollOutcome::Gone);
    }

    #[test]
    fn pending_requests_are_bounded() {
        let t0 = Instant::now();
        let requests = AppKeyRequests::default();
        for _ in 0..MAX_PENDING {
            assert!(requests.request("x".into(), None, t0).is_some());
        }
        assert!(requests.request("x".into(), None, t0).is_none());
        assert!(requests
            .request("x".into(), None, t0 + POLL_TIMEOUT)
            .is_some());
    }
}

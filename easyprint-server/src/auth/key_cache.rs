//! API keys verified recently, so that a client polling with its key (OctoPrint apps, slicers,
//! dashboards) is authenticated in memory, on the request's own thread, instead of with a
//! database query on a blocking thread for every request.
//!
//! Correctness rests on one rule: whatever ends or changes a key or its user announces it
//! through [`Revocations::revoke`](super::revocation::Revocations::revoke) *after* the database
//! change, and `revoke` empties this cache first. A lookup that read the database before a
//! revocation may finish after it; it carries the [`Generation`] it started in, and its answer is
//! only remembered if no revocation happened since. As a safety net against a change that was
//! not announced, entries also expire after [`TTL`]. Entries are keyed by the key's SHA-256 (the
//! key itself is never kept) and there are at most [`CAPACITY`] of them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::store::User;

/// Longest time an entry is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(60);
/// Most keys remembered (the cache starts over beyond this).
pub const CAPACITY: usize = 1024;

/// The revocation count a lookup started at (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

/// The cache. One per server, inside [`Revocations`](super::revocation::Revocations).
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    entries: HashMap<[u8; 32], Entry>,
}

#[derive(Debug)]
struct Entry {
    user: User,
    key_id: i64,
    verified: Instant,
}

impl ApiKeyCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user and key id of the key with SHA-256 `hash` if it was verified within [`TTL`];
    /// otherwise the generation to pass to [`remember`](Self::remember) after asking the
    /// database.
    pub fn get(&self, hash: &[u8; 32], now: Instant) -> Result<(User, i64), Generation> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some(e) if now.saturating_duration_since(e.verified) < TTL => {
                Ok((e.user.clone(), e.key_id))
            }
            _ => Err(Generation(inner.generation)),
        }
    }

    /// Remembers what the database said about a key, unless a revocation happened since the
    /// lookup began (`generation`).
    pub fn remember(
        &self,
        generation: Generation,
        hash: [u8; 32],
        user: User,
        key_id: i64,
        verified: Instant,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation.0 {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        inner.entries.insert(
            hash,
            Entry {
                user,
                key_id,
                verified,
            },
        );
    }

    /// Forgets every key and invalidates lookups in flight.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> User {
        User {
            id,
            name: format!("u{id}"),
            admin: false,
        }
    }

    #[test]
    fn remembers_until_cleared_or_expired() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        let generation = cache.get(&[1; 32], t0).unwrap_err();
        cache.remember(generation, [1; 32], user(7), 3, t0);
        assert_eq!(cache.get(&[1; 32], t0 + TTL / 2), Ok((user(7), 3)));
        assert!(cache.get(&[2; 32], t0).is_err(), "another key");
        assert!(cache.get(&[1; 32], t0 + TTL).is_err(), "expired");
        cache.clear();
        assert!(cache.get(&[1; 32], t0).is_err(), "cleared");
    }

    #[test]
    fn a_lookup_that_began_before_a_revocation_is_not_remembered() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        let generation = cache.get(&[1; 32], t0).unwrap_err();
        // The key is deleted and revoked while the database answer is on its way.
        cache.clear();
        cache.remember(generation, [1; 32], user(7), 3, t0);
        assert!(cache.get(&[1; 32], t0).is_err());
        let generation = cache.get(&[1; 32], t0).unwrap_err();
        cache.remember(generation, [1; 32], user(7), 3, t0);
        assert!(
            cache.get(&[1; 32], t0).is_ok(),
            "a fresh lookup is remembered"
        );
    }

    #[test]
    fn stays_bounded() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY as u32 * 3 {
            let mut hash = [0; 32];
            hash[..4].copy_from_slice(&i.to_le_bytes());
            let generation = cache.get(&hash, t0).unwrap_err();
            cache.remember(generation, hash, user(1), i.into(), t0);
            assert!(cache.lock().entries.len() <= CAPACITY);
        }
    }
}

//! Per-content caches: values computed from a stored file, keyed by its SHA-256, computed once
//! on a blocking thread and kept for the newest few files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Up to `capacity` values by content hash.
#[derive(Debug)]
pub struct ContentCache<T> {
    entries: Mutex<HashMap<String, Arc<T>>>,
    capacity: usize,
}

impl<T> ContentCache<T> {
    /// A cache keeping at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        ContentCache {
            entries: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// The cached value for `sha256`, if any.
    pub fn cached(&self, sha256: &str) -> Option<Arc<T>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sha256)
            .cloned()
    }
}

impl<T: Send + Sync + 'static> ContentCache<T> {
    /// The value for `sha256`, computed by `compute` on a blocking thread when not cached.
    pub async fn get_or_compute(
        &self,
        sha256: &str,
        compute: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<Arc<T>> {
        if let Some(found) = self.cached(sha256) {
            return Ok(found);
        }
        let value = Arc::new(
            tokio::task::spawn_blocking(compute)
                .await
                .map_err(std::io::Error::other)??,
        );
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            // Any entry will do: a miss only costs computing it again.
            if let Some(key) = entries.keys().next().cloned() {
                entries.remove(&key);
            }
        }
        entries.insert(sha256.to_owned(), value.clone());
        Ok(value)
    }
}

//! Live delivery of [`Change`]s to subscribers (UIs), bounded and never blocking the writer.
//!
//! The durable truth is the change log ([`crate::Store::changes_since`]); subscriptions are
//! wake-ups on top of it. A subscriber that falls `capacity` changes behind is dropped: its
//! receiver yields what it buffered, then reports disconnection, and the subscriber catches
//! up from the log with the last `seq` it saw and subscribes again. Memory stays bounded no
//! matter how slow a consumer is, and no change is lost for good.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

use crate::store::Change;

/// Fans changes out to subscribers.
#[derive(Debug)]
pub(crate) struct ChangeHub {
    subscribers: Mutex<Vec<SyncSender<Change>>>,
    #[cfg(feature = "tokio")]
    broadcast: tokio::sync::broadcast::Sender<Change>,
}

impl ChangeHub {
    pub(crate) fn new() -> ChangeHub {
        ChangeHub {
            subscribers: Mutex::new(Vec::new()),
            #[cfg(feature = "tokio")]
            broadcast: tokio::sync::broadcast::channel(1024).0,
        }
    }

    pub(crate) fn subscribe(&self, capacity: usize) -> Receiver<Change> {
        let (tx, rx) = sync_channel(capacity.max(1));
        self.lock().push(tx);
        rx
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn subscribe_async(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.broadcast.subscribe()
    }

    pub(crate) fn publish(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        #[cfg(feature = "tokio")]
        for c in changes {
            // Err only means nobody listens right now.
            let _ = self.broadcast.send(c.clone());
        }
        let mut subs = self.lock();
        subs.retain(|tx| {
            changes.iter().all(|c| match tx.try_send(c.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            })
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SyncSender<Change>>> {
        // A panic while holding this lock cannot leave the Vec half-updated in a harmful way.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

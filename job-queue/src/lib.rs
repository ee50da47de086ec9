//! Persistent, crash-safe print job queue.

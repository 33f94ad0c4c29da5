//! Locks that outlive a panicking thread: the booth's shared state is plain data that stays
//! meaningful after a panic elsewhere, and the booth must go on (or end cleanly) rather than
//! panic in turn.

use std::sync::{Mutex, MutexGuard};

/// `m`'s guard, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

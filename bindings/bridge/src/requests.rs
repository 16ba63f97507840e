//! The request count a closing client blocks on: [`crate::Tracker`] counts each request until
//! its sink ran, and a host thread that closes waits here until none is left.
//!
//! Only `crate::sync` types are used, so the loom model (bindings/bridge/loom) runs this file
//! with loom's.

use std::sync::PoisonError;

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst, fence};
use crate::sync::{Condvar, Mutex};

/// See the module docs.
#[derive(Debug, Default)]
pub struct Requests {
    count: AtomicUsize,
    closing: AtomicBool,
    /// Held while notifying, so a waiter between its check and its wait cannot miss it.
    lock: Mutex<()>,
    none_left: Condvar,
}

impl Requests {
    /// Counts one request.
    pub fn enter(&self) {
        self.count.fetch_add(1, SeqCst);
    }

    /// Uncounts one request (after its sink ran); true when it was the last one of a closing
    /// client (waiters were woken).
    pub fn exit(&self) -> bool {
        if self.count.fetch_sub(1, SeqCst) != 1 {
            return false;
        }
        // Only a closing client has waiters (a close sets `closing` before it waits). With the
        // fence in `wait`: either this load sees `closing`, or the waiter's load of the count
        // sees this decrement (SeqCst accesses alone say the same, but loom checks fences only).
        fence(SeqCst);
        if self.closing.load(SeqCst) {
            let _g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.none_left.notify_all();
            return true;
        }
        false
    }

    /// Requests counted now.
    pub fn count(&self) -> usize {
        self.count.load(SeqCst)
    }

    /// Marks the client closing (before any wait).
    pub fn begin_close(&self) {
        self.closing.store(true, SeqCst);
    }

    /// Whether a close has begun.
    pub fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// Blocks until no request is counted. Call it after [`Requests::begin_close`].
    pub fn wait(&self) {
        let mut g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        fence(SeqCst);
        while self.count.load(SeqCst) != 0 {
            g = self
                .none_left
                .wait(g)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

//! The bridge's completion queue ([`Batch`]) and its request count ([`Requests`]) compiled
//! against loom's `Mutex`, `Condvar` and atomics, for the models in `tests/`. The files are the
//! bridge's own (`#[path]`), which takes its synchronisation types from `crate::sync`.
//!
//! Empty unless built with `RUSTFLAGS="--cfg loom"` (`make test-loom`).
#![cfg(loom)]

mod sync {
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
}

#[path = "../../src/batch.rs"]
mod batch;
#[path = "../../src/requests.rs"]
mod requests;

pub use batch::Batch;
pub use requests::Requests;

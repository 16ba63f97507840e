//! What every binding of wirecore needs besides converting types: the Python (PyO3), Node
//! (napi-rs) and C ABI crates build on this crate and keep only their conversions.
//!
//! - [`Tracker`]: runs engine work on the shared runtime inside `catch_panic` and hands the
//!   outcome to a binding's sink exactly once; counts requests and body reads so a close waits
//!   for both (and, for the C ABI, cancels what is left when its deadline passes).
//! - [`Registry`]: cancellation by the id a binding gave an operation.
//! - [`Batch`]: a completion queue that tells the producer when to wake its consumer.
//! - [`fetch`] and [`BodySlot`]: a request with its small body prefetched (one threshold,
//!   [`wirecore::SMALL_BODY_BYTES`]), whole-body reads, and a body one reader at a time reads.
//! - [`EventSlot`]: a response's Server-Sent Events, read one at a time, closable.
//! - [`fork`]: fork detection and the engine runtime as the bindings reach it.
//! - [`Letters`] and [`Spans`]: dead letters and finished spans queued for a binding's
//!   callback, taken on the host's thread.
//! - [`log`]: the engine's `tracing` events queued for a binding's logger, taken the same way.
//! - [`submit`]: host threads hand tasks to the engine in batches (one wake-up per batch).

mod batch;
mod body;
mod dead_letter;
mod events;
pub mod fork;
pub mod log;
mod registry;
mod requests;
pub mod submit;
mod tracker;

/// The synchronisation types of the files the loom model (bindings/bridge/loom) also compiles,
/// with loom's types there: batch.rs and requests.rs.
mod sync {
    pub(crate) use std::sync::atomic;
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
}

pub use crate::batch::Batch;
pub use crate::body::{
    Begin, BodySlot, Copied, Head, INTERRUPTED, Prefetch, Prefetched, Reader, fetch, is_small,
    read_all,
};
pub use crate::dead_letter::{HostQueue, Letters, Spans};
pub use crate::events::EventSlot;
pub use crate::registry::Registry;
pub use crate::tracker::{Busy, Kind, Tracker, spawn};
pub use futures_util::future::{AbortHandle, AbortRegistration};

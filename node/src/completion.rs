//! Results travel back to JS in batches through one threadsafe function per JS environment.
//!
//! Engine tasks push a [`Completion`] and, when the queue was empty, schedule one JS call that
//! drains everything queued so far: under load many requests resolve per crossing. The function
//! is weak (unref'd), so it never keeps the process alive; a call delivers at most
//! [`MAX_BATCH`] completions, and JS takes the rest with `Dispatcher.take` from `setImmediate`, so
//! a flood of completions never blocks timers for long; `index.js` refs a timer instead while
//! operations are pending. It is owned by a [`Dispatcher`] that `index.js` creates once per
//! environment (main thread or worker), so no client holds a reference back to JS and an unused
//! client can be collected.
#![expect(
    clippy::needless_pass_by_value,
    reason = "napi hands arguments over by value"
)]

use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use wirecore_bridge::Batch;

/// One finished operation, keyed by the id JS gave it.
#[napi(object)]
#[derive(Default)]
pub struct Completion {
    /// The id JS passed with the operation.
    pub id: u32,
    /// Error code (`ErrorKind::code`) when the operation failed.
    pub code: Option<String>,
    /// Error message when the operation failed.
    pub message: Option<String>,
    /// Response status.
    pub status: Option<u32>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: Option<String>,
    /// Response headers as `name\nvalue\n` pairs.
    pub headers: Option<String>,
    /// Final URL.
    pub url: Option<String>,
    /// The whole body (small responses), or one chunk (stream reads).
    pub body: Option<Buffer>,
    /// The body stays in the engine: read it with `readBody(id, ..)`.
    pub streaming: Option<bool>,
    /// The request went out on a pooled connection.
    pub reused: Option<bool>,
    /// Where the response came from (`hit`, `miss`, `stale`, `revalidated`); absent when the
    /// cache took no part.
    pub cache_status: Option<String>,
    /// dns, connect, tls, ttfb, total in milliseconds.
    pub timings: Option<Vec<f64>>,
    /// One Server-Sent Event (`readEvent`); absent at the end of the stream.
    pub event: Option<SseEvent>,
}

/// A Server-Sent Event (`wirecore::sse::Event`).
#[napi(object)]
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    /// The last event ID ("" when none).
    pub id: String,
    /// A `retry:` given with this event, in milliseconds.
    pub retry: Option<f64>,
}

impl From<wirecore::sse::Event> for SseEvent {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a retry past 2^53 ms is absurd; it stays huge"
    )]
    fn from(e: wirecore::sse::Event) -> Self {
        Self {
            retry: e.retry.map(|r| r as f64),
            event: e.event,
            data: e.data,
            id: e.id,
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("id", &self.id)
            .field("code", &self.code)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Completions handed to JS per call.
pub(crate) const MAX_BATCH: usize = 256;

type Queue = Arc<Batch<Completion>>;

/// The oldest `MAX_BATCH` completions; the rest stay queued (JS takes them next).
fn take(queue: &Queue) -> Vec<Completion> {
    queue.take(MAX_BATCH)
}

type Tsfn = ThreadsafeFunction<(), (), Vec<Completion>, Status, false, true>;

/// The sending half, shared by every client of one JS environment.
pub(crate) struct Completer {
    queue: Queue,
    tsfn: Tsfn,
}

impl Completer {
    fn new(on_complete: &Function<'_, Vec<Completion>, ()>) -> napi::Result<Self> {
        let queue: Queue = Arc::default();
        let q = queue.clone();
        let tsfn = on_complete
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            // Runs on the JS thread outside any `#[napi(catch_unwind)]` entry.
            .build_callback(move |_ctx| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| take(&q)))
                    .map_err(napi::bindgen_prelude::panic_to_error)
            })?;
        Ok(Self { queue, tsfn })
    }

    /// Queues a completion; the first of a batch schedules the JS call.
    pub(crate) fn push(&self, c: Completion) {
        if self.queue.push(c) {
            // Fails only while the JS environment shuts down: nobody is left to tell.
            let _ = self.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// Delivers completions to one JS callback; create one per environment and pass it to every
/// `NativeClient`.
#[napi]
pub struct Dispatcher {
    pub(crate) completer: Arc<Completer>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

#[napi]
impl Dispatcher {
    /// `on_complete` receives every batch of completions of this environment.
    #[napi(constructor, catch_unwind)]
    pub fn new(on_complete: Function<'_, Vec<Completion>, ()>) -> napi::Result<Self> {
        Ok(Self {
            completer: Arc::new(Completer::new(&on_complete)?),
        })
    }

    /// The next completions still queued after a full batch (at most `maxBatch`).
    #[napi(catch_unwind)]
    pub fn take(&self) -> Vec<Completion> {
        take(&self.completer.queue)
    }
}

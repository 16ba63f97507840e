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

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function, ToNapiValue, TypeName, ValueType};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Status, sys};
use napi_derive::napi;
use wirecore_bridge::Batch;

/// One finished operation other than a response, keyed by the id JS gave it.
#[napi(object)]
#[derive(Default)]
pub struct Completion {
    /// The id JS passed with the operation.
    pub id: u32,
    /// Error code (`ErrorKind::code`) when the operation failed.
    pub code: Option<String>,
    /// Error message when the operation failed.
    pub message: Option<String>,
    /// One chunk of a streamed body (`readBody`); absent at its end.
    pub body: Option<Buffer>,
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
            .finish_non_exhaustive()
    }
}

/// A response head, with its whole body unless it is streamed.
#[derive(Debug)]
pub(crate) struct Head {
    pub id: u32,
    pub status: u32,
    /// `name\nvalue\n` pairs, parsed by JS when the headers are first read.
    pub headers: String,
    /// The whole body; `None` when it stays in the engine (`readBody(id, ..)`).
    pub body: Option<Bytes>,
    /// `version\nreused\ncache status\ndns connect tls ttfb total (ms)\nurl`, parsed by JS on
    /// first use: most callers never read these.
    pub meta: String,
}

/// What an operation hands back to JS.
#[derive(Debug)]
pub(crate) enum Item {
    Head(Head),
    Other(Completion),
}

impl From<Completion> for Item {
    fn from(c: Completion) -> Self {
        Self::Other(c)
    }
}

impl From<Head> for Item {
    fn from(h: Head) -> Self {
        Self::Head(h)
    }
}

/// Slots per item in a delivered batch.
const STRIDE: usize = 5;

/// A batch as JS receives it: one flat array, [`STRIDE`] slots per item: `id, status, headers,
/// body, meta` for a response (`body` null when streamed), `id, 0, null, null, completion` for
/// anything else. One array of plain values instead of an object per response (whose every
/// property N-API sets by name), and each body a copied Buffer instead of an external one with
/// a finalizer: most of the JS thread's time per request went there.
#[derive(Debug)]
pub struct Flat(Vec<Item>);

impl TypeName for Flat {
    fn type_name() -> &'static str {
        "Array<unknown>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

#[expect(
    unsafe_code,
    reason = "the batch is built with raw N-API calls (napi-rs's Buffer is always external)"
)]
impl ToNapiValue for Flat {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        fn ok(status: sys::napi_status) -> napi::Result<()> {
            if status == sys::Status::napi_ok {
                Ok(())
            } else {
                Err(napi::Error::from_status(Status::from(status)))
            }
        }
        let mut arr = std::ptr::null_mut();
        // SAFETY (every block here): `env` is the live environment napi-rs called us with, and
        // each out-pointer is a local.
        ok(unsafe { sys::napi_create_array_with_length(env, val.0.len() * STRIDE, &raw mut arr) })?;
        let mut null = std::ptr::null_mut();
        ok(unsafe { sys::napi_get_null(env, &raw mut null) })?;
        let mut at = 0u32;
        let mut put = |v: sys::napi_value| -> napi::Result<()> {
            ok(unsafe { sys::napi_set_element(env, arr, at, v) })?;
            at += 1;
            Ok(())
        };
        for item in val.0 {
            match item {
                Item::Head(h) => {
                    put(unsafe { u32::to_napi_value(env, h.id) }?)?;
                    put(unsafe { u32::to_napi_value(env, h.status) }?)?;
                    put(unsafe { String::to_napi_value(env, h.headers) }?)?;
                    put(match h.body {
                        Some(b) => {
                            let mut v = std::ptr::null_mut();
                            ok(unsafe {
                                sys::napi_create_buffer_copy(
                                    env,
                                    b.len(),
                                    b.as_ptr().cast(),
                                    std::ptr::null_mut(),
                                    &raw mut v,
                                )
                            })?;
                            v
                        }
                        None => null,
                    })?;
                    put(unsafe { String::to_napi_value(env, h.meta) }?)?;
                }
                Item::Other(c) => {
                    put(unsafe { u32::to_napi_value(env, c.id) }?)?;
                    put(unsafe { u32::to_napi_value(env, 0) }?)?;
                    put(null)?;
                    put(null)?;
                    put(unsafe { Completion::to_napi_value(env, c) }?)?;
                }
            }
        }
        Ok(arr)
    }
}

/// Completions handed to JS per call.
pub(crate) const MAX_BATCH: usize = 256;

type Queue = Arc<Batch<Item>>;

/// The oldest `MAX_BATCH` completions; the rest stay queued (JS takes them next).
fn take(queue: &Queue) -> Flat {
    Flat(queue.take(MAX_BATCH))
}

type Tsfn = ThreadsafeFunction<(), (), Flat, Status, false, true>;

/// The sending half, shared by every client of one JS environment.
pub(crate) struct Completer {
    queue: Queue,
    tsfn: Tsfn,
}

impl Completer {
    fn new(on_complete: &Function<'_, Flat, ()>) -> napi::Result<Self> {
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
    pub(crate) fn push(&self, c: Item) {
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
    /// `on_complete` receives every batch of completions of this environment, flat (see
    /// `index.js`: `deliver`).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "onComplete: (batch: Array<unknown>) => void"
    )]
    pub fn new(on_complete: Function<'_, Flat, ()>) -> napi::Result<Self> {
        Ok(Self {
            completer: Arc::new(Completer::new(&on_complete)?),
        })
    }

    /// The next completions still queued after a full batch (at most `maxBatch`).
    #[napi(catch_unwind, ts_return_type = "Array<unknown>")]
    pub fn take(&self) -> Flat {
        take(&self.completer.queue)
    }

    /// Puts off this thread's engine wake-ups for new requests until `release`
    /// (`wirecore_bridge::submit::hold`): `index.js` holds while a batch of completions runs its
    /// continuations, so the requests they start reach the engine with one wake-up.
    #[napi(catch_unwind)]
    #[allow(
        clippy::unused_self,
        reason = "a method of the environment's dispatcher in JS"
    )]
    pub fn hold(&self) {
        HOLD.with_borrow_mut(|h| {
            if h.is_none() {
                *h = Some(wirecore_bridge::submit::hold());
            }
        });
    }

    /// Ends `hold`: the requests started meanwhile reach the engine now.
    #[napi(catch_unwind)]
    #[allow(
        clippy::unused_self,
        reason = "a method of the environment's dispatcher in JS"
    )]
    pub fn release(&self) {
        drop(HOLD.take());
    }
}

thread_local! {
    /// The JS thread's hold on engine wake-ups, between `Dispatcher.hold` and `release`.
    static HOLD: std::cell::RefCell<Option<wirecore_bridge::submit::Hold>> =
        const { std::cell::RefCell::new(None) };
}

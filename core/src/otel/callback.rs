//! The span callback ([`Client::on_span`]): finished spans as [`SpanRecord`]s, handed to a
//! callback on a thread of its own (`wirecore-spans`), never on an engine thread.
//!
//! Invariant: a request never waits on the callback. Its span is offered to a bounded queue
//! (`otel.callback_queue`); a full queue drops it, counted in `otel.dropped` as the collector's
//! losses are. Flush and close wait until what was queued before them has been delivered.
//!
//! [`Client::on_span`]: crate::Client::on_span

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::Counts;

/// A finished client span, the same record in every binding (Python dict, Node object, Go
/// `Span`, C and Kotlin JSON). Attribute names are the OpenTelemetry HTTP client semantic
/// conventions' (`http.request.method`, `server.address`, `server.port`, `url.full`,
/// `http.response.status_code`, `error.type`, `network.protocol.version`,
/// `http.request.resend_count`, `http.request.method_original`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SpanRecord {
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span's id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id (the caller's context), when there was one.
    pub parent_span_id: Option<String>,
    /// The W3C `tracestate` the span carried, when there was one.
    pub trace_state: Option<String>,
    /// The method (`GET`), or `HTTP` for a method the conventions do not know.
    pub name: String,
    /// Always `client`.
    pub kind: &'static str,
    /// When the request started, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// When it ended (its body excluded), nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// `unset`, or `error` for a failure or a 4xx/5xx answer.
    pub status: &'static str,
    /// The error's message when `status` is `error` (empty for a 4xx/5xx answer).
    pub status_message: String,
    /// The semantic-convention attributes, by name.
    pub attributes: BTreeMap<String, SpanValue>,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum SpanValue {
    /// A string.
    String(String),
    /// An integer (`server.port`, `http.response.status_code`).
    Int(i64),
}

impl SpanRecord {
    /// The record as one JSON object, the fields named as above (the C ABI, Go and Kotlin
    /// hand this to the host).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A callback for spans.
pub type SpanSink = Arc<dyn Fn(&SpanRecord) + Send + Sync>;

/// The callback as the client keeps it: false when it dropped the span (counted).
pub(crate) type Sink = Arc<dyn Fn(&SpanRecord) -> bool + Send + Sync>;

enum Msg {
    Span(Box<SpanRecord>),
    /// Acknowledged once every span queued before it has been delivered.
    Flush(oneshot::Sender<()>),
    /// As `Flush`, then the thread ends (spans offered later are dropped, counted).
    Close(oneshot::Sender<()>),
}

/// A client's span queue and callback.
pub(crate) struct Callback {
    tx: mpsc::Sender<Msg>,
    /// Taken by the delivery thread when it starts (with the first callback).
    rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    sink: Arc<RwLock<Option<Sink>>>,
    listening: AtomicBool,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("listening", &self.listening)
            .finish_non_exhaustive()
    }
}

impl Callback {
    pub(super) fn new(queue: u64, counts: Arc<Counts>) -> Self {
        let (tx, rx) = mpsc::channel(usize::try_from(queue).unwrap_or(usize::MAX).max(1));
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            sink: Arc::new(RwLock::new(None)),
            listening: AtomicBool::new(false),
            counts,
        }
    }

    /// Whether a callback is set (spans are recorded for it).
    pub(super) fn is_listening(&self) -> bool {
        self.listening.load(Relaxed)
    }

    /// Sets the callback (replacing an earlier one) and starts the delivery thread once.
    pub(super) fn set_sink(&self, sink: Sink) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        let Some(mut rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let (sink, counts) = (self.sink.clone(), self.counts.clone());
        let started = std::thread::Builder::new()
            .name("wirecore-spans".into())
            .spawn(move || {
                // Ends at close, or when the client is gone (its sender dropped).
                while let Some(m) = rx.blocking_recv() {
                    match m {
                        Msg::Span(r) => {
                            let f = sink.read().unwrap_or_else(PoisonError::into_inner).clone();
                            let took = f.is_some_and(|f| {
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&r)))
                                    .unwrap_or(false)
                            });
                            let c = if took {
                                &counts.exported
                            } else {
                                &counts.dropped
                            };
                            c.fetch_add(1, Relaxed);
                        }
                        Msg::Flush(ack) => {
                            let _ = ack.send(());
                        }
                        Msg::Close(ack) => {
                            let _ = ack.send(());
                            return;
                        }
                    }
                }
            });
        match started {
            Ok(_) => self.listening.store(true, Relaxed),
            Err(e) => tracing::warn!(
                event = "otel_callback_failed",
                error = %e,
                "the span callback's thread did not start"
            ),
        }
    }

    /// Queues a finished span; a full queue (or a closed client) drops it, counted.
    pub(super) fn offer(&self, r: SpanRecord) {
        if self.tx.try_send(Msg::Span(Box::new(r))).is_err() {
            self.counts.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Returns once the spans queued before the call have been delivered.
    pub(super) async fn flush(&self) {
        self.wait(Msg::Flush).await;
    }

    /// Delivers what is queued and ends the delivery thread.
    pub(super) async fn close(&self) {
        self.wait(Msg::Close).await;
    }

    async fn wait(&self, m: fn(oneshot::Sender<()>) -> Msg) {
        if !self.is_listening() {
            return;
        }
        let (ack, done) = oneshot::channel();
        if self.tx.send(m(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

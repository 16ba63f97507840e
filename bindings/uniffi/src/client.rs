//! `Client`: the engine client and its tracker, with every call as a Kotlin `suspend fun`
//! and a blocking twin for Java.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wirecore_bridge::{AbortHandle, Kind, Prefetch, Tracker};

use crate::error::WirecoreError;
use crate::request::{Header, RequestOptions, request};
use crate::response::Response;

/// Aborts the engine work when dropped: the Kotlin coroutine awaiting it was cancelled (uniffi
/// drops the Rust future), or the blocking caller went away.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn cancelled() -> WirecoreError {
    WirecoreError::from(wirecore::Error::new(
        wirecore::ErrorKind::Cancelled,
        "the engine task ended without a result",
    ))
}

/// Runs `work` as one operation of `kind` on the engine and awaits its outcome (from any
/// executor: uniffi polls this future from Kotlin).
pub(crate) async fn run<T, W>(
    tracker: &Arc<Tracker>,
    kind: Kind,
    work: W,
) -> Result<T, WirecoreError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (abort, reg) = AbortHandle::new_pair();
    let _guard = AbortOnDrop(abort);
    tracker.spawn(kind, Some(reg), work, move |r| {
        // The send wakes uniffi's continuation callback into the JVM on this engine thread.
        crate::jvm::attach_once();
        let _ = tx.send(r);
    });
    rx.await
        .map_err(|_| cancelled())?
        .map_err(WirecoreError::from)
}

/// [`run`], blocking the calling (JVM) thread; never an engine thread.
pub(crate) fn block<T, W>(tracker: &Arc<Tracker>, kind: Kind, work: W) -> Result<T, WirecoreError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (abort, reg) = AbortHandle::new_pair();
    let _guard = AbortOnDrop(abort);
    tracker.spawn(kind, Some(reg), work, move |r| {
        let _ = tx.send(r);
    });
    rx.recv()
        .map_err(|_| cancelled())?
        .map_err(WirecoreError::from)
}

/// One engine client: its pool, DNS cache, policies and metrics. Cheap to share between
/// threads and coroutines; `close` it when done.
#[derive(Debug, uniffi::Object)]
#[expect(
    clippy::struct_field_names,
    reason = "`client` is the engine client this object wraps"
)]
pub struct Client {
    client: wirecore::Client,
    tracker: Arc<Tracker>,
    /// Dead letters kept for `poll_dead_letters`, once `listen_dead_letters` asked for them.
    letters: std::sync::OnceLock<Arc<wirecore_bridge::Letters>>,
    /// Finished spans kept for `poll_spans`, once `listen_spans` asked for them.
    spans: std::sync::OnceLock<Arc<wirecore_bridge::Spans>>,
}

/// A request that failed after every retry (an error, or a status `retry.retry_on_status`
/// lists), as the core's `DeadLetter`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DeadLetter {
    /// The request method.
    pub method: String,
    /// The request URL, userinfo removed.
    pub url: String,
    /// The request's own headers, without `Authorization`, `Proxy-Authorization` and `Cookie`.
    pub headers: Vec<Header>,
    /// The request body when it was replayable (`null` for a stream).
    pub body: Option<Vec<u8>>,
    /// The last failure's stable code (`connect`, `timeout.total` ...; `status` for a status).
    pub error_code: String,
    /// The last failure in words.
    pub message: String,
    /// The last status, when the last attempt got a response.
    pub status: Option<i32>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// When it was given up, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A finished client span, as the core's `SpanRecord` (the same fields in every binding).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
#[expect(
    clippy::struct_field_names,
    reason = "the record's field names, the same in every binding"
)]
pub struct Span {
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span's id, 16 lowercase hex digits (the one the request's `traceparent` carried).
    pub span_id: String,
    /// The caller's span (the `traceparent` option), or `null`.
    pub parent_span_id: Option<String>,
    /// The `tracestate` the span carried, or `null`.
    pub trace_state: Option<String>,
    /// The method (`GET`), or `HTTP` for one the conventions do not know.
    pub name: String,
    /// Always `client`.
    pub kind: String,
    /// When the request started, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// When it ended, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// `unset`, or `error` for a failure or a 4xx/5xx answer.
    pub status: String,
    /// The error's message when `status` is `error`, else empty.
    pub status_message: String,
    /// The HTTP client semantic conventions' attributes by name (`http.request.method`,
    /// `server.address`, `server.port`, `http.response.status_code`, `error.type` ...).
    pub attributes: std::collections::HashMap<String, AttributeValue>,
}

/// A span attribute's value.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum AttributeValue {
    /// A string.
    TextValue {
        /// The value.
        value: String,
    },
    /// An integer (`server.port`, `http.response.status_code`).
    IntValue {
        /// The value.
        value: i64,
    },
}

fn span_of(s: wirecore::SpanRecord) -> Span {
    Span {
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        trace_state: s.trace_state,
        name: s.name,
        kind: s.kind.to_owned(),
        start_unix_nanos: s.start_unix_nanos,
        end_unix_nanos: s.end_unix_nanos,
        status: s.status.to_owned(),
        status_message: s.status_message,
        attributes: s
            .attributes
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    wirecore::SpanValue::Int(value) => AttributeValue::IntValue { value },
                    wirecore::SpanValue::String(value) => AttributeValue::TextValue { value },
                    other => AttributeValue::TextValue {
                        value: format!("{other:?}"),
                    },
                };
                (k, v)
            })
            .collect(),
    }
}

/// Dead letters `poll_dead_letters` returns at most per call.
const MAX_LETTERS: u32 = 64;

impl Client {
    /// Ends a `poll_dead_letters` or `poll_spans` loop once its queue is empty (after `close`).
    fn close_letters(&self) {
        if let Some(l) = self.letters.get() {
            l.queue().close();
        }
        if let Some(s) = self.spans.get() {
            s.queue().close();
        }
    }

    fn start(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<impl Future<Output = Result<Response, wirecore::Error>> + use<>, WirecoreError>
    {
        let req = request(method, url, headers, body, options)?;
        let client = self.client.clone();
        let tracker = self.tracker.clone();
        Ok(async move {
            let (head, body) = wirecore_bridge::fetch(client, req, Prefetch::Small).await?;
            Response::new(head, body, tracker)
        })
    }
}

/// Freed by Kotlin (`close()`, `destroy()`, `use {}` or the cleaner) once no call holds it:
/// refuse what might still come through a clone and close the pool without waiting.
impl Drop for Client {
    fn drop(&mut self) {
        if self.tracker.is_closing() {
            return;
        }
        self.tracker.begin_close();
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        wirecore_bridge::spawn(
            async move {
                tracker.close(&client, Duration::ZERO, false).await;
                Ok(())
            },
            |_: Result<(), wirecore::Error>| {},
        );
    }
}

fn deadline(timeout_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

#[uniffi::export]
impl Client {
    /// A client from the core's config as JSON (`"{}"` for every default).
    ///
    /// # Errors
    /// `Config` (`invalid_config`) naming the offending field.
    #[uniffi::constructor]
    pub fn new(config_json: &str) -> Result<Arc<Self>, WirecoreError> {
        let config = wirecore::Config::from_json(config_json)?;
        let rt = wirecore_bridge::fork::runtime();
        let _enter = rt.enter();
        let client = wirecore::Client::from_config(config)?;
        Ok(Arc::new(Self {
            client,
            tracker: Tracker::new(),
            letters: std::sync::OnceLock::new(),
            spans: std::sync::OnceLock::new(),
        }))
    }

    /// Sends a request; returns once the head arrived (and the body, when small).
    #[uniffi::method(default(headers = [], body = None, options = None))]
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<Arc<Response>, WirecoreError> {
        let work = self.start(method, url, headers, body, options)?;
        run(&self.tracker, Kind::Request, work).await.map(Arc::new)
    }

    /// [`Client::request`], blocking the calling thread.
    #[uniffi::method(default(headers = [], body = None, options = None))]
    pub fn request_blocking(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<Arc<Response>, WirecoreError> {
        let work = self.start(method, url, headers, body, options)?;
        block(&self.tracker, Kind::Request, work).map(Arc::new)
    }

    /// Refuses new requests (`Closed`), waits up to `timeout_ms` for requests and body reads in
    /// flight, and closes the pool. (`close()` without an argument is `AutoCloseable`'s: it
    /// frees the object, closing at once once no call holds it; see [`Drop`] below.)
    pub async fn close(&self, timeout_ms: i64) {
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        tracker.begin_close();
        let work = async move {
            tracker.close(&client, deadline(timeout_ms), false).await;
            Ok(())
        };
        let _ = run(&self.tracker, Kind::Other, work).await;
        self.close_letters();
    }

    /// [`Client::close`], blocking the calling thread.
    pub fn close_blocking(&self, timeout_ms: i64) {
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        tracker.begin_close();
        let work = async move {
            tracker.close(&client, deadline(timeout_ms), false).await;
            Ok(())
        };
        let _ = block(&self.tracker, Kind::Other, work);
        self.close_letters();
    }

    /// Exports the finished OpenTelemetry spans and the `http.client.request.duration` metric
    /// to `otel.endpoint` now; returns once the collector answered or the export failed (the
    /// spans lost count in the stats' `otel.dropped`). `close` does this too.
    pub async fn flush_telemetry(&self) {
        let client = self.client.clone();
        let work = async move {
            client.flush_telemetry().await;
            Ok(())
        };
        let _ = run(&self.tracker, Kind::Other, work).await;
    }

    /// [`Client::flush_telemetry`], blocking the calling thread.
    pub fn flush_telemetry_blocking(&self) {
        let client = self.client.clone();
        let work = async move {
            client.flush_telemetry().await;
            Ok(())
        };
        let _ = block(&self.tracker, Kind::Other, work);
    }

    /// Starts keeping this client's dead letters for [`Client::poll_dead_letters`] (in a
    /// queue of `dead_letter.queue`; more are dropped, counted in the stats). Calling it again
    /// does nothing.
    pub fn listen_dead_letters(&self) {
        self.letters.get_or_init(|| {
            let l = wirecore_bridge::Letters::new(&self.client);
            // The caller's thread blocks in `poll_dead_letters`: nothing to wake.
            l.listen(&self.client, || {});
            l
        });
    }

    /// Waits up to `timeout_ms` for dead letters on the calling thread and returns those
    /// queued (at most `max`, at most 64); empty when none came in time. It blocks: call it
    /// from a thread of your own (or `Dispatchers.IO`).
    ///
    /// # Errors
    /// `InvalidRequest` before `listen_dead_letters`; `Closed` once the client is closed and
    /// every letter was taken (the end of a polling loop).
    pub fn poll_dead_letters(
        &self,
        timeout_ms: u64,
        max: u32,
    ) -> Result<Vec<DeadLetter>, WirecoreError> {
        let Some(letters) = self.letters.get() else {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::InvalidRequest,
                "poll_dead_letters before listen_dead_letters",
            )));
        };
        let mut got = Vec::new();
        let taken = letters.queue().wait_with(
            max.clamp(1, MAX_LETTERS) as usize,
            Some(Duration::from_millis(timeout_ms)),
            |l| {
                got.push(DeadLetter {
                    headers: l
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    body: l.body.map(|b| b.to_vec()),
                    status: l.status.map(i32::from),
                    method: l.method,
                    url: l.url,
                    error_code: l.error_code,
                    message: l.message,
                    attempts: l.attempts,
                    time_ms: l.time_ms,
                });
            },
        );
        if taken.is_none() {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::Closed,
                "the client is closed and every dead letter was taken",
            )));
        }
        Ok(got)
    }

    /// Starts keeping this client's finished spans for [`Client::poll_spans`] (in a queue of
    /// `otel.callback_queue`; more are dropped, counted in the stats' `otel.dropped`, so a
    /// slow poller never holds up a request). Calling it again does nothing.
    ///
    /// # Errors
    /// `InvalidConfig` naming `otel.enabled` while tracing is off.
    pub fn listen_spans(&self) -> Result<(), WirecoreError> {
        if !self.client.config().otel.enabled {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::InvalidConfig,
                "invalid config: otel.enabled: must be true for a span callback",
            )));
        }
        self.spans.get_or_init(|| {
            let q = wirecore_bridge::Spans::new(&self.client);
            // The caller's thread blocks in `poll_spans`: nothing to wake. With tracing on
            // (checked above) listening cannot fail.
            let _ = q.listen(&self.client, || {});
            q
        });
        Ok(())
    }

    /// Waits up to `timeout_ms` for finished spans on the calling thread and returns those
    /// queued (at most `max`, at most 64); empty when none came in time. It blocks: call it
    /// from a thread of your own (or `Dispatchers.IO`). After `close`, it still returns the
    /// spans queued before the close.
    ///
    /// # Errors
    /// `InvalidRequest` before `listen_spans`; `Closed` once the client is closed and every
    /// span was taken (the end of a polling loop).
    pub fn poll_spans(&self, timeout_ms: u64, max: u32) -> Result<Vec<Span>, WirecoreError> {
        let Some(spans) = self.spans.get() else {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::InvalidRequest,
                "poll_spans before listen_spans",
            )));
        };
        let mut got = Vec::new();
        let taken = spans.queue().wait_with(
            max.clamp(1, MAX_LETTERS) as usize,
            Some(Duration::from_millis(timeout_ms)),
            |s| got.push(span_of(s)),
        );
        if taken.is_none() {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::Closed,
                "the client is closed and every span was taken",
            )));
        }
        Ok(got)
    }

    /// Every counter as the core's JSON (`Stats`; field names in `tests/stats-fields.json`).
    pub fn stats(&self) -> String {
        self.client.stats().to_json()
    }

    /// The stats in Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.client.prometheus()
    }

    /// The health report as JSON.
    pub fn diagnostics(&self) -> String {
        serde_json::to_string(&self.client.diagnostics()).unwrap_or_default()
    }

    /// The health report as text.
    pub fn diagnostics_text(&self) -> String {
        self.client.diagnostics().to_string()
    }

    /// The cookie jar's unexpired cookies as the core's JSON (`[]` when `cookies.enabled` is off).
    pub fn cookies(&self) -> String {
        self.client.cookies_json()
    }

    /// Empties the cookie jar.
    pub fn clear_cookies(&self) {
        self.client.clear_cookies();
    }

    /// Closes every idle pooled connection now; requests in flight and the client go on.
    pub fn close_idle_connections(&self) {
        self.client.close_idle_connections();
    }
}

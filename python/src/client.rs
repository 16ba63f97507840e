//! The engine client as Python sees it: one object for both `wirecore.Client` and
//! `wirecore.AsyncClient`.
//!
//! Fork safety: in a forked child the first call rebuilds the engine client and its tracker
//! from the same config (`wirecore_bridge::fork`), because the parent's connections, runtime
//! threads and in-flight work do not exist there.

use std::future::Future;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wirecore_bridge::fork::PerProcess;
use wirecore_bridge::{AbortHandle, HostQueue, Kind, Letters, Spans, Tracker};

use crate::bridge::{Call, Completer, Pending, UNTRACKED, spawn_call, spawn_on};
use crate::error;
use crate::response::{Outcome, into_py_result, run};
use crate::upload::Upload;

/// How often a blocking call wakes to let Python run signal handlers (Ctrl-C).
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` on the shared runtime and waits for it here, with the GIL released, until it
/// completes or a signal handler raises (then the task is aborted, which cancels the request).
///
/// The future runs on an engine worker, not on this thread: there it shares the worker with
/// the connection it drives, so the request, its timers and its connection wake each other
/// without crossing threads, and this thread is woken once, with the result.
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    wait_on(py, &UNTRACKED, Kind::Other, async move { Ok(fut.await) })
}

/// [`wait`] for one operation of `kind` on `tracker`; an engine error raises.
pub(crate) fn wait_on<T, F>(
    py: Python<'_>,
    tracker: &Arc<Tracker>,
    kind: Kind,
    work: F,
) -> PyResult<T>
where
    F: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
    T: Send + 'static,
{
    let (rx, task) = spawn(tracker, kind, work);
    match recv(py, rx) {
        Ok(Some(Ok(v))) => Ok(v),
        Ok(Some(Err(e))) => Err(error::to_py(py, &e)),
        Ok(None) => Err(PyRuntimeError::new_err(
            "the engine task ended without a result",
        )),
        Err(e) => {
            task.abort();
            Err(e)
        }
    }
}

/// Where a spawned task's output (or its panic, as an `internal` error) arrives.
type Answer<T> = Receiver<Result<T, wirecore::Error>>;

/// Spawns `work` as one operation of `kind`; its outcome arrives on the returned channel.
fn spawn<T, F>(tracker: &Arc<Tracker>, kind: Kind, work: F) -> (Answer<T>, AbortHandle)
where
    F: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (abort, reg) = AbortHandle::new_pair();
    tracker.spawn(kind, Some(reg), work, move |r| {
        let _ = tx.send(r);
    });
    (rx, abort)
}

/// Waits (GIL released) for a value on `rx`, waking every [`SIGNAL_SLICE`] to run signal
/// handlers; `None` when the task ended without sending (it was aborted).
fn recv<T: Send>(py: Python<'_>, rx: Receiver<T>) -> PyResult<Option<T>> {
    py.detach(move || {
        loop {
            // Returning re-attaches; on a daemon thread while the interpreter finalizes,
            // pyo3-ffi's `PyEval_RestoreThread` parks the thread for good instead of letting
            // CPython's `pthread_exit` unwind through these frames (an abort).
            match rx.recv_timeout(SIGNAL_SLICE) {
                Ok(v) => return Ok(Some(v)),
                Err(RecvTimeoutError::Timeout) => {
                    // Not attaching while the interpreter exits: this thread keeps waiting.
                    #[expect(
                        clippy::redundant_closure_for_method_calls,
                        reason = "the method is not general over the lifetime"
                    )]
                    if let Some(Err(e)) = crate::bridge::with_python(|py| py.check_signals()) {
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    })
}

/// An engine client and its tracker, plus what it takes to rebuild them after `fork()`.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Client {
    config: wirecore::Config,
    state: PerProcess<(wirecore::Client, Arc<Tracker>)>,
    /// Dead letters waiting for the Python thread that calls `on_dead_letter`'s callback.
    letters: Mutex<Option<Arc<Letters>>>,
    /// Finished spans waiting for the Python thread that calls `on_span`'s callback.
    spans: Mutex<Option<Arc<Spans>>>,
}

impl Client {
    /// The engine client and the validated request (input errors raised before any I/O).
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of a request as Python passes them"
    )]
    fn prepare(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        upload: Option<&Upload>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(wirecore::Client, Arc<Tracker>, wirecore::Request)> {
        let x = Extra::from_dict(options)?;
        let req = error::check(
            py,
            body_of(body, upload).and_then(|b| build_request(method, url, headers, b, x)),
        )?;
        let (client, tracker) = self.current(py)?;
        Ok((client, tracker, req))
    }

    fn current(&self, py: Python<'_>) -> PyResult<(wirecore::Client, Arc<Tracker>)> {
        self.state.get(|| {
            let c = error::check(py, wirecore::Client::from_config(self.config.clone()))?;
            Ok((c, Tracker::new()))
        })
    }

    fn client(&self, py: Python<'_>) -> PyResult<wirecore::Client> {
        Ok(self.current(py)?.0)
    }

    fn letters_now(&self) -> Option<Arc<Letters>> {
        self.letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn spans_now(&self) -> Option<Arc<Spans>> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type Headers = Vec<(String, String)>;

/// `(connect, read, pool)` overrides in seconds.
type Phases = (Option<f64>, Option<f64>, Option<f64>);

/// Everything about a request beyond method, URL, headers and body: the `options` dict the
/// Python layer builds (only the keys the caller gave).
#[derive(Default)]
struct Extra {
    timeout: Option<f64>,
    phases: Option<Phases>,
    idempotent: Option<bool>,
    rate_limit_key: Option<String>,
    balance_key: Option<String>,
    priority: Option<PriorityArg>,
    cache: Option<String>,
    default_headers: Option<bool>,
    redirect: Option<String>,
    max_redirects: Option<i64>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

/// `priority=` as given (the Python layer checked the type); the core parses both forms.
#[derive(FromPyObject)]
enum PriorityArg {
    Int(i64),
    Str(String),
}

impl Extra {
    fn from_dict(d: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut x = Self::default();
        for (k, v) in d.into_iter().flat_map(PyDictMethods::iter) {
            match k.extract::<String>()?.as_str() {
                "timeout" => x.timeout = v.extract()?,
                "phases" => x.phases = v.extract()?,
                "idempotent" => x.idempotent = v.extract()?,
                "rate_limit_key" => x.rate_limit_key = v.extract()?,
                "balance_key" => x.balance_key = v.extract()?,
                "priority" => x.priority = v.extract()?,
                "cache" => x.cache = v.extract()?,
                "default_headers" => x.default_headers = v.extract()?,
                "redirect" => x.redirect = v.extract()?,
                "max_redirects" => x.max_redirects = v.extract()?,
                "traceparent" => x.traceparent = v.extract()?,
                "tracestate" => x.tracestate = v.extract()?,
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "unknown request option {other:?}"
                    )));
                }
            }
        }
        Ok(x)
    }
}

/// The longest timeout a caller may give (365 days): longer is surely a mistake, and a deadline
/// that far out cannot overflow the clock.
const MAX_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Seconds to a `Duration`, checked: NaN, infinite, non-positive (unless `zero_ok`) or above
/// [`MAX_TIMEOUT_SECS`] is an `invalid_request` error naming `what` (a `ValueError` in Python).
fn checked_seconds(what: &str, t: f64, zero_ok: bool) -> Result<Duration, wirecore::Error> {
    let positive = if zero_ok { t >= 0.0 } else { t > 0.0 };
    let bad = |why: &str| {
        wirecore::Error::new(
            wirecore::ErrorKind::InvalidRequest,
            format!("{what} must be {why} seconds, got {t}"),
        )
    };
    if !positive || t.is_nan() {
        return Err(bad(if zero_ok {
            "a non-negative number of"
        } else {
            "a positive number of"
        }));
    }
    if t > MAX_TIMEOUT_SECS {
        return Err(bad("at most 31536000 (365 days) of"));
    }
    Duration::try_from_secs_f64(t).map_err(|_| bad("a number of"))
}

/// A per-request timeout: positive seconds (NaN and non-positive fail here, naming `what`);
/// one too long for a `Duration` saturates, and the core's `RequestOptions::validate` reports
/// anything over its one-year bound by the option's name.
fn seconds(what: &str, t: f64) -> Result<Duration, wirecore::Error> {
    if t > MAX_TIMEOUT_SECS {
        return Ok(Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX));
    }
    checked_seconds(what, t, false)
}

fn build_request(
    method: &str,
    url: &str,
    headers: Option<Headers>,
    body: Option<wirecore::RequestBody>,
    x: Extra,
) -> Result<wirecore::Request, wirecore::Error> {
    let mut req = wirecore::Request::new(wirecore::parse_method(method)?, url)?;
    if let Some(hs) = headers {
        let map = req.headers_mut();
        map.reserve(hs.len());
        for (n, v) in hs {
            let (n, v) = wirecore::parse_header(&n, &v)?;
            map.append(n, v);
        }
    }
    if let Some(b) = body {
        *req.body_mut() = b;
    }
    let o = req.options_mut();
    if let Some(t) = x.timeout {
        o.timeout = Some(seconds("timeout", t)?);
    }
    if let Some((connect, read, pool)) = x.phases {
        o.connect_timeout = connect.map(|t| seconds("timeout.connect", t)).transpose()?;
        o.read_timeout = read.map(|t| seconds("timeout.read", t)).transpose()?;
        o.pool_timeout = pool.map(|t| seconds("timeout.pool", t)).transpose()?;
    }
    o.idempotent = x.idempotent;
    o.rate_limit_key = x.rate_limit_key;
    o.balance_key = x.balance_key;
    o.traceparent = x.traceparent;
    o.tracestate = x.tracestate;
    if let Some(p) = x.priority {
        o.priority = Some(match p {
            PriorityArg::Int(u) => wirecore::Priority::parse(&u.to_string())?,
            PriorityArg::Str(s) => wirecore::Priority::parse(&s)?,
        });
    }
    if let Some(p) = x.redirect {
        o.redirect = Some(wirecore::RedirectPolicy::parse(&p)?);
    }
    if let Some(n) = x.max_redirects {
        o.max_redirects = Some(wirecore::RequestOptions::checked_max_redirects(n)?);
    }
    if let Some(m) = x.cache {
        o.cache = wirecore::CacheMode::parse(&m)?;
    }
    // Here, not when sent: a bad value raises where it was given, before any I/O.
    o.validate()?;
    if let Some(d) = x.default_headers {
        *req.default_headers_mut() = d;
    }
    Ok(req)
}

fn body_of(
    body: Option<&[u8]>,
    upload: Option<&Upload>,
) -> Result<Option<wirecore::RequestBody>, wirecore::Error> {
    match (body, upload) {
        (Some(_), Some(_)) => Err(wirecore::Error::new(
            wirecore::ErrorKind::InvalidRequest,
            "pass a body or an upload, not both",
        )),
        (Some(b), None) => Ok(Some(wirecore::RequestBody::from(
            bytes::Bytes::copy_from_slice(b),
        ))),
        (None, Some(u)) => u.take_body().map(Some),
        (None, None) => Ok(None),
    }
}

/// A request started in the background (for streamed uploads the caller feeds while it runs).
/// Dropping it unawaited cancels the request.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Started {
    rx: Mutex<Option<Answer<Outcome>>>,
    abort: AbortHandle,
}

#[pymethods]
impl Started {
    /// Blocks (GIL released, Ctrl-C honoured) until the response; cancels it on an exception.
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(PyValueError::new_err("the response was already taken"));
        };
        let out = match recv(py, rx) {
            Ok(Some(out)) => out.unwrap_or_else(Outcome::Error),
            Ok(None) => Outcome::Error(wirecore::Error::new(
                wirecore::ErrorKind::Cancelled,
                "the request was cancelled",
            )),
            Err(e) => {
                self.abort.abort();
                return Err(e);
            }
        };
        into_py_result(py, out)
    }

    /// Cancels the request.
    fn cancel(&self) {
        self.abort.abort();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

#[pymethods]
impl Client {
    /// Builds a client from the core's config as JSON text (`{}` for every default).
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let config = error::check(py, wirecore::Config::from_json(config_json))?;
        let rt = wirecore::runtime::global();
        let _enter = rt.enter();
        let client = error::check(py, wirecore::Client::from_config(config.clone()))?;
        Ok(Self {
            config,
            state: PerProcess::new((client, Tracker::new())),
            letters: Mutex::new(None),
            spans: Mutex::new(None),
        })
    }

    /// Sends a request and blocks (GIL released) until the response, and its body unless
    /// `stream`, arrived.
    #[pyo3(signature = (method, url, headers=None, body=None, stream=false, options=None))]
    #[expect(clippy::too_many_arguments, reason = "mirrors the Python call")]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        stream: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let (client, tracker, req) = self.prepare(py, method, url, headers, body, None, options)?;
        let work = run(client, tracker.clone(), req, stream);
        let out = wait_on(py, &tracker, Kind::Request, work)?;
        into_py_result(py, out)
    }

    /// Starts a request whose body comes from `upload`; `Started.wait()` returns the response
    /// while the caller feeds the upload meanwhile.
    #[pyo3(signature = (upload, method, url, headers=None, stream=false, options=None))]
    #[expect(clippy::too_many_arguments, reason = "mirrors the Python call")]
    fn start(
        &self,
        py: Python<'_>,
        upload: &Upload,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        stream: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Started> {
        let (client, tracker, req) =
            self.prepare(py, method, url, headers, None, Some(upload), options)?;
        let work = run(client, tracker.clone(), req, stream);
        let (rx, abort) = spawn(&tracker, Kind::Request, work);
        Ok(Started {
            rx: Mutex::new(Some(rx)),
            abort,
        })
    }

    /// Starts a request; its outcome completes `fut` on the completer's loop.
    #[pyo3(signature = (
        completer, fut, method, url, headers=None, body=None, stream=false, options=None,
        upload=None,
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments"
    )]
    fn send_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        stream: bool,
        options: Option<&Bound<'_, PyDict>>,
        upload: Option<&Upload>,
    ) -> PyResult<Pending> {
        let (client, tracker, req) =
            self.prepare(py, method, url, headers, body, upload, options)?;
        let work = run(client, tracker.clone(), req, stream);
        Ok(spawn_on(completer, fut, &tracker, Kind::Request, work))
    }

    /// Starts a request; returns the `Call` a task awaits for its outcome (the raw response).
    #[pyo3(signature = (
        completer, method, url, headers=None, body=None, stream=false, options=None,
        upload=None,
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments"
    )]
    fn call_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        stream: bool,
        options: Option<&Bound<'_, PyDict>>,
        upload: Option<&Upload>,
    ) -> PyResult<Py<Call>> {
        let (client, tracker, req) =
            self.prepare(py, method, url, headers, body, upload, options)?;
        let work = run(client, tracker.clone(), req, stream);
        spawn_call(py, completer, &tracker, Kind::Request, None, work)
    }

    /// Refuses new requests, waits up to `timeout` seconds for in-flight ones and their body
    /// reads, closes idle connections.
    #[pyo3(signature = (timeout=5.0))]
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let d = secs(py, timeout)?;
        let (client, tracker) = self.current(py)?;
        let letters = self.letters_now();
        let spans = self.spans_now();
        wait(py, async move {
            tracker.close(&client, d, false).await;
            end(letters);
            end(spans);
        })
    }

    /// Like `close`, completing `fut` on the completer's loop.
    #[pyo3(signature = (completer, fut, timeout=5.0))]
    fn close_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
        timeout: f64,
    ) -> PyResult<Pending> {
        let d = secs(py, timeout)?;
        let (client, tracker) = self.current(py)?;
        let letters = self.letters_now();
        let spans = self.spans_now();
        Ok(crate::bridge::spawn_completing(
            completer,
            fut,
            async move {
                tracker.close(&client, d, false).await;
                end(letters);
                end(spans);
                Outcome::Unit
            },
        ))
    }

    /// Exports the finished spans and the duration metric now (`otel.endpoint`); returns once
    /// the collector answered or the export failed (`Client::flush_telemetry`).
    fn flush_telemetry(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client(py)?;
        wait(py, async move { client.flush_telemetry().await })
    }

    /// Like `flush_telemetry`, completing `fut` on the completer's loop.
    fn flush_telemetry_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let client = self.client(py)?;
        Ok(crate::bridge::spawn_completing(
            completer,
            fut,
            async move {
                client.flush_telemetry().await;
                Outcome::Unit
            },
        ))
    }

    /// Queues this client's dead letters for `next_dead_letters` (once).
    fn listen_dead_letters(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client(py)?;
        let mut g = self.letters.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            let l = Letters::new(&client);
            // The Python thread blocks in `next_dead_letters`: nothing to wake but it.
            l.listen(&client, || {});
            *g = Some(l);
        }
        Ok(())
    }

    /// Up to 64 dead letters as dicts, waiting (GIL released) up to `timeout` seconds for the
    /// first; `None` once the client is closed and none are left.
    fn next_dead_letters(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Vec<Py<PyDict>>>> {
        next_records(py, self.letters_now(), timeout, letter_dict)
    }

    /// Queues this client's finished spans for `next_spans` (once).
    fn listen_spans(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client(py)?;
        let mut g = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            let q = Spans::new(&client);
            // The Python thread blocks in `next_spans`: nothing to wake but it.
            error::check(py, q.listen(&client, || {}))?;
            *g = Some(q);
        }
        Ok(())
    }

    /// Up to 64 finished spans as dicts (`SpanRecord`'s fields), waiting (GIL released) up to
    /// `timeout` seconds for the first; `None` once the client is closed and none are left.
    fn next_spans(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Vec<Py<PyDict>>>> {
        next_records(py, self.spans_now(), timeout, span_dict)
    }

    /// Every counter, as the core's JSON (`Stats::to_json`).
    fn stats_json(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.client(py)?.stats().to_json())
    }

    /// The cookie jar's unexpired cookies, as the core's JSON (`Client::cookies_json`).
    fn cookies_json(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.client(py)?.cookies_json())
    }

    /// Empties the cookie jar.
    fn clear_cookies(&self, py: Python<'_>) -> PyResult<()> {
        self.client(py)?.clear_cookies();
        Ok(())
    }

    /// The stats in Prometheus text format.
    fn prometheus(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.client(py)?.prometheus())
    }

    /// The health report as JSON.
    fn diagnostics_json(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.client(py)?.diagnostics();
        serde_json::to_string(&d).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The health report as text.
    fn diagnostics_text(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.client(py)?.diagnostics().to_string())
    }

    /// Closes every idle pooled connection now; in-flight requests and the client go on.
    fn close_idle_connections(&self, py: Python<'_>) -> PyResult<()> {
        self.client(py)?.close_idle_connections();
        Ok(())
    }

    /// The effective config (every default filled in) as JSON.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.config).map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

fn secs(py: Python<'_>, t: f64) -> PyResult<Duration> {
    error::check(py, checked_seconds("timeout", t, true))
}

/// Ends a callback's thread (dead letters, spans) once the records queued so far are taken.
fn end<T>(queue: Option<Arc<wirecore_bridge::HostQueue<T>>>) {
    if let Some(q) = queue {
        q.queue().close();
    }
}

/// Up to 64 records of a host queue (dead letters, spans) as dicts, waiting (GIL released) up
/// to `timeout` seconds for the first; `None` when the queue was never listened to, or once the
/// client is closed and none are left.
fn next_records<T: Send>(
    py: Python<'_>,
    q: Option<Arc<HostQueue<T>>>,
    timeout: f64,
    dict: fn(Python<'_>, &T) -> PyResult<Py<PyDict>>,
) -> PyResult<Option<Vec<Py<PyDict>>>> {
    let Some(q) = q else {
        return Ok(None);
    };
    let wait = Duration::try_from_secs_f64(timeout)
        .map_err(|_| PyValueError::new_err("timeout must be a number of seconds >= 0"))?;
    let mut got = Vec::new();
    let taken = py.detach(|| q.queue().wait_with(64, Some(wait), |x| got.push(x)));
    if taken.is_none() {
        return Ok(None);
    }
    got.iter()
        .map(|x| dict(py, x))
        .collect::<PyResult<_>>()
        .map(Some)
}

/// A finished span as the dict `wirecore.Span` is built from.
fn span_dict(py: Python<'_>, s: &wirecore::SpanRecord) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("trace_id", &s.trace_id)?;
    d.set_item("span_id", &s.span_id)?;
    d.set_item("parent_span_id", &s.parent_span_id)?;
    d.set_item("trace_state", &s.trace_state)?;
    d.set_item("name", &s.name)?;
    d.set_item("kind", s.kind)?;
    d.set_item("start_unix_nanos", s.start_unix_nanos)?;
    d.set_item("end_unix_nanos", s.end_unix_nanos)?;
    d.set_item("status", s.status)?;
    d.set_item("status_message", &s.status_message)?;
    let attrs = PyDict::new(py);
    for (k, v) in &s.attributes {
        match v {
            wirecore::SpanValue::String(x) => attrs.set_item(k, x)?,
            wirecore::SpanValue::Int(i) => attrs.set_item(k, i)?,
            _ => attrs.set_item(k, py.None())?,
        }
    }
    d.set_item("attributes", attrs)?;
    Ok(d.unbind())
}

/// A dead letter as the dict `wirecore.DeadLetter` is built from.
fn letter_dict(py: Python<'_>, l: &wirecore::DeadLetter) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("method", &l.method)?;
    d.set_item("url", &l.url)?;
    d.set_item("headers", l.headers.clone())?;
    d.set_item(
        "body",
        l.body.as_ref().map(|b| pyo3::types::PyBytes::new(py, b)),
    )?;
    d.set_item("error_code", &l.error_code)?;
    d.set_item("message", &l.message)?;
    d.set_item("status", l.status)?;
    d.set_item("attempts", l.attempts)?;
    d.set_item("time_ms", l.time_ms)?;
    Ok(d.unbind())
}

//! A response as Python sees it: the head, plus either the whole body or a stream to read.
//!
//! The non-streaming path reads the body inside the same engine future, so a request crosses
//! into Python once; the body is copied exactly once, into the `bytes` object.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use pyo3::exceptions::PyRuntimeError;

use crate::bridge::{Completer, Pending, spawn_completing};
use crate::error;

/// What an engine task hands back to Python.
pub(crate) enum Outcome {
    Response(Box<Parts>),
    Chunk(Option<Bytes>),
    Unit,
    Error(wirecore::Error),
}

pub(crate) struct Parts {
    status: u16,
    version: http::Version,
    headers: http::HeaderMap,
    url: String,
    timings: wirecore::Timings,
    reused: bool,
    elapsed: Duration,
    content: Option<Bytes>,
    stream: Option<wirecore::Body>,
}

/// Sends `req` and, unless `stream`, reads the whole body.
pub(crate) async fn run(client: wirecore::Client, req: wirecore::Request, stream: bool) -> Outcome {
    let start = tokio::time::Instant::now();
    let resp = match client.execute(req).await {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let url = resp.url().to_string();
    let timings = resp.timings();
    let reused = resp.reused();
    let (head, body) = resp.into_http().into_parts();
    let mut parts = Parts {
        status: head.status.as_u16(),
        version: head.version,
        headers: head.headers,
        url,
        timings,
        reused,
        elapsed: Duration::ZERO,
        content: None,
        stream: None,
    };
    if stream {
        parts.stream = Some(body);
    } else {
        match read_all(body).await {
            Ok(b) => parts.content = Some(b),
            Err(e) => return Outcome::Error(e),
        }
    }
    parts.elapsed = start.elapsed();
    Outcome::Response(Box::new(parts))
}

async fn read_all(mut body: wirecore::Body) -> Result<Bytes, wirecore::Error> {
    let Some(first) = body.next().await.transpose()? else {
        return Ok(Bytes::new());
    };
    let Some(second) = body.next().await.transpose()? else {
        return Ok(first);
    };
    let mut buf = BytesMut::with_capacity(first.len() + second.len());
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while let Some(c) = body.next().await.transpose()? {
        buf.extend_from_slice(&c);
    }
    Ok(buf.freeze())
}

/// Builds the Python value of an outcome (on a thread attached to the interpreter).
pub(crate) fn into_py_result(py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
    match outcome {
        Outcome::Response(p) => Ok(Py::new(py, RawResponse::from_parts(py, *p))?.into_any()),
        Outcome::Chunk(Some(b)) => Ok(PyBytes::new(py, &b).into_any().unbind()),
        Outcome::Chunk(None) | Outcome::Unit => Ok(py.None()),
        Outcome::Error(e) => Err(error::to_py(py, &e)),
    }
}

/// Where a streamed body stands. A read takes the body out (`Reading`) and puts it back only
/// if nobody gave up on it meanwhile, so a chunk is never lost silently: a read that was
/// interrupted or cancelled leaves `Failed`, and every later read raises.
pub(crate) enum BodyState {
    Open(wirecore::Body),
    /// A read in flight owns the body.
    Reading,
    /// Read to its end.
    Ended,
    /// An error, an interrupted or cancelled read, or `close()` before the end: the body is
    /// incomplete, and every later read raises this.
    Failed(wirecore::ErrorKind, String),
}

pub(crate) type Stream = Arc<Mutex<BodyState>>;

fn lock(s: &Stream) -> std::sync::MutexGuard<'_, BodyState> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the body incomplete unless it failed already (the first failure is the one to report).
pub(crate) fn fail_stream(s: &Stream, message: &str) {
    let mut st = lock(s);
    if !matches!(*st, BodyState::Failed(..)) {
        *st = BodyState::Failed(wirecore::ErrorKind::Cancelled, message.to_owned());
    }
}

/// Why a read was given up, as later reads report it.
pub(crate) const INTERRUPTED: &str =
    "reading the response body was interrupted or cancelled; the body is incomplete";

/// The engine's response; `wirecore.Response` wraps it.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct RawResponse {
    #[pyo3(get)]
    status_code: u16,
    headers: http::HeaderMap,
    #[pyo3(get)]
    url: String,
    timings: wirecore::Timings,
    #[pyo3(get)]
    reused: bool,
    elapsed: Duration,
    version: http::Version,
    content: Option<Py<PyBytes>>,
    stream: Stream,
}

impl RawResponse {
    fn from_parts(py: Python<'_>, p: Parts) -> Self {
        Self {
            status_code: p.status,
            headers: p.headers,
            url: p.url,
            timings: p.timings,
            reused: p.reused,
            elapsed: p.elapsed,
            version: p.version,
            content: p.content.map(|b| PyBytes::new(py, &b).unbind()),
            stream: Arc::new(Mutex::new(
                p.stream.map_or(BodyState::Ended, BodyState::Open),
            )),
        }
    }

    /// The body for one read: `None` at its end; raises once it failed or while another read
    /// is in flight.
    fn begin_read(&self, py: Python<'_>) -> PyResult<Option<wirecore::Body>> {
        let mut st = lock(&self.stream);
        match std::mem::replace(&mut *st, BodyState::Reading) {
            BodyState::Open(body) => Ok(Some(body)),
            other => {
                let r = match &other {
                    BodyState::Ended => Ok(None),
                    BodyState::Failed(kind, msg) => {
                        Err(error::to_py(py, &wirecore::Error::new(*kind, msg.clone())))
                    }
                    BodyState::Reading | BodyState::Open(_) => Err(PyRuntimeError::new_err(
                        "another read of this response body is in progress",
                    )),
                };
                *st = other;
                r
            }
        }
    }
}

/// Reads one chunk; the body goes back only if the read is still wanted (see [`BodyState`]).
async fn next_chunk(stream: Stream, mut body: wirecore::Body) -> Outcome {
    let item = body.next().await;
    let mut st = lock(&stream);
    let wanted = matches!(*st, BodyState::Reading);
    match item {
        Some(Ok(b)) => {
            if wanted {
                *st = BodyState::Open(body);
            }
            Outcome::Chunk(Some(b))
        }
        // At the end (or on error) the body is dropped: the connection goes back or is discarded.
        None => {
            if wanted {
                *st = BodyState::Ended;
            }
            Outcome::Chunk(None)
        }
        Some(Err(e)) => {
            if wanted {
                *st = BodyState::Failed(e.kind(), e.full_message());
            }
            Outcome::Error(e)
        }
    }
}

#[pymethods]
impl RawResponse {
    #[getter]
    fn http_version(&self) -> &'static str {
        match self.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }
    }

    /// `[(name, value), ...]`, names lower-case, in wire order; values decoded as latin-1.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (n, v) in &self.headers {
            let v: String = v.as_bytes().iter().map(|&b| char::from(b)).collect();
            list.append(PyTuple::new(py, [n.as_str(), v.as_str()])?)?;
        }
        Ok(list)
    }

    /// `(dns, connect, tls, ttfb, total)` in seconds.
    #[getter]
    fn timings(&self) -> (f64, f64, f64, f64, f64) {
        let t = self.timings;
        (
            t.dns.as_secs_f64(),
            t.connect.as_secs_f64(),
            t.tls.as_secs_f64(),
            t.ttfb.as_secs_f64(),
            t.total.as_secs_f64(),
        )
    }

    /// Seconds from the call until the response (and its body, unless streamed) arrived.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// The whole body, or `None` for a streamed response.
    #[getter]
    fn content(&self, py: Python<'_>) -> Option<Py<PyBytes>> {
        self.content.as_ref().map(|c| c.clone_ref(py))
    }

    /// The next chunk of a streamed body, or `None` at its end; blocks with the GIL released.
    /// An interrupted read (Ctrl-C) leaves the body failed: later reads raise.
    fn next_chunk(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        let Some(body) = self.begin_read(py)? else {
            return Ok(None);
        };
        let stream = self.stream.clone();
        let out = match crate::client::wait(py, next_chunk(stream, body)) {
            Ok(out) => out,
            Err(e) => {
                fail_stream(&self.stream, INTERRUPTED);
                return Err(e);
            }
        };
        match out {
            Outcome::Chunk(Some(b)) => Ok(Some(PyBytes::new(py, &b).unbind())),
            Outcome::Error(e) => Err(error::to_py(py, &e)),
            _ => Ok(None),
        }
    }

    /// Like `next_chunk`, completing `fut` on its loop; cancelling the returned `Pending`
    /// leaves the body failed. Returns `None` (and leaves `fut` alone) at the body's end.
    fn next_chunk_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
    ) -> PyResult<Option<Pending>> {
        let Some(body) = self.begin_read(py)? else {
            return Ok(None);
        };
        let stream = self.stream.clone();
        let mut pending = spawn_completing(completer, fut, next_chunk(stream, body));
        pending.stream = Some(self.stream.clone());
        Ok(Some(pending))
    }

    /// Marks an unfinished body incomplete: the Python layer lost chunks it had read to an
    /// exception, so later reads must raise.
    fn fail(&self, message: &str) {
        fail_stream(&self.stream, message);
    }

    /// Raises the error that left the body incomplete, if any.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        match &*lock(&self.stream) {
            BodyState::Failed(kind, msg) => {
                Err(error::to_py(py, &wirecore::Error::new(*kind, msg.clone())))
            }
            _ => Ok(()),
        }
    }

    /// Whether a streamed body is still open.
    #[getter]
    fn is_stream_open(&self) -> bool {
        matches!(*lock(&self.stream), BodyState::Open(_) | BodyState::Reading)
    }

    /// Drops an unread streamed body (its connection is discarded); later reads raise.
    fn close(&self) {
        let mut st = lock(&self.stream);
        if matches!(*st, BodyState::Open(_) | BodyState::Reading) {
            *st = BodyState::Failed(
                wirecore::ErrorKind::Cancelled,
                "the response was closed before its body was read to the end".to_owned(),
            );
        }
    }
}

//! A response as Python sees it: the head, plus either the whole body or a stream to read.
//!
//! The non-streaming path reads the body inside the same engine future, so a request crosses
//! into Python once; the body is copied exactly once, into the `bytes` object.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use wirecore_bridge::{
    Begin, BodySlot, EventSlot, INTERRUPTED, Kind, Prefetch, Prefetched, Tracker,
};

use pyo3::exceptions::PyRuntimeError;

use crate::bridge::{Completer, Pending, spawn_completing, spawn_on};
use crate::error;

/// What an engine task hands back to Python.
pub(crate) enum Outcome {
    Response(Box<Parts>),
    Chunk(Option<Bytes>),
    Event(Option<wirecore::sse::Event>),
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
    cache: Option<wirecore::CacheStatus>,
    elapsed: Duration,
    content: Option<Bytes>,
    stream: Option<wirecore::Body>,
    tracker: Arc<Tracker>,
}

/// Sends `req` and, unless `stream`, reads the whole body.
pub(crate) async fn run(
    client: wirecore::Client,
    tracker: Arc<Tracker>,
    req: wirecore::Request,
    stream: bool,
) -> Result<Outcome, wirecore::Error> {
    let start = tokio::time::Instant::now();
    let how = if stream {
        Prefetch::Stream
    } else {
        Prefetch::Whole
    };
    let (head, body) = wirecore_bridge::fetch(client, req, how).await?;
    let mut parts = Parts {
        status: head.status.as_u16(),
        version: head.version,
        headers: head.headers,
        url: head.url.to_string(),
        timings: head.timings,
        reused: head.reused,
        cache: head.cache,
        elapsed: Duration::ZERO,
        content: None,
        stream: None,
        tracker,
    };
    match body {
        Prefetched::Whole(b) => parts.content = Some(b),
        Prefetched::Cut(_, e) => return Err(e),
        Prefetched::Stream(b) => parts.stream = Some(b),
    }
    parts.elapsed = start.elapsed();
    Ok(Outcome::Response(Box::new(parts)))
}

/// Builds the Python value of an outcome (on a thread attached to the interpreter).
pub(crate) fn into_py_result(py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
    match outcome {
        Outcome::Response(p) => Ok(Py::new(py, RawResponse::from_parts(py, *p))?.into_any()),
        Outcome::Chunk(Some(b)) => Ok(PyBytes::new(py, &b).into_any().unbind()),
        Outcome::Event(Some(e)) => Ok(event_tuple(e).into_pyobject(py)?.into_any().unbind()),
        Outcome::Chunk(None) | Outcome::Event(None) | Outcome::Unit => Ok(py.None()),
        Outcome::Error(e) => Err(error::to_py(py, &e)),
    }
}

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
    cache: Option<wirecore::CacheStatus>,
    elapsed: Duration,
    version: http::Version,
    content: Option<Py<PyBytes>>,
    /// A streamed body, one read at a time (an ended one when the body came whole).
    stream: Arc<BodySlot>,
    /// The client's, so its close waits for body reads.
    tracker: Arc<Tracker>,
}

impl RawResponse {
    fn from_parts(py: Python<'_>, p: Parts) -> Self {
        Self {
            status_code: p.status,
            headers: p.headers,
            url: p.url,
            timings: p.timings,
            reused: p.reused,
            cache: p.cache,
            elapsed: p.elapsed,
            version: p.version,
            content: p.content.map(|b| PyBytes::new(py, &b).unbind()),
            stream: BodySlot::new(match p.stream {
                Some(body) => Prefetched::Stream(body),
                None => Prefetched::Whole(Bytes::new()),
            }),
            tracker: p.tracker,
        }
    }
}

/// `(event, data, id, retry)`; the Python layer makes a `ServerSentEvent` of it.
type EventTuple = (String, String, String, Option<u64>);

fn event_tuple(e: wirecore::sse::Event) -> EventTuple {
    (e.event, e.data, e.id, e.retry)
}

/// A response's Server-Sent Events (`Response.iter_events` / `aiter_events`).
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct RawEvents {
    slot: Arc<EventSlot>,
    tracker: Arc<Tracker>,
}

#[pymethods]
impl RawEvents {
    /// The next event, `None` at the end; blocks with the GIL released.
    fn next(&self, py: Python<'_>) -> PyResult<Option<EventTuple>> {
        let slot = self.slot.clone();
        let ev =
            crate::client::wait_on(
                py,
                &self.tracker,
                Kind::Read,
                async move { slot.next().await },
            )?;
        Ok(ev.map(event_tuple))
    }

    /// Like `next`, completing `fut` on its loop (with `None` at the end).
    fn next_async(&self, completer: &Completer, fut: Py<PyAny>) -> Pending {
        let slot = self.slot.clone();
        let work = async move { slot.next().await.map(Outcome::Event) };
        spawn_on(completer, fut, &self.tracker, Kind::Read, work)
    }

    /// Stops the stream (a read in flight raises); its connection is not reused.
    fn close(&self) {
        self.slot.close();
    }
}

fn busy() -> PyErr {
    PyRuntimeError::new_err("another read of this response body is in progress")
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

    /// `"hit"`, `"miss"`, `"stale"` or `"revalidated"`; `None` when the cache took no part.
    #[getter]
    fn cache_status(&self) -> Option<&'static str> {
        self.cache.map(wirecore::CacheStatus::as_str)
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
        let chunk = match self.stream.begin() {
            Begin::Busy => return Err(busy()),
            Begin::Ready => error::check(py, self.stream.take_next())?,
            Begin::Read(r) => match crate::client::wait_on(py, &self.tracker, Kind::Read, r.next())
            {
                Ok(c) => c,
                Err(e) => {
                    // Failed already when the engine failed; else the read was interrupted.
                    self.stream
                        .fail(wirecore::ErrorKind::Cancelled, INTERRUPTED);
                    return Err(e);
                }
            },
        };
        Ok(chunk.map(|b| PyBytes::new(py, &b).unbind()))
    }

    /// Like `next_chunk`, completing `fut` on its loop; cancelling the returned `Pending`
    /// leaves the body failed. Returns `None` (and leaves `fut` alone) at the body's end.
    fn next_chunk_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
    ) -> PyResult<Option<Pending>> {
        let mut pending = match self.stream.begin() {
            Begin::Busy => return Err(busy()),
            Begin::Ready => match error::check(py, self.stream.take_next())? {
                None => return Ok(None),
                Some(b) => spawn_completing(completer, fut, async move { Outcome::Chunk(Some(b)) }),
            },
            Begin::Read(r) => {
                let work = async move { r.next().await.map(Outcome::Chunk) };
                spawn_on(completer, fut, &self.tracker, Kind::Read, work)
            }
        };
        pending.stream = Some(self.stream.clone());
        Ok(Some(pending))
    }

    /// Marks an unfinished body incomplete: the Python layer lost chunks it had read to an
    /// exception, so later reads must raise.
    fn fail(&self, message: &str) {
        self.stream.fail(wirecore::ErrorKind::Cancelled, message);
    }

    /// Raises the error that left the body incomplete, if any.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        match self.stream.failure() {
            Some(e) => Err(error::to_py(py, &e)),
            None => Ok(()),
        }
    }

    /// Whether a streamed body is still open.
    #[getter]
    fn is_stream_open(&self) -> bool {
        self.stream.is_open()
    }

    /// The rest of the body as Server-Sent Events, through the engine's parser; a `GET`'s
    /// stream reconnects with `Last-Event-ID`.
    fn events(&self, py: Python<'_>) -> PyResult<RawEvents> {
        let slot = match &self.content {
            Some(c) => EventSlot::new(wirecore::sse::EventStream::from_bytes(c.as_bytes(py))),
            None => error::check(py, EventSlot::from_body(&self.stream))?,
        };
        Ok(RawEvents {
            slot,
            tracker: self.tracker.clone(),
        })
    }

    /// Drops an unread streamed body (its connection is discarded); later reads raise.
    fn close(&self) {
        self.stream
            .close("the response was closed before its body was read to the end");
    }
}

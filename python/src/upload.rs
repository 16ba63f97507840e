//! Streamed request bodies: Python produces chunks (from an iterator, an async iterator or a
//! file), the engine sends them as they come, with a small bounded queue in between so a fast
//! producer waits for the network instead of buffering the whole body.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::mpsc;

use crate::bridge::{Completer, Pending, spawn_completing};
use crate::response::Outcome;

type Chunk = Result<Bytes, std::io::Error>;

/// Chunks queued ahead of the socket: enough to keep the connection busy, little memory.
const QUEUE: usize = 4;

/// The producer's end of a streamed body. One per request; `finish()` ends the body,
/// `abort(msg)` fails the request.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Upload {
    tx: Mutex<Option<mpsc::Sender<Chunk>>>,
    rx: Mutex<Option<mpsc::Receiver<Chunk>>>,
    /// Set by `abort`: the body ends with this error after the queued chunks (a queue that
    /// is full could not take the error itself, and ending without it would send a truncated
    /// body as if it were whole).
    failed: Arc<Mutex<Option<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Upload {
    fn sender(&self) -> Option<mpsc::Sender<Chunk>> {
        lock(&self.tx).clone()
    }

    /// The request body reading from this upload; only once.
    pub(crate) fn take_body(&self) -> Result<wirecore::RequestBody, wirecore::Error> {
        let Some(rx) = lock(&self.rx).take() else {
            return Err(wirecore::Error::new(
                wirecore::ErrorKind::InvalidRequest,
                "this upload already belongs to a request",
            ));
        };
        let failed = self.failed.clone();
        let stream = futures_util::stream::unfold(rx, move |mut rx| {
            let failed = failed.clone();
            async move {
                if let Some(item) = rx.recv().await {
                    return Some((item, rx));
                }
                let msg = lock(&failed).take()?;
                Some((Err(std::io::Error::other(msg)), rx))
            }
        });
        Ok(wirecore::RequestBody::wrap_stream(stream))
    }
}

#[pymethods]
impl Upload {
    #[new]
    fn new() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            failed: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether the request stopped reading the body (it finished, failed or was cancelled, or
    /// `finish`/`abort` was called): the producer should stop.
    #[getter]
    fn closed(&self) -> bool {
        self.sender().is_none_or(|tx| tx.is_closed())
    }

    /// Queues a chunk if there is room. `False` when the queue is full (await `ready_async`,
    /// then try again); `True` when queued, or dropped because the request no longer reads.
    fn try_send(&self, chunk: &[u8]) -> bool {
        let Some(tx) = self.sender() else {
            return true;
        };
        match tx.try_reserve() {
            Ok(permit) => {
                permit.send(Ok(Bytes::copy_from_slice(chunk)));
                true
            }
            Err(mpsc::error::TrySendError::Full(())) => false,
            Err(mpsc::error::TrySendError::Closed(())) => true,
        }
    }

    /// Queues a chunk, blocking (GIL released, Ctrl-C honoured) while the queue is full.
    /// Returns `False` when the request no longer reads the body.
    fn send(&self, py: Python<'_>, chunk: &[u8]) -> PyResult<bool> {
        let Some(tx) = self.sender() else {
            return Ok(false);
        };
        let chunk = Bytes::copy_from_slice(chunk);
        // Room in the queue (the usual case while the network keeps up): no wait at all.
        let chunk = match tx.try_send(Ok(chunk)) {
            Ok(()) => return Ok(true),
            Err(mpsc::error::TrySendError::Closed(_)) => return Ok(false),
            Err(mpsc::error::TrySendError::Full(chunk)) => chunk,
        };
        let sent = crate::client::wait(py, async move { tx.send(chunk).await.is_ok() })?;
        Ok(sent)
    }

    /// Completes `fut` (with `None`) once a chunk fits in the queue or the request stopped
    /// reading.
    fn ready_async(&self, completer: &Completer, fut: Py<PyAny>) -> PyResult<Pending> {
        let Some(tx) = self.sender() else {
            return Err(PyRuntimeError::new_err("the upload is finished"));
        };
        Ok(spawn_completing(completer, fut, async move {
            // The permit is released at once: this producer is the only one, so the slot stays
            // free for its next try_send.
            drop(tx.reserve().await);
            Outcome::Unit
        }))
    }

    /// Ends the body after the queued chunks.
    fn finish(&self) {
        lock(&self.tx).take();
    }

    /// Fails the request: the body ends with an error carrying `message`.
    fn abort(&self, message: &str) {
        let mut tx = lock(&self.tx);
        if tx.is_some() {
            *lock(&self.failed) = Some(message.to_owned());
            tx.take();
        }
    }
}

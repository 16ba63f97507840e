//! [`EventSlot`]: a response's Server-Sent Events (the core's `sse::EventStream`) as every
//! binding reads them: one read at a time, and a close that stops a read in flight (one waiting
//! for the server's `retry:` included).

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use wirecore::sse::{Event, EventStream};
use wirecore::{Error, ErrorKind};

use crate::body::BodySlot;

/// The events of one response.
#[derive(Debug)]
pub struct EventSlot {
    stream: Mutex<Option<EventStream>>,
    stop: CancellationToken,
}

impl EventSlot {
    /// The events of the rest of `body` (which reads nothing more).
    ///
    /// # Errors
    /// As [`BodySlot::into_events`].
    pub fn from_body(body: &BodySlot) -> Result<Arc<Self>, Error> {
        Ok(Self::new(body.into_events()?))
    }

    /// The events of `stream`.
    pub fn new(stream: EventStream) -> Arc<Self> {
        Arc::new(Self {
            stream: Mutex::new(Some(stream)),
            stop: CancellationToken::new(),
        })
    }

    /// The next event, `None` at the end (and on every later call).
    ///
    /// # Errors
    /// The stream's failure (once; then `None`), `cancelled` once closed, or `invalid_request`
    /// while another read is in flight.
    pub async fn next(&self) -> Result<Option<Event>, Error> {
        let Ok(mut guard) = self.stream.try_lock() else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "another read of this event stream is in progress",
            ));
        };
        if self.stop.is_cancelled() {
            *guard = None;
            return Err(closed());
        }
        let Some(stream) = guard.as_mut() else {
            return Ok(None);
        };
        let r = tokio::select! {
            biased;
            () = self.stop.cancelled() => Err(closed()),
            r = stream.next() => r,
        };
        if !matches!(r, Ok(Some(_))) {
            // Ended, failed or closed: drop the body (and its connection) now.
            *guard = None;
        }
        r
    }

    /// Whether a read is in flight.
    pub fn is_busy(&self) -> bool {
        self.stream.try_lock().is_err()
    }

    /// Stops the stream: a read in flight ends with `cancelled`, and so does every later one;
    /// the body is dropped.
    pub fn close(&self) {
        self.stop.cancel();
        if let Ok(mut g) = self.stream.try_lock() {
            *g = None;
        }
    }
}

fn closed() -> Error {
    Error::new(ErrorKind::Cancelled, "the event stream was closed")
}

//! `Response`: the head, and the body read whole or chunk by chunk through the bridge's
//! `BodySlot` (a small body arrives with the head; a larger one streams).

use std::sync::Arc;

use wirecore_bridge::{BodySlot, EventSlot, Head, Kind, Prefetched, Tracker};

use crate::client::{block, run};
use crate::error::WirecoreError;
use crate::request::Header;

/// Phase durations of a response, in milliseconds (0 for a phase that did not happen, such as
/// connecting over a pooled connection).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Timings {
    pub dns_ms: f64,
    pub connect_ms: f64,
    pub tls_ms: f64,
    pub ttfb_ms: f64,
    pub total_ms: f64,
}

/// A response: status, headers and the rest of the head at once, the body on demand.
#[derive(Debug, uniffi::Object)]
pub struct Response {
    status: i32,
    version: String,
    headers: Vec<Header>,
    url: String,
    reused: bool,
    cache_status: Option<String>,
    timings: Timings,
    body: Arc<BodySlot>,
    /// The client's, so its close waits for body reads.
    tracker: Arc<Tracker>,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Response {
    pub(crate) fn new(
        head: Head,
        body: Prefetched,
        tracker: Arc<Tracker>,
    ) -> Result<Self, wirecore::Error> {
        if let Prefetched::Cut(_, e) = body {
            return Err(e);
        }
        let Head {
            status,
            version,
            headers,
            url,
            timings: t,
            reused,
            cache,
            ..
        } = head;
        let headers = headers
            .iter()
            .map(|(n, v)| Header {
                name: n.as_str().to_owned(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        Ok(Self {
            status: i32::from(status.as_u16()),
            version: format!("{version:?}"),
            headers,
            url: url.to_string(),
            reused,
            cache_status: cache.map(|s| s.as_str().to_owned()),
            timings: Timings {
                dns_ms: ms(t.dns),
                connect_ms: ms(t.connect),
                tls_ms: ms(t.tls),
                ttfb_ms: ms(t.ttfb),
                total_ms: ms(t.total),
            },
            body: BodySlot::new(body),
            tracker,
        })
    }
}

impl Response {
    /// The whole rest of the body when it is here already (a small body came with the head):
    /// no trip through the engine.
    fn ready_rest(&self) -> Option<Vec<u8>> {
        match self.body.buffered() {
            (_, true) => self
                .body
                .take_next()
                .ok()
                .map(|b| b.map(Vec::from).unwrap_or_default()),
            _ => None,
        }
    }

    /// The next chunk when it is here already, or the end.
    #[expect(
        clippy::option_option,
        reason = "outer: here without I/O or not; inner: a chunk or the end"
    )]
    fn ready_chunk(&self) -> Option<Option<Vec<u8>>> {
        match self.body.buffered() {
            (0, false) => None,
            _ => self.body.take_next().ok().map(|b| b.map(Vec::from)),
        }
    }
}

#[uniffi::export]
impl Response {
    /// The status code.
    pub fn status(&self) -> i32 {
        self.status
    }

    /// `HTTP/1.1` or `HTTP/2.0`.
    pub fn version(&self) -> String {
        self.version.clone()
    }

    /// Every header in wire order, names lower-case.
    pub fn headers(&self) -> Vec<Header> {
        self.headers.clone()
    }

    /// The first value of header `name` (any case), or null.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
    }

    /// The final URL, after redirects (without userinfo).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Whether the response came over a pooled connection.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// `hit`, `miss`, `stale` or `revalidated`; null when the cache took no part.
    pub fn cache_status(&self) -> Option<String> {
        self.cache_status.clone()
    }

    /// Phase durations.
    pub fn timings(&self) -> Timings {
        self.timings.clone()
    }

    /// The rest of the body, read to its end.
    pub async fn bytes(&self) -> Result<Vec<u8>, WirecoreError> {
        if let Some(b) = self.ready_rest() {
            return Ok(b);
        }
        let slot = self.body.clone();
        let work = async move { slot.rest().await.map(Vec::from) };
        run(&self.tracker, Kind::Read, work).await
    }

    /// [`Response::bytes`], blocking the calling thread.
    pub fn bytes_blocking(&self) -> Result<Vec<u8>, WirecoreError> {
        if let Some(b) = self.ready_rest() {
            return Ok(b);
        }
        let slot = self.body.clone();
        let work = async move { slot.rest().await.map(Vec::from) };
        block(&self.tracker, Kind::Read, work)
    }

    /// The next chunk of the body; null at its end.
    pub async fn chunk(&self) -> Result<Option<Vec<u8>>, WirecoreError> {
        if let Some(c) = self.ready_chunk() {
            return Ok(c);
        }
        let slot = self.body.clone();
        let work = async move { slot.next().await.map(|c| c.map(Vec::from)) };
        run(&self.tracker, Kind::Read, work).await
    }

    /// [`Response::chunk`], blocking the calling thread.
    pub fn chunk_blocking(&self) -> Result<Option<Vec<u8>>, WirecoreError> {
        if let Some(c) = self.ready_chunk() {
            return Ok(c);
        }
        let slot = self.body.clone();
        let work = async move { slot.next().await.map(|c| c.map(Vec::from)) };
        block(&self.tracker, Kind::Read, work)
    }

    /// Stops reading: a read in flight and every later read fail with `Cancelled`; an HTTP/1.1
    /// connection is closed rather than reused half-read.
    pub fn cancel(&self) {
        self.body.close("the response body was cancelled");
    }

    /// The rest of the body as Server-Sent Events (the core's parser; a GET's stream reconnects
    /// with `Last-Event-ID` after the server's `retry:` when it ends or breaks; a 204 ends it).
    /// The body is not readable afterwards.
    ///
    /// # Errors
    /// `InvalidRequest` when the body was read (or is being read) already.
    pub fn events(&self) -> Result<Arc<EventReader>, WirecoreError> {
        let slot = EventSlot::from_body(&self.body)?;
        Ok(Arc::new(EventReader {
            slot,
            tracker: self.tracker.clone(),
        }))
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SseEvent {
    /// The `event:` field, `message` when none was given.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event ID at dispatch; empty when none.
    pub id: String,
    /// A `retry:` (milliseconds) given in this event's block.
    pub retry_ms: Option<u64>,
}

impl From<wirecore::sse::Event> for SseEvent {
    fn from(e: wirecore::sse::Event) -> Self {
        Self {
            event: e.event,
            data: e.data,
            id: e.id,
            retry_ms: e.retry,
        }
    }
}

/// The Server-Sent Events of one response (`Response.events()`): one read at a time.
#[derive(Debug, uniffi::Object)]
pub struct EventReader {
    slot: Arc<EventSlot>,
    /// The client's, so its close waits for reads.
    tracker: Arc<Tracker>,
}

#[uniffi::export]
impl EventReader {
    /// The next event; null at the end of the stream.
    ///
    /// # Errors
    /// The stream's failure (once), `Cancelled` after `cancel`, `InvalidRequest` while another
    /// read is in flight.
    pub async fn next(&self) -> Result<Option<SseEvent>, WirecoreError> {
        let slot = self.slot.clone();
        let work = async move { slot.next().await.map(|e| e.map(SseEvent::from)) };
        run(&self.tracker, Kind::Read, work).await
    }

    /// [`EventReader::next`], blocking the calling thread.
    pub fn next_blocking(&self) -> Result<Option<SseEvent>, WirecoreError> {
        let slot = self.slot.clone();
        let work = async move { slot.next().await.map(|e| e.map(SseEvent::from)) };
        block(&self.tracker, Kind::Read, work)
    }

    /// Stops the stream: a read in flight and every later one fail with `Cancelled`.
    pub fn cancel(&self) {
        self.slot.close();
    }
}

//! Response bodies: `Bytes` end to end, no copy unless a decoder must produce one. (The request
//! body lives in `request_body`, re-exported here.)
//!
//! A response body owns its pool lease: reading it to the end returns the connection to the
//! pool; dropping it early closes an HTTP/1.1 connection (it is never reused half-read).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind};
use crate::metrics::Metrics;
use crate::pool::Lease;
pub use crate::request_body::RequestBody;

type BoxStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A streaming response body. Implements `http_body::Body`; see also
/// [`Response::chunk`](crate::Response::chunk).
pub struct Body {
    source: Source,
    lease: Option<Lease>,
    meter: Option<Meter>,
    limit: u64,
    seen: u64,
    /// Compressed bytes read so far and the largest decoded/compressed ratio, when decoding.
    ratio: Option<(Arc<AtomicU64>, u64)>,
    deadline: Option<Deadline>,
    idle: Option<(Pin<Box<Sleep>>, Duration)>,
    /// How to reconnect, for the body of an event stream answering a `GET`.
    resume: Option<Box<crate::sse::Resume>>,
}

/// The total deadline of the request, which the body outlives. The timer is created only when
/// the body has to wait: a small body that arrived with the head never touches the timer wheel
/// (the clock is read once, on the first poll, instead).
struct Deadline {
    at: Instant,
    ms: u64,
    checked: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Whether the deadline has passed; once armed, also registers `cx` for when it does.
    fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.sleep {
            Some(s) => s.as_mut().poll(cx).is_ready(),
            None if !self.checked => {
                self.checked = true;
                Instant::now() >= self.at
            }
            None => false,
        }
    }

    /// Arms the timer before the body waits; true when it already fired.
    fn arm(&mut self, cx: &mut Context<'_>) -> bool {
        let at = self.at;
        self.sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)))
            .as_mut()
            .poll(cx)
            .is_ready()
    }
}

enum Source {
    Done,
    Incoming(hyper::body::Incoming),
    Decoded(BoxStream),
    /// A body that cannot be decoded: the first read fails with this.
    Failed(Error),
    /// Bytes in memory (a cached or shared response), then `rest` if any: the part of a body
    /// read ahead before it turned out too large to buffer.
    Buffered(Option<Bytes>, Option<Box<Body>>),
}

/// Decoded bytes below which `limits.max_decompression_ratio` is not checked, so small bodies
/// that compress well (a page of whitespace, a sparse JSON array) are never refused.
pub(crate) const RATIO_FLOOR: u64 = 1 << 20;

/// Counts wire bytes and decoded bytes into the client's metrics.
#[derive(Clone)]
pub(crate) struct Meter {
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("read", &self.seen)
            .field("done", &matches!(self.source, Source::Done))
            .finish_non_exhaustive()
    }
}

pub(crate) struct BodyLimits {
    pub(crate) max_bytes: u64,
    /// `limits.max_decompression_ratio`; 0 disables.
    pub(crate) max_ratio: u32,
    pub(crate) deadline: Option<(Instant, u64)>,
    pub(crate) read_idle: Option<Duration>,
}

impl Body {
    pub(crate) fn incoming(
        incoming: hyper::body::Incoming,
        lease: Lease,
        decoder: Option<crate::compress::Decoder>,
        meter: Meter,
        limits: &BodyLimits,
    ) -> Self {
        use crate::compress::Decoder;
        let mut lease = Some(lease);
        let mut ratio = None;
        let source = match decoder {
            _ if incoming.is_end_stream() => {
                if let Some(l) = lease.take() {
                    l.release();
                }
                Source::Done
            }
            Some(Decoder::Layers(layers)) => {
                let wire = Arc::new(AtomicU64::new(0));
                if limits.max_ratio > 0 {
                    ratio = Some((wire.clone(), u64::from(limits.max_ratio)));
                }
                let metrics = meter.metrics.clone();
                Source::Decoded(crate::compress::decode(incoming, &layers, metrics, wire))
            }
            Some(Decoder::Refused(why)) => Source::Failed(Error::new(ErrorKind::Decode, why)),
            None => Source::Incoming(incoming),
        };
        Self {
            source,
            lease,
            meter: Some(meter),
            limit: limits.max_bytes,
            seen: 0,
            ratio,
            deadline: limits.deadline.map(|(at, ms)| Deadline {
                at,
                ms,
                checked: false,
                sleep: None,
            }),
            idle: limits
                .read_idle
                .map(|d| (Box::pin(tokio::time::sleep(d)), d)),
            resume: None,
        }
    }

    /// A decoded stream under the limits of a response body, with no connection behind it
    /// (`fuzz_support::decode_limited`); `wire` counts the compressed bytes read.
    pub(crate) fn decoded(
        stream: BoxStream,
        wire: Arc<AtomicU64>,
        max_bytes: u64,
        max_ratio: u32,
    ) -> Self {
        Self {
            source: Source::Decoded(stream),
            lease: None,
            meter: None,
            limit: max_bytes,
            seen: 0,
            ratio: (max_ratio > 0).then(|| (wire, u64::from(max_ratio))),
            deadline: None,
            idle: None,
            resume: None,
        }
    }

    /// A body already in memory; `rest`, if given, follows it (its limits still apply to it).
    pub(crate) fn buffered(bytes: Bytes, rest: Option<Body>) -> Self {
        let first = (!bytes.is_empty()).then_some(bytes);
        let source = if first.is_none() && rest.is_none() {
            Source::Done
        } else {
            Source::Buffered(first, rest.map(Box::new))
        };
        Self {
            source,
            lease: None,
            meter: None,
            limit: 0,
            seen: 0,
            ratio: None,
            deadline: None,
            idle: None,
            resume: None,
        }
    }

    /// Bytes of body read so far (after decoding).
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    /// The body's events (Server-Sent Events), after `prefix` (bytes of it already read);
    /// see [`EventStream`](crate::sse::EventStream).
    pub fn events(self, prefix: &[u8]) -> crate::sse::EventStream {
        crate::sse::EventStream::new(prefix, self)
    }

    pub(crate) fn set_resume(&mut self, r: crate::sse::Resume) {
        self.resume = Some(Box::new(r));
    }

    pub(crate) fn take_resume(&mut self) -> Option<Box<crate::sse::Resume>> {
        self.resume.take()
    }

    fn finish(&mut self) {
        self.source = Source::Done;
        if let Some(l) = self.lease.take() {
            l.release();
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.source = Source::Done;
        // Dropping the lease of a half-read body retires the connection.
        self.lease = None;
        Poll::Ready(Some(Err(e)))
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let polled = match &mut self.source {
                Source::Done => return Poll::Ready(None),
                Source::Incoming(inc) => match ready!(Pin::new(inc).poll_frame(cx)) {
                    None => None,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(d) => {
                            if let Some(m) = &self.meter {
                                m.metrics.bytes_received.fetch_add(d.len() as u64, Relaxed);
                            }
                            Some(Ok(d))
                        }
                        // Trailers: skip.
                        Err(_) => continue,
                    },
                    Some(Err(e)) => {
                        let kind = crate::error::body_kind(&e);
                        Some(Err(Error::new(kind, "response body failed").with_source(e)))
                    }
                },
                Source::Decoded(s) => match ready!(s.as_mut().poll_next(cx)) {
                    None => None,
                    Some(Ok(d)) => Some(Ok(d)),
                    Some(Err(e)) => Some(Err(crate::compress::classify(e))),
                },
                Source::Failed(_) => {
                    let Source::Failed(e) = std::mem::replace(&mut self.source, Source::Done)
                    else {
                        return Poll::Ready(None);
                    };
                    Some(Err(e))
                }
                Source::Buffered(first, rest) => {
                    if let Some(b) = first.take() {
                        return Poll::Ready(Some(Ok(b)));
                    }
                    let Some(rest) = rest else {
                        return Poll::Ready(None);
                    };
                    match ready!(Pin::new(&mut **rest).poll_frame(cx)) {
                        None => None,
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(d) => Some(Ok(d)),
                            Err(_) => continue,
                        },
                        Some(Err(e)) => Some(Err(e)),
                    }
                }
            };
            return Poll::Ready(polled);
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if matches!(this.source, Source::Done) {
            return Poll::Ready(None);
        }
        if let Some(d) = &mut this.deadline
            && d.passed(cx)
        {
            let ms = d.ms;
            return this.fail(crate::error::timeout(
                ErrorKind::TimeoutTotal,
                "request",
                ms,
            ));
        }
        match this.poll_source(cx) {
            Poll::Pending => {
                if let Some(d) = &mut this.deadline
                    && d.arm(cx)
                {
                    let ms = d.ms;
                    return this.fail(crate::error::timeout(
                        ErrorKind::TimeoutTotal,
                        "request",
                        ms,
                    ));
                }
                if let Some((sleep, d)) = &mut this.idle
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                    return this.fail(crate::error::timeout(
                        ErrorKind::TimeoutRead,
                        "reading the response body",
                        ms,
                    ));
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => this.fail(e),
            Poll::Ready(Some(Ok(data))) => {
                this.seen += data.len() as u64;
                if let Some(m) = &this.meter {
                    m.metrics
                        .bytes_decoded
                        .fetch_add(data.len() as u64, Relaxed);
                }
                if this.limit > 0 && this.seen > this.limit {
                    let limit = this.limit;
                    return this.fail(Error::new(
                        ErrorKind::BodyTooLarge,
                        format!("response body exceeds limits.max_response_body_bytes ({limit})"),
                    ));
                }
                if let Some((wire, max)) = &this.ratio
                    && this.seen > RATIO_FLOOR
                    && this.seen / *max > wire.load(Relaxed)
                {
                    let (max, wire, seen) = (*max, wire.load(Relaxed), this.seen);
                    return this.fail(Error::new(
                        ErrorKind::BodyTooLarge,
                        format!(
                            "response body decodes to more than {max}x its compressed size ({seen} bytes from {wire}; limits.max_decompression_ratio)"
                        ),
                    ));
                }
                if let Some((sleep, d)) = &mut this.idle {
                    // An idle timeout too large to represent as a deadline means no limit.
                    match Instant::now().checked_add(*d) {
                        Some(at) => sleep.as_mut().reset(at),
                        None => this.idle = None,
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.source, Source::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Done => SizeHint::with_exact(0),
            Source::Incoming(i) => i.size_hint(),
            Source::Buffered(first, None) => {
                SizeHint::with_exact(first.as_ref().map_or(0, |b| b.len() as u64))
            }
            Source::Decoded(_) | Source::Failed(_) | Source::Buffered(..) => SizeHint::default(),
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match ready!(self.poll_frame(cx)) {
            None => Poll::Ready(None),
            Some(Ok(f)) => Poll::Ready(Some(Ok(f.into_data().unwrap_or_default()))),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

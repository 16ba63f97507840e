//! Response bodies as the bindings hand them over: a request with its small body read along
//! with the head ([`fetch`]), the whole-body read ([`read_all`]), and [`BodySlot`], a streamed
//! body that one reader at a time reads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, Uri, Version};
use tokio::sync::Notify;
use wirecore::{Body, Error, ErrorKind, SMALL_BODY_BYTES, Timings, TlsInfo};

/// Most bytes reserved for a whole body before they arrive: a declared length is never
/// trusted for more than this up front.
const PREALLOC_MAX: u64 = 8 << 20;

/// Why a read that was interrupted or cancelled left the body failed, as later reads report it.
pub const INTERRUPTED: &str =
    "reading the response body was interrupted or cancelled; the body is incomplete";

/// Whether `body` is small enough to read along with the head: it has ended already, or its
/// declared length is at most [`SMALL_BODY_BYTES`]. (A decoded body declares none.)
pub fn is_small(body: &Body) -> bool {
    http_body::Body::is_end_stream(body)
        || http_body::Body::size_hint(body)
            .upper()
            .is_some_and(|n| n <= SMALL_BODY_BYTES)
}

/// Reads `body` to its end after `prefix`: the bytes, and the error that cut it short, if
/// any. A body that arrives in one chunk is not copied.
pub async fn read_all(body: &mut Body, prefix: Bytes) -> (Bytes, Option<Error>) {
    let mut single = (!prefix.is_empty()).then_some(prefix);
    let mut acc: Option<BytesMut> = None;
    let err = loop {
        match body.next().await {
            None => break None,
            Some(Err(e)) => break Some(e),
            Some(Ok(c)) if c.is_empty() => {}
            Some(Ok(c)) => match (&mut acc, single.take()) {
                (Some(a), _) => a.extend_from_slice(&c),
                (None, None) => single = Some(c),
                (None, Some(first)) => {
                    let hint = http_body::Body::size_hint(&*body).lower().min(PREALLOC_MAX);
                    let hint = usize::try_from(hint).unwrap_or(0);
                    let mut a = BytesMut::with_capacity(first.len() + c.len() + hint);
                    a.extend_from_slice(&first);
                    a.extend_from_slice(&c);
                    acc = Some(a);
                }
            },
        }
    };
    let bytes = match acc {
        Some(a) => a.freeze(),
        None => single.unwrap_or_default(),
    };
    (bytes, err)
}

/// The head of a response, as every binding converts it.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub url: Uri,
    pub timings: Timings,
    pub reused: bool,
    pub tls: Option<Arc<TlsInfo>>,
    /// Where the response came from; `None` when the cache took no part.
    pub cache: Option<wirecore::CacheStatus>,
}

/// How much of the body [`fetch`] reads along with the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// None: the body streams.
    Stream,
    /// All of it when [`is_small`], so a small response crosses into the binding once.
    Small,
    /// All of it.
    Whole,
}

/// The body as [`fetch`] hands it over.
#[derive(Debug)]
pub enum Prefetched {
    /// Read to its end.
    Whole(Bytes),
    /// Read until an error cut it short: the bytes before it, and the error.
    Cut(Bytes, Error),
    /// Not read yet.
    Stream(Body),
}

/// Sends `req` and reads its body as `how` says.
pub async fn fetch(
    client: wirecore::Client,
    req: wirecore::Request,
    how: Prefetch,
) -> Result<(Head, Prefetched), Error> {
    // Boxed: the engine's future is large, and every spawn would otherwise copy it.
    let resp = Box::pin(client.execute(req)).await?;
    let url = resp.url().clone();
    let timings = resp.timings();
    let reused = resp.reused();
    let tls = resp.tls_info();
    let cache = resp.cache_status();
    let (parts, mut body) = resp.into_http().into_parts();
    let head = Head {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        url,
        timings,
        reused,
        tls,
        cache,
    };
    let read = match how {
        Prefetch::Stream => false,
        // An event stream is read as it comes, never whole (its reconnection rides the body).
        _ if wirecore::sse::is_event_stream(&head.headers) => false,
        Prefetch::Small => is_small(&body),
        Prefetch::Whole => true,
    };
    if !read {
        return Ok((head, Prefetched::Stream(body)));
    }
    let out = match read_all(&mut body, Bytes::new()).await {
        (b, None) => Prefetched::Whole(b),
        (b, Some(e)) => Prefetched::Cut(b, e),
    };
    Ok((head, out))
}

/// A response body that one reader at a time reads: bytes received and not yet taken, and
/// where the rest stands. A read takes the body out and puts it back only if nobody gave up on
/// it meanwhile, so a chunk is never lost silently: a read that was interrupted or cancelled,
/// or a close, leaves the body failed, and every later read reports that.
#[derive(Debug)]
pub struct BodySlot {
    state: Mutex<State>,
    /// Stops a read in flight when the body is closed.
    stop: Notify,
}

#[derive(Debug)]
struct State {
    buf: Bytes,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Open(Body),
    /// A [`Reader`] owns the body.
    Reading,
    Ended,
    /// Incomplete: an error, an interrupted read or a close; every later read reports this.
    Failed(ErrorKind, String),
}

/// What [`BodySlot::begin`] found.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one call; boxing the body would allocate per read"
)]
pub enum Begin {
    /// Bytes, the end or a failure are there to take ([`BodySlot::take_next`]): no I/O.
    Ready,
    /// Another read is in flight.
    Busy,
    /// The body, taken out for one read.
    Read(Reader),
}

/// What [`BodySlot::copy_into`] did.
#[derive(Debug)]
pub enum Copied {
    /// Copied `n` buffered bytes; `end` when nothing follows them.
    Bytes { n: usize, end: bool },
    /// Nothing buffered; the body goes on (read more).
    Empty,
    /// Nothing buffered, and a read is in flight.
    Busy,
    /// At the end, every byte taken.
    End,
    /// Failed, every byte before the failure taken.
    Failed(Error),
}

impl BodySlot {
    /// A slot for what [`fetch`] handed over.
    pub fn new(p: Prefetched) -> Arc<Self> {
        let (buf, phase) = match p {
            Prefetched::Whole(b) => (b, Phase::Ended),
            Prefetched::Cut(b, e) => (b, failed(&e)),
            Prefetched::Stream(body) => (Bytes::new(), Phase::Open(body)),
        };
        Arc::new(Self {
            state: Mutex::new(State { buf, phase }),
            stop: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a read: takes the body out when nothing is buffered and it goes on.
    pub fn begin(self: &Arc<Self>) -> Begin {
        let mut st = self.lock();
        if !st.buf.is_empty() {
            return Begin::Ready;
        }
        match std::mem::replace(&mut st.phase, Phase::Reading) {
            Phase::Open(body) => Begin::Read(Reader {
                slot: self.clone(),
                body: Some(body),
            }),
            Phase::Reading => Begin::Busy,
            other => {
                st.phase = other;
                Begin::Ready
            }
        }
    }

    /// The buffered bytes, else `None` at the end, else the failure (again on every call).
    pub fn take_next(&self) -> Result<Option<Bytes>, Error> {
        let mut st = self.lock();
        if !st.buf.is_empty() {
            return Ok(Some(std::mem::take(&mut st.buf)));
        }
        match &st.phase {
            Phase::Ended => Ok(None),
            Phase::Failed(kind, msg) => Err(Error::new(*kind, msg.clone())),
            Phase::Open(_) | Phase::Reading => Ok(Some(Bytes::new())),
        }
    }

    /// The next chunk, `None` at the end: buffered bytes first, else one read.
    pub async fn next(self: &Arc<Self>) -> Result<Option<Bytes>, Error> {
        match self.begin() {
            Begin::Ready => self.take_next(),
            Begin::Busy => Err(busy()),
            Begin::Read(r) => r.next().await,
        }
    }

    /// Copies buffered bytes into `out` (see [`Copied`]).
    pub fn copy_into(&self, out: &mut [u8]) -> Copied {
        let mut st = self.lock();
        if !st.buf.is_empty() {
            let n = st.buf.len().min(out.len());
            out[..n].copy_from_slice(&st.buf[..n]);
            st.buf.advance(n);
            let end = st.buf.is_empty() && matches!(st.phase, Phase::Ended);
            return Copied::Bytes { n, end };
        }
        match &st.phase {
            Phase::Open(_) => Copied::Empty,
            Phase::Reading => Copied::Busy,
            Phase::Ended => Copied::End,
            Phase::Failed(kind, msg) => Copied::Failed(Error::new(*kind, msg.clone())),
        }
    }

    /// Bytes buffered, and whether the body ends after them.
    pub fn buffered(&self) -> (usize, bool) {
        let st = self.lock();
        (st.buf.len(), matches!(st.phase, Phase::Ended))
    }

    /// Whether a read is in flight.
    pub fn is_busy(&self) -> bool {
        matches!(self.lock().phase, Phase::Reading)
    }

    /// Whether the body goes on (not ended, not failed).
    pub fn is_open(&self) -> bool {
        matches!(self.lock().phase, Phase::Open(_) | Phase::Reading)
    }

    /// The failure that left the body incomplete, if any.
    pub fn failure(&self) -> Option<Error> {
        match &self.lock().phase {
            Phase::Failed(kind, msg) => Some(Error::new(*kind, msg.clone())),
            _ => None,
        }
    }

    /// The buffered bytes and the rest of the body, read to its end; the failure (again on
    /// every call) if it fails, or `invalid_request` while another read is in flight.
    pub async fn rest(self: &Arc<Self>) -> Result<Bytes, Error> {
        let (prefix, body) = {
            let mut st = self.lock();
            match std::mem::replace(&mut st.phase, Phase::Reading) {
                Phase::Open(body) => (std::mem::take(&mut st.buf), body),
                Phase::Reading => return Err(busy()),
                Phase::Ended => {
                    st.phase = Phase::Ended;
                    return Ok(std::mem::take(&mut st.buf));
                }
                Phase::Failed(kind, msg) => {
                    let e = Error::new(kind, msg.clone());
                    st.phase = Phase::Failed(kind, msg);
                    return Err(e);
                }
            }
        };
        let mut r = Reader {
            slot: self.clone(),
            body: Some(body),
        };
        let Some(body) = r.body.as_mut() else {
            return Ok(prefix);
        };
        let (bytes, err) = read_all(body, prefix).await;
        let body = r.body.take();
        self.settle(body, err.map_or(Ok(None), Err))?;
        Ok(bytes)
    }

    /// Hands the rest of the body (buffered bytes first) over to an event reader; the slot
    /// reads nothing more.
    ///
    /// # Errors
    /// `invalid_request` while a read is in flight; the body's failure.
    pub fn into_events(&self) -> Result<wirecore::sse::EventStream, Error> {
        let mut st = self.lock();
        let given = Phase::Failed(
            ErrorKind::InvalidRequest,
            "the response body is being read as events".to_owned(),
        );
        match std::mem::replace(&mut st.phase, given) {
            Phase::Open(body) => Ok(body.events(&std::mem::take(&mut st.buf))),
            Phase::Ended => Ok(wirecore::sse::EventStream::from_bytes(&std::mem::take(
                &mut st.buf,
            ))),
            Phase::Reading => {
                st.phase = Phase::Reading;
                Err(busy())
            }
            Phase::Failed(kind, msg) => {
                let e = Error::new(kind, msg.clone());
                st.phase = Phase::Failed(kind, msg);
                Err(e)
            }
        }
    }

    /// Marks the body incomplete with `kind`/`message` unless it failed already (the first
    /// failure is the one to report). A read in flight goes on; its chunk is dropped.
    pub fn fail(&self, kind: ErrorKind, message: &str) {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Failed(..)) {
            st.phase = Phase::Failed(kind, message.to_owned());
        }
    }

    /// Closes a body that goes on (`cancelled` with `message` from then on) and stops a read
    /// in flight; the body is dropped, which discards an HTTP/1 connection.
    pub fn close(&self, message: &str) {
        let body = {
            let mut st = self.lock();
            if !matches!(st.phase, Phase::Open(_) | Phase::Reading) {
                return;
            }
            std::mem::replace(
                &mut st.phase,
                Phase::Failed(ErrorKind::Cancelled, message.to_owned()),
            )
        };
        drop(body);
        self.stop.notify_one();
    }

    /// Puts the body back after a read, only if the read is still wanted; passes the read's
    /// error on.
    fn settle(&self, body: Option<Body>, r: Result<Option<Bytes>, Error>) -> Result<(), Error> {
        let mut st = self.lock();
        let wanted = matches!(st.phase, Phase::Reading);
        match r {
            Ok(Some(c)) => {
                if wanted {
                    st.phase = match body {
                        Some(body) => Phase::Open(body),
                        None => Phase::Ended,
                    };
                    st.buf = c;
                }
                Ok(())
            }
            Ok(None) => {
                if wanted {
                    st.phase = Phase::Ended;
                }
                Ok(())
            }
            Err(e) => {
                if wanted {
                    st.phase = failed(&e);
                }
                Err(e)
            }
        }
    }
}

fn failed(e: &Error) -> Phase {
    Phase::Failed(e.kind(), e.full_message())
}

fn busy() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "another read of this response body is in progress",
    )
}

/// A body taken out of its [`BodySlot`] for one read. Dropped before the read finished (the
/// engine future was cancelled), it leaves the body failed with [`INTERRUPTED`].
#[derive(Debug)]
pub struct Reader {
    slot: Arc<BodySlot>,
    body: Option<Body>,
}

impl Reader {
    /// Reads the next non-empty chunk into the slot's buffer (or reaches the end or an error);
    /// returns the read's own outcome.
    pub async fn fill(mut self) -> Result<(), Error> {
        let Some(body) = self.body.as_mut() else {
            return Ok(());
        };
        let r = tokio::select! {
            biased;
            () = self.slot.stop.notified() => Err(self.slot.failure().unwrap_or_else(|| {
                Error::new(ErrorKind::Cancelled, INTERRUPTED)
            })),
            r = next_chunk(body) => r,
        };
        let body = self.body.take();
        self.slot.settle(body, r)
    }

    /// Reads and takes the next chunk (`None` at the end).
    pub async fn next(self) -> Result<Option<Bytes>, Error> {
        let slot = self.slot.clone();
        self.fill().await?;
        slot.take_next()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.body.is_some() {
            let mut st = self.slot.lock();
            if matches!(st.phase, Phase::Reading) {
                st.phase = Phase::Failed(ErrorKind::Cancelled, INTERRUPTED.to_owned());
            }
        }
    }
}

/// The next non-empty chunk, or `None` at the end.
async fn next_chunk(body: &mut Body) -> Result<Option<Bytes>, Error> {
    loop {
        match body.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok(c)) if c.is_empty() => {}
            Some(Ok(c)) => return Ok(Some(c)),
        }
    }
}

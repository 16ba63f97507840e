//! The response body type, and the guard that accounts for each request's end.
//!
//! A request counts as cancelled when its guard is dropped before the body was fully
//! produced: the client reset the stream or closed the connection mid-response.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};

use crate::conn::ConnCtx;

/// A stream of body frames.
pub(crate) type FrameStream = Pin<Box<dyn Stream<Item = io::Result<Frame<Bytes>>> + Send>>;

/// 1 MiB of pattern bytes (`i % 251`); bodies are slices of it, so serving them copies nothing.
pub(crate) fn pattern() -> &'static Bytes {
    static PATTERN: std::sync::LazyLock<Bytes> = std::sync::LazyLock::new(|| {
        (0..PATTERN_LEN)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    });
    &PATTERN
}

const PATTERN_LEN: usize = 1 << 20;
/// Frame size for large pattern bodies.
const CHUNK: u64 = 64 * 1024;

/// `n` pattern bytes as one buffer (for bodies up to 1 MiB) or `None`.
pub(crate) fn pattern_bytes(n: usize) -> Option<Bytes> {
    (n <= PATTERN_LEN).then(|| pattern().slice(..n))
}

enum Kind {
    Full(Option<Bytes>),
    /// `remaining` more pattern bytes after `sent`, in 64 KiB frames.
    Pattern {
        sent: u64,
        remaining: u64,
    },
    /// `len` is the exact length when known; HTTP/1 stops polling once that much is sent.
    Stream {
        stream: FrameStream,
        len: Option<u64>,
        sent: u64,
    },
}

impl Kind {
    fn is_end_stream(&self) -> bool {
        match self {
            Kind::Full(b) => b.is_none(),
            Kind::Pattern { remaining, .. } => *remaining == 0,
            Kind::Stream { len, sent, .. } => *len == Some(*sent),
        }
    }
}

/// A response body.
pub(crate) struct Body {
    kind: Kind,
    guard: Option<RequestGuard>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Body {
    pub(crate) fn empty() -> Self {
        Self::full(Bytes::new())
    }

    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let kind = Kind::Full((!bytes.is_empty()).then_some(bytes));
        Self { kind, guard: None }
    }

    /// `n` pattern bytes.
    pub(crate) fn pattern(n: u64) -> Self {
        Self {
            kind: Kind::Pattern {
                sent: 0,
                remaining: n,
            },
            guard: None,
        }
    }

    /// A streamed body; `len` is its exact length when known.
    pub(crate) fn stream(stream: FrameStream, len: Option<u64>) -> Self {
        Self {
            kind: Kind::Stream {
                stream,
                len,
                sent: 0,
            },
            guard: None,
        }
    }

    /// Attaches the request's guard, so the request ends when this body does.
    pub(crate) fn with_guard(mut self, guard: RequestGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The bytes of a whole (not streamed) body.
    pub(crate) fn full_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Full(b) => b.as_ref(),
            _ => None,
        }
    }

    /// Replaces the content with `bytes`, keeping the guard.
    pub(crate) fn set_full(&mut self, bytes: Bytes) {
        self.kind = Kind::Full((!bytes.is_empty()).then_some(bytes));
    }

    fn finished(&mut self) {
        if let Some(g) = &mut self.guard {
            g.finished = true;
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        let frame = match &mut this.kind {
            Kind::Full(b) => b.take().map(|b| Ok(Frame::data(b))),
            Kind::Pattern { sent, remaining } => {
                if *remaining == 0 {
                    None
                } else {
                    // The pattern repeats every 251 bytes: continue it where the last frame ended.
                    let n = (*remaining).min(CHUNK) as usize;
                    let start = (*sent % 251) as usize;
                    *sent += n as u64;
                    *remaining -= n as u64;
                    Some(Ok(Frame::data(pattern().slice(start..start + n))))
                }
            }
            Kind::Stream { stream, sent, .. } => match stream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(f) => {
                    if let Some(Ok(data)) = f.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                        *sent += data.map_or(0, |d| d.len() as u64);
                    }
                    f
                }
            },
        };
        match &frame {
            None | Some(Err(_)) => this.finished(),
            Some(Ok(_)) if this.kind.is_end_stream() => this.finished(),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.kind.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Pattern { remaining, .. } => SizeHint::with_exact(*remaining),
            Kind::Stream {
                len: Some(n), sent, ..
            } => SizeHint::with_exact(n - sent),
            Kind::Stream { len: None, .. } => SizeHint::default(),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if self.kind.is_end_stream() {
            self.finished();
        }
    }
}

/// Accounts for one request from its start until its response body ends or is dropped.
pub(crate) struct RequestGuard {
    ctx: Arc<ConnCtx>,
    finished: bool,
}

impl RequestGuard {
    pub(crate) fn new(ctx: Arc<ConnCtx>, h2: bool) -> Self {
        ctx.shared.stats.request_started(&ctx.stats, h2);
        ctx.touch();
        Self {
            ctx,
            finished: false,
        }
    }

    /// Ends the request as complete (not cancelled), for replies the server aborts itself.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.ctx.touch();
        self.ctx
            .shared
            .stats
            .request_ended(&self.ctx.stats, !self.finished);
    }
}

//! The request body: bytes (replayable for redirects and retries) or a stream.
//!
//! Kept apart from `body` (response bodies, which own a pool lease) so that the pool, which sends
//! request bodies, and response bodies, which hold pool leases, do not import each other.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::error::BoxError;

type BoxBody = Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>;

/// A request body: bytes (replayable for redirects and retries) or a stream.
pub struct RequestBody {
    pub(crate) kind: ReqKind,
}

pub(crate) enum ReqKind {
    Empty,
    Full(Bytes),
    Stream(BoxBody),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ReqKind::Empty => f.write_str("RequestBody::Empty"),
            ReqKind::Full(b) => write!(f, "RequestBody::Full({} bytes)", b.len()),
            ReqKind::Stream(_) => f.write_str("RequestBody::Stream"),
        }
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self {
            kind: ReqKind::Empty,
        }
    }

    /// A body from a stream of byte chunks (sent chunked on HTTP/1.1; never replayed).
    pub fn wrap_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        use futures_util::TryStreamExt;
        let body = http_body_util::StreamBody::new(stream.map_ok(Frame::data).map_err(Into::into));
        Self {
            kind: ReqKind::Stream(Box::pin(body)),
        }
    }

    /// A body from any `http_body::Body`.
    pub fn wrap<B>(body: B) -> Self
    where
        B: HttpBody + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        if body.is_end_stream() {
            return Self::empty();
        }
        let body = body
            .map_frame(|f| f.map_data(Into::into))
            .map_err(Into::into);
        Self {
            kind: ReqKind::Stream(Box::pin(body)),
        }
    }

    /// The body when it is buffered (a cheap clone).
    pub(crate) fn full_bytes(&self) -> Option<Bytes> {
        match &self.kind {
            ReqKind::Full(b) => Some(b.clone()),
            ReqKind::Empty | ReqKind::Stream(_) => None,
        }
    }

    /// The bytes, if this body is in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            ReqKind::Empty => Some(&[]),
            ReqKind::Full(b) => Some(b),
            ReqKind::Stream(_) => None,
        }
    }

    /// A copy sharing the same bytes, unless this is a stream.
    pub fn try_clone(&self) -> Option<Self> {
        match &self.kind {
            ReqKind::Empty => Some(Self::empty()),
            ReqKind::Full(b) => Some(Self::from(b.clone())),
            ReqKind::Stream(_) => None,
        }
    }

    pub(crate) fn len(&self) -> Option<u64> {
        match &self.kind {
            ReqKind::Empty => Some(0),
            ReqKind::Full(b) => Some(b.len() as u64),
            ReqKind::Stream(s) => s.size_hint().exact(),
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            Self::empty()
        } else {
            Self {
                kind: ReqKind::Full(b),
            }
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            ReqKind::Empty => Poll::Ready(None),
            ReqKind::Full(_) => {
                let ReqKind::Full(b) = std::mem::replace(&mut this.kind, ReqKind::Empty) else {
                    return Poll::Ready(None);
                };
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            ReqKind::Stream(s) => s.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ReqKind::Empty => true,
            ReqKind::Full(b) => b.is_empty(),
            ReqKind::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ReqKind::Empty => SizeHint::with_exact(0),
            ReqKind::Full(b) => SizeHint::with_exact(b.len() as u64),
            ReqKind::Stream(s) => s.size_hint(),
        }
    }
}

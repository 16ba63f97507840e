//! A response: head, timings, and a streaming body that returns its connection when read.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::Body;
use crate::cache::CacheStatus;
use crate::error::{Error, ErrorKind};

/// Most bytes reserved for a whole body before they arrive.
const PREALLOC_MAX: u64 = 8 << 20;
/// A whole body of one chunk up to this size is copied out of the connection's read buffer
/// (see [`Response::bytes`]).
const COPY_OUT_MAX: usize = 2048;

/// A body this small (by its declared length) is read along with the head: the bindings hand
/// it over with the response, and a redirect drains it so its connection can be reused.
pub const SMALL_BODY_BYTES: u64 = 64 * 1024;

/// Where the time of a request went. Connection phases are zero on a reused connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// DNS resolution (zero when cached or an IP literal).
    pub dns: Duration,
    /// TCP connect.
    pub connect: Duration,
    /// TLS handshake.
    pub tls: Duration,
    /// From sending the request to the response head.
    pub ttfb: Duration,
    /// From the call to the response head, including redirects.
    pub total: Duration,
}

/// What the TLS handshake of a response's connection agreed on; every response on that
/// connection shares it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version as its IANA number (`0x0303` TLS 1.2, `0x0304` TLS 1.3).
    pub version: u16,
    /// The cipher suite as its IANA number (`0x1301` `TLS_AES_128_GCM_SHA256`).
    pub cipher_suite: u16,
    /// The ALPN protocol agreed (`h2`, `http/1.1`), if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the certificate was checked against (also sent as SNI).
    pub server_name: String,
    /// The server's certificate chain as DER, leaf first.
    pub peer_certificates: Vec<Vec<u8>>,
}

/// A response's headers: its own, or a map shared with a stored response (a cache hit copies
/// none).
#[derive(Clone, Debug)]
pub(crate) enum Headers {
    Own(HeaderMap),
    Shared(Arc<HeaderMap>),
}

impl std::ops::Deref for Headers {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        match self {
            Headers::Own(h) => h,
            Headers::Shared(h) => h,
        }
    }
}

impl Headers {
    /// The map, copied only when it is still shared.
    pub(crate) fn into_map(self) -> HeaderMap {
        match self {
            Headers::Own(h) => h,
            Headers::Shared(h) => Arc::unwrap_or_clone(h),
        }
    }

    /// The map to change, copied first only when it is shared.
    pub(crate) fn to_mut(&mut self) -> &mut HeaderMap {
        match self {
            Headers::Own(h) => h,
            Headers::Shared(h) => Arc::make_mut(h),
        }
    }

    /// The map behind an `Arc`, copied never.
    pub(crate) fn into_shared(self) -> Arc<HeaderMap> {
        match self {
            Headers::Own(h) => Arc::new(h),
            Headers::Shared(h) => h,
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) url: Uri,
    pub(crate) body: Body,
    pub(crate) timings: Timings,
    pub(crate) reused: bool,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    pub(crate) cache: Option<CacheStatus>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version spoken.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers (after decoding, `Content-Encoding` and `Content-Length` are removed).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Where the time went.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Whether the request went out on a pooled connection.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Where the response came from when the client has a cache (`cache.enabled`) and the
    /// request was one it considers (GET or HEAD without conditional headers); else `None`.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        self.cache
    }

    /// What the connection's TLS handshake agreed on; `None` over plain TCP.
    pub fn tls_info(&self) -> Option<Arc<TlsInfo>> {
        self.tls.clone()
    }

    /// The next chunk of the body, or `None` at its end.
    ///
    /// # Errors
    /// `io`, `decode`, `body_too_large`, `timeout.read`, `timeout.total`.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }

    /// The whole body.
    ///
    /// # Errors
    /// As [`Response::chunk`].
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.chunk().await? else {
            // A small body in one chunk is a slice of its connection's read buffer (8 KiB for
            // HTTP/1.1): kept as is, a held body would pin that buffer and the connection would
            // allocate another for its next response. Copied out, the buffer is reused.
            return Ok(if first.len() <= COPY_OUT_MAX {
                Bytes::copy_from_slice(&first)
            } else {
                first
            });
        };
        // The hint is the server's Content-Length: never trusted for more than a few MiB up front.
        let hint = usize::try_from(self.body.size_hint_lower().min(PREALLOC_MAX)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(first.len() + second.len() + hint);
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        while let Some(c) = self.chunk().await? {
            buf.extend_from_slice(&c);
        }
        Ok(buf.freeze())
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    ///
    /// # Errors
    /// As [`Response::chunk`].
    pub async fn text(self) -> Result<String, Error> {
        let b = self.bytes().await?;
        Ok(match String::from_utf8(b.to_vec()) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    /// `decode` when the body is not valid JSON for `T`; else as [`Response::chunk`].
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let b = self.bytes().await?;
        serde_json::from_slice(&b).map_err(|e| {
            Error::new(ErrorKind::Decode, "the response body is not valid JSON").with_source(e)
        })
    }

    /// Reads a small body (≤ [`SMALL_BODY_BYTES`] by `Content-Length`) so its connection can be reused;
    /// a large or unknown-length one is dropped, closing an HTTP/1.1 connection.
    pub(crate) async fn drain(self) {
        let small = self
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n <= SMALL_BODY_BYTES);
        if small {
            let _ = self.bytes().await;
        }
    }

    /// The body as Server-Sent Events. An event stream answering a `GET` reconnects when it
    /// ends or breaks, with `Last-Event-ID` and after the server's `retry:` (see
    /// [`EventStream`](crate::sse::EventStream)).
    pub fn events(self) -> crate::sse::EventStream {
        crate::sse::EventStream::new(&[], self.body)
    }

    /// The body, to stream (`http_body::Body` and `futures::Stream`).
    pub fn into_body(self) -> Body {
        self.body
    }

    /// Converts into an `http::Response`.
    pub fn into_http(self) -> http::Response<Body> {
        let mut r = http::Response::new(self.body);
        *r.status_mut() = self.status;
        *r.version_mut() = self.version;
        *r.headers_mut() = self.headers.into_map();
        r
    }
}

impl Body {
    fn size_hint_lower(&self) -> u64 {
        http_body::Body::size_hint(self).lower()
    }
}

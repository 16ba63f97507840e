//! A connection (HTTP/1.1) or a stream slot (HTTP/2) lent to one request, and the request body
//! as the connection sends it. Released, it goes back to the pool; dropped, it is retired
//! (HTTP/1.1) or its stream reset (HTTP/2).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};

use http_body::Body as _;

use super::host::{H1, Host, Reason, Session};
use crate::connect::ConnectTimings;
use crate::error::{Error, ErrorKind};
use crate::request_body::RequestBody;

/// A connection (HTTP/1.1) or a stream slot (HTTP/2) lent to one request.
pub(crate) struct Lease {
    pub(super) host: Arc<Host>,
    pub(super) conn: LeaseConn,
    /// The request body on its way out, once sent.
    pub(super) upload: Option<Arc<UploadState>>,
    pub(crate) reused: bool,
    /// Boxed: only new connections have them, and a response body carries its lease.
    pub(super) timings: Option<Box<ConnectTimings>>,
}

pub(super) enum LeaseConn {
    H1(Option<H1>),
    H2(Option<Arc<Session>>),
}

/// Whether a request body is still being written (hyper writes it from the connection task,
/// possibly after the whole response has arrived), and a way to stop it.
#[derive(Default)]
pub(super) struct UploadState {
    pub(super) done: AtomicBool,
    pub(super) abort: AtomicBool,
    pub(super) waker: futures_util::task::AtomicWaker,
}

impl UploadState {
    pub(super) fn done(&self) -> bool {
        self.done.load(Acquire)
    }

    /// Fails the body's next read, so hyper stops writing it: an HTTP/1.1 connection closes,
    /// an HTTP/2 stream is reset.
    pub(super) fn abort(&self) {
        if !self.done() {
            self.abort.store(true, Release);
            self.waker.wake();
        }
    }
}

/// A request body as the connection sends it: it says when it has been written in full and
/// fails when its request was abandoned.
pub(crate) struct Upload {
    pub(super) body: RequestBody,
    /// None for an empty body (nothing to track; no allocation for a GET).
    pub(super) state: Option<Arc<UploadState>>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        // hyper drops the body once written (or once the connection failed).
        if let Some(s) = &self.state {
            s.done.store(true, Release);
        }
    }
}

impl http_body::Body for Upload {
    type Data = bytes::Bytes;
    type Error = crate::error::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        let Some(state) = &this.state else {
            return std::pin::Pin::new(&mut this.body).poll_frame(cx);
        };
        state.waker.register(cx.waker());
        if state.abort.load(Acquire) {
            return Poll::Ready(Some(Err("the request was abandoned".into())));
        }
        let polled = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(r) = &polled
            && (r.is_none() || this.body.is_end_stream())
        {
            state.done.store(true, Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

pub(super) type ResponseHead = hyper::Result<http::Response<hyper::body::Incoming>>;

impl Lease {
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.conn, LeaseConn::H2(_))
    }

    /// How long the connection took to open (zero when reused).
    pub(crate) fn timings(&self) -> ConnectTimings {
        self.timings.as_deref().copied().unwrap_or_default()
    }

    /// The TLS handshake's outcome of the lent connection (reused or new).
    pub(crate) fn tls(&self) -> Option<Arc<crate::response::TlsInfo>> {
        match &self.conn {
            LeaseConn::H1(Some(c)) => c.meta.tls.clone(),
            LeaseConn::H2(Some(s)) => s.meta.tls.clone(),
            _ => None,
        }
    }

    /// `body` as this lease's connection sends it (tracked until written, when not empty),
    /// for the request [`Lease::send`] sends: built around it, the request is not taken
    /// apart and put together again to swap its body.
    pub(crate) fn upload(&mut self, body: RequestBody) -> Upload {
        let state = (!body.is_end_stream()).then(|| Arc::new(UploadState::default()));
        self.upload.clone_from(&state);
        Upload { body, state }
    }

    /// Sends `req` (its body from [`Lease::upload`]) on the leased connection; the future
    /// does not borrow the lease.
    pub(crate) fn send(
        &mut self,
        req: http::Request<Upload>,
    ) -> Result<impl Future<Output = ResponseHead> + Send + 'static, Error> {
        use futures_util::future::Either;
        match &mut self.conn {
            LeaseConn::H1(Some(c)) => Ok(Either::Left(c.tx.send_request(req))),
            LeaseConn::H2(Some(s)) => {
                let mut tx = s.tx.clone();
                Ok(Either::Right(async move { tx.send_request(req).await }))
            }
            _ => Err(Error::new(
                ErrorKind::Internal,
                "lease without a connection",
            )),
        }
    }

    /// The request completed and its body was read: the connection may serve another, unless
    /// its request body is still being written (the server answered early), which rules out
    /// reusing an HTTP/1.1 connection.
    pub(crate) fn release(mut self) {
        let writing = self.upload.take().filter(|u| !u.done());
        if let Some(u) = &writing {
            u.abort();
        }
        match &mut self.conn {
            LeaseConn::H1(c) => {
                if writing.is_none()
                    && let Some(c) = c.take()
                {
                    self.host.put_back(c);
                }
                // Otherwise `drop` retires it.
            }
            LeaseConn::H2(s) => {
                if let Some(s) = s.take() {
                    self.host.stream_done(&s);
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(u) = self.upload.take() {
            u.abort();
        }
        match &mut self.conn {
            // Not released: failed, timed out, cancelled or read only in part. Never reuse.
            LeaseConn::H1(c) => {
                if let Some(c) = c.take() {
                    let meta = c.meta.clone();
                    drop(c);
                    self.host.retire(&meta, Reason::Error);
                }
            }
            // hyper resets the stream; the session stays usable.
            LeaseConn::H2(s) => {
                if let Some(s) = s.take() {
                    self.host.stream_done(&s);
                }
            }
        }
    }
}

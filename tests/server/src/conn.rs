//! Listeners and connections: accept, count, TLS handshake, serve with hyper.
//!
//! Each connection runs in one task that owns it; dropping that task's connection is how
//! aborts happen, and the socket wrapper turns an abort into a TCP RST (`SO_LINGER` 0).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::Shared;
use crate::body::Body;
use crate::routes::BoxError;
use crate::stats::{ConnStats, lock};

/// What the server as a whole is doing; connection tasks watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Finish in-flight requests, then close (GOAWAY / `Connection: close`).
    Draining,
}

/// Per-connection state shared by the connection task and its requests.
pub(crate) struct ConnCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stats: Arc<ConnStats>,
    pub(crate) tls: bool,
    abort: Arc<AtomicBool>,
    abort_now: Notify,
    close: Notify,
    /// For a site's idle and write timeouts; `None` on the test server.
    activity: Option<Arc<Activity>>,
}

/// When a connection last started or ended a request, and since when a write is blocked.
pub(crate) struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    last_request: AtomicU64,
    /// Milliseconds since `epoch` plus one; 0 while no write is blocked.
    write_blocked_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_request: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn wrote(&self, blocked: bool) {
        if blocked {
            if self.write_blocked_since.load(Ordering::Relaxed) == 0 {
                self.write_blocked_since
                    .store(self.now_ms() + 1, Ordering::Relaxed);
            }
        } else if self.write_blocked_since.load(Ordering::Relaxed) != 0 {
            self.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }
}

impl ConnCtx {
    /// Marks request activity (for the idle timeout).
    pub(crate) fn touch(&self) {
        if let Some(a) = &self.activity {
            a.last_request.store(a.now_ms(), Ordering::Relaxed);
        }
    }

    /// Drops the connection at once with a TCP RST.
    pub(crate) fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
        self.abort_now.notify_one();
    }

    /// Starts a graceful close: no new requests, in-flight ones finish.
    pub(crate) fn close(&self) {
        self.close.notify_one();
    }
}

/// The hyper builders every port uses: HTTP/1.1, and HTTP/2 (by ALPN, or h2c by its preface).
///
/// Not hyper-util's auto builder: its sniffing hands hyper the first 24 bytes alone, which
/// makes hyper grow its read buffer to 16 KiB on every connection, and its connection type
/// holds both protocols' state inline. Here the chosen connection alone is boxed.
pub(crate) struct Builders {
    h1: http1::Builder,
    /// HTTP/2's builder is made per connection: it holds the connection's [`Streams`].
    max_concurrent_streams: Option<u32>,
    h2_window: u32,
    /// A site's header list limit, which also turns hyper's timer on.
    h2_site: Option<u32>,
}

pub(crate) fn builders(shared: &Shared) -> Builders {
    let opts = &shared.opts;
    let mut h1 = http1::Builder::new();
    if let Some(site) = &shared.site {
        h1.timer(TokioTimer::new())
            .header_read_timeout(site.header_read_timeout)
            .max_buf_size(site.max_header_bytes);
    }
    h1.keep_alive(opts.h1_keep_alive);
    Builders {
        h1,
        max_concurrent_streams: opts.max_concurrent_streams,
        h2_window: opts.h2_window,
        h2_site: shared
            .site
            .as_ref()
            .map(|s| u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX)),
    }
}

impl Builders {
    fn h2(&self, streams: Streams) -> http2::Builder<Streams> {
        let mut h2 = http2::Builder::new(streams);
        if let Some(max_header_list) = self.h2_site {
            h2.timer(TokioTimer::new())
                .max_header_list_size(max_header_list);
        }
        h2.max_concurrent_streams(self.max_concurrent_streams)
            .initial_stream_window_size(self.h2_window)
            .initial_connection_window_size(self.h2_window)
            .max_send_buf_size(self.h2_window as usize)
            // Tests cancel many streams on purpose; don't treat that as an attack.
            .max_pending_accept_reset_streams(100_000)
            .max_local_error_reset_streams(None::<usize>);
        h2
    }
}

/// The "executor" of one HTTP/2 connection: hyper hands it each stream's future, and the
/// connection's own task runs them ([`Serving::H2`]) instead of one tokio task per stream.
///
/// With a task per stream, every response woke the connection task on its own, and the
/// connection wrote and flushed it alone: one TLS record and one `writev` per response
/// however many streams were answered at once (h2load -m64: 50,000 writes for 50,000
/// requests). Run in the connection's task, every stream that can finish does so first and
/// the connection then writes their responses together.
#[derive(Clone)]
struct Streams(Arc<Mutex<Vec<StreamFuture>>>);

type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        lock(&self.0).push(Box::pin(fut));
    }
}

/// Accepts connections on the plain, TLS or bad-TLS port until the server stops.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut phase: watch::Receiver<Phase>,
) {
    let builders = Arc::new(builders(&shared));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = phase.changed() => return,
        };
        let Ok((tcp, _)) = accepted else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let stats = shared.stats.connection_opened();
        let ctx = Arc::new(ConnCtx {
            shared: shared.clone(),
            stats,
            tls: tls.is_some(),
            abort: Arc::new(AtomicBool::new(false)),
            abort_now: Notify::new(),
            close: Notify::new(),
            activity: shared.site.as_ref().and_then(|s| {
                (s.idle_timeout.is_some() || s.write_timeout.is_some())
                    .then(|| Arc::new(Activity::new()))
            }),
        });
        let io = RstOnAbort {
            inner: tcp,
            abort: ctx.abort.clone(),
            activity: ctx.activity.clone(),
        };
        let tls = tls.clone();
        let builders = builders.clone();
        let serve_phase = phase.clone();
        let mut phase = phase.clone();
        let live = shared.live.clone();
        tokio::spawn(async move {
            let closed = Closed(ctx.clone());
            tokio::select! {
                () = handshake_and_serve(&builders, io, tls, ctx, serve_phase) => {}
                // A client stuck in the TLS handshake must not outlive the server.
                _ = phase.wait_for(|_| false) => {}
            }
            drop((closed, live));
        });
    }
}

async fn handshake_and_serve(
    builders: &Builders,
    io: RstOnAbort,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ConnCtx>,
    phase: watch::Receiver<Phase>,
) {
    match tls {
        None => serve(builders, io, None, ctx, phase).await,
        // Boxed: the handshake's state would otherwise size every plain connection's task.
        Some(acceptor) => Box::pin(tls_serve(builders, io, acceptor, ctx, phase)).await,
    }
}

async fn tls_serve(
    builders: &Builders,
    io: RstOnAbort,
    acceptor: TlsAcceptor,
    ctx: Arc<ConnCtx>,
    phase: watch::Receiver<Phase>,
) {
    let limit = ctx.shared.site.as_ref().and_then(|s| s.header_read_timeout);
    let handshake = acceptor.accept(io);
    let accepted = match limit {
        Some(d) => tokio::time::timeout(d, handshake)
            .await
            .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut))),
        None => handshake.await,
    };
    let Ok(stream) = accepted else {
        ctx.shared.stats.tls_handshake_failed();
        return;
    };
    let (_, conn) = stream.get_ref();
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    // Without ALPN the first bytes decide, as on the plain port.
    let alpn = conn.alpn_protocol().map(|p| p == b"h2");
    ctx.shared.stats.tls_handshake(resumed);
    ctx.shared.stats.set_proto(&ctx.stats, alpn == Some(true));
    serve(builders, stream, alpn, ctx, phase).await;
}

/// Marks the connection closed in the counters when its task ends, however it ends.
struct Closed(Arc<ConnCtx>);

impl Drop for Closed {
    fn drop(&mut self) {
        self.0.shared.stats.connection_closed(&self.0.stats);
    }
}

/// A request handler per connection; each request's future is boxed so that hyper's
/// per-connection slot for it is a pointer, not the size of the largest route's state.
#[derive(Clone)]
struct Svc(Arc<ConnCtx>);

type HandlerFuture = Pin<Box<dyn Future<Output = Result<hyper::Response<Body>, BoxError>> + Send>>;

impl Service<hyper::Request<Incoming>> for Svc {
    type Response = hyper::Response<Body>;
    type Error = BoxError;
    type Future = HandlerFuture;

    fn call(&self, mut req: hyper::Request<Incoming>) -> HandlerFuture {
        if req.version() != http::Version::HTTP_2 {
            detach_head(&mut req);
        }
        Box::pin(crate::routes::handle(self.0.clone(), req))
    }
}

/// Copies an HTTP/1 request's URI and header values out of hyper's read buffer into one
/// allocation of their size (a few hundred bytes), so that the request no longer shares it.
///
/// hyper reads again as soon as it has a request head (to see a client close mid-request),
/// and while the head still shares its read buffer that read cannot reuse it: it allocates
/// a fresh 8 KiB buffer. Every request in flight held two read buffers, and every request
/// cost an 8 KiB allocation and free. Header names are copied by hyper already.
fn detach_head(req: &mut hyper::Request<Incoming>) {
    use http::uri::{Authority, PathAndQuery};
    let uri = req.uri();
    let authority = uri.authority().map_or("", Authority::as_str).len();
    let path = uri.path_and_query().map_or("", PathAndQuery::as_str).len();
    let values: usize = req.headers().values().map(http::HeaderValue::len).sum();
    let mut buf = bytes::BytesMut::with_capacity(authority + path + values);
    buf.extend_from_slice(uri.authority().map_or("", Authority::as_str).as_bytes());
    buf.extend_from_slice(
        uri.path_and_query()
            .map_or("", PathAndQuery::as_str)
            .as_bytes(),
    );
    for v in req.headers().values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let mut copy = buf.freeze();
    let authority = copy.split_to(authority);
    let path = copy.split_to(path);
    for v in req.headers_mut().values_mut() {
        let bytes = copy.split_to(v.len());
        // What hyper accepted is valid; should a check still fail, the value keeps sharing.
        if let Ok(mut detached) = http::HeaderValue::from_maybe_shared(bytes) {
            detached.set_sensitive(v.is_sensitive());
            *v = detached;
        }
    }
    let mut parts = req.uri().clone().into_parts();
    if parts.authority.is_some() {
        let Ok(a) = Authority::from_maybe_shared(authority) else {
            return;
        };
        parts.authority = Some(a);
    }
    if parts.path_and_query.is_some() {
        let Ok(p) = PathAndQuery::from_maybe_shared(path) else {
            return;
        };
        parts.path_and_query = Some(p);
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

type H1Conn<I> = http1::Connection<TokioIo<Prefixed<I>>, Svc>;
type H2Conn<I> = http2::Connection<TokioIo<Gather<Prefixed<I>>>, Svc, Streams>;

/// The connection hyper serves, boxed at its own size.
enum Serving<I> {
    H1(Pin<Box<H1Conn<I>>>),
    H2 {
        conn: Pin<Box<H2Conn<I>>>,
        /// Streams hyper started since the connection was last polled.
        new: Streams,
        running: FuturesUnordered<StreamFuture>,
    },
}

impl<I> Serving<I>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn new(builders: &Builders, h2: bool, io: Prefixed<I>, svc: Svc) -> Self {
        if h2 {
            let new = Streams(Arc::default());
            let io = TokioIo::new(Gather::new(io));
            let conn = builders.h2(new.clone()).serve_connection(io, svc);
            Self::H2 {
                conn: Box::pin(conn),
                new,
                running: FuturesUnordered::new(),
            }
        } else {
            let io = TokioIo::new(io);
            Self::H1(Box::pin(builders.h1.serve_connection(io, svc)))
        }
    }

    fn graceful_shutdown(&mut self) {
        match self {
            Self::H1(c) => c.as_mut().graceful_shutdown(),
            Self::H2 { conn, .. } => conn.as_mut().graceful_shutdown(),
        }
    }
}

impl<I> Future for Serving<I>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Self::H1(c) => c.as_mut().poll(cx).map(|_| ()),
            Self::H2 { conn, new, running } => loop {
                // Done (closed, or every stream finished after a GOAWAY): streams still
                // running belong to a connection that failed, as their tasks would have.
                if conn.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let mut progress = false;
                for stream in lock(&new.0).drain(..) {
                    running.push(stream);
                    progress = true;
                }
                // Every stream that can finish now does, queueing its response...
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                    progress = true;
                }
                if !progress {
                    return Poll::Pending;
                }
                // ... and the connection, polled again, writes them together.
            },
        }
    }
}

/// `h2`: what ALPN chose; `None` lets the first bytes decide (HTTP/2's preface or not).
async fn serve<I>(
    builders: &Builders,
    io: I,
    h2: Option<bool>,
    ctx: Arc<ConnCtx>,
    mut phase: watch::Receiver<Phase>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut close_all = ctx.shared.close_all.subscribe();
    let limits = ctx
        .shared
        .site
        .as_ref()
        .map(|s| (s.idle_timeout, s.write_timeout));
    let period = limits.and_then(|(idle, write)| {
        let shortest = idle.into_iter().chain(write).min()?;
        Some((shortest / 4).max(Duration::from_millis(50)))
    });
    // Until the client sends something the connection holds no hyper state at all; any
    // reason to close it meanwhile just drops it (no request is in flight).
    let header_timeout = ctx.shared.site.as_ref().and_then(|s| s.header_read_timeout);
    let first = first_bytes(io, h2, header_timeout);
    tokio::pin!(first);
    let (h2, io) = loop {
        tokio::select! {
            r = first.as_mut() => match r {
                Some(opened) => break opened,
                None => return,
            },
            () = tick(period) => match check(&ctx, limits) {
                Check::Fine => {}
                Check::Idle | Check::WriteStalled => return,
            },
            () = ctx.abort_now.notified() => return,
            () = ctx.close.notified() => return,
            Ok(()) = close_all.changed() => return,
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Draining {
                    return;
                }
            }
        }
    };
    let mut conn = Serving::new(builders, h2, io, Svc(ctx.clone()));
    let mut closing = false;
    loop {
        tokio::select! {
            () = &mut conn => return,
            () = tick(period) => match check(&ctx, limits) {
                Check::Idle if !closing => {
                    closing = true;
                    conn.graceful_shutdown();
                }
                Check::Fine | Check::Idle => {}
                Check::WriteStalled => return,
            },
            () = ctx.abort_now.notified() => return,
            () = ctx.close.notified(), if !closing => {
                closing = true;
                conn.graceful_shutdown();
            }
            Ok(()) = close_all.changed(), if !closing => {
                closing = true;
                conn.graceful_shutdown();
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                if *phase.borrow() == Phase::Draining && !closing {
                    closing = true;
                    conn.graceful_shutdown();
                }
            }
        }
    }
}

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits for the client's first bytes (within the header timeout) and tells HTTP/2 from
/// HTTP/1.1 when ALPN did not. `None`: closed, failed or timed out before a request.
async fn first_bytes<I>(
    mut io: I,
    h2: Option<bool>,
    limit: Option<Duration>,
) -> Option<(bool, Prefixed<I>)>
where
    I: AsyncRead + Unpin,
{
    let mut pre = [0u8; 24];
    if let Some(h2) = h2 {
        // ALPN decided; HTTP/2's server preface must not wait for the client.
        return Some((h2, Prefixed::new(io, pre, 0)));
    }
    let read = async {
        let mut n = 0;
        loop {
            // Reads at most the preface's length, so the request head mostly stays in the
            // socket for hyper's own first read.
            let got = io.read(&mut pre[n..]).await.ok()?;
            if got == 0 {
                return None;
            }
            n += got;
            if pre[..n] != H2_PREFACE[..n] {
                return Some((false, n));
            }
            if n == H2_PREFACE.len() {
                return Some((true, n));
            }
        }
    };
    let (h2, len) = match limit {
        Some(d) => tokio::time::timeout(d, read).await.ok()??,
        None => read.await?,
    };
    Some((h2, Prefixed::new(io, pre, len)))
}

/// Sleeps `period`, or forever when there is nothing to check.
async fn tick(period: Option<Duration>) {
    match period {
        Some(p) => tokio::time::sleep(p).await,
        None => std::future::pending().await,
    }
}

enum Check {
    Fine,
    /// No request for the idle timeout: close gracefully.
    Idle,
    /// A write blocked for the write timeout: drop the connection.
    WriteStalled,
}

fn check(ctx: &ConnCtx, limits: Option<(Option<Duration>, Option<Duration>)>) -> Check {
    let (Some(a), Some((idle, write))) = (&ctx.activity, limits) else {
        return Check::Fine;
    };
    let now = a.now_ms();
    let blocked = a.write_blocked_since.load(Ordering::Relaxed);
    if let Some(w) = write
        && blocked != 0
        && now.saturating_sub(blocked - 1) >= w.as_millis() as u64
    {
        return Check::WriteStalled;
    }
    if let Some(i) = idle
        && ctx.stats.in_flight() == 0
        && now.saturating_sub(a.last_request.load(Ordering::Relaxed)) >= i.as_millis() as u64
    {
        return Check::Idle;
    }
    Check::Fine
}

/// Accepts connections and never writes to them; reads are discarded.
pub(crate) async fn silent_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = phase.changed() => return,
        };
        let Ok((mut tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        shared.stats.silent_connection();
        let mut phase = phase.clone();
        let live = shared.live.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            tokio::select! {
                () = async { while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
                _ = phase.wait_for(|_| false) => {}
            }
            drop(live);
        });
    }
}

/// Binds a listener whose connects never complete: its accept queue is full and never
/// drained, so the kernel drops further SYNs. Returns the listener and the connections
/// that fill the queue; both must be kept alive.
pub(crate) async fn blackhole() -> io::Result<(socket2::Socket, SocketAddr, Vec<TcpStream>)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    sock.listen(0)?;
    let addr = sock
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("blackhole has no inet address"))?;
    let mut fillers = Vec::new();
    // On loopback a connect that can complete does so in microseconds; the first one that
    // does not within 50 ms proves the queue is full.
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(50), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok((sock, addr, fillers)),
        }
    }
    Err(io::Error::other(
        "could not fill the blackhole's accept queue",
    ))
}

/// A TCP stream that is reset (RST, not FIN) when dropped after [`ConnCtx::abort`].
pub(crate) struct RstOnAbort {
    inner: TcpStream,
    abort: Arc<AtomicBool>,
    activity: Option<Arc<Activity>>,
}

impl RstOnAbort {
    fn note_write<T>(&self, r: &Poll<io::Result<T>>) {
        if let Some(a) = &self.activity {
            a.wrote(r.is_pending());
        }
    }
}

impl Drop for RstOnAbort {
    fn drop(&mut self) {
        if self.abort.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for RstOnAbort {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RstOnAbort {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose first bytes were read already (to see whether they are HTTP/2's
/// preface). They come first, together with whatever the stream has ready, so that hyper's
/// first read sees the whole request head as it would have without the peek.
pub(crate) struct Prefixed<I> {
    inner: I,
    pre: [u8; 24],
    pos: u8,
    len: u8,
}

impl<I> Prefixed<I> {
    fn new(inner: I, pre: [u8; 24], len: usize) -> Self {
        Self {
            inner,
            pre,
            pos: 0,
            len: len as u8,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.len {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let (pos, len) = (usize::from(this.pos), usize::from(this.len));
        let take = (len - pos).min(buf.remaining());
        buf.put_slice(&this.pre[pos..pos + take]);
        this.pos += take as u8;
        if this.pos == this.len && buf.remaining() > 0 {
            // Bytes were returned already: an error or EOF here shows on the next read.
            let _ = Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Writes of an HTTP/2 connection gathered so that a batch of responses leaves in one write
/// (and, over TLS, in full records), with its flush deferred to the connection's next poll.
///
/// h2 copies small frames into its own buffer but chains a DATA payload of 256 bytes or
/// more and flushes before it queues the next frame, so each 1 KiB response was written,
/// encrypted and sent on its own even when [`Streams`] had finished 64 of them together.
/// Here a flush while bytes are gathered wakes the connection's task instead (unless the
/// socket is full: then the socket wakes it), and the next poll writes them out first thing:
/// h2 reads the connection on every poll. Past
/// [`GATHER_MAX`] a write waits for the gathered bytes to go out (back-pressure as before),
/// and a shutdown sends them first.
pub(crate) struct Gather<I> {
    inner: I,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    sent: usize,
    /// The last write found the socket full; the socket wakes the task when it has room.
    blocked: bool,
}

/// Bytes gathered before a write has to wait for them to be written.
const GATHER_MAX: usize = 64 * 1024;

impl<I: AsyncWrite + Unpin> Gather<I> {
    fn new(inner: I) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            sent: 0,
            blocked: false,
        }
    }

    /// Room for more: past [`GATHER_MAX`], what is gathered goes out first.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.len() >= GATHER_MAX {
            return self.poll_send(cx);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes out what is gathered, then flushes the stream.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.sent += n;
                    self.blocked = false;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.blocked = true;
                    return Poll::Pending;
                }
            }
        }
        self.buf.clear();
        self.sent = 0;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for Gather<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty()
            && let Poll::Ready(Err(e)) = this.poll_send(cx)
        {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Gather<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        // Whatever else this poll writes joins the batch; the next poll sends it. While the
        // socket is full, the socket wakes the task when it has room: a wake here would poll
        // the connection again and again for a peer that reads nothing.
        if !this.blocked {
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_send(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;

    /// Counts the wake-ups of the task it stands for.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One poll of `gather`'s read side (which first sends what is gathered).
    fn poll_read<I: AsyncRead + AsyncWrite + Unpin>(
        gather: &mut Gather<I>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut space = [0_u8; 8];
        Pin::new(gather).poll_read(cx, &mut ReadBuf::new(&mut space))
    }

    /// A peer that reads nothing must not make the connection's task spin: once the socket is
    /// full, a flush of gathered bytes waits for the socket to wake the task instead of waking
    /// it itself on every poll (it did: a stalled HTTP/2 client whose response's tail was
    /// gathered kept the server's thread at 100 % CPU).
    #[test]
    fn a_flush_while_the_socket_is_full_waits_for_the_socket() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut gather = Gather::new(near);
        let count = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let woken = || count.0.load(Ordering::SeqCst);

        // A response is gathered; its flush is left to the next poll, which it asks for.
        let wrote = Pin::new(&mut gather).poll_write(&mut cx, &[b'x'; 100]);
        assert!(matches!(wrote, Poll::Ready(Ok(100))), "{wrote:?}");
        assert!(Pin::new(&mut gather).poll_flush(&mut cx).is_ready());
        assert_eq!(woken(), 1, "the deferred flush asks for the next poll");

        // The next poll sends what the socket takes (16 bytes) and finds it full.
        assert!(poll_read(&mut gather, &mut cx).is_pending());
        assert_eq!(gather.sent, 16);

        // Polls while the socket is full: their flushes wake nothing.
        for _ in 0..10 {
            assert!(poll_read(&mut gather, &mut cx).is_pending());
            assert!(Pin::new(&mut gather).poll_flush(&mut cx).is_ready());
        }
        assert_eq!(
            woken(),
            1,
            "a flush while the socket was full woke the task"
        );

        // The peer reads: the socket wakes the task, whose next poll sends more.
        let mut got = [0_u8; 16];
        let n = Pin::new(&mut far)
            .poll_read(&mut cx, &mut ReadBuf::new(&mut got))
            .map(|r| r.map(|()| 16));
        assert!(matches!(n, Poll::Ready(Ok(16))), "{n:?}");
        assert!(woken() >= 2, "the socket woke the task when it had room");
        assert!(poll_read(&mut gather, &mut cx).is_pending());
        assert_eq!(gather.sent, 32);
    }
}

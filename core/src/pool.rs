//! Per-origin connection pool on `hyper::client::conn`: HTTP/1.1 keep-alive connections reused
//! LIFO, and HTTP/2 sessions shared up to the server's stream limit.
//!
//! Invariant: every connection is counted once in `open` (or `connecting`) of its origin and in
//! the global total, and is uncounted exactly once by `retire`, whatever path ends it. Grants
//! to waiting requests are made under the origin's lock; nothing that takes that lock is ever
//! dropped while it is held.

mod h2;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use http_body::Body as _;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::body::RequestBody;

/// How long an idle connection over `max_idle_per_host` is kept before the reaper closes it.
const IDLE_GRACE: Duration = Duration::from_secs(1);
use crate::config::{Config, ms};
use crate::connect::{ConnectTimings, Connected, Connector};
use crate::error::{Error, ErrorKind};
use crate::metrics::{Evictions, OriginStats, PoolStats};

/// Scheme, host and port: the unit of pooling.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) key: Arc<str>,
}

impl Origin {
    pub(crate) fn from_uri(uri: &http::Uri) -> Result<Self, Error> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(s) => {
                return Err(crate::error::url(format!(
                    "unsupported URL scheme {s:?} (http and https only)"
                )));
            }
            None => return Err(crate::error::url("URL has no scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| crate::error::url("URL has no host"))?
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let key: Arc<str> = Arc::from(format!(
            "{}://{}:{}",
            if https { "https" } else { "http" },
            host,
            port
        ));
        Ok(Self {
            https,
            host,
            port,
            key,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Unknown,
    H1,
    H2,
}

#[derive(Clone, Copy, Debug)]
enum Reason {
    Idle,
    Lifetime,
    Error,
    ClosedByPeer,
}

struct Meta {
    id: u64,
    created: Instant,
    retired: AtomicBool,
    /// The TLS handshake's outcome, for every response on this connection.
    tls: Option<Arc<crate::response::TlsInfo>>,
}

struct H1 {
    tx: http1::SendRequest<Upload>,
    meta: Arc<Meta>,
}

struct Session {
    tx: http2::SendRequest<Upload>,
    meta: Arc<Meta>,
    peer: Arc<h2::PeerSettings>,
}

struct Slot {
    session: Arc<Session>,
    in_flight: usize,
    idle_since: Instant,
}

struct Idle {
    conn: H1,
    since: Instant,
}

enum Grant {
    H1(H1),
    H2(Arc<Session>),
    Connect,
    Failed(ErrorKind, String),
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    reuses: AtomicU64,
    idle: AtomicU64,
    lifetime: AtomicU64,
    error: AtomicU64,
    closed_by_peer: AtomicU64,
}

impl Counters {
    fn add(&self, o: &Counters) {
        for (a, b) in [
            (&self.connects, &o.connects),
            (&self.reuses, &o.reuses),
            (&self.idle, &o.idle),
            (&self.lifetime, &o.lifetime),
            (&self.error, &o.error),
            (&self.closed_by_peer, &o.closed_by_peer),
        ] {
            a.fetch_add(b.load(Relaxed), Relaxed);
        }
    }

    fn stats(&self, p: &mut PoolStats) {
        p.connects += self.connects.load(Relaxed);
        p.reuses += self.reuses.load(Relaxed);
        p.evictions.idle += self.idle.load(Relaxed);
        p.evictions.lifetime += self.lifetime.load(Relaxed);
        p.evictions.error += self.error.load(Relaxed);
        p.evictions.closed_by_peer += self.closed_by_peer.load(Relaxed);
    }
}

struct State {
    proto: Proto,
    idle: Vec<Idle>,
    sessions: Vec<Slot>,
    open: usize,
    connecting: usize,
    /// Requests waiting for this origin, most urgent first, FIFO within an urgency.
    waiters: VecDeque<Waiter>,
    blocked: bool,
}

/// A queued request: its RFC 9218 urgency (0 first) and where its grant goes.
struct Waiter {
    urgency: u8,
    tx: oneshot::Sender<Grant>,
}

impl Waiter {
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

struct Host {
    origin: Origin,
    me: Weak<Host>,
    shared: Weak<Shared>,
    state: Mutex<State>,
    c: Counters,
    /// The pool's clock origin, for `last_used`.
    base: Instant,
    /// Requests using this origin now (see [`HostRef::enter`]).
    users: AtomicUsize,
    /// When the last request ended, in ms since `base`.
    last_used: AtomicU64,
    /// In `Shared::live` (it has connections); changed under the state lock.
    live: AtomicBool,
    /// In `Shared::spare`; changed under the state lock, or before the host is shared.
    queued: AtomicBool,
    /// Forgotten by the pool: requests must look the origin up again. Set under the state
    /// lock and the hosts lock.
    removed: AtomicBool,
}

struct Settings {
    max_total: usize,
    per_host: usize,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    lifetime: Option<Duration>,
    max_pending: usize,
    acquire_timeout: Duration,
    h2_enabled: bool,
    h2_streams: u32,
    h2: crate::config::Http2Config,
    max_header_bytes: usize,
    max_origins: usize,
    /// 0: origins are forgotten only past `max_origins`.
    origin_idle_ms: u64,
}

struct Shared {
    s: Settings,
    connector: Connector,
    hosts: Mutex<HashMap<Arc<str>, Arc<Host>>>,
    total: AtomicUsize,
    blocked: Mutex<VecDeque<Weak<Host>>>,
    handle: Handle,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Dropped with the pool, which ends the reaper at once.
    _reaper: oneshot::Sender<()>,
    base: Instant,
    /// Hosts with connections: the only ones the reaper visits on every tick.
    live: Mutex<Vec<Weak<Host>>>,
    /// Hosts without connections, with when they were last used, oldest first (roughly): the
    /// candidates to forget.
    spare: Mutex<VecDeque<(Weak<Host>, u64)>>,
    /// Counters of forgotten origins, so that totals never go down.
    gone: Counters,
    /// Told which origins were forgotten (under the hosts lock), to forget their other state.
    on_forget: OnceLock<Forget>,
}

/// See [`Pool::on_forget`].
pub(crate) type Forget = Box<dyn Fn(&[Arc<str>]) + Send + Sync>;

/// What became of a host taken from the spare queue.
enum Spare {
    /// Gone, forgotten already, or back in use with connections: not spare any more.
    Drop,
    /// Still wanted: back in the queue with this time of last use.
    Requeue(u64),
    /// Forgotten now.
    Forgot(Arc<str>),
}

/// A request using an origin: while any exists, the origin is not forgotten.
pub(crate) struct Using(Arc<Host>);

impl Drop for Using {
    fn drop(&mut self) {
        let h = &self.0;
        h.last_used.store(ms_since(h.base), Relaxed);
        h.users.fetch_sub(1, SeqCst);
    }
}

fn ms_since(base: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

impl Drop for Shared {
    /// The last client handle is gone: idle connections and sessions close now (their tasks
    /// end when the sender drops). Connections lent to response bodies still being read stay
    /// until those bodies end.
    fn drop(&mut self) {
        let hosts = self.hosts.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (_, h) in hosts.drain() {
            let (idle, sessions, waiters) = {
                let mut st = lock(&h.state);
                let idle = std::mem::take(&mut st.idle);
                let (free, busy) = std::mem::take(&mut st.sessions)
                    .into_iter()
                    .partition::<Vec<_>, _>(|s| s.in_flight == 0);
                st.sessions = busy;
                (idle, free, std::mem::take(&mut st.waiters))
            };
            drop((idle, sessions, waiters));
        }
    }
}

/// The pool of one client.
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("total", &self.shared.total.load(Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One origin's pool state, looked up once (see [`Pool::host_ref`]).
#[derive(Clone)]
pub(crate) struct HostRef(Arc<Host>);

impl HostRef {
    /// Marks a request using this origin until the guard drops, so the origin is not
    /// forgotten meanwhile. `None` when it was forgotten already: look it up again.
    pub(crate) fn enter(&self) -> Option<Using> {
        let h = &self.0;
        h.users.fetch_add(1, SeqCst);
        if h.removed.load(SeqCst) {
            h.users.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Using(h.clone()))
    }
}

/// A connection (HTTP/1.1) or a stream slot (HTTP/2) lent to one request.
pub(crate) struct Lease {
    host: Arc<Host>,
    conn: LeaseConn,
    /// The request body on its way out, once sent.
    upload: Option<Arc<UploadState>>,
    pub(crate) reused: bool,
    /// Boxed: only new connections have them, and a response body carries its lease.
    timings: Option<Box<ConnectTimings>>,
}

enum LeaseConn {
    H1(Option<H1>),
    H2(Option<Arc<Session>>),
}

/// Whether a request body is still being written (hyper writes it from the connection task,
/// possibly after the whole response has arrived), and a way to stop it.
#[derive(Default)]
struct UploadState {
    done: AtomicBool,
    abort: AtomicBool,
    waker: futures_util::task::AtomicWaker,
}

impl UploadState {
    fn done(&self) -> bool {
        self.done.load(Acquire)
    }

    /// Fails the body's next read, so hyper stops writing it: an HTTP/1.1 connection closes,
    /// an HTTP/2 stream is reset.
    fn abort(&self) {
        if !self.done() {
            self.abort.store(true, Release);
            self.waker.wake();
        }
    }
}

/// A request body as the connection sends it: it says when it has been written in full and
/// fails when its request was abandoned.
pub(crate) struct Upload {
    body: RequestBody,
    /// None for an empty body (nothing to track; no allocation for a GET).
    state: Option<Arc<UploadState>>,
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

type ResponseHead = hyper::Result<http::Response<hyper::body::Incoming>>;

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

    /// Sends `req` on the leased connection; the future does not borrow the lease.
    pub(crate) fn send(
        &mut self,
        req: http::Request<RequestBody>,
    ) -> Result<impl Future<Output = ResponseHead> + Send + 'static, Error> {
        use futures_util::future::Either;
        let (parts, body) = req.into_parts();
        let state = (!body.is_end_stream()).then(|| Arc::new(UploadState::default()));
        let req = http::Request::from_parts(
            parts,
            Upload {
                body,
                state: state.clone(),
            },
        );
        let fut = match &mut self.conn {
            LeaseConn::H1(Some(c)) => Either::Left(c.tx.send_request(req)),
            LeaseConn::H2(Some(s)) => {
                let mut tx = s.tx.clone();
                Either::Right(async move { tx.send_request(req).await })
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "lease without a connection",
                ));
            }
        };
        self.upload = state;
        Ok(fut)
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

/// Undoes a grant that reached a waiter who stopped waiting.
struct WaitGuard {
    rx: oneshot::Receiver<Grant>,
    host: Arc<Host>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.rx.close();
        if let Ok(g) = self.rx.try_recv() {
            self.host.undo(g);
        }
    }
}

/// An idle HTTP/1.1 connection granted to a request that has not yet found it ready; dropped
/// with the connection inside (the request was cancelled), it goes back to the pool.
struct Held {
    host: Arc<Host>,
    conn: Option<H1>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.host.undo(Grant::H1(c));
        }
    }
}

/// A reserved connect slot; dropped without `done` it frees the slot for the next waiter.
struct ConnectGuard {
    host: Arc<Host>,
    armed: bool,
}

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        if self.armed {
            self.host.undo(Grant::Connect);
        }
    }
}

impl Settings {
    fn from(cfg: &Config) -> Self {
        let p = &cfg.pool;
        Self {
            max_total: p.max_connections,
            per_host: p.max_connections_per_host,
            max_idle: p.max_idle_per_host,
            idle_timeout: ms(p.idle_timeout_ms),
            lifetime: ms(p.max_lifetime_ms),
            max_pending: p.max_pending_per_host,
            acquire_timeout: Duration::from_millis(cfg.timeouts.pool_acquire_ms.max(1)),
            h2_enabled: cfg.http2.enabled,
            h2_streams: cfg.http2.max_concurrent_streams,
            h2: cfg.http2.clone(),
            max_header_bytes: cfg.limits.max_response_header_bytes,
            max_origins: p.max_origins,
            origin_idle_ms: p.origin_idle_timeout_ms,
        }
    }
}

impl Pool {
    pub(crate) fn new(cfg: &Config, connector: Connector, handle: &Handle) -> Self {
        let (reaper_tx, mut reaper_rx) = oneshot::channel::<()>();
        let shared = Arc::new(Shared {
            _reaper: reaper_tx,
            s: Settings::from(cfg),
            connector,
            hosts: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            blocked: Mutex::new(VecDeque::new()),
            handle: handle.clone(),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            base: Instant::now(),
            live: Mutex::new(Vec::new()),
            spare: Mutex::new(VecDeque::new()),
            gone: Counters::default(),
            on_forget: OnceLock::new(),
        });
        // The reaper also trims idle connections over `max_idle_per_host`, so it always runs.
        let every = [shared.s.idle_timeout, shared.s.lifetime]
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::from_secs(5), |d| {
                (d / 4).clamp(Duration::from_millis(25), Duration::from_secs(5))
            });
        let every = Some(every.min(IDLE_GRACE));
        if let Some(every) = every {
            let weak = Arc::downgrade(&shared);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = &mut reaper_rx => return,
                    }
                    let Some(shared) = weak.upgrade() else { return };
                    shared.reap();
                }
            });
        }
        Self { shared }
    }

    /// The pool's state of `origin`, for callers that look it up once and acquire many times.
    /// The pool may forget the origin later (see [`HostRef::enter`]); acquiring through a stale
    /// handle looks the origin up again.
    pub(crate) fn host_ref(&self, origin: &Origin) -> HostRef {
        HostRef(self.host(origin))
    }

    /// Sets what learns of forgotten origins (once; later calls are ignored).
    pub(crate) fn on_forget(&self, f: Forget) {
        let _ = self.shared.on_forget.set(f);
    }

    /// Origins tracked: (all, with connections, without), for tests of the bookkeeping.
    pub(crate) fn origin_counts(&self) -> (usize, usize, usize) {
        let sh = &self.shared;
        let all = lock(&sh.hosts).len();
        let live = lock(&sh.live).len();
        let spare = lock(&sh.spare).len();
        (all, live, spare)
    }

    fn host(&self, origin: &Origin) -> Arc<Host> {
        let sh = &self.shared;
        let mut hosts = lock(&sh.hosts);
        if let Some(h) = hosts.get(&origin.key) {
            return h.clone();
        }
        let now = ms_since(sh.base);
        let h1_only = if origin.https {
            !self.shared.s.h2_enabled
        } else {
            !self.shared.connector_prior_knowledge()
        };
        let proto = if h1_only { Proto::H1 } else { Proto::Unknown };
        let h = Arc::new_cyclic(|me| Host {
            origin: origin.clone(),
            me: me.clone(),
            shared: Arc::downgrade(&self.shared),
            state: Mutex::new(State {
                proto,
                idle: Vec::new(),
                sessions: Vec::new(),
                open: 0,
                connecting: 0,
                waiters: VecDeque::new(),
                blocked: false,
            }),
            c: Counters::default(),
            base: sh.base,
            users: AtomicUsize::new(0),
            last_used: AtomicU64::new(now),
            live: AtomicBool::new(false),
            queued: AtomicBool::new(true),
            removed: AtomicBool::new(false),
        });
        hosts.insert(origin.key.clone(), h.clone());
        lock(&sh.spare).push_back((Arc::downgrade(&h), now));
        if hosts.len() > sh.s.max_origins {
            let mut forgot = Vec::new();
            sh.evict_over_cap(&mut hosts, now, Some(&h), &mut forgot);
            sh.forget(&forgot);
        }
        h
    }

    /// A connection or stream for the origin of `host` (see [`Pool::host_ref`]), waiting at
    /// most until `deadline` (and `timeouts.pool_acquire_ms`) when the pool's limits are
    /// reached.
    pub(crate) async fn acquire_at(
        &self,
        host: &HostRef,
        deadline: Option<Instant>,
        urgency: u8,
        phases: crate::request::PhaseTimeouts,
    ) -> Result<Lease, Error> {
        let sh = &self.shared;
        if sh.closed.load(Relaxed) {
            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
        }
        let mut host = host.0.clone();
        // A dead idle connection found by `ready()` costs one more round; bounded for safety.
        for _ in 0..sh.s.per_host.saturating_add(2) {
            let (step, dead) = host.try_acquire(urgency);
            host.retire_all(dead);
            let origin = &host.origin;
            let grant = match step {
                Step::Now(g) => g,
                Step::Moved => {
                    // Forgotten since the caller looked it up: use the pool's current state.
                    host = self.host(&origin.clone());
                    continue;
                }
                Step::Full => {
                    return Err(Error::new(
                        ErrorKind::TimeoutPool,
                        format!(
                            "too many requests waiting for a connection to {}",
                            origin.key
                        ),
                    ));
                }
                Step::Wait(rx, blocked) => {
                    let mut guard = WaitGuard {
                        rx,
                        host: host.clone(),
                    };
                    if blocked {
                        sh.evict_one_idle();
                    }
                    let mut wait = phases.pool.unwrap_or(sh.s.acquire_timeout);
                    if let Some(d) = deadline {
                        wait = wait.min(d.saturating_duration_since(Instant::now()));
                    }
                    match tokio::time::timeout(wait, &mut guard.rx).await {
                        Ok(Ok(g)) => g,
                        Ok(Err(_)) => {
                            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
                        }
                        Err(_) => {
                            return Err(crate::error::timeout(
                                ErrorKind::TimeoutPool,
                                &format!("waiting for a connection to {}", origin.key),
                                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            ));
                        }
                    }
                }
            };
            match grant {
                Grant::H1(c) => {
                    // Held by a guard across the wait: a request dropped here puts it back.
                    let mut held = Held {
                        host: host.clone(),
                        conn: Some(c),
                    };
                    let ready = futures_util::future::poll_fn(|cx| match &mut held.conn {
                        Some(c) => c.tx.poll_ready(cx).map(|r| r.is_ok()),
                        None => std::task::Poll::Ready(false),
                    })
                    .await;
                    let Some(c) = held.conn.take() else { continue };
                    if !ready {
                        let meta = c.meta.clone();
                        drop(c);
                        host.retire(&meta, Reason::ClosedByPeer);
                        continue;
                    }
                    host.c.reuses.fetch_add(1, Relaxed);
                    return Ok(Lease {
                        host,
                        conn: LeaseConn::H1(Some(c)),
                        upload: None,
                        reused: true,
                        timings: None,
                    });
                }
                Grant::H2(s) => {
                    host.c.reuses.fetch_add(1, Relaxed);
                    return Ok(Lease {
                        host,
                        conn: LeaseConn::H2(Some(s)),
                        upload: None,
                        reused: true,
                        timings: None,
                    });
                }
                Grant::Failed(kind, msg) => return Err(Error::new(kind, msg)),
                Grant::Connect => {
                    let guard = ConnectGuard {
                        host: host.clone(),
                        armed: true,
                    };
                    return self.connect(guard, phases.connect).await;
                }
            }
        }
        Err(Error::new(
            ErrorKind::Io,
            format!("every pooled connection to {} was dead", host.origin.key),
        ))
    }

    async fn connect(
        &self,
        mut guard: ConnectGuard,
        timeout: Option<Duration>,
    ) -> Result<Lease, Error> {
        let host = guard.host.clone();
        let sh = &self.shared;
        let connected = match sh.connector.connect(&host.origin, timeout).await {
            Ok(c) => c,
            Err(e) => {
                guard.armed = false;
                host.connect_failed(&e);
                return Err(e);
            }
        };
        let Connected {
            stream,
            h2,
            timings,
            tls,
        } = connected;
        let meta = Arc::new(Meta {
            id: sh.next_id.fetch_add(1, Relaxed),
            created: Instant::now(),
            retired: AtomicBool::new(false),
            tls,
        });
        let handshake = if h2 {
            self.handshake_h2(stream, &host, &meta)
                .await
                .map(LeaseConn::H2)
        } else {
            self.handshake_h1(stream, &host, &meta)
                .await
                .map(LeaseConn::H1)
        };
        guard.armed = false;
        match handshake {
            Err(e) => {
                host.connect_failed(&e);
                Err(e)
            }
            Ok(conn) => {
                host.c.connects.fetch_add(1, Relaxed);
                host.connected(&conn);
                Ok(Lease {
                    host,
                    conn,
                    upload: None,
                    reused: false,
                    timings: Some(Box::new(timings)),
                })
            }
        }
    }

    /// Drives a connection on the runtime. The task holds its host weakly: the host's idle list
    /// holds the connection's sender, so a strong reference would keep both alive forever once
    /// the client is gone.
    fn spawn_conn<F>(&self, conn: F, host: &Arc<Host>, meta: &Arc<Meta>)
    where
        F: Future + Send + 'static,
    {
        let (h, m) = (Arc::downgrade(host), meta.clone());
        self.shared.handle.spawn(async move {
            let _ = conn.await;
            if let Some(h) = h.upgrade() {
                h.conn_ended(&m);
            }
        });
    }

    async fn handshake_h1(
        &self,
        stream: crate::connect::Stream,
        host: &Arc<Host>,
        meta: &Arc<Meta>,
    ) -> Result<Option<H1>, Error> {
        let mut b = http1::Builder::new();
        b.max_buf_size(self.shared.s.max_header_bytes.max(8192));
        let (tx, conn) = b
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| crate::error::from_hyper(e, &host.origin.key))?;
        self.spawn_conn(conn, host, meta);
        Ok(Some(H1 {
            tx,
            meta: meta.clone(),
        }))
    }

    async fn handshake_h2(
        &self,
        stream: crate::connect::Stream,
        host: &Arc<Host>,
        meta: &Arc<Meta>,
    ) -> Result<Option<Arc<Session>>, Error> {
        let c = &self.shared.s.h2;
        let peer = h2::PeerSettings::new();
        let io = TokioIo::new(h2::Sniff::new(stream, peer.clone()));
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .initial_stream_window_size(c.initial_stream_window_bytes)
            .initial_connection_window_size(c.initial_connection_window_bytes)
            .max_frame_size(c.max_frame_bytes)
            .max_header_list_size(
                u32::try_from(self.shared.s.max_header_bytes).unwrap_or(u32::MAX),
            );
        if let Some(iv) = ms(c.keep_alive_interval_ms) {
            b.keep_alive_interval(iv)
                .keep_alive_timeout(Duration::from_millis(c.keep_alive_timeout_ms.max(1)))
                .keep_alive_while_idle(true);
        }
        let (tx, conn) = b
            .handshake(io)
            .await
            .map_err(|e| crate::error::from_hyper(e, &host.origin.key))?;
        self.spawn_conn(conn, host, meta);
        // The server's first SETTINGS tells how many streams it takes; it arrives with the
        // handshake, so this rarely waits. Don't wait forever for a silent server.
        let _ = tokio::time::timeout(Duration::from_secs(1), peer.first()).await;
        Ok(Some(Arc::new(Session {
            tx,
            meta: meta.clone(),
            peer,
        })))
    }

    /// Gauges and counters per origin, and their sum.
    pub(crate) fn stats(&self) -> (PoolStats, std::collections::BTreeMap<String, OriginStats>) {
        let hosts: Vec<Arc<Host>> = lock(&self.shared.hosts).values().cloned().collect();
        let mut total = PoolStats::default();
        self.shared.gone.stats(&mut total);
        let mut per = std::collections::BTreeMap::new();
        for h in hosts {
            let o = h.stats();
            total.add(&o.pool);
            per.insert(h.origin.key.to_string(), o);
        }
        (total, per)
    }

    /// Refuses new requests and closes every idle connection.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Relaxed);
        self.close_idle(true);
    }

    /// Closes every idle HTTP/1.1 connection and every HTTP/2 session without open streams;
    /// with `fail_waiters`, requests waiting for a connection fail with `closed`.
    pub(crate) fn close_idle(&self, fail_waiters: bool) {
        let hosts: Vec<Arc<Host>> = lock(&self.shared.hosts).values().cloned().collect();
        for h in hosts {
            let (dead, waiters) = {
                let mut st = lock(&h.state);
                let mut dead: Vec<(Arc<Meta>, Reason)> = Vec::new();
                for i in st.idle.drain(..) {
                    dead.push((i.conn.meta.clone(), Reason::Idle));
                }
                let mut keep = Vec::new();
                for s in st.sessions.drain(..) {
                    if s.in_flight == 0 {
                        dead.push((s.session.meta.clone(), Reason::Idle));
                    } else {
                        keep.push(s);
                    }
                }
                st.sessions = keep;
                let waiters = if fail_waiters {
                    std::mem::take(&mut st.waiters)
                } else {
                    VecDeque::new()
                };
                (dead, waiters)
            };
            for w in waiters {
                let _ = w.tx.send(Grant::Failed(
                    ErrorKind::Closed,
                    "the client is closed".into(),
                ));
            }
            h.retire_all(dead);
        }
    }
}

enum Step {
    Now(Grant),
    /// The host was forgotten; look the origin up again.
    Moved,
    Wait(oneshot::Receiver<Grant>, bool),
    Full,
}

impl Shared {
    fn connector_prior_knowledge(&self) -> bool {
        self.connector.prior_knowledge
    }

    fn reserve(&self) -> bool {
        let max = self.s.max_total;
        self.total
            .fetch_update(AcqRel, Relaxed, |t| (t < max).then_some(t + 1))
            .is_ok()
    }

    /// Lets origins that waited for a global slot take the ones now free.
    fn wake_blocked(&self) {
        while self.total.load(Relaxed) < self.s.max_total {
            let Some(w) = lock(&self.blocked).pop_front() else {
                return;
            };
            let Some(h) = w.upgrade() else { continue };
            if h.pump_now() {
                return;
            }
        }
    }

    /// Closes the longest-idle HTTP/1.1 connection of any origin, to make room under the
    /// global cap.
    fn evict_one_idle(&self) {
        let hosts = self.live_hosts();
        let mut best: Option<(Arc<Host>, Instant)> = None;
        for h in hosts {
            let st = lock(&h.state);
            if let Some(first) = st.idle.first()
                && best.as_ref().is_none_or(|(_, t)| first.since < *t)
            {
                let since = first.since;
                drop(st);
                best = Some((h, since));
            }
        }
        if let Some((h, _)) = best {
            let victim = {
                let mut st = lock(&h.state);
                (!st.idle.is_empty()).then(|| st.idle.remove(0))
            };
            if let Some(v) = victim {
                let meta = v.conn.meta.clone();
                drop(v);
                h.retire(&meta, Reason::Idle);
            }
        }
    }

    /// The hosts with connections.
    fn live_hosts(&self) -> Vec<Arc<Host>> {
        lock(&self.live).iter().filter_map(Weak::upgrade).collect()
    }

    fn reap(&self) {
        let now = Instant::now();
        let now_ms = ms_since(self.base);
        let mut spare = Vec::new();
        for h in self.live_hosts() {
            let (dead, to_spare) = {
                let mut st = lock(&h.state);
                let mut dead = Vec::new();
                let s = &self.s;
                // Over the idle cap: close the least recently used that sat idle past the grace.
                while st.idle.len() > s.max_idle
                    && st
                        .idle
                        .first()
                        .is_some_and(|i| now.duration_since(i.since) >= IDLE_GRACE)
                {
                    let i = st.idle.remove(0);
                    dead.push((i.conn.meta.clone(), Reason::Idle));
                }
                st.idle
                    .retain(|i| match s.expired(&i.conn.meta, i.since, now) {
                        Some(r) => {
                            dead.push((i.conn.meta.clone(), r));
                            false
                        }
                        None => true,
                    });
                st.sessions.retain(|slot| {
                    if slot.in_flight > 0 {
                        return true;
                    }
                    match s.expired(&slot.session.meta, slot.idle_since, now) {
                        Some(r) => {
                            dead.push((slot.session.meta.clone(), r));
                            false
                        }
                        None => true,
                    }
                });
                // Without connections: spare from now on (from the next tick when some
                // close now).
                let to_spare = dead.is_empty() && st.open == 0 && st.connecting == 0 && {
                    h.live.store(false, Relaxed);
                    !h.queued.swap(true, Relaxed)
                };
                (dead, to_spare)
            };
            h.retire_all(dead);
            if to_spare {
                spare.push((Arc::downgrade(&h), h.last_used.load(Relaxed)));
            }
        }
        // Hosts without connections leave the live list (once each).
        {
            let mut seen = std::collections::HashSet::new();
            lock(&self.live).retain(|w| {
                w.upgrade()
                    .is_some_and(|h| h.live.load(Relaxed) && seen.insert(Arc::as_ptr(&h)))
            });
        }
        lock(&self.spare).extend(spare);
        self.reap_spare(now_ms);
    }

    /// Forgets origins unused for `origin_idle_timeout_ms`, and the least recently used ones
    /// over `max_origins`. Only spare hosts due (or needed for the cap) are looked at.
    fn reap_spare(&self, now: u64) {
        let idle = self.s.origin_idle_ms;
        let mut due = Vec::new();
        if idle > 0 {
            let mut q = lock(&self.spare);
            while q
                .front()
                .is_some_and(|(_, at)| at.saturating_add(idle) <= now)
            {
                due.extend(q.pop_front());
            }
        }
        let mut back = Vec::new();
        let mut forgot = Vec::new();
        {
            let mut hosts = lock(&self.hosts);
            for (w, at) in due {
                let Some(h) = w.upgrade() else { continue };
                match self.consider(&mut hosts, &h, at, now) {
                    Spare::Drop => {}
                    Spare::Requeue(at) => back.push((w, at)),
                    Spare::Forgot(k) => forgot.push(k),
                }
            }
            lock(&self.spare).extend(back);
            self.evict_over_cap(&mut hosts, now, None, &mut forgot);
            self.forget(&forgot);
        }
    }

    /// Forgets least recently used spare hosts while there are more than `max_origins`; hosts
    /// in use stay (over the cap) until they are done, and so does `fresh`, just created for a
    /// request. Looks at a bounded number of hosts, so a pool over the cap only because its
    /// origins are busy does not rescan them on every new origin.
    fn evict_over_cap(
        &self,
        hosts: &mut HashMap<Arc<str>, Arc<Host>>,
        now: u64,
        fresh: Option<&Arc<Host>>,
        forgot: &mut Vec<Arc<str>>,
    ) {
        let bound = if fresh.is_some() { 16 } else { 1024 };
        let mut tries = lock(&self.spare).len().min(bound);
        while hosts.len() > self.s.max_origins && tries > 0 {
            tries -= 1;
            let Some((w, at)) = lock(&self.spare).pop_front() else {
                return;
            };
            let Some(h) = w.upgrade() else { continue };
            if fresh.is_some_and(|f| Arc::ptr_eq(f, &h)) {
                lock(&self.spare).push_back((w, at));
                continue;
            }
            match self.consider(hosts, &h, at, now) {
                Spare::Drop => {}
                Spare::Requeue(at) => lock(&self.spare).push_back((w, at)),
                Spare::Forgot(k) => forgot.push(k),
            }
        }
    }

    /// Forgets `h` unless it is in use or was used after `at` (under the hosts lock).
    fn consider(
        &self,
        hosts: &mut HashMap<Arc<str>, Arc<Host>>,
        h: &Arc<Host>,
        at: u64,
        now: u64,
    ) -> Spare {
        let mut st = lock(&h.state);
        if h.removed.load(SeqCst) {
            return Spare::Drop;
        }
        if h.live.load(Relaxed) {
            h.queued.store(false, Relaxed);
            return Spare::Drop;
        }
        st.waiters.retain(|w| !w.is_closed());
        if st.open + st.connecting > 0 || !st.waiters.is_empty() || h.users.load(SeqCst) > 0 {
            return Spare::Requeue(now);
        }
        let last = h.last_used.load(Relaxed);
        if last > at {
            return Spare::Requeue(last);
        }
        // A request may be entering right now (`HostRef::enter`): one of the two sees the other.
        h.removed.store(true, SeqCst);
        if h.users.load(SeqCst) > 0 {
            h.removed.store(false, SeqCst);
            return Spare::Requeue(now);
        }
        drop(st);
        if hosts.get(&h.origin.key).is_some_and(|x| Arc::ptr_eq(x, h)) {
            hosts.remove(&h.origin.key);
        }
        self.gone.add(&h.c);
        Spare::Forgot(h.origin.key.clone())
    }

    /// Tells the client which origins were forgotten (called under the hosts lock, so a
    /// request looking an origin up sees either all of its old state or none).
    fn forget(&self, keys: &[Arc<str>]) {
        if !keys.is_empty()
            && let Some(f) = self.on_forget.get()
        {
            f(keys);
        }
    }
}

impl Settings {
    fn expired(&self, meta: &Meta, idle_since: Instant, now: Instant) -> Option<Reason> {
        if self
            .lifetime
            .is_some_and(|l| now.duration_since(meta.created) >= l)
        {
            return Some(Reason::Lifetime);
        }
        if self
            .idle_timeout
            .is_some_and(|t| now.duration_since(idle_since) >= t)
        {
            return Some(Reason::Idle);
        }
        None
    }
}

impl Host {
    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    fn stream_limit(&self, s: &Session) -> usize {
        let cap = self.shared().map_or(100, |sh| sh.s.h2_streams);
        s.peer.max_streams().min(cap).max(1) as usize
    }

    fn dedupe(st: &State) -> bool {
        st.proto != Proto::H1
    }

    /// Takes a free stream, an idle connection or a connect slot under the lock; collects dead
    /// connections to retire after it.
    fn try_acquire(self: &Arc<Self>, urgency: u8) -> (Step, Vec<(Arc<Meta>, Reason)>) {
        let Some(sh) = self.shared() else {
            return (
                Step::Now(Grant::Failed(
                    ErrorKind::Closed,
                    "the client is closed".into(),
                )),
                Vec::new(),
            );
        };
        let mut dead = Vec::new();
        let mut st = lock(&self.state);
        if self.removed.load(SeqCst) {
            return (Step::Moved, dead);
        }
        while st.waiters.front().is_some_and(Waiter::is_closed) {
            st.waiters.pop_front();
        }
        // Requests queue behind earlier waiters unless something is free right now.
        if st.waiters.is_empty()
            && let Some(g) = self.take(&sh, &mut st, &mut dead)
        {
            return (Step::Now(g), dead);
        }
        if st.waiters.len() >= sh.s.max_pending {
            return (Step::Full, dead);
        }
        let (tx, rx) = oneshot::channel();
        // Behind every waiter at least as urgent (the back is checked first: with no
        // `Priority` headers all urgencies are equal and this is a push_back).
        let at = st
            .waiters
            .iter()
            .rposition(|w| w.urgency <= urgency)
            .map_or(0, |i| i + 1);
        st.waiters.insert(at, Waiter { urgency, tx });
        let blocked = st.blocked;
        (Step::Wait(rx, blocked), dead)
    }

    /// Something a request can use now, if anything.
    fn take(
        &self,
        sh: &Shared,
        st: &mut State,
        dead: &mut Vec<(Arc<Meta>, Reason)>,
    ) -> Option<Grant> {
        // HTTP/2: the first live session with a free stream.
        let mut i = 0;
        while i < st.sessions.len() {
            let slot = &st.sessions[i];
            if slot.session.tx.is_closed() {
                let slot = st.sessions.swap_remove(i);
                dead.push((slot.session.meta.clone(), Reason::ClosedByPeer));
                continue;
            }
            if slot.in_flight < self.stream_limit(&slot.session) {
                let slot = &mut st.sessions[i];
                slot.in_flight += 1;
                return Some(Grant::H2(slot.session.clone()));
            }
            i += 1;
        }
        // HTTP/1.1: the most recently used idle connection (LIFO keeps few connections warm).
        if !st.idle.is_empty() {
            let now = Instant::now();
            while let Some(idle) = st.idle.pop() {
                if idle.conn.tx.is_closed() {
                    dead.push((idle.conn.meta.clone(), Reason::ClosedByPeer));
                    continue;
                }
                if let Some(r) = sh.s.expired(&idle.conn.meta, idle.since, now) {
                    dead.push((idle.conn.meta.clone(), r));
                    continue;
                }
                return Some(Grant::H1(idle.conn));
            }
        }
        if st.open + st.connecting >= sh.s.per_host {
            return None;
        }
        if Self::dedupe(st) && st.connecting > 0 {
            return None;
        }
        if sh.reserve() {
            st.connecting += 1;
            st.blocked = false;
            Some(Grant::Connect)
        } else {
            if !st.blocked {
                st.blocked = true;
                lock(&sh.blocked).push_back(self.me.clone());
            }
            None
        }
    }

    /// Hands whatever is free to waiters, in order. Returns whether a connect slot was granted.
    fn pump(&self, sh: &Shared, st: &mut State, dead: &mut Vec<(Arc<Meta>, Reason)>) -> bool {
        let mut granted_connect = false;
        while let Some(front) = st.waiters.front() {
            if front.is_closed() {
                st.waiters.pop_front();
                continue;
            }
            let Some(g) = self.take(sh, st, dead) else {
                break;
            };
            let is_connect = matches!(g, Grant::Connect);
            let Some(w) = st.waiters.pop_front() else {
                break;
            };
            match w.tx.send(g) {
                Ok(()) => granted_connect |= is_connect,
                Err(g) => Self::undo_locked(sh, st, g),
            }
        }
        granted_connect
    }

    fn pump_now(&self) -> bool {
        let Some(sh) = self.shared() else {
            return false;
        };
        let mut dead = Vec::new();
        let granted = {
            let mut st = lock(&self.state);
            st.blocked = false;
            self.pump(&sh, &mut st, &mut dead)
        };
        self.retire_all(dead);
        granted
    }

    /// Returns an unused grant to the pool, under the lock.
    fn undo_locked(sh: &Shared, st: &mut State, g: Grant) {
        match g {
            Grant::H1(c) => st.idle.push(Idle {
                conn: c,
                since: Instant::now(),
            }),
            Grant::H2(s) => {
                if let Some(slot) = st
                    .sessions
                    .iter_mut()
                    .find(|x| x.session.meta.id == s.meta.id)
                {
                    slot.in_flight = slot.in_flight.saturating_sub(1);
                }
            }
            Grant::Connect => {
                st.connecting -= 1;
                sh.total.fetch_sub(1, AcqRel);
            }
            Grant::Failed(..) => {}
        }
    }

    fn undo(&self, g: Grant) {
        let Some(sh) = self.shared() else { return };
        let freed_global = matches!(g, Grant::Connect);
        let mut dead = Vec::new();
        {
            let mut st = lock(&self.state);
            Self::undo_locked(&sh, &mut st, g);
            self.pump(&sh, &mut st, &mut dead);
        }
        self.retire_all(dead);
        if freed_global {
            sh.wake_blocked();
        }
    }

    fn connected(&self, conn: &LeaseConn) {
        let Some(sh) = self.shared() else { return };
        let mut dead = Vec::new();
        let newly_live = {
            let mut st = lock(&self.state);
            st.connecting -= 1;
            st.open += 1;
            let newly_live = !self.live.swap(true, Relaxed);
            match conn {
                LeaseConn::H1(_) => st.proto = Proto::H1,
                LeaseConn::H2(Some(s)) => {
                    st.proto = Proto::H2;
                    st.sessions.push(Slot {
                        session: s.clone(),
                        in_flight: 1,
                        idle_since: Instant::now(),
                    });
                }
                LeaseConn::H2(None) => {}
            }
            self.pump(&sh, &mut st, &mut dead);
            newly_live
        };
        if newly_live {
            lock(&sh.live).push(self.me.clone());
        }
        self.retire_all(dead);
    }

    fn connect_failed(&self, e: &Error) {
        let Some(sh) = self.shared() else { return };
        let mut dead = Vec::new();
        {
            let mut st = lock(&self.state);
            st.connecting -= 1;
            sh.total.fetch_sub(1, AcqRel);
            if Self::dedupe(&st) {
                // They waited for this connect: they share its fate rather than queue again.
                for w in std::mem::take(&mut st.waiters) {
                    let _ = w.tx.send(Grant::Failed(e.kind(), e.message().to_owned()));
                }
            }
            self.pump(&sh, &mut st, &mut dead);
        }
        self.retire_all(dead);
        sh.wake_blocked();
    }

    fn put_back(&self, c: H1) {
        let Some(sh) = self.shared() else { return };
        let now = Instant::now();
        if c.tx.is_closed() {
            let meta = c.meta.clone();
            drop(c);
            self.retire(&meta, Reason::ClosedByPeer);
            return;
        }
        if let Some(r) =
            sh.s.lifetime
                .filter(|l| now.duration_since(c.meta.created) >= *l)
                .map(|_| Reason::Lifetime)
        {
            let meta = c.meta.clone();
            drop(c);
            self.retire(&meta, r);
            return;
        }
        if sh.s.max_idle == 0 || sh.closed.load(Relaxed) {
            // Keep-alive is off, or the pool is closed: nothing is reused.
            let meta = c.meta.clone();
            drop(c);
            self.retire(&meta, Reason::Idle);
            return;
        }
        let mut dead = Vec::new();
        {
            let mut st = lock(&self.state);
            st.idle.push(Idle {
                conn: c,
                since: now,
            });
            self.pump(&sh, &mut st, &mut dead);
        }
        // Idle connections beyond `max_idle` are not closed here: under a burst wider than the
        // cap, responses finish in waves and closing at once would reconnect on every wave
        // (Go's MaxIdleConnsPerHost churn). The reaper trims them once idle for `IDLE_GRACE`.
        self.retire_all(dead);
    }

    fn stream_done(&self, s: &Arc<Session>) {
        let Some(sh) = self.shared() else { return };
        let mut dead = Vec::new();
        {
            let mut st = lock(&self.state);
            if let Some(slot) = st
                .sessions
                .iter_mut()
                .find(|x| x.session.meta.id == s.meta.id)
            {
                slot.in_flight = slot.in_flight.saturating_sub(1);
                if slot.in_flight == 0 {
                    slot.idle_since = Instant::now();
                }
            }
            if sh.closed.load(Relaxed) {
                // The pool is closed: a session whose last stream ended goes away.
                let id = s.meta.id;
                if let Some(i) = st
                    .sessions
                    .iter()
                    .position(|x| x.session.meta.id == id && x.in_flight == 0)
                {
                    let slot = st.sessions.remove(i);
                    dead.push((slot.session.meta.clone(), Reason::Idle));
                }
            }
            self.pump(&sh, &mut st, &mut dead);
        }
        self.retire_all(dead);
    }

    fn conn_ended(&self, meta: &Arc<Meta>) {
        let found = {
            let mut st = lock(&self.state);
            let before = st.idle.len() + st.sessions.len();
            st.idle.retain(|i| i.conn.meta.id != meta.id);
            st.sessions.retain(|s| s.session.meta.id != meta.id);
            before != st.idle.len() + st.sessions.len()
        };
        if found {
            self.retire(meta, Reason::ClosedByPeer);
        }
    }

    fn retire_all(&self, dead: Vec<(Arc<Meta>, Reason)>) {
        for (m, r) in dead {
            self.retire(&m, r);
        }
    }

    /// Uncounts a connection, exactly once, and lets a waiter use the freed slot.
    fn retire(&self, meta: &Meta, reason: Reason) {
        if meta.retired.swap(true, AcqRel) {
            return;
        }
        let counter = match reason {
            Reason::Idle => &self.c.idle,
            Reason::Lifetime => &self.c.lifetime,
            Reason::Error => &self.c.error,
            Reason::ClosedByPeer => &self.c.closed_by_peer,
        };
        counter.fetch_add(1, Relaxed);
        let Some(sh) = self.shared() else { return };
        let mut dead = Vec::new();
        {
            let mut st = lock(&self.state);
            st.open -= 1;
            st.sessions.retain(|s| s.session.meta.id != meta.id);
            sh.total.fetch_sub(1, AcqRel);
            self.pump(&sh, &mut st, &mut dead);
        }
        self.retire_all(dead);
        // Another origin may be waiting for a global slot.
        sh.wake_blocked();
    }

    fn stats(&self) -> OriginStats {
        let st = lock(&self.state);
        let idle_sessions = st.sessions.iter().filter(|s| s.in_flight == 0).count();
        let idle = (st.idle.len() + idle_sessions) as u64;
        let open = st.open as u64;
        let c = &self.c;
        OriginStats {
            protocol: match st.proto {
                Proto::Unknown => "unknown",
                Proto::H1 => "h1",
                Proto::H2 => "h2",
            }
            .to_owned(),
            pool: PoolStats {
                connections: open + st.connecting as u64,
                active: open.saturating_sub(idle),
                idle,
                connecting: st.connecting as u64,
                pending: st.waiters.iter().filter(|w| !w.is_closed()).count() as u64,
                connects: c.connects.load(Relaxed),
                reuses: c.reuses.load(Relaxed),
                h2_sessions: st.sessions.len() as u64,
                h2_open_streams: st.sessions.iter().map(|s| s.in_flight as u64).sum(),
                evictions: Evictions {
                    idle: c.idle.load(Relaxed),
                    lifetime: c.lifetime.load(Relaxed),
                    error: c.error.load(Relaxed),
                    closed_by_peer: c.closed_by_peer.load(Relaxed),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_origins: usize, idle_ms: u64) -> Pool {
        let mut cfg = Config::default();
        cfg.pool.max_origins = max_origins;
        cfg.pool.origin_idle_timeout_ms = idle_ms;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let connector = Connector::new(&cfg, metrics).unwrap();
        Pool::new(&cfg, connector, &Handle::current())
    }

    fn host(p: &Pool, port: u16) -> HostRef {
        let uri: http::Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        p.host_ref(&Origin::from_uri(&uri).unwrap())
    }

    fn known(h: &HostRef) -> bool {
        h.enter().is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_origin_goes_first_and_one_in_use_never() {
        let p = pool(3, 0);
        let [h1, h2, h3] = [1, 2, 3].map(|port| host(&p, port));
        tokio::time::advance(Duration::from_millis(5)).await;
        drop(h1.enter());
        let h4 = host(&p, 4);
        assert_eq!(p.origin_counts().0, 3);
        assert!(!known(&h2), "the least recently used is forgotten");
        assert!(known(&h1) && known(&h3) && known(&h4));
        // In use: kept, even over the cap.
        let using: Vec<Using> = [&h1, &h3, &h4].map(|h| h.enter().unwrap()).into();
        let h5 = host(&p, 5);
        assert_eq!(p.origin_counts().0, 4, "nothing idle to forget");
        assert!(
            [&h1, &h3, &h4, &h5]
                .iter()
                .all(|h| !h.0.removed.load(SeqCst))
        );
        drop(using);
        tokio::time::advance(Duration::from_millis(5)).await;
        p.shared.reap();
        assert_eq!(p.origin_counts().0, 3, "back to the cap once they are done");
        assert!(known(&h5), "the newest stays");
    }

    #[tokio::test(start_paused = true)]
    async fn an_origin_idle_past_the_timeout_is_forgotten() {
        let p = pool(100, 100);
        let (a, b) = (host(&p, 1), host(&p, 2));
        let held = b.enter().unwrap();
        tokio::time::advance(Duration::from_millis(150)).await;
        p.shared.reap();
        assert!(!known(&a));
        assert!(known(&b), "a request in flight keeps its origin");
        drop(held);
        tokio::time::advance(Duration::from_millis(50)).await;
        p.shared.reap();
        assert!(known(&b), "idle for less than the timeout");
        tokio::time::advance(Duration::from_millis(150)).await;
        p.shared.reap();
        p.shared.reap();
        assert_eq!(p.origin_counts(), (0, 0, 0));
        // A stale handle looks the origin up again.
        let fresh = host(&p, 2);
        assert!(!Arc::ptr_eq(&fresh.0, &b.0));
        assert_eq!(p.origin_counts().0, 1);
    }
}

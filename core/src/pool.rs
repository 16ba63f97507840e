//! Per-origin connection pool on `hyper::client::conn`: HTTP/1.1 keep-alive connections reused
//! LIFO, and HTTP/2 sessions shared up to the server's stream limit.
//!
//! Invariant: every connection is counted once in `open` (or `connecting`) of its origin and in
//! the global total, and is uncounted exactly once by `retire`, whatever path ends it. Grants
//! to waiting requests are made under the origin's lock; nothing that takes that lock is ever
//! dropped while it is held.

mod h2;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

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
    tx: http1::SendRequest<RequestBody>,
    meta: Arc<Meta>,
}

struct Session {
    tx: http2::SendRequest<RequestBody>,
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

/// A connection (HTTP/1.1) or a stream slot (HTTP/2) lent to one request.
pub(crate) struct Lease {
    host: Arc<Host>,
    conn: LeaseConn,
    pub(crate) reused: bool,
    pub(crate) timings: ConnectTimings,
}

enum LeaseConn {
    H1(Option<H1>),
    H2(Option<Arc<Session>>),
}

/// The sender a request goes out on.
pub(crate) enum Sender<'a> {
    H1(&'a mut http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

impl Lease {
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.conn, LeaseConn::H2(_))
    }

    /// The TLS handshake's outcome of the lent connection (reused or new).
    pub(crate) fn tls(&self) -> Option<Arc<crate::response::TlsInfo>> {
        match &self.conn {
            LeaseConn::H1(Some(c)) => c.meta.tls.clone(),
            LeaseConn::H2(Some(s)) => s.meta.tls.clone(),
            _ => None,
        }
    }

    pub(crate) fn sender(&mut self) -> Option<Sender<'_>> {
        match &mut self.conn {
            LeaseConn::H1(Some(c)) => Some(Sender::H1(&mut c.tx)),
            LeaseConn::H2(Some(s)) => Some(Sender::H2(s.tx.clone())),
            _ => None,
        }
    }

    /// The request completed and its body was read: the connection may serve another.
    pub(crate) fn release(mut self) {
        match &mut self.conn {
            LeaseConn::H1(c) => {
                if let Some(c) = c.take() {
                    self.host.put_back(c);
                }
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

    /// The pool's state of `origin`, for callers that look it up once and acquire many times
    /// (origins are never removed, so the handle stays valid for the pool's life).
    pub(crate) fn host_ref(&self, origin: &Origin) -> HostRef {
        HostRef(self.host(origin))
    }

    fn host(&self, origin: &Origin) -> Arc<Host> {
        let mut hosts = lock(&self.shared.hosts);
        if let Some(h) = hosts.get(&origin.key) {
            return h.clone();
        }
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
        });
        hosts.insert(origin.key.clone(), h.clone());
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
        let host = host.0.clone();
        let origin = &host.origin;
        // A dead idle connection found by `ready()` costs one more round; bounded for safety.
        for _ in 0..sh.s.per_host.saturating_add(2) {
            let (step, dead) = host.try_acquire(urgency);
            host.retire_all(dead);
            let grant = match step {
                Step::Now(g) => g,
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
                Grant::H1(mut c) => {
                    if futures_util::future::poll_fn(|cx| c.tx.poll_ready(cx))
                        .await
                        .is_err()
                    {
                        let meta = c.meta.clone();
                        drop(c);
                        host.retire(&meta, Reason::ClosedByPeer);
                        continue;
                    }
                    host.c.reuses.fetch_add(1, Relaxed);
                    return Ok(Lease {
                        host,
                        conn: LeaseConn::H1(Some(c)),
                        reused: true,
                        timings: ConnectTimings::default(),
                    });
                }
                Grant::H2(s) => {
                    host.c.reuses.fetch_add(1, Relaxed);
                    return Ok(Lease {
                        host,
                        conn: LeaseConn::H2(Some(s)),
                        reused: true,
                        timings: ConnectTimings::default(),
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
            format!("every pooled connection to {} was dead", origin.key),
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
                    reused: false,
                    timings,
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
        let hosts: Vec<Arc<Host>> = lock(&self.hosts).values().cloned().collect();
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

    fn reap(&self) {
        let now = Instant::now();
        let hosts: Vec<Arc<Host>> = lock(&self.hosts).values().cloned().collect();
        for h in hosts {
            let dead = {
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
                dead
            };
            h.retire_all(dead);
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
        {
            let mut st = lock(&self.state);
            st.connecting -= 1;
            st.open += 1;
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

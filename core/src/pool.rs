//! Per-origin connection pool on `hyper::client::conn`: HTTP/1.1 keep-alive connections reused
//! LIFO, and HTTP/2 sessions shared up to the server's stream limit.
//!
//! Invariant: every connection is counted once in `open` (or `connecting`) of its origin and in
//! the global total, and is uncounted exactly once by `retire`, whatever path ends it. Grants
//! to waiting requests are made under the origin's lock; nothing that takes that lock is ever
//! dropped while it is held.
//!
//! - `host.rs`: one origin's state and the paths that count and uncount its connections.
//! - `grant.rs`: acquiring: what is free now, the queue of waiters, the global cap.
//! - `lease.rs`: a connection or stream lent to one request, and the upload it sends.
//! - `connect.rs`: opening a connection and its HTTP/1.1 or HTTP/2 handshake.
//! - `reaper.rs`: closing idle and old connections, forgetting unused origins.
//! - `stats.rs`: counters and gauges. `h2.rs`: the peer's SETTINGS.

mod connect;
mod grant;
mod h2;
mod host;
mod lease;
mod reaper;
mod stats;
#[cfg(test)]
mod tests;

pub(crate) use h2::scan_chunks as scan_h2_chunks;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::grant::Grant;
use self::host::{Host, Meta, Proto, Reason, State};
pub(crate) use self::host::{HostRef, Using};
pub(crate) use self::lease::Lease;
use self::reaper::IDLE_GRACE;
use self::stats::Counters;
use crate::config::{Config, ms};
use crate::connect::Connector;
use crate::error::ErrorKind;
use crate::origin::Origin;

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
    /// HTTP/2 sessions opened for load (see `Http2Config::max_sessions_per_host`), resolved.
    h2_sessions: usize,
    /// In-flight streams on every session at which a new request opens another.
    h2_busy: usize,
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
    /// Dropped at close or with the pool, which ends the reaper at once (a closed pool keeps
    /// no idle connection, so nothing is left to reap).
    reaper: Mutex<Option<oneshot::Sender<()>>>,
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

impl Settings {
    fn from(cfg: &Config, handle: &Handle) -> Self {
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
            h2_sessions: match cfg.http2.max_sessions_per_host {
                // More sessions than threads driving them would not add throughput.
                0 => handle.metrics().num_workers().clamp(1, 8),
                n => n as usize,
            },
            h2_busy: cfg.http2.busy_streams_per_session.max(1) as usize,
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
            reaper: Mutex::new(Some(reaper_tx)),
            s: Settings::from(cfg, handle),
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
    /// The forwarding proxy of a plain-HTTP origin (requests to it take the absolute form).
    pub(crate) fn http_proxy(&self, origin: &Origin) -> Option<&crate::connect::Proxy> {
        self.shared.connector.http_proxy(origin)
    }

    /// The connector's DNS cache (DNS-backed services resolve through it).
    pub(crate) fn dns(&self) -> &crate::connect::DnsCache {
        self.shared.connector.dns()
    }

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

    /// Refuses new requests, closes every idle connection and ends the reaper: a connection
    /// or session released after close is closed at once, so nothing is left for it to reap.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Relaxed);
        self.close_idle(true);
        drop(lock(&self.shared.reaper).take());
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

impl Shared {
    fn connector_prior_knowledge(&self) -> bool {
        self.connector.prior_knowledge
    }
}

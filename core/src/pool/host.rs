//! One origin's pool state, and the paths that count and uncount its connections: connected,
//! put back, stream done, ended by the peer, retired.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, Weak};

use hyper::client::conn::{http1, http2};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::grant::Grant;
use super::lease::{LeaseConn, Upload};
use super::stats::Counters;
use super::{Shared, h2, lock, ms_since};
use crate::error::Error;
use crate::origin::Origin;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proto {
    Unknown,
    H1,
    H2,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Reason {
    Idle,
    Lifetime,
    Error,
    ClosedByPeer,
}

impl Reason {
    /// As in `stats().pool.evictions` and `wirecore_pool_evictions_total{reason}`.
    pub(super) fn label(self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::Lifetime => "lifetime",
            Reason::Error => "error",
            Reason::ClosedByPeer => "closed_by_peer",
        }
    }
}

pub(super) struct Meta {
    pub(super) id: u64,
    pub(super) created: Instant,
    pub(super) retired: AtomicBool,
    /// The TLS handshake's outcome, for every response on this connection.
    pub(super) tls: Option<Arc<crate::response::TlsInfo>>,
}

pub(super) struct H1 {
    pub(super) tx: http1::SendRequest<Upload>,
    pub(super) meta: Arc<Meta>,
}

pub(super) struct Session {
    pub(super) tx: http2::SendRequest<Upload>,
    pub(super) meta: Arc<Meta>,
    pub(super) peer: Arc<h2::PeerSettings>,
}

pub(super) struct Slot {
    pub(super) session: Arc<Session>,
    pub(super) in_flight: usize,
    pub(super) idle_since: Instant,
}

pub(super) struct Idle {
    pub(super) conn: H1,
    pub(super) since: Instant,
}

pub(super) struct State {
    pub(super) proto: Proto,
    pub(super) idle: Vec<Idle>,
    pub(super) sessions: Vec<Slot>,
    pub(super) open: usize,
    pub(super) connecting: usize,
    /// Requests waiting for this origin, most urgent first, FIFO within an urgency.
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) blocked: bool,
}

/// A queued request: its RFC 9218 urgency (0 first) and where its grant goes.
pub(super) struct Waiter {
    pub(super) urgency: u8,
    pub(super) tx: oneshot::Sender<Grant>,
}

impl Waiter {
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

pub(super) struct Host {
    pub(super) origin: Origin,
    pub(super) me: Weak<Host>,
    pub(super) shared: Weak<Shared>,
    pub(super) state: Mutex<State>,
    pub(super) c: Counters,
    /// The pool's clock origin, for `last_used`.
    pub(super) base: Instant,
    /// Requests using this origin now (see [`HostRef::enter`]).
    pub(super) users: AtomicUsize,
    /// When the last request ended, in ms since `base`.
    pub(super) last_used: AtomicU64,
    /// In `Shared::live` (it has connections); changed under the state lock.
    pub(super) live: AtomicBool,
    /// In `Shared::spare`; changed under the state lock, or before the host is shared.
    pub(super) queued: AtomicBool,
    /// Forgotten by the pool: requests must look the origin up again. Set under the state
    /// lock and the hosts lock.
    pub(super) removed: AtomicBool,
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

/// One origin's pool state, looked up once (see [`super::Pool::host_ref`]).
#[derive(Clone)]
pub(crate) struct HostRef(pub(super) Arc<Host>);

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

impl Host {
    pub(super) fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    pub(super) fn stream_limit_of(sh: &Shared, s: &Session) -> usize {
        s.peer.max_streams().min(sh.s.h2_streams).max(1) as usize
    }

    pub(super) fn dedupe(st: &State) -> bool {
        st.proto != Proto::H1
    }

    pub(super) fn connected(&self, conn: &LeaseConn) {
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

    pub(super) fn connect_failed(&self, e: &Error) {
        tracing::debug!(
            event = "connect_failed",
            origin = &*self.origin.key,
            error_code = e.kind().code(),
            error = e.message(),
            "connection failed"
        );
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

    pub(super) fn put_back(&self, c: H1) {
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
        // But an idle connection must not hold a global slot another origin is waiting for.
        if sh.others_blocked() {
            sh.evict_one_idle();
        }
    }

    pub(super) fn stream_done(&self, s: &Arc<Session>) {
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
        if sh.others_blocked() {
            sh.evict_one_idle();
        }
    }

    pub(super) fn conn_ended(&self, meta: &Arc<Meta>) {
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

    pub(super) fn retire_all(&self, dead: Vec<(Arc<Meta>, Reason)>) {
        for (m, r) in dead {
            self.retire(&m, r);
        }
    }

    /// Uncounts a connection, exactly once, and lets a waiter use the freed slot.
    pub(super) fn retire(&self, meta: &Meta, reason: Reason) {
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
        // Idle and lifetime: the pool chose to close it; the others ended on their own.
        match reason {
            Reason::Idle | Reason::Lifetime => tracing::debug!(
                event = "connection_evicted",
                origin = &*self.origin.key,
                connection = meta.id,
                reason = reason.label(),
                "connection evicted"
            ),
            Reason::Error | Reason::ClosedByPeer => tracing::debug!(
                event = "connection_closed",
                origin = &*self.origin.key,
                connection = meta.id,
                reason = reason.label(),
                "connection closed"
            ),
        }
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
}

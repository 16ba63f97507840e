//! Acquiring a connection: what is free now (an HTTP/2 stream, an idle HTTP/1.1 connection, a
//! connect slot under the per-origin and global caps), else a place among the waiters, most
//! urgent first. A grant that reaches a request no longer waiting goes back (`undo`).

use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::host::{H1, Host, HostRef, Idle, Meta, Reason, Session, State, Waiter};
use super::lease::{Lease, LeaseConn};
use super::{Pool, Shared, lock};
use crate::error::{Error, ErrorKind};

pub(super) enum Grant {
    H1(H1),
    H2(Arc<Session>),
    Connect,
    Failed(ErrorKind, String),
}

/// Undoes a grant that reached a waiter who stopped waiting.
pub(super) struct WaitGuard {
    pub(super) rx: oneshot::Receiver<Grant>,
    pub(super) host: Arc<Host>,
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
pub(super) struct Held {
    pub(super) host: Arc<Host>,
    pub(super) conn: Option<H1>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.host.undo(Grant::H1(c));
        }
    }
}

/// A reserved connect slot; dropped without `done` it frees the slot for the next waiter.
pub(super) struct ConnectGuard {
    pub(super) host: Arc<Host>,
    pub(super) armed: bool,
}

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        if self.armed {
            self.host.undo(Grant::Connect);
        }
    }
}

impl Pool {
    /// A connection or stream for the origin of `host` (see [`Pool::host_ref`]), waiting at
    /// most until `deadline` (and `timeouts.pool_acquire_ms`) when the pool's limits are
    /// reached. `urgency` gives the request's RFC 9218 urgency, asked only when it has to
    /// wait among others (most requests find a connection free and never parse `Priority`).
    pub(crate) async fn acquire_at(
        &self,
        host: &HostRef,
        deadline: Option<Instant>,
        urgency: &(dyn Fn() -> u8 + Sync),
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
                    tracing::debug!(
                        event = "pool_wait",
                        origin = &*origin.key,
                        blocked,
                        "waiting for a connection"
                    );
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
                    // Boxed: connecting (DNS, Happy Eyeballs, TLS, handshake) is a large
                    // state machine, and inline it sized every request's future (~16 KB,
                    // copied on every call down the request path) for the rare new connection.
                    return Box::pin(self.connect(guard, phases.connect)).await;
                }
            }
        }
        Err(Error::new(
            ErrorKind::Io,
            format!("every pooled connection to {} was dead", host.origin.key),
        ))
    }
}

pub(super) enum Step {
    Now(Grant),
    /// The host was forgotten; look the origin up again.
    Moved,
    Wait(oneshot::Receiver<Grant>, bool),
    Full,
}
impl Shared {
    pub(super) fn reserve(&self) -> bool {
        let max = self.s.max_total;
        self.total
            .fetch_update(AcqRel, Relaxed, |t| (t < max).then_some(t + 1))
            .is_ok()
    }

    /// Lets origins that waited for a global slot take the ones now free.
    pub(super) fn wake_blocked(&self) {
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
}

impl Host {
    /// Takes a free stream, an idle connection or a connect slot under the lock; collects dead
    /// connections to retire after it.
    pub(super) fn try_acquire(
        self: &Arc<Self>,
        urgency: &dyn Fn() -> u8,
    ) -> (Step, Vec<(Arc<Meta>, Reason)>) {
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
            && let Some(g) = self.take(&sh, &mut st, &mut dead, true)
        {
            return (Step::Now(g), dead);
        }
        if st.waiters.len() >= sh.s.max_pending {
            return (Step::Full, dead);
        }
        let (tx, rx) = oneshot::channel();
        let urgency = urgency();
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

    /// Something a request can use now, if anything. `grow`: a request finding every HTTP/2
    /// session busy may open another (up to `h2_sessions`).
    pub(super) fn take(
        &self,
        sh: &Shared,
        st: &mut State,
        dead: &mut Vec<(Arc<Meta>, Reason)>,
        grow: bool,
    ) -> Option<Grant> {
        // HTTP/2. Sessions stay in the order they were opened (`remove`, not `swap_remove`).
        let mut i = 0;
        while i < st.sessions.len() {
            if st.sessions[i].session.tx.is_closed() {
                let slot = st.sessions.remove(i);
                dead.push((slot.session.meta.clone(), Reason::ClosedByPeer));
                continue;
            }
            i += 1;
        }
        if let Some(i) = Self::pick_session(sh, st) {
            let busy = st.sessions[i].in_flight >= sh.s.h2_busy;
            if grow
                && busy
                && st.connecting == 0
                && st.sessions.len() < sh.s.h2_sessions
                && st.open < sh.s.per_host
                && sh.reserve()
            {
                // This request opens the next session; the others keep using these.
                st.connecting += 1;
                st.blocked = false;
                return Some(Grant::Connect);
            }
            let slot = &mut st.sessions[i];
            slot.in_flight += 1;
            return Some(Grant::H2(slot.session.clone()));
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

    /// The session for a new stream: the least loaded of the first sessions that hold the
    /// current load at `h2_busy` streams each (later ones drain, then close when idle), or
    /// else of any with a free stream. `None` when every session is full.
    fn pick_session(sh: &Shared, st: &State) -> Option<usize> {
        let total: usize = st.sessions.iter().map(|s| s.in_flight).sum();
        let mut room = 0;
        let mut best: Option<(usize, usize)> = None;
        for (i, slot) in st.sessions.iter().enumerate() {
            let limit = Host::stream_limit_of(sh, &slot.session);
            if slot.in_flight < limit && best.is_none_or(|(_, n)| slot.in_flight < n) {
                best = Some((i, slot.in_flight));
            }
            room += sh.s.h2_busy.min(limit);
            if room > total && best.is_some() {
                break;
            }
        }
        best.map(|(i, _)| i)
    }

    /// Hands whatever is free to waiters, in order. Returns whether a connect slot was granted.
    pub(super) fn pump(
        &self,
        sh: &Shared,
        st: &mut State,
        dead: &mut Vec<(Arc<Meta>, Reason)>,
    ) -> bool {
        let mut granted_connect = false;
        while let Some(front) = st.waiters.front() {
            if front.is_closed() {
                st.waiters.pop_front();
                continue;
            }
            // Waiters came as one burst (a cold start, or full sessions): they share what is
            // there rather than each opening a session for load.
            let Some(g) = self.take(sh, st, dead, false) else {
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

    pub(super) fn pump_now(&self) -> bool {
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
    pub(super) fn undo_locked(sh: &Shared, st: &mut State, g: Grant) {
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

    pub(super) fn undo(&self, g: Grant) {
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
}

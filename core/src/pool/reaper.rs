//! Closing connections idle or old past their limits (and idle ones over `max_idle_per_host`),
//! and forgetting origins unused for `origin_idle_timeout_ms` or over `max_origins`, so the
//! per-origin state stays bounded.

use std::collections::HashMap;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::host::{Host, Meta, Reason};
use super::{Settings, Shared, lock, ms_since};

/// How long an idle connection over `max_idle_per_host` is kept before the reaper closes it.
pub(super) const IDLE_GRACE: Duration = Duration::from_secs(1);

/// What became of a host taken from the spare queue.
pub(super) enum Spare {
    /// Gone, forgotten already, or back in use with connections: not spare any more.
    Drop,
    /// Still wanted: back in the queue with this time of last use.
    Requeue(u64),
    /// Forgotten now.
    Forgot(Arc<str>),
}

impl Shared {
    /// Closes the longest-idle connection of any origin (an HTTP/1.1 connection, or an HTTP/2
    /// session without open streams), to make room under the global cap.
    pub(super) fn evict_one_idle(&self) {
        let hosts = self.live_hosts();
        let mut best: Option<(Arc<Host>, Instant)> = None;
        for h in hosts {
            let st = lock(&h.state);
            let h1 = st.idle.first().map(|i| i.since);
            let h2 = st
                .sessions
                .iter()
                .filter(|s| s.in_flight == 0)
                .map(|s| s.idle_since)
                .min();
            if let Some(since) = h1.into_iter().chain(h2).min()
                && best.as_ref().is_none_or(|(_, t)| since < *t)
            {
                drop(st);
                best = Some((h, since));
            }
        }
        let Some((h, _)) = best else { return };
        let victim = {
            let mut st = lock(&h.state);
            let h1 = st.idle.first().map(|i| i.since);
            let h2 = st
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.in_flight == 0)
                .min_by_key(|(_, s)| s.idle_since)
                .map(|(i, s)| (i, s.idle_since));
            match (h1, h2) {
                (Some(a), Some((_, b))) if a <= b => Some(st.idle.remove(0).conn.meta.clone()),
                (Some(_), None) => Some(st.idle.remove(0).conn.meta.clone()),
                (_, Some((i, _))) => Some(st.sessions.remove(i).session.meta.clone()),
                (None, None) => None,
            }
        };
        if let Some(meta) = victim {
            h.retire(&meta, Reason::Idle);
        }
    }

    /// Whether some origin waits for a slot under the global cap (then a connection that goes
    /// idle is closed at once rather than kept for its own origin).
    pub(super) fn others_blocked(&self) -> bool {
        !lock(&self.blocked).is_empty()
    }

    /// The hosts with connections.
    pub(super) fn live_hosts(&self) -> Vec<Arc<Host>> {
        lock(&self.live).iter().filter_map(Weak::upgrade).collect()
    }

    pub(super) fn reap(&self) {
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
                // Sessions after the first that sat idle past the grace were opened for load
                // that has passed: close them (the first stays until the idle timeout).
                let mut kept = 0;
                st.sessions.retain(|slot| {
                    if slot.in_flight > 0 {
                        kept += 1;
                        return true;
                    }
                    let r = s
                        .expired(&slot.session.meta, slot.idle_since, now)
                        .or_else(|| {
                            (kept > 0 && now.duration_since(slot.idle_since) >= IDLE_GRACE)
                                .then_some(Reason::Idle)
                        });
                    if let Some(r) = r {
                        dead.push((slot.session.meta.clone(), r));
                        false
                    } else {
                        kept += 1;
                        true
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
    pub(super) fn reap_spare(&self, now: u64) {
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
    pub(super) fn evict_over_cap(
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
    pub(super) fn consider(
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
    pub(super) fn forget(&self, keys: &[Arc<str>]) {
        if !keys.is_empty()
            && let Some(f) = self.on_forget.get()
        {
            f(keys);
        }
    }
}

impl Settings {
    pub(super) fn expired(&self, meta: &Meta, idle_since: Instant, now: Instant) -> Option<Reason> {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::Duration;

    use tokio::runtime::Handle;

    use crate::config::Config;
    use crate::connect::Connector;
    use crate::origin::Origin;
    use crate::pool::{HostRef, Pool, Using};

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

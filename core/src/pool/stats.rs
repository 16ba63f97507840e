//! Pool counters (connects, reuses, evictions by reason) and gauges, per origin and summed.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::host::{Host, Proto};
use super::{Pool, lock};
use crate::metrics::{Evictions, OriginStats, PoolStats};

#[derive(Default)]
pub(super) struct Counters {
    pub(super) connects: AtomicU64,
    pub(super) reuses: AtomicU64,
    pub(super) idle: AtomicU64,
    pub(super) lifetime: AtomicU64,
    pub(super) error: AtomicU64,
    pub(super) closed_by_peer: AtomicU64,
}

impl Counters {
    pub(super) fn add(&self, o: &Counters) {
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

    pub(super) fn stats(&self, p: &mut PoolStats) {
        p.connects += self.connects.load(Relaxed);
        p.reuses += self.reuses.load(Relaxed);
        p.evictions.idle += self.idle.load(Relaxed);
        p.evictions.lifetime += self.lifetime.load(Relaxed);
        p.evictions.error += self.error.load(Relaxed);
        p.evictions.closed_by_peer += self.closed_by_peer.load(Relaxed);
    }
}

impl Pool {
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
}

impl Host {
    pub(super) fn stats(&self) -> OriginStats {
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

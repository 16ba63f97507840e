//! The [`ResilienceStats`] snapshot of the policies: counters, and each origin's breaker,
//! retry budget and concurrency limit as they are now.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::Policies;
use super::retry::Reason;
use crate::metrics::{BreakerRedisStats, OriginResilience, RateLimitStats, ResilienceStats};

impl Policies {
    pub(crate) fn stats(&self) -> ResilienceStats {
        let c = &self.counters;
        let now = Instant::now();
        let map = self.origins.read().unwrap_or_else(PoisonError::into_inner);
        let mut breaker_trips = c.gone[0].load(Relaxed);
        let mut breaker_rejected = c.gone[1].load(Relaxed);
        let mut overloaded = c.gone[2].load(Relaxed);
        let origins: BTreeMap<String, OriginResilience> = map
            .iter()
            .map(|(k, p)| {
                let breaker = p.breaker.as_ref().map(|b| {
                    breaker_trips += b.trips.load(Relaxed);
                    breaker_rejected += b.rejected.load(Relaxed);
                    b.state().as_str().to_owned()
                });
                let conc = p.concurrency.as_ref().map(|l| l.snapshot());
                if let Some((_, _, _, rejected)) = conc {
                    overloaded += rejected;
                }
                (
                    k.to_string(),
                    OriginResilience {
                        breaker_state: breaker,
                        retry_budget_available: p.budget.available(now),
                        concurrency_limit: conc.map(|s| s.0),
                        concurrency_in_flight: conc.map(|s| s.1),
                        concurrency_waiting: conc.map(|s| s.2 as u64),
                    },
                )
            })
            .collect();
        let rate_limit = self.rate.as_ref().map(|r| {
            let rc = &r.counters;
            RateLimitStats {
                allowed: rc.allowed.load(Relaxed),
                waited: rc.waited.load(Relaxed),
                rejected: rc.rejected.load(Relaxed),
                redis_errors: rc.redis_errors.load(Relaxed),
                fallbacks: rc.fallbacks.load(Relaxed),
            }
        });
        ResilienceStats {
            attempts: c.attempts.load(Relaxed),
            retries: Reason::ALL
                .iter()
                .map(|r| (r.label().to_owned(), c.retries[r.index()].load(Relaxed)))
                .collect(),
            retry_budget_exhausted: c.budget_exhausted.load(Relaxed),
            hedges_sent: c.hedges_sent.load(Relaxed),
            hedges_won: c.hedges_won.load(Relaxed),
            breaker_trips,
            breaker_rejected,
            overloaded,
            rate_limit: rate_limit.unwrap_or_default(),
            breaker_redis: self
                .shared
                .as_ref()
                .map(|s| BreakerRedisStats {
                    published: s.counters.published.load(Relaxed),
                    refreshes: s.counters.refreshes.load(Relaxed),
                    redis_errors: s.counters.redis_errors.load(Relaxed),
                    open_remotely: s.open_remotely(),
                })
                .unwrap_or_default(),
            origins,
        }
    }
}

//! Entry points for `core/benches` only. Not a stable API: hidden from the docs.

use std::sync::Arc;

use crate::config::{BreakerConfig, RateLimitConfig};
use crate::policy::breaker::Breaker;
use crate::policy::ratelimit::{Local, RateLimiter, Verdict};

/// A closed circuit breaker.
#[derive(Debug)]
pub struct BreakerCheck(Arc<Breaker>);

impl BreakerCheck {
    /// A breaker with default thresholds, closed.
    pub fn new() -> Self {
        let cfg = BreakerConfig {
            enabled: true,
            ..BreakerConfig::default()
        };
        Self(Arc::new(Breaker::new(
            &cfg,
            "http://bench:80".into(),
            Arc::new(|_, _, _| {}),
        )))
    }

    /// One admission check (the permit is dropped unrecorded, as a cancelled attempt).
    pub fn check(&self) -> bool {
        self.0.check().is_ok()
    }
}

impl Default for BreakerCheck {
    fn default() -> Self {
        Self::new()
    }
}

/// A local GCRA limiter that never refuses (a very high rate).
#[derive(Debug)]
pub struct LimiterCheck(RateLimiter, Arc<str>, governor::DefaultDirectRateLimiter);

impl LimiterCheck {
    /// A limiter of 10^9 requests per second.
    pub fn new() -> Self {
        let cfg = RateLimitConfig {
            enabled: true,
            requests: 1_000_000_000,
            per_ms: 1_000,
            ..RateLimitConfig::default()
        };
        #[expect(clippy::expect_used, reason = "a constant valid config")]
        let l = RateLimiter::new(&cfg).expect("config");
        let direct = l.direct();
        Self(l, "http://bench:80".into(), direct)
    }

    /// One admission check on an origin's own limiter (the default scope).
    pub fn check(&self) -> bool {
        matches!(
            self.0.check_local(&self.1, Local::Direct(&self.2)),
            Verdict::Allowed
        )
    }

    /// One admission check on a per-request key (`scope = "key"`: a hash lookup first).
    pub fn check_keyed(&self) -> bool {
        matches!(self.0.check_local(&self.1, Local::Keyed), Verdict::Allowed)
    }
}

impl Default for LimiterCheck {
    fn default() -> Self {
        Self::new()
    }
}

/// A load-balanced service of `n` endpoints (10.0.0.x) and one strategy, for pick-cost
/// benchmarks; every endpoint has a measured latency, as in steady state.
#[derive(Debug)]
pub struct BalancePick(crate::balance::Service);

impl BalancePick {
    /// `strategy` as in config (`round_robin`, ..., `consistent_hash`).
    ///
    /// # Panics
    /// On an unknown strategy.
    pub fn new(strategy: &str, n: usize) -> Self {
        let svc = serde_json::json!({
            "strategy": strategy,
            "endpoints": (0..n)
                .map(|i| serde_json::json!({"url": format!("http://10.0.{}.{}:80", i / 250, i % 250 + 1)}))
                .collect::<Vec<_>>(),
        });
        let cfg: crate::config::ServiceConfig =
            serde_json::from_value(svc).expect("service config");
        let policies = crate::policy::Policies::new(&crate::Config::default()).expect("policies");
        let s = crate::balance::Service::new("bench", &cfg, &policies).expect("service");
        for (i, e) in s.all().into_iter().enumerate() {
            let t = s.now_ns();
            let f = crate::balance::InFlight::start(e, t);
            s.finish_at(
                f,
                crate::balance::Outcome::Success,
                t + 1_000_000 + i as u64 * 1000,
            );
        }
        Self(s)
    }

    /// One pick (with `key` for `consistent_hash`), released at once.
    pub fn pick(&self, key: u64) -> bool {
        self.0.pick(Some(key), &[]).is_some()
    }
}

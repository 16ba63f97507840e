//! Metric names (`names.rs`), the [`Stats`] snapshot (`stats.rs`), its Prometheus rendering
//! (`prometheus.rs`) and the [`Diagnostics`] report (`diagnostics.rs`); here, the client-wide
//! counters the request path records into.
//!
//! The hot path only touches atomics and one of several histogram shards (picked per thread),
//! so recording never contends on a global lock. Names are a contract with every binding.

mod diagnostics;
mod histogram;
mod names;
mod prometheus;
mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use self::diagnostics::{Diagnostics, EndpointHealth, OriginHealth, ServiceHealth};
pub use self::histogram::{HistogramSeries, LatencyHistogram};
pub(crate) use self::histogram::{Latency, Series};
pub use self::names::*;
pub use self::stats::{
    BreakerRedisStats, CacheStats, DnsStats, EndpointStats, Evictions, LatencySummary,
    OriginResilience, OriginStats, PoolStats, RateLimitStats, ResilienceStats, ServiceStats, Stats,
};
pub use self::stats::{DeadLetterStats, OtelStats};
use crate::error::ErrorKind;

const SHARDS: usize = 8;
/// Client-wide counters. Per-origin pool counters live with the pool.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) status_class: [AtomicU64; 5],
    pub(crate) errors: Vec<AtomicU64>,
    pub(crate) in_flight: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_decoded: AtomicU64,
    pub(crate) redirects: AtomicU64,
    pub(crate) dns: DnsCounters,
    /// One histogram per shard, made on its first record: 190 KB each, so a client holding
    /// all eight up front cost 1.5 MiB, which garbage-collected bindings kept per closed client
    /// until a collection.
    latency: Vec<Mutex<Option<Histogram<u64>>>>,
    /// The Prometheus histogram per origin and status class.
    pub(crate) buckets: Latency,
    window: RateWindow,
}

/// DNS cache counters.
#[derive(Debug, Default)]
pub(crate) struct DnsCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl Metrics {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::from_config(&crate::Config::default())
    }

    pub(crate) fn from_config(cfg: &crate::Config) -> Self {
        let latency = (0..SHARDS).map(|_| Mutex::new(None)).collect();
        Self {
            status_class: Default::default(),
            errors: ErrorKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            in_flight: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_decoded: AtomicU64::new(0),
            redirects: AtomicU64::new(0),
            dns: DnsCounters::default(),
            latency,
            buckets: Latency::new(&cfg.metrics.latency_buckets_ms, cfg.pool.max_origins),
            window: RateWindow::default(),
        }
    }

    /// Counts a response that took `elapsed`, read from the clock at `now`, in its origin's
    /// histogram `series` (found before the request went out).
    pub(crate) fn record_response(
        &self,
        series: Option<&Series>,
        status: u16,
        elapsed: Duration,
        now: tokio::time::Instant,
    ) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.status_class[class].fetch_add(1, Relaxed);
        self.record_latency(elapsed);
        if let Some(s) = series {
            self.buckets.record(s, status, elapsed);
        }
        self.window.tick_at(now);
    }

    pub(crate) fn record_error(&self, kind: ErrorKind) {
        if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
            self.errors[i].fetch_add(1, Relaxed);
        }
        self.window.tick();
    }

    fn record_latency(&self, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).clamp(1, 3_600_000_000);
        let shard = shard_index();
        let mut h = self.latency[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = h.get_or_insert_with(new_histogram).record(us);
    }

    fn latency_summary(&self) -> LatencySummary {
        let mut all: Option<Histogram<u64>> = None;
        for shard in &self.latency {
            let guard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(h) = guard.as_ref() else { continue };
            match &mut all {
                None => all = Some(h.clone()),
                Some(a) => {
                    let _ = a.add(h);
                }
            }
        }
        let Some(h) = all.filter(|h| !h.is_empty()) else {
            return LatencySummary::default();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }

    pub(crate) fn snapshot(
        &self,
        pool: PoolStats,
        origins: BTreeMap<String, OriginStats>,
        resilience: ResilienceStats,
    ) -> Stats {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let responses_by_status_class: BTreeMap<String, u64> = classes
            .iter()
            .zip(&self.status_class)
            .map(|(c, v)| ((*c).to_string(), v.load(Relaxed)))
            .collect();
        let errors_by_code: BTreeMap<String, u64> = ErrorKind::ALL
            .iter()
            .zip(&self.errors)
            .map(|(k, v)| (k.code().to_string(), v.load(Relaxed)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let ok: u64 = responses_by_status_class.values().sum();
        let errs: u64 = errors_by_code.values().sum();
        let received = self.bytes_received.load(Relaxed);
        let decoded = self.bytes_decoded.load(Relaxed);
        let d = &self.dns;
        Stats {
            requests_total: ok + errs,
            requests_in_flight: self.in_flight.load(Relaxed),
            responses_by_status_class,
            errors_by_code,
            latency: self.latency_summary(),
            latency_histogram: self.buckets.snapshot(),
            requests_per_second: self.window.rate(),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: received,
            bytes_decoded: decoded,
            compression_ratio: if received == 0 {
                1.0
            } else {
                decoded as f64 / received as f64
            },
            redirects_followed: self.redirects.load(Relaxed),
            dns: DnsStats {
                hits: d.hits.load(Relaxed),
                misses: d.misses.load(Relaxed),
                stale_served: d.stale_served.load(Relaxed),
                negative_hits: d.negative_hits.load(Relaxed),
                refreshes: d.refreshes.load(Relaxed),
                failures: d.failures.load(Relaxed),
            },
            pool,
            origins,
            resilience,
            cache: CacheStats::default(),
            services: BTreeMap::new(),
            dead_letter: DeadLetterStats::default(),
            otel: OtelStats::default(),
        }
    }
}

/// 1 µs .. 1 hour, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    #[expect(clippy::expect_used, reason = "constant bounds are valid")]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds")
}

fn shard_index() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SHARD: Cell<usize> = const { Cell::new(usize::MAX) });
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT.fetch_add(1, Relaxed) % SHARDS);
        }
        s.get()
    })
}

/// Requests finished per second over the last 10 whole seconds.
#[derive(Debug, Default)]
struct RateWindow {
    // Each slot packs (second << 32 | count) so one atomic swap resets a stale slot.
    slots: [AtomicU64; 12],
}

fn now_secs() -> u64 {
    secs_at(tokio::time::Instant::now())
}

/// Whole seconds (from 1) since the first use, at `now`.
fn secs_at(now: tokio::time::Instant) -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    now.saturating_duration_since(*START.get_or_init(|| now))
        .as_secs()
        + 1
}

impl RateWindow {
    fn tick(&self) {
        self.tick_at(tokio::time::Instant::now());
    }

    fn tick_at(&self, now: tokio::time::Instant) {
        let sec = secs_at(now);
        let slot = &self.slots[(sec % 12) as usize];
        let cur = slot.load(Relaxed);
        if cur >> 32 != sec {
            // A stale slot from an earlier lap: restart it (one racing thread wins).
            let _ = slot.compare_exchange(cur, sec << 32, Relaxed, Relaxed);
        }
        slot.fetch_add(1, Relaxed);
    }

    fn rate(&self) -> f64 {
        let now = now_secs();
        let mut total = 0u64;
        for back in 1..=10u64 {
            let Some(sec) = now.checked_sub(back) else {
                break;
            };
            let v = self.slots[(sec % 12) as usize].load(Relaxed);
            if v >> 32 == sec {
                total += v & 0xffff_ffff;
            }
        }
        let span = (now - 1).clamp(1, 10);
        total as f64 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_and_renders() {
        let m = Metrics::new();
        let now = tokio::time::Instant::now();
        let a = m.buckets.series(&"http://a/".parse().unwrap());
        m.record_response(a.as_ref(), 200, Duration::from_millis(3), now);
        m.record_response(a.as_ref(), 503, Duration::from_millis(7), now);
        m.record_error(ErrorKind::TimeoutConnect);
        let s = m.snapshot(
            PoolStats::default(),
            BTreeMap::new(),
            ResilienceStats::default(),
        );
        assert_eq!(s.requests_total, 3);
        assert_eq!(s.responses_by_status_class["5xx"], 1);
        assert_eq!(s.errors_by_code["timeout.connect"], 1);
        assert_eq!(s.latency.count, 2);
        assert!(s.latency.p99_ms >= 6.9, "{:?}", s.latency);
        let text = s.prometheus();
        assert!(
            text.contains("wirecore_requests_total{outcome=\"error\",code=\"timeout.connect\"} 1")
        );
        assert!(text.contains("wirecore_requests_total{outcome=\"ok\",status_class=\"2xx\"} 1"));
        assert!(s.to_json().contains("\"requests_total\":3"));
    }
}

//! Metric names, the [`Stats`] snapshot and its Prometheus rendering.
//!
//! The hot path only touches atomics and one of several histogram shards (picked per thread),
//! so recording never contends on a global lock. Names here are a contract with every binding.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::ErrorKind;

/// Requests finished, labelled `outcome` (`ok`/`error`) and `status_class` or `code`.
pub const REQUESTS_TOTAL: &str = "wirecore_requests_total";
/// Requests currently in flight.
pub const REQUESTS_IN_FLIGHT: &str = "wirecore_requests_in_flight";
/// Latency from send to response head, a summary with quantiles 0.5/0.95/0.99.
pub const REQUEST_DURATION: &str = "wirecore_request_duration_seconds";
/// Response body bytes as received on the wire.
pub const BYTES_RECEIVED: &str = "wirecore_bytes_received_total";
/// Response body bytes after decoding.
pub const BYTES_DECODED: &str = "wirecore_bytes_decoded_total";
/// Request body bytes sent.
pub const BYTES_SENT: &str = "wirecore_bytes_sent_total";
/// Redirects followed.
pub const REDIRECTS: &str = "wirecore_redirects_total";
/// Open connections per origin, labelled `state` (`active`/`idle`/`connecting`).
pub const POOL_CONNECTIONS: &str = "wirecore_pool_connections";
/// Requests waiting for a connection, per origin.
pub const POOL_PENDING: &str = "wirecore_pool_pending";
/// New connections established, per origin.
pub const POOL_CONNECTS: &str = "wirecore_pool_connects_total";
/// Requests served on an existing connection, per origin.
pub const POOL_REUSES: &str = "wirecore_pool_reuses_total";
/// Connections closed, per origin, labelled `reason` (`idle`/`lifetime`/`error`/`closed_by_peer`).
pub const POOL_EVICTIONS: &str = "wirecore_pool_evictions_total";
/// Open HTTP/2 sessions, per origin.
pub const H2_SESSIONS: &str = "wirecore_h2_sessions";
/// Open HTTP/2 streams, per origin.
pub const H2_STREAMS: &str = "wirecore_h2_open_streams";
/// DNS cache lookups, labelled `result` (`hit`/`miss`/`stale`/`negative`).
pub const DNS_LOOKUPS: &str = "wirecore_dns_cache_lookups_total";
/// Background DNS refreshes.
pub const DNS_REFRESHES: &str = "wirecore_dns_refreshes_total";

/// Attempts sent (first tries, retries and hedges).
pub const ATTEMPTS: &str = "wirecore_attempts_total";
/// Retries, labelled `reason` (`unsent`/`reset`/`status`/`429`).
pub const RETRIES: &str = "wirecore_retries_total";
/// Retries refused by the retry budget.
pub const RETRY_BUDGET_EXHAUSTED: &str = "wirecore_retry_budget_exhausted_total";
/// Hedged attempts, labelled `result` (`sent`/`won`).
pub const HEDGES: &str = "wirecore_hedges_total";
/// Circuit breaker state per origin: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "wirecore_breaker_state";
/// Circuit breaker trips (closed or half-open → open).
pub const BREAKER_TRIPS: &str = "wirecore_breaker_trips_total";
/// Requests failed fast by an open breaker.
pub const BREAKER_REJECTED: &str = "wirecore_breaker_rejected_total";
/// Rate-limit checks, labelled `result` (`allowed`/`waited`/`rejected`/`redis_error`/`fallback`).
pub const RATE_LIMIT: &str = "wirecore_rate_limit_total";
/// Adaptive concurrency limit per origin.
pub const CONCURRENCY_LIMIT: &str = "wirecore_concurrency_limit";
/// Requests refused by the adaptive concurrency limit.
pub const OVERLOADED: &str = "wirecore_overloaded_total";

const SHARDS: usize = 8;

/// A per-origin series: name, type, help, and how to read it.
type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PoolStats) -> u64,
);

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
    latency: Vec<Mutex<Histogram<u64>>>,
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
    pub(crate) fn new() -> Self {
        let latency = (0..SHARDS)
            .map(|_| {
                // 1 µs .. 1 hour, 3 significant digits.
                #[expect(clippy::expect_used, reason = "constant bounds are valid")]
                Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"))
            })
            .collect();
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
            window: RateWindow::default(),
        }
    }

    /// Counts a response that took `elapsed`, read from the clock at `now`.
    pub(crate) fn record_response(
        &self,
        status: u16,
        elapsed: Duration,
        now: tokio::time::Instant,
    ) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.status_class[class].fetch_add(1, Relaxed);
        self.record_latency(elapsed);
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
        let _ = h.record(us);
    }

    fn latency_summary(&self) -> LatencySummary {
        let mut all: Option<Histogram<u64>> = None;
        for shard in &self.latency {
            let h = shard.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut all {
                None => all = Some(h.clone()),
                Some(a) => {
                    let _ = a.add(&*h);
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
        }
    }
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

/// Latency from send to response head.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Responses measured.
    pub count: u64,
    /// Mean, milliseconds.
    pub mean_ms: f64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
}

/// DNS cache counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsStats {
    /// Lookups answered from a fresh entry.
    pub hits: u64,
    /// Lookups that went to the resolver.
    pub misses: u64,
    /// Expired entries served because the resolver failed.
    pub stale_served: u64,
    /// Lookups answered from a cached failure.
    pub negative_hits: u64,
    /// Background refreshes before expiry.
    pub refreshes: u64,
    /// Resolver failures.
    pub failures: u64,
}

/// Connections closed, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Idle longer than `pool.idle_timeout_ms`, or beyond `pool.max_idle_per_host`.
    pub idle: u64,
    /// Older than `pool.max_lifetime_ms`.
    pub lifetime: u64,
    /// Failed, timed out or cancelled mid-request (never reused).
    pub error: u64,
    /// Closed by the server.
    pub closed_by_peer: u64,
}

/// Pool gauges and counters, for one origin or summed over all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Open connections (active + idle) and connects in progress.
    pub connections: u64,
    /// Connections serving a request.
    pub active: u64,
    /// Connections waiting for a request.
    pub idle: u64,
    /// Connects in progress.
    pub connecting: u64,
    /// Requests waiting for a connection.
    pub pending: u64,
    /// Connections established.
    pub connects: u64,
    /// Requests sent on an existing connection.
    pub reuses: u64,
    /// HTTP/2 sessions open.
    pub h2_sessions: u64,
    /// HTTP/2 streams open.
    pub h2_open_streams: u64,
    /// Connections closed, by reason.
    pub evictions: Evictions,
}

impl PoolStats {
    pub(crate) fn add(&mut self, o: &PoolStats) {
        self.connections += o.connections;
        self.active += o.active;
        self.idle += o.idle;
        self.connecting += o.connecting;
        self.pending += o.pending;
        self.connects += o.connects;
        self.reuses += o.reuses;
        self.h2_sessions += o.h2_sessions;
        self.h2_open_streams += o.h2_open_streams;
        self.evictions.idle += o.evictions.idle;
        self.evictions.lifetime += o.evictions.lifetime;
        self.evictions.error += o.evictions.error;
        self.evictions.closed_by_peer += o.evictions.closed_by_peer;
    }
}

/// One origin's pool, with the protocol it speaks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OriginStats {
    /// `"h1"`, `"h2"` or `"unknown"` (no connection yet).
    pub protocol: String,
    /// Pool gauges and counters.
    #[serde(flatten)]
    pub pool: PoolStats,
}

/// A snapshot of every counter of a client. Bindings return it as native data; field names are
/// the same in every language (camelCase in Node).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Requests finished (responses + errors).
    pub requests_total: u64,
    /// Requests in flight now.
    pub requests_in_flight: u64,
    /// Responses by status class (`"2xx"` ...).
    pub responses_by_status_class: BTreeMap<String, u64>,
    /// Errors by code (only codes seen).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Latency to response head.
    pub latency: LatencySummary,
    /// Requests finished per second over the last 10 s.
    pub requests_per_second: f64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received on the wire.
    pub bytes_received: u64,
    /// Response body bytes after decoding.
    pub bytes_decoded: u64,
    /// `bytes_decoded / bytes_received` (1.0 when nothing was compressed).
    pub compression_ratio: f64,
    /// Redirects followed.
    pub redirects_followed: u64,
    /// DNS cache counters.
    pub dns: DnsStats,
    /// Pool totals over all origins.
    pub pool: PoolStats,
    /// Pool per origin (`https://host:port`).
    pub origins: BTreeMap<String, OriginStats>,
    /// Retries, hedges, breakers, rate limits and concurrency limits.
    pub resilience: ResilienceStats,
}

/// Counters of the resilience policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResilienceStats {
    /// Attempts sent: first tries, retries and hedges.
    pub attempts: u64,
    /// Retries by reason (`unsent`, `reset`, `status`, `429`).
    pub retries: BTreeMap<String, u64>,
    /// Retries the budget refused.
    pub retry_budget_exhausted: u64,
    /// Hedged attempts sent.
    pub hedges_sent: u64,
    /// Hedged attempts that answered first.
    pub hedges_won: u64,
    /// Breaker trips over all origins.
    pub breaker_trips: u64,
    /// Requests failed fast by open breakers.
    pub breaker_rejected: u64,
    /// Requests refused by adaptive concurrency limits (`overloaded`).
    pub overloaded: u64,
    /// Rate limiter counters.
    pub rate_limit: RateLimitStats,
    /// Per origin.
    pub origins: BTreeMap<String, OriginResilience>,
}

/// Rate limiter counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RateLimitStats {
    /// Requests admitted.
    pub allowed: u64,
    /// Requests admitted after waiting.
    pub waited: u64,
    /// Requests refused (`rate_limited`).
    pub rejected: u64,
    /// Redis checks that failed or timed out.
    pub redis_errors: u64,
    /// Checks answered by the local limiter because Redis failed (`fail_open`).
    pub fallbacks: u64,
}

/// Resilience state of one origin.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OriginResilience {
    /// `closed`, `open` or `half_open`; absent when breakers are off.
    pub breaker_state: Option<String>,
    /// Retries the budget would allow now.
    pub retry_budget_available: u64,
    /// The adaptive concurrency limit; absent when off.
    pub concurrency_limit: Option<u32>,
    /// Requests in flight under the limit.
    pub concurrency_in_flight: Option<u32>,
    /// Requests waiting for the limit.
    pub concurrency_waiting: Option<u64>,
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Stats {
    /// The snapshot as JSON (what the C ABI and bindings hand out).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The snapshot in Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut o = String::with_capacity(4096);
        self.prometheus_requests(&mut o);
        self.prometheus_dns(&mut o);
        self.prometheus_pool(&mut o);
        self.prometheus_resilience(&mut o);
        o
    }

    fn prometheus_resilience(&self, o: &mut String) {
        let r = &self.resilience;
        head(
            o,
            ATTEMPTS,
            "counter",
            "Attempts sent (first tries, retries, hedges).",
        );
        let _ = writeln!(o, "{ATTEMPTS} {}", r.attempts);
        head(o, RETRIES, "counter", "Retries by reason.");
        for (reason, v) in &r.retries {
            let _ = writeln!(o, "{RETRIES}{{reason=\"{reason}\"}} {v}");
        }
        for (name, help, v) in [
            (
                RETRY_BUDGET_EXHAUSTED,
                "Retries refused by the retry budget.",
                r.retry_budget_exhausted,
            ),
            (BREAKER_TRIPS, "Circuit breaker trips.", r.breaker_trips),
            (
                BREAKER_REJECTED,
                "Requests failed fast by an open breaker.",
                r.breaker_rejected,
            ),
            (
                OVERLOADED,
                "Requests refused by the adaptive concurrency limit.",
                r.overloaded,
            ),
        ] {
            head(o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
        head(o, HEDGES, "counter", "Hedged attempts sent and won.");
        let _ = writeln!(o, "{HEDGES}{{result=\"sent\"}} {}", r.hedges_sent);
        let _ = writeln!(o, "{HEDGES}{{result=\"won\"}} {}", r.hedges_won);
        head(o, RATE_LIMIT, "counter", "Rate-limit checks by result.");
        let l = &r.rate_limit;
        for (k, v) in [
            ("allowed", l.allowed),
            ("waited", l.waited),
            ("rejected", l.rejected),
            ("redis_error", l.redis_errors),
            ("fallback", l.fallbacks),
        ] {
            let _ = writeln!(o, "{RATE_LIMIT}{{result=\"{k}\"}} {v}");
        }
        head(
            o,
            BREAKER_STATE,
            "gauge",
            "Breaker state: 0 closed, 1 open, 2 half-open.",
        );
        for (origin, s) in &r.origins {
            if let Some(state) = &s.breaker_state {
                let v = match state.as_str() {
                    "open" => 1,
                    "half_open" => 2,
                    _ => 0,
                };
                let _ = writeln!(o, "{BREAKER_STATE}{{origin=\"{origin}\"}} {v}");
            }
        }
        head(o, CONCURRENCY_LIMIT, "gauge", "Adaptive concurrency limit.");
        for (origin, s) in &r.origins {
            if let Some(v) = s.concurrency_limit {
                let _ = writeln!(o, "{CONCURRENCY_LIMIT}{{origin=\"{origin}\"}} {v}");
            }
        }
    }

    fn prometheus_requests(&self, o: &mut String) {
        head(o, REQUESTS_TOTAL, "counter", "Requests finished.");
        for (class, v) in &self.responses_by_status_class {
            let _ = writeln!(
                o,
                "{REQUESTS_TOTAL}{{outcome=\"ok\",status_class=\"{class}\"}} {v}"
            );
        }
        for (code, v) in &self.errors_by_code {
            let _ = writeln!(
                o,
                "{REQUESTS_TOTAL}{{outcome=\"error\",code=\"{code}\"}} {v}"
            );
        }
        head(o, REQUESTS_IN_FLIGHT, "gauge", "Requests in flight.");
        let _ = writeln!(o, "{REQUESTS_IN_FLIGHT} {}", self.requests_in_flight);
        head(o, REQUEST_DURATION, "summary", "Time to response head.");
        let l = &self.latency;
        for (q, v) in [("0.5", l.p50_ms), ("0.95", l.p95_ms), ("0.99", l.p99_ms)] {
            let _ = writeln!(o, "{REQUEST_DURATION}{{quantile=\"{q}\"}} {}", v / 1000.0);
        }
        let _ = writeln!(
            o,
            "{REQUEST_DURATION}_sum {}",
            l.mean_ms * l.count as f64 / 1000.0
        );
        let _ = writeln!(o, "{REQUEST_DURATION}_count {}", l.count);
        for (name, help, v) in [
            (BYTES_SENT, "Request body bytes sent.", self.bytes_sent),
            (
                BYTES_RECEIVED,
                "Response body bytes received.",
                self.bytes_received,
            ),
            (
                BYTES_DECODED,
                "Response body bytes after decoding.",
                self.bytes_decoded,
            ),
            (REDIRECTS, "Redirects followed.", self.redirects_followed),
            (
                DNS_REFRESHES,
                "Background DNS refreshes.",
                self.dns.refreshes,
            ),
        ] {
            head(o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
    }

    fn prometheus_dns(&self, o: &mut String) {
        head(o, DNS_LOOKUPS, "counter", "DNS cache lookups by result.");
        let d = &self.dns;
        for (r, v) in [
            ("hit", d.hits),
            ("miss", d.misses),
            ("stale", d.stale_served),
            ("negative", d.negative_hits),
            ("failure", d.failures),
        ] {
            let _ = writeln!(o, "{DNS_LOOKUPS}{{result=\"{r}\"}} {v}");
        }
    }

    fn prometheus_pool(&self, o: &mut String) {
        head(o, POOL_CONNECTIONS, "gauge", "Open connections by state.");
        for (origin, s) in &self.origins {
            for (state, v) in [
                ("active", s.pool.active),
                ("idle", s.pool.idle),
                ("connecting", s.pool.connecting),
            ] {
                let _ = writeln!(
                    o,
                    "{POOL_CONNECTIONS}{{origin=\"{origin}\",state=\"{state}\"}} {v}"
                );
            }
        }
        let per_origin: [Gauge; 5] = [
            (
                POOL_PENDING,
                "gauge",
                "Requests waiting for a connection.",
                |p| p.pending,
            ),
            (POOL_CONNECTS, "counter", "Connections established.", |p| {
                p.connects
            }),
            (
                POOL_REUSES,
                "counter",
                "Requests on a reused connection.",
                |p| p.reuses,
            ),
            (H2_SESSIONS, "gauge", "Open HTTP/2 sessions.", |p| {
                p.h2_sessions
            }),
            (H2_STREAMS, "gauge", "Open HTTP/2 streams.", |p| {
                p.h2_open_streams
            }),
        ];
        for (name, kind, help, get) in per_origin {
            head(o, name, kind, help);
            for (origin, s) in &self.origins {
                let _ = writeln!(o, "{name}{{origin=\"{origin}\"}} {}", get(&s.pool));
            }
        }
        head(
            o,
            POOL_EVICTIONS,
            "counter",
            "Connections closed by reason.",
        );
        for (origin, s) in &self.origins {
            let e = &s.pool.evictions;
            for (reason, v) in [
                ("idle", e.idle),
                ("lifetime", e.lifetime),
                ("error", e.error),
                ("closed_by_peer", e.closed_by_peer),
            ] {
                let _ = writeln!(
                    o,
                    "{POOL_EVICTIONS}{{origin=\"{origin}\",reason=\"{reason}\"}} {v}"
                );
            }
        }
    }

    /// A human-readable health report: per-origin health, latency, throughput, compression and
    /// DNS hit rate.
    pub fn diagnostics(&self) -> Diagnostics {
        let errors: u64 = self.errors_by_code.values().sum();
        let lookups = self.dns.hits + self.dns.misses;
        let origins = self
            .origins
            .iter()
            .map(|(name, s)| {
                let health = if s.pool.evictions.error > s.pool.connects / 2 && s.pool.connects > 0
                {
                    "degraded"
                } else if s.pool.pending > 0 {
                    "saturated"
                } else {
                    "healthy"
                };
                OriginHealth {
                    origin: name.clone(),
                    protocol: s.protocol.clone(),
                    health: health.to_owned(),
                    connections: s.pool.connections,
                    pending: s.pool.pending,
                    reuse_ratio: ratio(s.pool.reuses, s.pool.reuses + s.pool.connects),
                }
            })
            .collect();
        Diagnostics {
            requests_total: self.requests_total,
            error_rate: ratio(errors, self.requests_total),
            mean_latency_ms: self.latency.mean_ms,
            p95_latency_ms: self.latency.p95_ms,
            p99_latency_ms: self.latency.p99_ms,
            requests_per_second: self.requests_per_second,
            compression_ratio: self.compression_ratio,
            dns_hit_rate: ratio(self.dns.hits, lookups),
            connection_reuse_ratio: ratio(self.pool.reuses, self.pool.reuses + self.pool.connects),
            origins,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The health report of [`Stats::diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diagnostics {
    /// Requests finished.
    pub requests_total: u64,
    /// Errors / requests.
    pub error_rate: f64,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_latency_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_latency_ms: f64,
    /// Requests per second over the last 10 s.
    pub requests_per_second: f64,
    /// Decoded / received body bytes.
    pub compression_ratio: f64,
    /// DNS cache hits / lookups.
    pub dns_hit_rate: f64,
    /// Reused / (reused + new) connections.
    pub connection_reuse_ratio: f64,
    /// Per origin.
    pub origins: Vec<OriginHealth>,
}

/// One origin in [`Diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OriginHealth {
    /// `scheme://host:port`.
    pub origin: String,
    /// `h1`, `h2` or `unknown`.
    pub protocol: String,
    /// `healthy`, `saturated` (requests waiting) or `degraded` (most connections failed).
    pub health: String,
    /// Open connections.
    pub connections: u64,
    /// Requests waiting.
    pub pending: u64,
    /// Reused / (reused + new).
    pub reuse_ratio: f64,
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "requests {}  errors {:.1}%  rps {:.1}  mean {:.2} ms  p95 {:.2} ms  p99 {:.2} ms",
            self.requests_total,
            self.error_rate * 100.0,
            self.requests_per_second,
            self.mean_latency_ms,
            self.p95_latency_ms,
            self.p99_latency_ms
        )?;
        writeln!(
            f,
            "compression {:.2}x  dns hit rate {:.0}%  connection reuse {:.0}%",
            self.compression_ratio,
            self.dns_hit_rate * 100.0,
            self.connection_reuse_ratio * 100.0
        )?;
        for o in &self.origins {
            writeln!(
                f,
                "  {} [{}] {}: {} connections, {} waiting, reuse {:.0}%",
                o.origin,
                o.protocol,
                o.health,
                o.connections,
                o.pending,
                o.reuse_ratio * 100.0
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_and_renders() {
        let m = Metrics::new();
        m.record_response(200, Duration::from_millis(3), tokio::time::Instant::now());
        m.record_response(503, Duration::from_millis(7), tokio::time::Instant::now());
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

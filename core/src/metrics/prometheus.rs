//! [`Stats`] in Prometheus text exposition format.

use std::fmt::Write as _;

use super::names::{
    ATTEMPTS, BREAKER_REJECTED, BREAKER_STATE, BREAKER_TRIPS, BYTES_DECODED, BYTES_RECEIVED,
    BYTES_SENT, CACHE_BACKGROUND_REFRESHES, CACHE_BYTES, CACHE_COALESCED, CACHE_ENTRIES,
    CACHE_INVALIDATIONS, CACHE_LOOKUPS, CACHE_NOT_MODIFIED, CACHE_STALE_IF_ERROR,
    CACHE_STALE_SERVED, CACHE_STORES, CONCURRENCY_LIMIT, DNS_LOOKUPS, DNS_REFRESHES, H2_SESSIONS,
    H2_STREAMS, HEDGES, OVERLOADED, POOL_CONNECTIONS, POOL_CONNECTS, POOL_EVICTIONS, POOL_PENDING,
    POOL_REUSES, RATE_LIMIT, REDIRECTS, REQUEST_DURATION, REQUESTS_IN_FLIGHT, REQUESTS_TOTAL,
    RETRIES, RETRY_BUDGET_EXHAUSTED,
};
use super::names::{
    CACHE_L2_BYPASSED, CACHE_L2_ERRORS, CACHE_L2_LOOKUPS, CACHE_L2_STORES, DEAD_LETTERS, OTEL_SPANS,
};
use super::names::{
    ENDPOINT_EJECTIONS, ENDPOINT_EWMA, ENDPOINT_FAILURES, ENDPOINT_HEALTH_CHECKS,
    ENDPOINT_OUTSTANDING, ENDPOINT_REQUESTS, ENDPOINT_STATE, SERVICE_PANIC_PICKS,
};
use super::{EndpointStats, PoolStats, Stats};

/// A per-endpoint series: name, type, help, and how to read it.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&EndpointStats) -> f64,
);

/// A per-origin series: name, type, help, and how to read it.
type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PoolStats) -> u64,
);
pub(super) fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Stats {
    /// The snapshot in Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut o = String::with_capacity(4096);
        self.prometheus_requests(&mut o);
        self.prometheus_dns(&mut o);
        self.prometheus_pool(&mut o);
        self.prometheus_resilience(&mut o);
        self.prometheus_cache(&mut o);
        self.prometheus_cache_l2(&mut o);
        self.prometheus_dead_letters(&mut o);
        self.prometheus_otel(&mut o);
        self.prometheus_services(&mut o);
        o
    }

    fn prometheus_cache(&self, o: &mut String) {
        let c = &self.cache;
        head(
            o,
            CACHE_LOOKUPS,
            "counter",
            "Response cache lookups by result.",
        );
        for (r, v) in [
            ("hit", c.hits),
            ("miss", c.misses),
            ("stale", c.revalidations),
        ] {
            let _ = writeln!(o, "{CACHE_LOOKUPS}{{result=\"{r}\"}} {v}");
        }
        for (name, kind, help, v) in [
            (
                CACHE_NOT_MODIFIED,
                "counter",
                "Revalidations answered 304.",
                c.not_modified,
            ),
            (
                CACHE_STALE_SERVED,
                "counter",
                "Stale stored responses served without revalidation.",
                c.stale_served,
            ),
            (
                CACHE_BACKGROUND_REFRESHES,
                "counter",
                "Background revalidations started (stale-while-revalidate).",
                c.background_refreshes,
            ),
            (
                CACHE_STALE_IF_ERROR,
                "counter",
                "Stale responses served on a failed revalidation (stale-if-error).",
                c.stale_if_error,
            ),
            (
                CACHE_COALESCED,
                "counter",
                "Callers that shared an identical in-flight request.",
                c.coalesced,
            ),
            (CACHE_STORES, "counter", "Responses stored.", c.stores),
            (
                CACHE_INVALIDATIONS,
                "counter",
                "URLs invalidated by unsafe methods.",
                c.invalidations,
            ),
            (
                CACHE_ENTRIES,
                "gauge",
                "Stored responses in memory.",
                c.l1_entries,
            ),
            (
                CACHE_BYTES,
                "gauge",
                "Bytes of stored responses in memory.",
                c.l1_bytes,
            ),
        ] {
            head(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        }
    }

    fn prometheus_cache_l2(&self, o: &mut String) {
        let c = &self.cache;
        head(
            o,
            CACHE_L2_LOOKUPS,
            "counter",
            "Reads of the cache's Redis second level by result.",
        );
        for (r, v) in [("hit", c.l2_hits), ("miss", c.l2_misses)] {
            let _ = writeln!(o, "{CACHE_L2_LOOKUPS}{{result=\"{r}\"}} {v}");
        }
        for (name, help, v) in [
            (CACHE_L2_STORES, "Entries written to Redis.", c.l2_stores),
            (
                CACHE_L2_ERRORS,
                "Redis reads and writes that failed or timed out.",
                c.l2_errors,
            ),
            (
                CACHE_L2_BYPASSED,
                "Reads and writes that skipped Redis.",
                c.l2_bypassed,
            ),
        ] {
            head(o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
    }

    fn prometheus_dead_letters(&self, o: &mut String) {
        let d = &self.dead_letter;
        head(
            o,
            DEAD_LETTERS,
            "counter",
            "Requests that failed after every retry, by what became of them.",
        );
        for (r, v) in [
            ("delivered", d.delivered),
            ("streamed", d.streamed),
            ("dropped", d.dropped),
        ] {
            let _ = writeln!(o, "{DEAD_LETTERS}{{result=\"{r}\"}} {v}");
        }
    }

    fn prometheus_otel(&self, o: &mut String) {
        head(
            o,
            OTEL_SPANS,
            "counter",
            "OpenTelemetry spans, by what became of their export.",
        );
        for (r, v) in [
            ("exported", self.otel.exported),
            ("dropped", self.otel.dropped),
        ] {
            let _ = writeln!(o, "{OTEL_SPANS}{{result=\"{r}\"}} {v}");
        }
    }

    fn prometheus_services(&self, o: &mut String) {
        head(
            o,
            SERVICE_PANIC_PICKS,
            "counter",
            "Picks over every endpoint because too few were available.",
        );
        for (name, s) in &self.services {
            let _ = writeln!(
                o,
                "{SERVICE_PANIC_PICKS}{{service=\"{name}\"}} {}",
                s.panic_picks
            );
        }
        let series: [Series; 6] = [
            (
                ENDPOINT_STATE,
                "gauge",
                "Endpoint state: 0 healthy, 1 ejected, 2 unhealthy.",
                |e| match e.state.as_str() {
                    "ejected" => 1.0,
                    "unhealthy" => 2.0,
                    _ => 0.0,
                },
            ),
            (
                ENDPOINT_EWMA,
                "gauge",
                "Peak-EWMA latency to response head.",
                |e| e.ewma_ms / 1000.0,
            ),
            (ENDPOINT_OUTSTANDING, "gauge", "Attempts in flight.", |e| {
                e.outstanding as f64
            }),
            (ENDPOINT_REQUESTS, "counter", "Attempts sent.", |e| {
                e.requests as f64
            }),
            (
                ENDPOINT_FAILURES,
                "counter",
                "Attempts failed (5xx or no answer).",
                |e| e.failures as f64,
            ),
            (ENDPOINT_EJECTIONS, "counter", "Outlier ejections.", |e| {
                e.ejections as f64
            }),
        ];
        for (metric, kind, help, value) in series {
            head(o, metric, kind, help);
            for (name, s) in &self.services {
                for (url, e) in &s.endpoints {
                    let _ = writeln!(
                        o,
                        "{metric}{{service=\"{name}\",endpoint=\"{url}\"}} {}",
                        value(e)
                    );
                }
            }
        }
        head(
            o,
            ENDPOINT_HEALTH_CHECKS,
            "counter",
            "Health checks by result.",
        );
        for (name, s) in &self.services {
            for (url, e) in &s.endpoints {
                let pass = e.health_checks.saturating_sub(e.health_check_failures);
                for (result, v) in [("pass", pass), ("fail", e.health_check_failures)] {
                    let _ = writeln!(
                        o,
                        "{ENDPOINT_HEALTH_CHECKS}{{service=\"{name}\",endpoint=\"{url}\",result=\"{result}\"}} {v}"
                    );
                }
            }
        }
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
        self.prometheus_latency(o);
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

    fn prometheus_latency(&self, o: &mut String) {
        head(
            o,
            REQUEST_DURATION,
            "histogram",
            "Time to response head, by origin and status class.",
        );
        let h = &self.latency_histogram;
        for (origin, classes) in &h.series {
            for (class, s) in classes {
                let labels = format!("origin=\"{origin}\",status_class=\"{class}\"");
                let bounds = h.bounds_seconds.iter().map(ToString::to_string);
                for (le, n) in bounds.chain(["+Inf".to_owned()]).zip(&s.buckets) {
                    let _ = writeln!(o, "{REQUEST_DURATION}_bucket{{{labels},le=\"{le}\"}} {n}");
                }
                let _ = writeln!(o, "{REQUEST_DURATION}_sum{{{labels}}} {}", s.sum_seconds);
                let _ = writeln!(o, "{REQUEST_DURATION}_count{{{labels}}} {}", s.count());
            }
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
}

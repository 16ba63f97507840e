//! The [`Stats`] snapshot: plain data, serialised as JSON for the bindings (field names are
//! the same in every language).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// Latency from send to response head.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OriginStats {
    /// `"h1"`, `"h2"` or `"unknown"` (no connection yet).
    pub protocol: String,
    /// Pool gauges and counters.
    #[serde(flatten)]
    pub pool: PoolStats,
}

/// A snapshot of every counter of a client. Bindings return it as native data; field names are
/// the same in every language (camelCase in Node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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
    /// The same latencies as Prometheus histograms per origin and status class (the
    /// `wirecore_request_duration_seconds` series); not in the JSON snapshot.
    #[serde(skip)]
    #[schemars(skip)]
    pub latency_histogram: super::LatencyHistogram,
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
    /// The response cache (all zero when `cache.enabled` is false).
    pub cache: CacheStats,
    /// Load-balanced services by name (`Config.services`).
    pub services: BTreeMap<String, ServiceStats>,
    /// Dead letters (requests that failed after every retry).
    pub dead_letter: DeadLetterStats,
    /// OpenTelemetry spans sent to `otel.endpoint` or the span callback (all zero when
    /// `otel.enabled` is false or neither is set).
    pub otel: OtelStats,
}

/// Counters of the OpenTelemetry span export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OtelStats {
    /// Spans the collector took (a 2xx answer to their export), plus spans the span callback
    /// was handed (a span that goes to both counts twice).
    pub exported: u64,
    /// Spans lost: the export queue (`otel.max_queue`) or the callback's
    /// (`otel.callback_queue`) was full, the collector refused or did not answer their export,
    /// or a binding's callback queue was full.
    pub dropped: u64,
}

/// Counters of the dead-letter sinks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DeadLetterStats {
    /// Dead letters handed to the callback.
    pub delivered: u64,
    /// Dead letters appended to the Redis stream.
    pub streamed: u64,
    /// Dead letters lost: the queue was full, the callback panicked, or Redis failed or was
    /// skipped.
    pub dropped: u64,
    /// `XADD`s that failed or timed out.
    pub redis_errors: u64,
}

/// Counters of the response cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CacheStats {
    /// Lookups answered by a fresh stored response.
    pub hits: u64,
    /// Lookups that found nothing usable (the server was asked).
    pub misses: u64,
    /// Conditional requests sent to revalidate a stale stored response.
    pub revalidations: u64,
    /// Revalidations the server answered `304 Not Modified` (the stored body was reused).
    pub not_modified: u64,
    /// Stale stored responses served without the server's confirmation: `force-cache` and
    /// `only-if-cached` modes, `stale-while-revalidate`, `stale-if-error`.
    pub stale_served: u64,
    /// Background revalidations started for `stale-while-revalidate` (one per stale entry at a
    /// time).
    pub background_refreshes: u64,
    /// Stale responses served because their revalidation failed (`stale-if-error`).
    pub stale_if_error: u64,
    /// Callers that shared another identical request's answer instead of sending their own.
    pub coalesced: u64,
    /// Responses stored.
    pub stores: u64,
    /// URLs invalidated by an unsafe method's success.
    pub invalidations: u64,
    /// Stored responses in memory (URL and method pairs).
    pub l1_entries: u64,
    /// Their weight in bytes (bodies, headers and a fixed overhead each).
    pub l1_bytes: u64,
    /// Memory misses answered by the Redis second level (`cache.l2`).
    pub l2_hits: u64,
    /// Redis reads that found nothing usable.
    pub l2_misses: u64,
    /// Entries written to Redis.
    pub l2_stores: u64,
    /// Redis reads and writes that failed or timed out (Redis is then skipped for
    /// `cache.l2.retry_after_ms`).
    pub l2_errors: u64,
    /// Reads and writes that skipped Redis: after an error, or too many writes in flight.
    pub l2_bypassed: u64,
}

/// One load-balanced service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct ServiceStats {
    /// The strategy (`p2c_peak_ewma` ...).
    pub strategy: String,
    /// Picks made over every endpoint because fewer than the panic threshold were available.
    pub panic_picks: u64,
    /// Per endpoint, by base URL.
    pub endpoints: BTreeMap<String, EndpointStats>,
}

/// One endpoint of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct EndpointStats {
    /// `healthy`, `ejected` (outlier detection) or `unhealthy` (health checks).
    pub state: String,
    /// Its configured weight.
    pub weight: u32,
    /// Peak-EWMA latency to response head, milliseconds (decayed to now).
    pub ewma_ms: f64,
    /// Attempts in flight.
    pub outstanding: u64,
    /// Attempts sent.
    pub requests: u64,
    /// Attempts that failed (5xx or no answer).
    pub failures: u64,
    /// Times ejected.
    pub ejections: u64,
    /// Health checks sent.
    pub health_checks: u64,
    /// Health checks failed.
    pub health_check_failures: u64,
}

/// Counters of the resilience policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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
    /// Breakers shared through Redis (`breaker.redis`; all zero when off).
    pub breaker_redis: BreakerRedisStats,
    /// Per origin.
    pub origins: BTreeMap<String, OriginResilience>,
}

/// Counters of the breakers shared through Redis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct BreakerRedisStats {
    /// Openings and closings written to Redis.
    pub published: u64,
    /// Reads of the open breakers.
    pub refreshes: u64,
    /// Reads, writes and connections that failed or timed out (breakers then stay local).
    pub redis_errors: u64,
    /// Origins open elsewhere, as last read.
    pub open_remotely: u64,
}

/// Rate limiter counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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

impl Stats {
    /// The snapshot as JSON (what the C ABI and bindings hand out).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::Stats;

    /// The field tree of a schema: a struct is an object of its fields, a data map (origins,
    /// error codes) `{"*": value}`, a leaf its JSON type (`"integer"`, `"string|null"`).
    fn shape(s: &Value, defs: &Map<String, Value>) -> Value {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/$defs/");
            return shape(&defs[name], defs);
        }
        let mut fields = Map::new();
        for part in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Value::Object(m) = shape(part, defs) {
                fields.extend(m);
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                fields.insert(k.clone(), shape(v, defs));
            }
        }
        if !fields.is_empty() {
            return Value::Object(fields);
        }
        if let Some(v) = s.get("additionalProperties").filter(|v| v.is_object()) {
            return serde_json::json!({ "*": shape(v, defs) });
        }
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        assert!(
            !types.is_empty(),
            "a stats schema the walker does not know: {s}"
        );
        Value::String(types.join("|"))
    }

    /// `tests/stats-fields.json`: the field names of [`Stats`], the reference every binding's
    /// stats test compares a real client's snapshot with (and `scripts/parity.py` reads).
    #[test]
    fn committed_stats_fields_are_current() {
        let schema = schemars::schema_for!(Stats).to_value();
        let defs = schema
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let want = serde_json::to_string_pretty(&shape(&schema, &defs)).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/stats-fields.json");
        if std::env::var_os("WIRECORE_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "tests/stats-fields.json is stale: run `make stats-fields`"
        );
    }

    /// Asserts that `v` has exactly the fields of the tree `f` (data-map keys are free).
    fn keys(v: &Value, f: &Value, path: &str) {
        let (Value::Object(v), Value::Object(f)) = (v, f) else {
            return;
        };
        if let Some(inner) = f.get("*") {
            for (k, e) in v {
                keys(e, inner, &format!("{path}{k}."));
            }
            return;
        }
        let got: Vec<&String> = v.keys().collect();
        let want: Vec<&String> = f.keys().collect();
        assert_eq!(got, want, "at {path}");
        for (k, e) in v {
            keys(e, &f[k], &format!("{path}{k}."));
        }
    }

    #[test]
    fn a_snapshot_has_exactly_the_committed_fields() {
        // The schema walker above against serde's output: same keys, map entries included.
        let fields: Value =
            serde_json::from_str(include_str!("../../../tests/stats-fields.json")).unwrap();
        let mut s = Stats::default();
        s.origins
            .insert("http://a".into(), super::OriginStats::default());
        s.services
            .insert("svc".into(), super::ServiceStats::default());
        s.services
            .get_mut("svc")
            .unwrap()
            .endpoints
            .insert("http://b".into(), super::EndpointStats::default());
        s.resilience
            .origins
            .insert("http://a".into(), super::OriginResilience::default());
        s.errors_by_code.insert("connect".into(), 1);
        keys(&serde_json::to_value(&s).unwrap(), &fields, "");
    }
}

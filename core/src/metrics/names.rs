//! Metric names: a contract with every binding and every dashboard.

/// Requests finished, labelled `outcome` (`ok`/`error`) and `status_class` or `code`.
pub const REQUESTS_TOTAL: &str = "wirecore_requests_total";
/// Requests currently in flight.
pub const REQUESTS_IN_FLIGHT: &str = "wirecore_requests_in_flight";
/// Latency from send to response head, a histogram labelled `origin` and `status_class` (buckets:
/// `metrics.latency_buckets_ms`).
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

/// Response cache lookups, labelled `result` (`hit`/`miss`/`stale`: stale ones are revalidated).
pub const CACHE_LOOKUPS: &str = "wirecore_cache_lookups_total";
/// Revalidations answered `304 Not Modified`.
pub const CACHE_NOT_MODIFIED: &str = "wirecore_cache_not_modified_total";
/// Stale stored responses served without the server's confirmation.
pub const CACHE_STALE_SERVED: &str = "wirecore_cache_stale_served_total";
/// Background revalidations started (`stale-while-revalidate`).
pub const CACHE_BACKGROUND_REFRESHES: &str = "wirecore_cache_background_refreshes_total";
/// Stale responses served because their revalidation failed (`stale-if-error`).
pub const CACHE_STALE_IF_ERROR: &str = "wirecore_cache_stale_if_error_total";
/// Callers that shared an identical in-flight request's answer.
pub const CACHE_COALESCED: &str = "wirecore_cache_coalesced_total";
/// Responses stored.
pub const CACHE_STORES: &str = "wirecore_cache_stores_total";
/// URLs invalidated by an unsafe method's success.
pub const CACHE_INVALIDATIONS: &str = "wirecore_cache_invalidations_total";
/// Stored responses in memory.
pub const CACHE_ENTRIES: &str = "wirecore_cache_entries";
/// Bytes of stored responses in memory.
pub const CACHE_BYTES: &str = "wirecore_cache_bytes";
/// Reads of the cache's Redis second level, labelled `result` (`hit`/`miss`).
pub const CACHE_L2_LOOKUPS: &str = "wirecore_cache_l2_lookups_total";
/// Entries written to the Redis second level.
pub const CACHE_L2_STORES: &str = "wirecore_cache_l2_stores_total";
/// Redis reads and writes of the second level that failed or timed out.
pub const CACHE_L2_ERRORS: &str = "wirecore_cache_l2_errors_total";
/// Reads and writes that skipped the Redis second level (after an error, or too many writes).
pub const CACHE_L2_BYPASSED: &str = "wirecore_cache_l2_bypassed_total";
/// Dead letters (requests that failed after every retry), labelled `result`
/// (`delivered`/`streamed`/`dropped`).
pub const DEAD_LETTERS: &str = "wirecore_dead_letters_total";
/// OpenTelemetry spans, labelled `result` (`exported`/`dropped`).
pub const OTEL_SPANS: &str = "wirecore_otel_spans_total";
/// State of each endpoint of a load-balanced service (`service`, `endpoint` labels): 0 healthy,
/// 1 ejected, 2 unhealthy.
pub const ENDPOINT_STATE: &str = "wirecore_endpoint_state";
/// Peak-EWMA latency of each endpoint, seconds.
pub const ENDPOINT_EWMA: &str = "wirecore_endpoint_ewma_seconds";
/// Attempts in flight to each endpoint.
pub const ENDPOINT_OUTSTANDING: &str = "wirecore_endpoint_outstanding";
/// Attempts sent to each endpoint.
pub const ENDPOINT_REQUESTS: &str = "wirecore_endpoint_requests_total";
/// Attempts to each endpoint that failed (5xx or no answer).
pub const ENDPOINT_FAILURES: &str = "wirecore_endpoint_failures_total";
/// Outlier ejections of each endpoint.
pub const ENDPOINT_EJECTIONS: &str = "wirecore_endpoint_ejections_total";
/// Health checks of each endpoint, labelled `result` (`pass`/`fail`).
pub const ENDPOINT_HEALTH_CHECKS: &str = "wirecore_endpoint_health_checks_total";
/// Picks over every endpoint of a service because too few were available (panic threshold).
pub const SERVICE_PANIC_PICKS: &str = "wirecore_service_panic_picks_total";

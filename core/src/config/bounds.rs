//! The upper bound of every numeric config field, checked by `Config::validate` and listed by
//! `Config::upper_bounds` (bindings test them).

use super::{Config, MAX_DURATION_MS, resilience};

/// Largest value of byte counts that allocate nothing: 2^53-1, exact in every binding's numbers.
const MAX_EXACT: u64 = (1 << 53) - 1;

/// Largest value of the numeric fields, name by name (`make schema` documents each in its field's
/// doc comment). A test sets each field to its maximum and one beyond, and fails when a numeric
/// field is missing here.
#[expect(
    clippy::many_single_char_names,
    reason = "one letter per section keeps rows on one line"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one row per numeric field of the config"
)]
pub(super) fn upper_bounds(c: &Config) -> [(&'static str, u64, u64); 81] {
    const D: u64 = MAX_DURATION_MS;
    const WINDOW: u64 = resilience::MAX_WINDOW_MS;
    const CE: u64 = super::cache::MAX_ENTRY_BYTES;
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    let (t, p, h2, dns) = (&c.timeouts, &c.pool, &c.http2, &c.dns);
    let (r, b, l, a) = (&c.retry, &c.breaker, &c.rate_limit, &c.concurrency);
    let k = &c.cache;
    [
        ("timeouts.total_ms", t.total_ms, D),
        ("timeouts.connect_ms", t.connect_ms, D),
        ("timeouts.tls_handshake_ms", t.tls_handshake_ms, D),
        ("timeouts.read_idle_ms", t.read_idle_ms, D),
        ("timeouts.pool_acquire_ms", t.pool_acquire_ms, D),
        ("pool.max_connections", n(p.max_connections), 1_000_000),
        (
            "pool.max_connections_per_host",
            n(p.max_connections_per_host),
            1_000_000,
        ),
        ("pool.max_idle_per_host", n(p.max_idle_per_host), 1_000_000),
        ("pool.idle_timeout_ms", p.idle_timeout_ms, D),
        ("pool.max_lifetime_ms", p.max_lifetime_ms, D),
        (
            "pool.max_pending_per_host",
            n(p.max_pending_per_host),
            1_000_000,
        ),
        ("pool.max_origins", n(p.max_origins), 1_000_000),
        ("pool.origin_idle_timeout_ms", p.origin_idle_timeout_ms, D),
        (
            "http2.initial_stream_window_bytes",
            h2.initial_stream_window_bytes.into(),
            (1 << 31) - 1,
        ),
        (
            "http2.initial_connection_window_bytes",
            h2.initial_connection_window_bytes.into(),
            (1 << 31) - 1,
        ),
        (
            "http2.max_concurrent_streams",
            h2.max_concurrent_streams.into(),
            (1 << 31) - 1,
        ),
        (
            "http2.max_sessions_per_host",
            h2.max_sessions_per_host.into(),
            1_000_000,
        ),
        (
            "http2.busy_streams_per_session",
            h2.busy_streams_per_session.into(),
            (1 << 31) - 1,
        ),
        ("http2.keep_alive_interval_ms", h2.keep_alive_interval_ms, D),
        ("http2.keep_alive_timeout_ms", h2.keep_alive_timeout_ms, D),
        (
            "http2.max_frame_bytes",
            h2.max_frame_bytes.into(),
            16_777_215,
        ),
        ("tcp.keepalive_ms", c.tcp.keepalive_ms, 32_767_000),
        (
            "tcp.happy_eyeballs_delay_ms",
            c.tcp.happy_eyeballs_delay_ms,
            D,
        ),
        ("dns.cache_size", n(dns.cache_size), 100_000),
        ("dns.min_ttl_ms", dns.min_ttl_ms, D),
        ("dns.max_ttl_ms", dns.max_ttl_ms, D),
        ("dns.negative_ttl_ms", dns.negative_ttl_ms, D),
        (
            "dns.refresh_before_expiry_percent",
            dns.refresh_before_expiry_percent.into(),
            100,
        ),
        ("dns.serve_stale_ms", dns.serve_stale_ms, D),
        ("dns.query_timeout_ms", dns.query_timeout_ms, D),
        (
            "compression.request_min_bytes",
            n(c.compression.request_min_bytes),
            MAX_EXACT,
        ),
        (
            "redirect.max",
            c.redirect.max.into(),
            crate::request::MAX_REDIRECTS.into(),
        ),
        (
            "limits.max_response_body_bytes",
            c.limits.max_response_body_bytes,
            MAX_EXACT,
        ),
        (
            "limits.max_response_header_bytes",
            n(c.limits.max_response_header_bytes),
            16 << 20,
        ),
        (
            "limits.max_decompression_ratio",
            c.limits.max_decompression_ratio.into(),
            1_000_000,
        ),
        ("retry.max_attempts", r.max_attempts.into(), 100),
        ("retry.backoff_base_ms", r.backoff_base_ms, D),
        ("retry.backoff_max_ms", r.backoff_max_ms, D),
        ("retry.retry_after_max_ms", r.retry_after_max_ms, D),
        (
            "retry.max_replay_body_bytes",
            n(r.max_replay_body_bytes),
            MAX_EXACT,
        ),
        (
            "retry.budget.ratio_percent",
            r.budget.ratio_percent.into(),
            1_000,
        ),
        (
            "retry.budget.min_per_second",
            r.budget.min_per_second.into(),
            1_000_000,
        ),
        ("retry.budget.window_ms", r.budget.window_ms, WINDOW),
        ("retry.hedge.delay_ms", r.hedge.delay_ms, D),
        ("retry.hedge.min_delay_ms", r.hedge.min_delay_ms, D),
        ("retry.hedge.min_samples", r.hedge.min_samples, 1_000_000),
        (
            "breaker.consecutive_failures",
            b.consecutive_failures.into(),
            1_000_000,
        ),
        (
            "breaker.failure_ratio_percent",
            b.failure_ratio_percent.into(),
            100,
        ),
        ("breaker.min_requests", b.min_requests.into(), 1_000_000),
        ("breaker.window_ms", b.window_ms, WINDOW),
        ("breaker.open_ms", b.open_ms, D),
        ("breaker.max_open_ms", b.max_open_ms, D),
        (
            "breaker.half_open_probes",
            b.half_open_probes.into(),
            10_000,
        ),
        (
            "breaker.success_threshold",
            b.success_threshold.into(),
            10_000,
        ),
        ("breaker.redis.refresh_ms", b.redis.refresh_ms, 60_000),
        ("breaker.redis.timeout_ms", b.redis.timeout_ms, D),
        ("rate_limit.requests", l.requests.into(), 1_000_000_000),
        ("rate_limit.per_ms", l.per_ms, D),
        ("rate_limit.burst", l.burst.into(), 1_000_000_000),
        ("rate_limit.max_wait_ms", l.max_wait_ms, D),
        ("rate_limit.redis.timeout_ms", l.redis.timeout_ms, D),
        (
            "concurrency.initial_limit",
            a.initial_limit.into(),
            1_000_000,
        ),
        ("concurrency.min_limit", a.min_limit.into(), 1_000_000),
        ("concurrency.max_limit", a.max_limit.into(), 1_000_000),
        ("concurrency.max_queue", n(a.max_queue), 1_000_000),
        ("cache.max_bytes", k.max_bytes, MAX_EXACT),
        ("cache.max_entry_bytes", k.max_entry_bytes, CE),
        ("cache.heuristic_percent", k.heuristic_percent.into(), 100),
        ("cache.l2.max_entry_bytes", k.l2.max_entry_bytes, CE),
        ("cache.l2.stale_ttl_ms", k.l2.stale_ttl_ms, D),
        ("cache.l2.timeout_ms", k.l2.timeout_ms, D),
        ("cache.l2.retry_after_ms", k.l2.retry_after_ms, D),
        (
            "dead_letter.max_body_bytes",
            c.dead_letter.max_body_bytes,
            16 << 20,
        ),
        ("dead_letter.queue", c.dead_letter.queue, 1_000_000),
        ("cookies.max_cookies", c.cookies.max_cookies, 100_000),
        ("otel.export_interval_ms", c.otel.export_interval_ms, D),
        ("otel.max_queue", c.otel.max_queue, 1_000_000),
        ("otel.callback_queue", c.otel.callback_queue, 1_000_000),
        (
            "dead_letter.redis.max_len",
            c.dead_letter.redis.max_len,
            MAX_EXACT,
        ),
        (
            "dead_letter.redis.timeout_ms",
            c.dead_letter.redis.timeout_ms,
            D,
        ),
        (
            "dead_letter.redis.retry_after_ms",
            c.dead_letter.redis.retry_after_ms,
            D,
        ),
    ]
}

//! Config of the resilience policies: retries, circuit breakers, rate limits, adaptive
//! concurrency. Each section is a field of [`Config`](super::Config).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest sliding window (`retry.budget.window_ms`, `breaker.window_ms`): 10 minutes. Each
/// origin keeps one slot per second of it.
pub(super) const MAX_WINDOW_MS: u64 = 600_000;

/// Retries with exponential backoff, `Retry-After`, a per-origin budget, and optional hedging.
///
/// Only what is safe is retried: idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE, or a
/// request with an `Idempotency-Key` header); any method when the failure proves the request was
/// never sent (connect refused, connect/TLS timeout, HTTP/2 `REFUSED_STREAM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retry at all. Default: true.
    pub enabled: bool,
    /// Attempts per request, the first included (1 disables retries). At most 100. Default: 3.
    pub max_attempts: u32,
    /// Backoff before the first retry; later ones multiply it, each with full jitter.
    /// At most one year. Default: 50.
    pub backoff_base_ms: u64,
    /// Growth of the backoff per retry. Default: 2.0.
    pub backoff_multiplier: f64,
    /// Largest backoff. At most one year. Default: 2_000.
    pub backoff_max_ms: u64,
    /// Response statuses retried (for idempotent requests). Default: [502, 503, 504].
    pub retry_on_status: Vec<u16>,
    /// Retry 429 Too Many Requests, waiting as `Retry-After`/`RateLimit-Reset` says.
    /// Default: true.
    pub retry_on_429: bool,
    /// Longest `Retry-After` honoured; a longer one returns the response at once. At most one
    /// year. Default: 10_000.
    pub retry_after_max_ms: u64,
    /// Retry non-idempotent requests (POST, PATCH) on the same rules as GET. A request can opt in
    /// alone with `idempotent(true)`. Default: false.
    pub non_idempotent: bool,
    /// Request bodies up to this size are kept to be replayed; larger and streamed bodies are
    /// sent once. At most 2^53-1. Default: 1 MiB.
    pub max_replay_body_bytes: usize,
    /// Caps retries per origin so they cannot multiply load during an outage.
    pub budget: RetryBudgetConfig,
    /// Send a second attempt when the first is slow.
    pub hedge: HedgeConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 3,
            backoff_base_ms: 50,
            backoff_multiplier: 2.0,
            backoff_max_ms: 2_000,
            retry_on_status: vec![502, 503, 504],
            retry_on_429: true,
            retry_after_max_ms: 10_000,
            non_idempotent: false,
            max_replay_body_bytes: 1 << 20,
            budget: RetryBudgetConfig::default(),
            hedge: HedgeConfig::default(),
        }
    }
}

/// The retry budget of one origin: over a sliding window, retries (and hedges) may be at most
/// `ratio_percent` of the requests plus `min_per_second` per second of the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Enforce the budget. Default: true.
    pub enabled: bool,
    /// Retries allowed as a percentage of requests in the window. At most 1_000. Default: 20.
    pub ratio_percent: u32,
    /// Retries always allowed per second, so a quiet origin can still retry. At most 1_000_000.
    /// Default: 10.
    pub min_per_second: u32,
    /// Length of the sliding window, from 1_000 to 600_000. Default: 10_000.
    pub window_ms: u64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ratio_percent: 20,
            min_per_second: 10,
            window_ms: 10_000,
        }
    }
}

/// Hedging: for idempotent requests with a replayable body, a second attempt starts when the
/// first has not answered within a delay; the first good answer wins and the other is cancelled.
/// Hedges spend the retry budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Hedge at all. Default: false.
    pub enabled: bool,
    /// Fixed delay before the hedge; 0 uses the origin's latency `percentile`. At most one year.
    /// Default: 0.
    pub delay_ms: u64,
    /// Latency percentile of the origin used as delay when `delay_ms` is 0. Default: 95.0.
    pub percentile: f64,
    /// Smallest delay when derived from the percentile. At most one year. Default: 5.
    pub min_delay_ms: u64,
    /// Responses of the origin needed before a percentile is trusted. At most 1_000_000.
    /// Default: 20.
    pub min_samples: u64,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            delay_ms: 0,
            percentile: 95.0,
            min_delay_ms: 5,
            min_samples: 20,
        }
    }
}

/// A circuit breaker per origin: closed → open → half-open → closed.
///
/// It trips on `consecutive_failures` failures in a row, or when failures reach
/// `failure_ratio_percent` of at least `min_requests` requests within `window_ms`. While open,
/// requests fail at once with `circuit_open`. After the open time, `half_open_probes` requests
/// go through; `success_threshold` successes close it, one failure opens it again for longer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Use breakers. Default: false.
    pub enabled: bool,
    /// Failures in a row that open the breaker (0 disables this rule). At most 1_000_000.
    /// Default: 5.
    pub consecutive_failures: u32,
    /// Failure percentage over the window that opens the breaker (0 disables). At most 100.
    /// Default: 50.
    pub failure_ratio_percent: u32,
    /// Requests needed in the window before the ratio rule applies. At most 1_000_000.
    /// Default: 20.
    pub min_requests: u32,
    /// Sliding window of the ratio rule, from 1_000 to 600_000. Default: 10_000.
    pub window_ms: u64,
    /// How long the breaker stays open after its first trip. At most one year. Default: 5_000.
    pub open_ms: u64,
    /// Open time doubles per consecutive trip up to this. At most one year. Default: 60_000.
    pub max_open_ms: u64,
    /// Requests let through while half-open. At most 10_000. Default: 1.
    pub half_open_probes: u32,
    /// Successful probes that close the breaker. At most `half_open_probes`. Default: 1.
    pub success_threshold: u32,
    /// A 5xx response counts as a failure. Default: true.
    pub failure_on_5xx: bool,
    /// A 429 response counts as a failure. Default: false.
    pub failure_on_429: bool,
    /// Share open breakers with other processes (any language) through Redis. Default: off.
    pub redis: BreakerRedisConfig,
}

/// Open breakers shared through Redis: when a breaker opens, its origin and open time are
/// written to Redis (a sorted set `{key_prefix}open`, scored by Redis's own clock, so the
/// processes' clocks do not matter); every process reads the set every `refresh_ms` in the
/// background and fails requests to an origin open there with `circuit_open`, sending nothing.
/// A half-open probe that succeeds removes the origin. The request path never waits for Redis:
/// a process learns of a breaker opened elsewhere within about `refresh_ms`. Redis down or
/// slow: breakers are local only (what was read last expires with its open time), counted in
/// `stats().resilience.breaker_redis.redis_errors`; requests are not affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerRedisConfig {
    /// Share breakers at all (needs `breaker.enabled`). Default: false.
    pub enabled: bool,
    /// `redis://host:port/db`, or `rediss://` for TLS (verified with the same roots as `tls`).
    /// Default: "redis://127.0.0.1:6379".
    pub url: String,
    /// Prefix of the key, so the processes sharing it share breakers. Default: "wirecore:cb:".
    pub key_prefix: String,
    /// How often the open breakers are read from Redis. From 10 to 60_000. Default: 500.
    pub refresh_ms: u64,
    /// Longest wait for Redis per read or write. From 1 to one year. Default: 1_000.
    pub timeout_ms: u64,
}

impl Default for BreakerRedisConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "wirecore:cb:".to_owned(),
            refresh_ms: 500,
            timeout_ms: 1_000,
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            consecutive_failures: 5,
            failure_ratio_percent: 50,
            min_requests: 20,
            window_ms: 10_000,
            open_ms: 5_000,
            max_open_ms: 60_000,
            half_open_probes: 1,
            success_threshold: 1,
            failure_on_5xx: true,
            failure_on_429: false,
            redis: BreakerRedisConfig::default(),
        }
    }
}

/// What a rate limit is counted per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScope {
    /// One limit per origin (scheme, host, port).
    Origin,
    /// One limit for the whole client.
    Client,
    /// Per the request's `rate_limit_key`, falling back to the origin.
    Key,
}

/// What happens to a request over the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMode {
    /// Wait for a slot up to `max_wait_ms`, then fail with `rate_limited`.
    Wait,
    /// Fail at once with `rate_limited`.
    Fail,
}

/// Where the limit is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// In this process (GCRA).
    Local,
    /// In Redis, shared by every process using the same key prefix.
    Redis,
}

/// The algorithm of a Redis-backed limit; each is one atomic Lua script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedisAlgorithm {
    /// Refills `requests` per `per_ms`, holds at most `burst`.
    TokenBucket,
    /// At most `requests` in any `per_ms` span (a log of timestamps).
    SlidingWindow,
    /// At most `requests` per aligned `per_ms` window.
    FixedWindow,
}

/// What a Redis-backed limit does when Redis fails or is slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailure {
    /// Use the local limiter with the same numbers.
    FailOpen,
    /// Refuse with `rate_limited`.
    FailClosed,
}

/// Rate limiting: `requests` per `per_ms` with bursts of `burst`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Limit at all. Default: false.
    pub enabled: bool,
    /// Requests allowed per `per_ms`. At most 1_000_000_000. Default: 100.
    pub requests: u32,
    /// The period of `requests`. At most one year. Default: 1_000.
    pub per_ms: u64,
    /// Requests allowed at once after a quiet period; 0 means `requests`. At most 1_000_000_000,
    /// and refilling a whole burst (`burst` × `per_ms` / `requests`) takes at most one year.
    /// Default: 0.
    pub burst: u32,
    /// What the limit is counted per. Default: "origin".
    pub scope: RateLimitScope,
    /// Wait or fail fast. Default: "wait".
    pub mode: RateLimitMode,
    /// Longest wait in `wait` mode. At most one year. Default: 1_000.
    pub max_wait_ms: u64,
    /// Local or Redis. Default: "local".
    pub backend: RateLimitBackend,
    /// Redis settings when `backend` is "redis".
    pub redis: RedisLimitConfig,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            requests: 100,
            per_ms: 1_000,
            burst: 0,
            scope: RateLimitScope::Origin,
            mode: RateLimitMode::Wait,
            max_wait_ms: 1_000,
            backend: RateLimitBackend::Local,
            redis: RedisLimitConfig::default(),
        }
    }
}

/// A Redis-backed rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedisLimitConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS (verified with the same roots as `tls`).
    /// Default: "redis://127.0.0.1:6379".
    pub url: String,
    /// Default: "token_bucket".
    pub algorithm: RedisAlgorithm,
    /// Prefix of every key, so processes sharing it share limits. Default: "wirecore:rl:".
    pub key_prefix: String,
    /// Behaviour when Redis fails. Default: "fail_open".
    pub on_error: RedisFailure,
    /// Longest wait for Redis per check; beyond it counts as a failure. At most one year.
    /// Default: 100.
    pub timeout_ms: u64,
}

impl Default for RedisLimitConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            algorithm: RedisAlgorithm::TokenBucket,
            key_prefix: "wirecore:rl:".to_owned(),
            on_error: RedisFailure::FailOpen,
            timeout_ms: 100,
        }
    }
}

/// Adaptive concurrency (AIMD) per origin: the allowed number of requests in flight shrinks on
/// 429, 503, timeouts and latency above `latency_tolerance` × the best seen, and grows by one per
/// window of successes. Requests over the limit wait (up to `max_queue` and
/// `timeouts.pool_acquire_ms`) or fail with `overloaded`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Limit at all. Default: false.
    pub enabled: bool,
    /// Limit at start. At most 1_000_000. Default: 20.
    pub initial_limit: u32,
    /// Smallest limit. At most 1_000_000. Default: 1.
    pub min_limit: u32,
    /// Largest limit. At most 1_000_000. Default: 1_000.
    pub max_limit: u32,
    /// Factor applied to the limit on an overload signal. Default: 0.9.
    pub backoff_ratio: f64,
    /// Latency above this multiple of the lowest seen counts as overload. Default: 2.0.
    pub latency_tolerance: f64,
    /// Requests allowed to wait for a slot; beyond it they fail with `overloaded`. At most
    /// 1_000_000. Default: 1_000.
    pub max_queue: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_limit: 20,
            min_limit: 1,
            max_limit: 1_000,
            backoff_ratio: 0.9,
            latency_tolerance: 2.0,
            max_queue: 1_000,
        }
    }
}

pub(super) fn validate(cfg: &super::Config) -> Result<(), (String, &'static str)> {
    fn bad(field: &str, why: &'static str) -> Result<(), (String, &'static str)> {
        Err((field.to_owned(), why))
    }
    let r = &cfg.retry;
    if r.max_attempts == 0 {
        return bad("retry.max_attempts", "must be at least 1");
    }
    if !(r.backoff_multiplier.is_finite() && r.backoff_multiplier >= 1.0) {
        return bad("retry.backoff_multiplier", "must be a number >= 1.0");
    }
    if r.backoff_base_ms > r.backoff_max_ms {
        return bad(
            "retry.backoff_base_ms",
            "must not exceed retry.backoff_max_ms",
        );
    }
    if let Some(s) = r.retry_on_status.iter().find(|s| !(100..=599).contains(*s)) {
        let _ = s;
        return bad(
            "retry.retry_on_status",
            "every status must be within 100..=599",
        );
    }
    if r.budget.window_ms < 1_000 {
        return bad("retry.budget.window_ms", "must be at least 1000");
    }
    if !(r.hedge.percentile > 0.0 && r.hedge.percentile < 100.0) {
        return bad(
            "retry.hedge.percentile",
            "must be between 0 and 100 (exclusive)",
        );
    }
    let b = &cfg.breaker;
    if b.enabled && b.consecutive_failures == 0 && b.failure_ratio_percent == 0 {
        return bad(
            "breaker.consecutive_failures",
            "and breaker.failure_ratio_percent cannot both be 0",
        );
    }
    if b.failure_ratio_percent > 100 {
        return bad("breaker.failure_ratio_percent", "must be at most 100");
    }
    if b.open_ms == 0 || b.open_ms > b.max_open_ms {
        return bad(
            "breaker.open_ms",
            "must be at least 1 and at most breaker.max_open_ms",
        );
    }
    if b.half_open_probes == 0 {
        return bad("breaker.half_open_probes", "must be at least 1");
    }
    if b.success_threshold == 0 || b.success_threshold > b.half_open_probes {
        return bad(
            "breaker.success_threshold",
            "must be at least 1 and at most breaker.half_open_probes",
        );
    }
    if b.window_ms < 1_000 {
        return bad("breaker.window_ms", "must be at least 1000");
    }
    let br = &b.redis;
    if !(br.url.starts_with("redis://") || br.url.starts_with("rediss://")) {
        return bad("breaker.redis.url", "must start with redis:// or rediss://");
    }
    if br.refresh_ms < 10 {
        return bad("breaker.redis.refresh_ms", "must be at least 10");
    }
    if br.timeout_ms == 0 {
        return bad("breaker.redis.timeout_ms", "must be at least 1");
    }
    let l = &cfg.rate_limit;
    if l.requests == 0 {
        return bad("rate_limit.requests", "must be at least 1");
    }
    if l.per_ms == 0 {
        return bad("rate_limit.per_ms", "must be at least 1");
    }
    let burst = if l.burst == 0 { l.requests } else { l.burst };
    if u128::from(burst) * u128::from(l.per_ms) / u128::from(l.requests)
        > u128::from(super::MAX_DURATION_MS)
    {
        return bad(
            "rate_limit.burst",
            "refilling a whole burst (burst * per_ms / requests) must take at most one year",
        );
    }
    if l.backend == RateLimitBackend::Redis
        && !(l.redis.url.starts_with("redis://") || l.redis.url.starts_with("rediss://"))
    {
        return bad(
            "rate_limit.redis.url",
            "must start with redis:// or rediss://",
        );
    }
    if l.redis.timeout_ms == 0 {
        return bad("rate_limit.redis.timeout_ms", "must be at least 1");
    }
    let a = &cfg.concurrency;
    if a.min_limit == 0 || a.min_limit > a.initial_limit || a.initial_limit > a.max_limit {
        return bad(
            "concurrency.initial_limit",
            "must satisfy 1 <= min_limit <= initial_limit <= max_limit",
        );
    }
    if !(a.backoff_ratio > 0.0 && a.backoff_ratio < 1.0) {
        return bad(
            "concurrency.backoff_ratio",
            "must be between 0 and 1 (exclusive)",
        );
    }
    if !(a.latency_tolerance.is_finite() && a.latency_tolerance >= 1.0) {
        return bad("concurrency.latency_tolerance", "must be a number >= 1.0");
    }
    Ok(())
}

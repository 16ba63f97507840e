//! Every knob of a client, with its default, in one serde tree.
//!
//! Bindings fill this same struct from their own map types (or JSON); an unknown key or a value
//! of the wrong type is an error naming the field (`pool.idle_timeout_ms`), never a silent default.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{self, Error};

mod resilience;
pub use resilience::{
    BreakerConfig, ConcurrencyConfig, HedgeConfig, RateLimitBackend, RateLimitConfig,
    RateLimitMode, RateLimitScope, RedisAlgorithm, RedisFailure, RedisLimitConfig,
    RetryBudgetConfig, RetryConfig,
};

/// Every knob of a [`Client`](crate::Client). Bindings fill this same struct from their own map
/// type; an unknown key is an error naming the key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Deadlines for each phase of a request.
    pub timeouts: TimeoutConfig,
    /// Connection pool limits and lifetimes.
    pub pool: PoolConfig,
    /// HTTP/2 settings.
    pub http2: Http2Config,
    /// TCP socket options and Happy Eyeballs.
    pub tcp: TcpConfig,
    /// TLS verification, roots and client certificates.
    pub tls: TlsConfig,
    /// DNS resolver and cache.
    pub dns: DnsConfig,
    /// Response decoding and request-body encoding.
    pub compression: CompressionConfig,
    /// Redirect following.
    pub redirect: RedirectConfig,
    /// Size limits and default headers.
    pub limits: LimitsConfig,
    /// Retries, backoff, retry budget and hedging.
    pub retry: RetryConfig,
    /// Circuit breakers per origin.
    pub breaker: BreakerConfig,
    /// Rate limits, local or shared through Redis.
    pub rate_limit: RateLimitConfig,
    /// Adaptive concurrency limits per origin.
    pub concurrency: ConcurrencyConfig,
    /// Headers sent with every request unless the request sets them.
    pub default_headers: std::collections::BTreeMap<String, String>,
    /// The `User-Agent` header. Default: `wirecore/<version>`.
    pub user_agent: String,
}

/// Deadlines for each phase of a request. Each expiry is a distinct error code. Every field is at
/// most [`MAX_DURATION_MS`] (one year); a per-request timeout (`RequestBuilder::timeout` and the
/// phase overrides) has no upper bound, and one too large to represent as a deadline means no
/// limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Whole request, including redirects and reading the body (`timeout.total`). 0 disables.
    /// At most one year. Default: 30_000.
    pub total_ms: u64,
    /// TCP connect, across all addresses (`timeout.connect`). At most one year. Default: 10_000.
    pub connect_ms: u64,
    /// TLS handshake (`timeout.tls`). At most one year. Default: 10_000.
    pub tls_handshake_ms: u64,
    /// Longest wait for the next byte of the response head or body (`timeout.read`). 0 disables.
    /// At most one year. Default: 0.
    pub read_idle_ms: u64,
    /// Longest wait for a connection from the pool when its limits are reached (`timeout.pool`).
    /// At most one year. Default: 10_000.
    pub pool_acquire_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            total_ms: 30_000,
            connect_ms: 10_000,
            tls_handshake_ms: 10_000,
            read_idle_ms: 0,
            pool_acquire_ms: 10_000,
        }
    }
}

/// Connection pool limits and lifetimes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Open connections across all origins. At most 1_000_000. Default: 100.
    pub max_connections: usize,
    /// Open connections to one origin (scheme, host, port). At most 1_000_000. Default: 50.
    pub max_connections_per_host: usize,
    /// Idle HTTP/1.1 connections kept per origin once traffic calms down. Connections over it
    /// are closed after 1 s idle (not at once, so a burst wider than the cap does not reconnect
    /// on every wave). 0 turns HTTP/1.1 keep-alive off. At most 1_000_000. Default: 10.
    pub max_idle_per_host: usize,
    /// Close a connection idle this long. At most one year. Default: 90_000.
    pub idle_timeout_ms: u64,
    /// Close a connection this old once it is idle. 0 disables. At most one year. Default: 0.
    pub max_lifetime_ms: u64,
    /// Requests allowed to wait for a connection per origin; beyond it they fail with
    /// `timeout.pool` at once. At most 1_000_000. Default: 10_000.
    pub max_pending_per_host: usize,
    /// Origins whose state (pool, breaker, limiter, retry budget, metrics labels) is kept.
    /// Beyond it the least recently used origin without connections or requests in flight is
    /// forgotten. At least 1, at most 1_000_000. Default: 1_024.
    pub max_origins: usize,
    /// Forget an origin's state once it has had no connection and no request for this long;
    /// 0 keeps it until `max_origins` pushes it out. At most one year. Default: 300_000.
    pub origin_idle_timeout_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 100,
            max_connections_per_host: 50,
            max_idle_per_host: 10,
            idle_timeout_ms: 90_000,
            max_lifetime_ms: 0,
            max_pending_per_host: 10_000,
            max_origins: 1_024,
            origin_idle_timeout_ms: 300_000,
        }
    }
}

/// HTTP/2 settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Config {
    /// Offer `h2` in ALPN over TLS. Default: true.
    pub enabled: bool,
    /// Speak HTTP/2 over cleartext without negotiation (h2c). Default: false.
    pub prior_knowledge: bool,
    /// Initial flow-control window of each stream, from 65_535 to 2^31-1. Default: 2 MiB
    /// (hyper's 64 KiB stalls throughput on any latency).
    pub initial_stream_window_bytes: u32,
    /// Initial flow-control window of the connection, from 65_535 to 2^31-1. Default: 4 MiB.
    pub initial_connection_window_bytes: u32,
    /// Streams opened per connection before the pool opens another, also capped by the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`. At most 2^31-1. Default: 256.
    pub max_concurrent_streams: u32,
    /// Interval of keep-alive PINGs; 0 disables. At most one year. Default: 30_000.
    pub keep_alive_interval_ms: u64,
    /// Close the connection when a PING is not answered within this time. At most one year.
    /// Default: 20_000.
    pub keep_alive_timeout_ms: u64,
    /// Largest frame accepted, from 16_384 to 16_777_215. Default: 16_384.
    pub max_frame_bytes: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            enabled: true,
            prior_knowledge: false,
            initial_stream_window_bytes: 2 * 1024 * 1024,
            initial_connection_window_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 256,
            keep_alive_interval_ms: 30_000,
            keep_alive_timeout_ms: 20_000,
            max_frame_bytes: 16_384,
        }
    }
}

/// TCP socket options and Happy Eyeballs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TcpConfig {
    /// Disable Nagle's algorithm. Default: true.
    pub nodelay: bool,
    /// TCP keep-alive idle time; 0 disables. At most 32_767_000 (Linux's limit). Default: 30_000.
    pub keepalive_ms: u64,
    /// Delay before racing the next address (RFC 8305 "connection attempt delay"). At most one
    /// year. Default: 250.
    pub happy_eyeballs_delay_ms: u64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            nodelay: true,
            keepalive_ms: 30_000,
            happy_eyeballs_delay_ms: 250,
        }
    }
}

/// Which root certificates verify servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RootStore {
    /// Mozilla's roots compiled in (webpki-roots).
    #[default]
    Webpki,
    /// The operating system's store.
    Native,
    /// Only `extra_ca_pem` / `ca_files`.
    None,
}

/// Lowest TLS version offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// TLS verification, roots and client certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Base set of roots. Default: `webpki`.
    pub roots: RootStore,
    /// Extra trusted CA certificates, PEM text.
    pub extra_ca_pem: Vec<String>,
    /// Extra trusted CA certificates, paths of PEM files.
    pub ca_files: Vec<String>,
    /// Client certificate chain (PEM text or a path to a PEM file) for mutual TLS.
    pub client_cert: Option<String>,
    /// Private key of the client certificate (PEM text or a path).
    pub client_key: Option<String>,
    /// Lowest version offered. Default: `"1.2"`.
    pub min_version: TlsVersion,
    /// Resume TLS sessions (tickets and session IDs). Default: true.
    pub session_resumption: Option<bool>,
    /// Accept any certificate. Dangerous: only for tests against self-signed servers.
    pub danger_accept_invalid_certs: bool,
}

impl TlsConfig {
    pub(crate) fn resumption(&self) -> bool {
        self.session_resumption.unwrap_or(true)
    }
}

/// DNS resolver and cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Cached names (LRU). 0 disables the cache. At most 100_000 (the cache's table is allocated
    /// up front). Default: 1000.
    pub cache_size: usize,
    /// Lower clamp on a record's TTL. At most one year. Default: 1_000.
    pub min_ttl_ms: u64,
    /// Upper clamp on a record's TTL. At most one year. Default: 300_000.
    pub max_ttl_ms: u64,
    /// How long a failed lookup (NXDOMAIN, no records) is remembered when the server gives no
    /// SOA TTL; also its upper clamp. At most one year. Default: 5_000.
    pub negative_ttl_ms: u64,
    /// Refresh an entry in the background when less than this fraction (percent) of its TTL is
    /// left and it is used. 0 disables. At most 100. Default: 10.
    pub refresh_before_expiry_percent: u8,
    /// Serve an expired entry for this long when the resolver fails. 0 disables. At most one
    /// year. Default: 300_000.
    pub serve_stale_ms: u64,
    /// Name servers (`"ip:port"`) instead of the system's `/etc/resolv.conf`.
    pub nameservers: Vec<String>,
    /// Timeout of one DNS query. At most one year. Default: 5_000.
    pub query_timeout_ms: u64,
    /// Consult `/etc/hosts`. Default: true.
    pub use_hosts_file: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            cache_size: 1000,
            min_ttl_ms: 1_000,
            max_ttl_ms: 300_000,
            negative_ttl_ms: 5_000,
            refresh_before_expiry_percent: 10,
            serve_stale_ms: 300_000,
            nameservers: Vec::new(),
            query_timeout_ms: 5_000,
            use_hosts_file: true,
        }
    }
}

/// A content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// gzip (RFC 1952).
    Gzip,
    /// zlib-wrapped deflate (RFC 1950).
    Deflate,
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
}

impl Encoding {
    /// The token used in `Content-Encoding` / `Accept-Encoding`.
    pub const fn token(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Br => "br",
            Self::Zstd => "zstd",
        }
    }
}

/// Response decoding and request-body encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionConfig {
    /// Codings offered in `Accept-Encoding` and decoded transparently. Empty disables.
    /// Default: gzip, deflate, br, zstd.
    pub accept: Vec<Encoding>,
    /// Coding for request bodies (`gzip` or `zstd`); none by default.
    pub request_encoding: Option<Encoding>,
    /// Encode request bodies at least this large. At most 2^53-1. Default: 1024.
    pub request_min_bytes: usize,
    /// Hosts that accept encoded request bodies (opt-in: most servers do not).
    pub request_hosts: Vec<String>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            accept: vec![
                Encoding::Gzip,
                Encoding::Deflate,
                Encoding::Br,
                Encoding::Zstd,
            ],
            request_encoding: None,
            request_min_bytes: 1024,
            request_hosts: Vec::new(),
        }
    }
}

/// Redirect following.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedirectConfig {
    /// Redirects followed before `too_many_redirects`; 0 returns 3xx responses as they are.
    /// At most 1_000. Default: 10.
    pub max: u32,
    /// Follows a redirect from `https` to `http`; `false` fails it with `redirect_downgrade`.
    /// Credentials and default headers never follow such a hop either way. Default: true (as
    /// curl, browsers and OkHttp).
    pub allow_downgrade: bool,
    /// Headers that may follow a redirect to another origin. Otherwise a cross-origin hop drops
    /// `Authorization`, `Cookie`, `Proxy-Authorization`, URL userinfo and every
    /// `default_headers` entry for the rest of the chain. Default: none.
    pub forward_headers: Vec<ForwardHeaders>,
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self {
            max: 10,
            allow_downgrade: true,
            forward_headers: Vec::new(),
        }
    }
}

/// Headers a redirect may carry to one origin (`redirect.forward_headers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardHeaders {
    /// The target origin, `scheme://host[:port]` (no path); a missing port is the scheme's
    /// default.
    pub origin: String,
    /// Header names (from the request, or from `default_headers`) sent to that origin after a
    /// redirect.
    pub headers: Vec<String>,
}

/// Size limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest response body after decoding (`body_too_large`); 0 means no limit. At most 2^53-1.
    /// Default: 1 GiB.
    pub max_response_body_bytes: u64,
    /// Largest response head (status line and headers). At most 16 MiB. Default: 64 KiB.
    pub max_response_header_bytes: usize,
    /// Largest ratio of decoded to compressed bytes of a response body (`body_too_large`), checked
    /// once 1 MiB has been decoded, so small bodies that compress well are never refused;
    /// 0 means no limit. At most 1_000_000. Default: 100.
    pub max_decompression_ratio: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_response_body_bytes: 1 << 30,
            max_response_header_bytes: 64 * 1024,
            max_decompression_ratio: 100,
        }
    }
}

/// Largest value of every duration field (`*_ms`): one year. Anything longer is a mistake, and
/// it keeps every deadline computed from config far from overflow.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// Largest value of byte counts that allocate nothing: 2^53-1, exact in every binding's numbers.
const MAX_EXACT: u64 = (1 << 53) - 1;

/// Largest value of the numeric fields, name by name (`make schema` documents each in its field's
/// doc comment). A test sets each field to its maximum and one beyond, and fails when a numeric
/// field is missing here.
#[expect(
    clippy::many_single_char_names,
    reason = "one letter per section keeps rows on one line"
)]
fn upper_bounds(c: &Config) -> [(&'static str, u64, u64); 61] {
    const D: u64 = MAX_DURATION_MS;
    const WINDOW: u64 = resilience::MAX_WINDOW_MS;
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    let (t, p, h2, dns) = (&c.timeouts, &c.pool, &c.http2, &c.dns);
    let (r, b, l, a) = (&c.retry, &c.breaker, &c.rate_limit, &c.concurrency);
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
        ("redirect.max", c.redirect.max.into(), 1_000),
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
    ]
}

pub(crate) fn ms(v: u64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v))
}

impl Config {
    /// Parses a config from JSON, naming the offending field on error.
    ///
    /// # Errors
    /// `invalid_config` for malformed JSON, unknown keys, wrong types and invalid values.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                error::config(format!("{inner}"))
            } else {
                error::config(format!("{path}: {inner}"))
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses a config from a `serde_json::Value` (as bindings build from native maps).
    ///
    /// # Errors
    /// As [`Config::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        let cfg: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            error::config(format!("{path}: {}", e.into_inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The largest value of every numeric field, by dotted name (`dns.cache_size`);
    /// [`Config::validate`] refuses anything larger, naming the field.
    pub fn upper_bounds() -> impl Iterator<Item = (&'static str, u64)> {
        upper_bounds(&Config::default())
            .into_iter()
            .map(|(field, _, max)| (field, max))
    }

    /// The JSON Schema of this config (committed as `core/config.schema.json`).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
    }

    /// Checks relations between fields that types cannot express.
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        fn bad(field: &str, why: &str) -> Result<(), Error> {
            Err(error::config(format!("{field}: {why}")))
        }
        if let Some((field, _, max)) = upper_bounds(self).into_iter().find(|(_, v, max)| v > max) {
            return bad(field, &format!("must be at most {max}"));
        }
        let p = &self.pool;
        if p.max_connections == 0 {
            return bad("pool.max_connections", "must be at least 1");
        }
        if p.max_connections_per_host == 0 {
            return bad("pool.max_connections_per_host", "must be at least 1");
        }
        if p.max_connections_per_host > p.max_connections {
            return bad(
                "pool.max_connections_per_host",
                "must not exceed pool.max_connections",
            );
        }
        if p.max_origins == 0 {
            return bad("pool.max_origins", "must be at least 1");
        }
        if self.timeouts.connect_ms == 0 {
            return bad("timeouts.connect_ms", "must be at least 1");
        }
        if self.timeouts.tls_handshake_ms == 0 {
            return bad("timeouts.tls_handshake_ms", "must be at least 1");
        }
        let h2 = &self.http2;
        if h2.max_concurrent_streams == 0 {
            return bad("http2.max_concurrent_streams", "must be at least 1");
        }
        if !(65_535..=(1 << 31) - 1).contains(&h2.initial_stream_window_bytes) {
            return bad(
                "http2.initial_stream_window_bytes",
                "must be between 65535 and 2^31-1",
            );
        }
        if !(65_535..=(1 << 31) - 1).contains(&h2.initial_connection_window_bytes) {
            return bad(
                "http2.initial_connection_window_bytes",
                "must be between 65535 and 2^31-1",
            );
        }
        if !(16_384..=16_777_215).contains(&h2.max_frame_bytes) {
            return bad(
                "http2.max_frame_bytes",
                "must be between 16384 and 16777215",
            );
        }
        if self.dns.min_ttl_ms > self.dns.max_ttl_ms {
            return bad("dns.min_ttl_ms", "must not exceed dns.max_ttl_ms");
        }
        if self.dns.refresh_before_expiry_percent > 100 {
            return bad("dns.refresh_before_expiry_percent", "must be at most 100");
        }
        for (i, ns) in self.dns.nameservers.iter().enumerate() {
            if ns.parse::<std::net::SocketAddr>().is_err()
                && ns.parse::<std::net::IpAddr>().is_err()
            {
                return bad(
                    &format!("dns.nameservers[{i}]"),
                    &format!("{ns:?} is not an IP address or ip:port"),
                );
            }
        }
        if let Some(enc) = self.compression.request_encoding
            && !matches!(enc, Encoding::Gzip | Encoding::Zstd)
        {
            return bad(
                "compression.request_encoding",
                "must be \"gzip\" or \"zstd\"",
            );
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return bad(
                "tls.client_cert",
                "client_cert and client_key must be given together",
            );
        }
        for (name, value) in &self.default_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return bad(
                    &format!("default_headers.{name}"),
                    "is not a valid header name",
                );
            }
            if http::HeaderValue::from_str(value).is_err() {
                return bad(
                    &format!("default_headers.{name}"),
                    "is not a valid header value",
                );
            }
        }
        crate::redirect::Rules::new(&self.redirect)?;
        if !self.user_agent.is_empty() && http::HeaderValue::from_str(&self.user_agent).is_err() {
            return bad("user_agent", "is not a valid header value");
        }
        if let Err((field, why)) = resilience::validate(self) {
            return bad(&field, why);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_follow_the_seeds() {
        let c = Config::default();
        assert_eq!(c.pool.max_connections, 100);
        assert_eq!(c.pool.max_connections_per_host, 50);
        assert_eq!(c.pool.max_idle_per_host, 10);
        assert_eq!(c.pool.idle_timeout_ms, 90_000);
        assert_eq!(c.timeouts.connect_ms, 10_000);
        assert_eq!(c.timeouts.tls_handshake_ms, 10_000);
        assert_eq!(c.tcp.keepalive_ms, 30_000);
        assert_eq!(c.timeouts.total_ms, 30_000);
        assert_eq!(c.redirect.max, 10);
        assert_eq!(c.dns.cache_size, 1000);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_field_is_named() {
        let e = Config::from_json(r#"{"pool": {"max_idle": 3}}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let msg = e.to_string();
        assert!(msg.contains("pool"), "{msg}");
        assert!(msg.contains("max_idle"), "{msg}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = Config::from_json(r#"{"timeouts": {"connect_ms": "soon"}}"#).unwrap_err();
        assert!(e.to_string().contains("timeouts.connect_ms"), "{e}");
    }

    #[test]
    fn negative_duration_is_named() {
        let e = Config::from_json(r#"{"pool": {"idle_timeout_ms": -5}}"#).unwrap_err();
        assert!(e.to_string().contains("pool.idle_timeout_ms"), "{e}");
        assert!(e.to_string().contains("-5"), "{e}");
    }

    #[test]
    fn relations_are_validated() {
        let e =
            Config::from_json(r#"{"pool": {"max_connections": 4, "max_connections_per_host": 8}}"#)
                .unwrap_err();
        assert!(
            e.to_string().contains("pool.max_connections_per_host"),
            "{e}"
        );
        let e = Config::from_json(r#"{"dns": {"nameservers": ["nope"]}}"#).unwrap_err();
        assert!(e.to_string().contains("dns.nameservers[0]"), "{e}");
    }

    #[test]
    fn origin_bounds_are_validated() {
        for (json, field) in [
            (r#"{"pool": {"max_origins": 0}}"#, "pool.max_origins"),
            (r#"{"pool": {"max_origins": 1000001}}"#, "pool.max_origins"),
            (
                r#"{"pool": {"origin_idle_timeout_ms": 18446744073709551615}}"#,
                "pool.origin_idle_timeout_ms",
            ),
        ] {
            let e = Config::from_json(json).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let c = Config::default();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(Config::from_json(&json).unwrap(), c);
    }

    /// Sets the field at dotted `path` of a config's JSON.
    fn set(v: &mut serde_json::Value, path: &str, n: u64) {
        let mut at = v;
        for key in path.split('.') {
            at = &mut at[key];
        }
        assert!(at.is_u64(), "{path} is not a number");
        *at = n.into();
    }

    /// Every numeric field at its maximum, with the policies that read them enabled.
    fn all_at_max() -> serde_json::Value {
        let mut v = serde_json::to_value(Config::default()).unwrap();
        for (field, max) in Config::upper_bounds() {
            set(&mut v, field, max);
        }
        for section in ["breaker", "rate_limit", "concurrency"] {
            v[section]["enabled"] = true.into();
        }
        v["retry"]["hedge"]["enabled"] = true.into();
        v
    }

    /// Dotted names of every integer leaf of a config's JSON.
    fn integer_fields(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    integer_fields(v, &name, out);
                }
            }
            serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => out.push(prefix.to_owned()),
            _ => {}
        }
    }

    #[test]
    fn every_numeric_field_has_an_upper_bound() {
        let mut fields = Vec::new();
        integer_fields(
            &serde_json::to_value(Config::default()).unwrap(),
            "",
            &mut fields,
        );
        let bounded: Vec<&str> = Config::upper_bounds().map(|(f, _)| f).collect();
        for f in &fields {
            assert!(
                bounded.contains(&f.as_str()),
                "{f} has no upper bound in upper_bounds()"
            );
        }
        assert_eq!(
            bounded.len(),
            fields.len(),
            "upper_bounds() names a field twice"
        );
    }

    #[test]
    fn each_field_beyond_its_bound_is_refused_by_name() {
        let base = all_at_max();
        Config::from_value(base.clone()).unwrap();
        for (field, max) in Config::upper_bounds() {
            for mut v in [
                base.clone(),
                serde_json::to_value(Config::default()).unwrap(),
            ] {
                set(&mut v, field, max + 1);
                let e = Config::from_value(v).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{field}");
                let want = format!("{field}: must be at most {max}");
                assert!(e.to_string().contains(&want), "{field}: {e}");
            }
        }
    }

    #[test]
    fn a_client_builds_with_every_field_at_its_maximum() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        let cfg = Config::from_value(all_at_max()).unwrap();
        let before = rss_kib();
        let client = crate::Client::from_config(cfg).unwrap();
        let grown = rss_kib().saturating_sub(before);
        assert!(grown < 64 * 1024, "building the client took {grown} KiB");
        drop(client);
    }

    #[test]
    fn rate_limit_bursts_refill_within_a_year() {
        let e = Config::from_json(
            r#"{"rate_limit": {"requests": 1, "per_ms": 31536000000, "burst": 2}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rate_limit.burst"), "{e}");
    }

    #[test]
    fn redis_urls_may_use_tls() {
        for url in ["redis://127.0.0.1:6379", "rediss://localhost:6380/0"] {
            let json =
                format!(r#"{{"rate_limit": {{"backend": "redis", "redis": {{"url": "{url}"}}}}}}"#);
            Config::from_json(&json).unwrap();
        }
        let e = Config::from_json(
            r#"{"rate_limit": {"backend": "redis", "redis": {"url": "http://x"}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rate_limit.redis.url"), "{e}");
    }

    #[test]
    fn committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.schema.json");
        let want = serde_json::to_string_pretty(&Config::json_schema()).unwrap() + "\n";
        if std::env::var_os("WIRECORE_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "core/config.schema.json is stale: run `make schema`"
        );
    }
}

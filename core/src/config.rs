//! Every knob of a client, with its default, in one serde tree.
//!
//! Bindings fill this same struct from their own map types (or JSON); an unknown key or a value
//! of the wrong type is an error naming the field (`pool.idle_timeout_ms`), never a silent default.
//!
//! Sections: `transport.rs` (pool, HTTP/2, TCP, TLS, DNS), `exchange.rs` (timeouts, compression,
//! redirects, limits), `resilience.rs` (retry, breaker, rate limit, concurrency), `cache.rs`,
//! `cookies.rs`, `otel.rs`, `balance.rs` (load-balanced services), `metrics.rs`; `bounds.rs` holds every
//! numeric field's upper bound (the services' own are checked in `balance.rs`, as a map has no
//! fixed field names).

mod balance;
mod bounds;
mod cache;
mod cookies;
mod dead_letter;
mod exchange;
mod metrics;
mod otel;
mod proxy;
mod resilience;
#[cfg(test)]
mod tests;
mod transport;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use self::balance::endpoint_url as balance_endpoint_url;
pub use self::balance::{
    DnsEndpointsConfig, EndpointConfig, HashKeyConfig, HealthCheckConfig, OutlierConfig,
    ServiceConfig, Strategy,
};
use self::bounds::upper_bounds;
pub use self::cache::{CacheConfig, CacheL2Config};
pub use self::cookies::CookieConfig;
pub use self::dead_letter::{DeadLetterConfig, DeadLetterRedisConfig};
pub use self::exchange::{
    CompressionConfig, Encoding, ForwardHeaders, LimitsConfig, RedirectConfig, TimeoutConfig,
};
pub use self::metrics::{MAX_LATENCY_BUCKETS, MetricsConfig};
pub use self::otel::OtelConfig;
pub use self::proxy::ProxyConfig;
pub use self::resilience::{
    BreakerConfig, BreakerRedisConfig, ConcurrencyConfig, HedgeConfig, RateLimitBackend,
    RateLimitConfig, RateLimitMode, RateLimitScope, RedisAlgorithm, RedisFailure, RedisLimitConfig,
    RetryBudgetConfig, RetryConfig,
};
pub use self::transport::{
    DnsConfig, Http2Config, PoolConfig, RootStore, TcpConfig, TlsConfig, TlsVersion,
};
use crate::error::{self, Error};

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
    /// The response cache (off by default).
    pub cache: CacheConfig,
    /// Requests that failed after every retry: a callback and a Redis stream.
    pub dead_letter: DeadLetterConfig,
    /// Metrics: the latency histogram's buckets.
    pub metrics: MetricsConfig,
    /// The cookie jar (off by default).
    pub cookies: CookieConfig,
    /// OpenTelemetry spans, `traceparent` and the duration metric (off by default).
    pub otel: OtelConfig,
    /// Headers sent with every request unless the request sets them.
    pub default_headers: std::collections::BTreeMap<String, String>,
    /// The `User-Agent` header. Default: `wirecore/<version>`.
    pub user_agent: String,
    /// Load-balanced services by name: a request to `http://NAME/...` goes to one of
    /// `services.NAME`'s endpoints; other URLs are unaffected. At most 1_000. Default: none.
    pub services: std::collections::BTreeMap<String, ServiceConfig>,
    /// Proxies (HTTP, SOCKS5), from here or `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`.
    pub proxy: ProxyConfig,
    /// Path of a Unix domain socket every connection goes to instead of TCP (as undici's
    /// `socketPath`); URLs still name the host and port sent in `Host`. `http://` URLs only
    /// (h2c with `http2.prior_knowledge`). Default: none.
    pub unix_socket: Option<String>,
    /// Absolute http(s) URL that a request URL starting with `/` is joined to, as httpx's
    /// `base_url`: the relative path is appended to this URL's path (`https://api/v1` and
    /// `/users` give `https://api/v1/users`). No query or fragment. Default: "" (none: a
    /// relative URL is `invalid_url`).
    pub base_url: String,
}
/// Largest value of every duration field (`*_ms`): one year. Anything longer is a mistake, and
/// it keeps every deadline computed from config far from overflow.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3_600 * 1_000;
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
        if h2.busy_streams_per_session == 0 {
            return bad("http2.busy_streams_per_session", "must be at least 1");
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
        if let Err((field, why)) = cache::validate(&self.cache) {
            return bad(field, why);
        }
        if self.cookies.max_cookies == 0 {
            return bad("cookies.max_cookies", "must be at least 1");
        }
        if let Err((field, why)) = dead_letter::validate(&self.dead_letter) {
            return bad(field, why);
        }
        if let Err((field, why)) = metrics::validate(&self.metrics) {
            return bad(field, why);
        }
        if let Err((field, why)) = resilience::validate(self) {
            return bad(&field, why);
        }
        if self.dns.overrides.len() > 1_000 {
            return bad("dns.overrides", "must have at most 1000 entries");
        }
        for (k, v) in &self.dns.overrides {
            if v.parse::<std::net::IpAddr>().is_err() {
                return bad(
                    &format!("dns.overrides.{k}"),
                    &format!("{v:?} is not an IP address"),
                );
            }
            if k.is_empty() || k.contains('/') {
                return bad(&format!("dns.overrides.{k}"), "is not a host or host:port");
            }
        }
        if !self.base_url.is_empty() {
            if let Err(e) = crate::request::parse_url(&self.base_url) {
                return bad("base_url", e.message());
            }
            if self.base_url.contains(['?', '#']) {
                return bad("base_url", "must not have a query or fragment");
            }
        }
        if let Some(path) = &self.unix_socket
            && (path.is_empty() || path.len() > 107)
        {
            return bad("unix_socket", "must be a path of 1 to 107 bytes");
        }
        if let Err((field, why)) = otel::validate(&self.otel)
            .and_then(|()| proxy::validate(&self.proxy))
            .and_then(|()| balance::validate(&self.services))
        {
            return bad(&field, &why);
        }
        Ok(())
    }
}

//! Config section of the response cache.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest stored response body: one entry is read whole into memory (and into one Redis value).
pub(crate) const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// The RFC 9111 response cache (GET and HEAD), in memory. Off by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Cache responses at all. Default: false.
    pub enabled: bool,
    /// Shared-cache rules (`s-maxage`, `private` not stored), as a proxy would apply them;
    /// otherwise a private cache (one user's client). Default: false.
    pub shared: bool,
    /// Memory for cached responses, bodies and headers; the least useful entries are evicted
    /// beyond it. At most 2^53-1. Default: 64 MiB.
    pub max_bytes: u64,
    /// Largest response body stored; larger responses pass through uncached. At most 64 MiB and
    /// at most `max_bytes`. Default: 1 MiB.
    pub max_entry_bytes: u64,
    /// Freshness of a response with `Last-Modified` but no explicit lifetime, as a percentage
    /// of its age when received (RFC 9111 §4.2.2). At most 100. Default: 10.
    pub heuristic_percent: u32,
    /// Identical concurrent GETs that miss share one upstream request, each caller getting
    /// its own body (answers up to `max_entry_bytes`; not for requests with
    /// `Cache-Control: no-store`). Default: true.
    pub coalesce: bool,
    /// A second level shared through Redis by every process with the same `l2.key_prefix`
    /// (off while `l2.url` is empty).
    pub l2: CacheL2Config,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            shared: false,
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
            heuristic_percent: 10,
            coalesce: true,
            l2: CacheL2Config::default(),
        }
    }
}

/// The cache's second level in Redis: read when memory misses (a hit fills memory), written
/// when a response is stored. Entries use a documented, language-neutral format
/// (`docs/cache-l2-format.md`). Only what a shared cache may keep goes there: no `private` or
/// `Set-Cookie` responses, none that vary on `Authorization` or `Cookie`. A failing or slow Redis
/// is skipped, counted in `stats().cache.l2_errors` and `l2_bypassed`; requests go on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CacheL2Config {
    /// `redis://host:port/db`, or `rediss://` for TLS (verified with the same roots as `tls`);
    /// empty: no second level. Default: "".
    pub url: String,
    /// Prefix of every key; the rest is the method, a space and the URL. Default:
    /// "wirecore:cache:".
    pub key_prefix: String,
    /// Largest response body written to Redis; larger ones stay in memory only. At most 64 MiB.
    /// Default: 256 KiB.
    pub max_entry_bytes: u64,
    /// How long Redis keeps an entry that has validators (`ETag`, `Last-Modified`) past its
    /// freshness, so it can still be revalidated: its TTL is the freshness lifetime plus this
    /// (or plus its `stale-while-revalidate` / `stale-if-error` window when longer). At most one
    /// year. Default: 86_400_000 (a day).
    pub stale_ttl_ms: u64,
    /// Longest wait for one Redis read or write; beyond it the request goes on without the
    /// second level. At least 1, at most one year. Default: 50.
    pub timeout_ms: u64,
    /// After a Redis failure or timeout, the second level is skipped for this long before it is
    /// tried again. At most one year. Default: 1_000.
    pub retry_after_ms: u64,
}

impl Default for CacheL2Config {
    fn default() -> Self {
        Self {
            url: String::new(),
            key_prefix: "wirecore:cache:".to_owned(),
            max_entry_bytes: 256 << 10,
            stale_ttl_ms: 86_400_000,
            timeout_ms: 50,
            retry_after_ms: 1_000,
        }
    }
}

/// The cache section's own rules beyond the upper bounds: (field, problem).
pub(super) fn validate(c: &CacheConfig) -> Result<(), (&'static str, &'static str)> {
    if c.max_entry_bytes > c.max_bytes {
        return Err(("cache.max_entry_bytes", "must not exceed cache.max_bytes"));
    }
    let l2 = &c.l2;
    let redis_url = l2.url.starts_with("redis://") || l2.url.starts_with("rediss://");
    if !l2.url.is_empty() && !redis_url {
        return Err((
            "cache.l2.url",
            "must be empty or start with redis:// or rediss://",
        ));
    }
    if l2.timeout_ms == 0 {
        return Err(("cache.l2.timeout_ms", "must be at least 1"));
    }
    if l2.key_prefix.len() > 1024 {
        return Err(("cache.l2.key_prefix", "must be at most 1024 bytes"));
    }
    Ok(())
}

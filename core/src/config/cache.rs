//! Config section of the response cache.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest stored response body: a cached entry is weighed in `u32` units by the store.
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
        }
    }
}

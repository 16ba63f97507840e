//! Config sections of one exchange: timeouts, compression, redirects, size limits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::MAX_DURATION_MS;

/// Deadlines for each phase of a request. Each expiry is a distinct error code. Every field is at
/// most [`MAX_DURATION_MS`] (one year), and so is each per-request override
/// (`wirecore::RequestOptions`).
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

//! Config sections of connections: pool, HTTP/2, TCP, TLS, DNS.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// HTTP/2 connections the pool opens to one origin for load: when every open one carries
    /// `busy_streams_per_session` requests, a new request opens one more, and new streams go
    /// to the least loaded. Each connection is driven by its own task, so throughput scales
    /// with cores; extra connections close after a second idle. 1 keeps one connection until
    /// `max_concurrent_streams` fills it. 0: one per engine worker thread, at most 8. Also
    /// bounded by `pool.max_connections_per_host`. At most 1_000_000. Default: 0.
    pub max_sessions_per_host: u32,
    /// Requests in flight on every HTTP/2 connection to an origin at which the pool opens
    /// another (see `max_sessions_per_host`), from 1 to 2^31-1. Default: 32.
    pub busy_streams_per_session: u32,
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
            max_sessions_per_host: 0,
            busy_streams_per_session: 32,
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
    /// Static addresses, as curl `--resolve`: `"host:port"` or `"host"` → IP address, used
    /// instead of DNS (`host:port` first). At most 1_000 entries. Default: none.
    pub overrides: std::collections::BTreeMap<String, String>,
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
            overrides: std::collections::BTreeMap::new(),
        }
    }
}

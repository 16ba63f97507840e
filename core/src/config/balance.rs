//! Config of load-balanced services (`Config.services`): a request to `http://NAME/path`, where
//! `services.NAME` exists, goes to one of that service's endpoints (see `crate::balance`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most services in one config.
pub(super) const MAX_SERVICES: usize = 1_000;
/// Most endpoints of one service.
pub(super) const MAX_ENDPOINTS: usize = 10_000;
/// Largest endpoint weight.
pub(super) const MAX_WEIGHT: u32 = 1_000;

/// A named service: several endpoints, one balancing strategy.
///
/// Addressing: a URL whose scheme is `http` or `https`, whose host is the service name and which
/// has no port (`http://payments/charge?id=1`) is sent to an endpoint: the endpoint's scheme,
/// host, port and path prefix replace the URL's scheme and authority, the URL's path and query
/// follow. Every other URL is sent as it is. Each endpoint is its own origin (pool, breaker,
/// stats); a retry goes to another endpoint when one is available.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The endpoints: base URLs (`http://10.0.0.1:8080`, optionally with a path prefix) with
    /// weights. At most 10_000. Either these or `dns`.
    pub endpoints: Vec<EndpointConfig>,
    /// Endpoints from DNS instead of a list: every address of a name is an endpoint. Default:
    /// none.
    pub dns: Option<DnsEndpointsConfig>,
    /// How an endpoint is picked. Default: `p2c_peak_ewma`.
    pub strategy: Strategy,
    /// Where `consistent_hash` finds a request's key: its explicit balancing key first, then
    /// this header, then this cookie; a request without a key goes to a random endpoint.
    pub hash: HashKeyConfig,
    /// `consistent_hash` never gives an endpoint more than this percentage of the average
    /// number of requests in flight per endpoint (bounded load; the key moves on along the
    /// ring). From 100 to 1_000. Default: 125.
    pub hash_load_factor_percent: u32,
    /// Decay time of `p2c_peak_ewma`'s latency average: a peak is forgotten over about this
    /// long. From 1 to one year. Default: 10_000.
    pub ewma_decay_ms: u64,
    /// Latency `p2c_peak_ewma` assumes for an endpoint not yet measured (low, so new endpoints
    /// are tried). At most one year. Default: 1.
    pub ewma_default_rtt_ms: u64,
    /// Passive outlier ejection: endpoints that fail are left out for a while.
    pub outlier: OutlierConfig,
    /// Active health checks: endpoints that fail a periodic probe are left out until it
    /// passes again.
    pub health_check: HealthCheckConfig,
    /// When fewer than this percentage of the endpoints are available (not ejected, not
    /// unhealthy), requests are balanced over all of them rather than over the few (Envoy's
    /// panic threshold). At most 100; 0 never panics. Default: 50.
    pub panic_threshold_percent: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            dns: None,
            strategy: Strategy::P2cPeakEwma,
            hash: HashKeyConfig::default(),
            hash_load_factor_percent: 125,
            ewma_decay_ms: 10_000,
            ewma_default_rtt_ms: 1,
            outlier: OutlierConfig::default(),
            health_check: HealthCheckConfig::default(),
            panic_threshold_percent: 50,
        }
    }
}

/// Passive outlier ejection (Envoy's model): an endpoint is ejected after consecutive
/// failures, or when its success rate falls far below the others'; it returns after
/// `base_ejection_ms` × (times ejected), at most `max_ejection_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// Eject at all. Default: true.
    pub enabled: bool,
    /// Consecutive 5xx answers that eject; 0 disables the rule. At most 1_000_000. Default: 5.
    pub consecutive_5xx: u32,
    /// Consecutive 502, 503 or 504 answers that eject; 0 disables the rule. At most
    /// 1_000_000. Default: 0.
    pub consecutive_gateway_errors: u32,
    /// Consecutive transport failures (refused, reset, timed out) that eject; 0 disables the
    /// rule. At most 1_000_000. Default: 5.
    pub consecutive_connect_failures: u32,
    /// Length of the success-rate window; the rule is evaluated at its end. From 1 to one
    /// year. Default: 10_000.
    pub interval_ms: u64,
    /// Requests an endpoint needs in a window to be judged by its success rate; 0 disables
    /// the success-rate rule. At most 1_000_000. Default: 100.
    pub success_rate_min_requests: u32,
    /// Endpoints with that volume needed before the success-rate rule applies. At most
    /// 10_000. Default: 5.
    pub success_rate_min_endpoints: u32,
    /// An endpoint is ejected when its success rate is below mean − this / 100 × standard
    /// deviation of the endpoints' rates. At most 100_000. Default: 190.
    pub success_rate_stdev_factor_percent: u32,
    /// First ejection time; the n-th lasts n times as long. From 1 to one year. Default:
    /// 30_000.
    pub base_ejection_ms: u64,
    /// Longest ejection. At most one year. Default: 300_000.
    pub max_ejection_ms: u64,
    /// At most this percentage of the endpoints is ejected at once (always at least one).
    /// At most 100. Default: 10.
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive_5xx: 5,
            consecutive_gateway_errors: 0,
            consecutive_connect_failures: 5,
            interval_ms: 10_000,
            success_rate_min_requests: 100,
            success_rate_min_endpoints: 5,
            success_rate_stdev_factor_percent: 190,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejection_percent: 10,
        }
    }
}

/// Active health checks: every `interval_ms` (± `jitter_percent`), a GET of `path` on each
/// endpoint; `unhealthy_threshold` failures in a row take it out, `healthy_threshold`
/// successes in a row bring it back. They run on the engine's runtime and stop when the
/// client closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Check at all. Default: false.
    pub enabled: bool,
    /// Path (and query) requested on each endpoint, after its path prefix. Default:
    /// `/health`.
    pub path: String,
    /// Time between checks of an endpoint. From 1 to one year. Default: 10_000.
    pub interval_ms: u64,
    /// A check not answered within this fails. From 1 to one year. Default: 1_000.
    pub timeout_ms: u64,
    /// Successes in a row that make an unhealthy endpoint healthy. From 1 to 1_000.
    /// Default: 2.
    pub healthy_threshold: u32,
    /// Failures in a row that make a healthy endpoint unhealthy. From 1 to 1_000. Default: 3.
    pub unhealthy_threshold: u32,
    /// Statuses that pass. Default: `[200]`.
    pub expected_statuses: Vec<u16>,
    /// Each wait is the interval ± up to this percentage, so checks of many clients spread
    /// out. At most 100. Default: 10.
    pub jitter_percent: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: "/health".to_owned(),
            interval_ms: 10_000,
            timeout_ms: 1_000,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            expected_statuses: vec![200],
            jitter_percent: 10,
        }
    }
}

/// A service whose endpoints are the addresses of a DNS name: each A and AAAA answer is an
/// endpoint `http://ADDRESS:PORT`. The name is resolved through the client's DNS cache (and
/// its `dns` settings) when the client starts and again each time the answer's TTL runs out
/// (clamped by `dns.min_ttl_ms` and `dns.max_ttl_ms`, at least every 100 ms): endpoints
/// appear and go live. Requests in flight finish on the endpoint they picked; an address that
/// stays keeps its stats, breaker and connections. When a lookup fails the endpoints stay as
/// they were. Plain `http` only: TLS would check the certificate against the address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsEndpointsConfig {
    /// The host name to resolve (`payments.internal`).
    pub name: String,
    /// The port of every endpoint, 1 to 65535.
    pub port: u16,
    /// Weight of every endpoint. From 1 to 1_000. Default: 1.
    #[serde(default = "one")]
    pub weight: u32,
}

/// One endpoint of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL: `http` or `https`, a host, an optional port and path prefix; no query,
    /// fragment or userinfo.
    pub url: String,
    /// Share of requests relative to the other endpoints (`weighted_round_robin`,
    /// `p2c_peak_ewma`, `consistent_hash`). From 1 to 1_000. Default: 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// How an endpoint is picked for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each endpoint in turn.
    RoundRobin,
    /// Each endpoint in turn, `weight` times as often, interleaved (nginx's smooth weighted
    /// round robin).
    WeightedRoundRobin,
    /// The endpoint with the fewest requests in flight (ties broken in turn).
    LeastOutstanding,
    /// Two endpoints at random, the one with the lower peak-EWMA latency × (requests in flight
    /// + 1) / weight (linkerd, Finagle).
    P2cPeakEwma,
    /// A hash ring with virtual nodes over the request's key, with bounded load.
    ConsistentHash,
}

/// Where a `consistent_hash` service reads a request's key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HashKeyConfig {
    /// A request header whose value is the key. Default: none.
    pub header: Option<String>,
    /// A cookie (in the request's `Cookie` header) whose value is the key. Default: none.
    pub cookie: Option<String>,
}

/// Checks the services: names, endpoint URLs, numbers.
pub(super) fn validate(
    services: &std::collections::BTreeMap<String, ServiceConfig>,
) -> Result<(), (String, String)> {
    let bad = |field: String, why: &str| Err((field, why.to_owned()));
    if services.len() > MAX_SERVICES {
        return bad(
            "services".into(),
            &format!("at most {MAX_SERVICES} services"),
        );
    }
    for (name, s) in services {
        let at = |f: &str| format!("services.{name}{f}");
        if !valid_name(name) {
            return bad(
                at(""),
                "a service name is a lower-case host name (letters, digits, '-' and '.')",
            );
        }
        match &s.dns {
            None if s.endpoints.is_empty() => {
                return bad(
                    at(".endpoints"),
                    "must list at least one endpoint (or give dns)",
                );
            }
            None => {}
            Some(_) if !s.endpoints.is_empty() => {
                return bad(at(".dns"), "give either endpoints or dns, not both");
            }
            Some(d) => validate_dns(d).map_err(|(f, why)| (at(&format!(".dns.{f}")), why))?,
        }
        if s.endpoints.len() > MAX_ENDPOINTS {
            return bad(
                at(".endpoints"),
                &format!("must list at most {MAX_ENDPOINTS} endpoints"),
            );
        }
        for (i, e) in s.endpoints.iter().enumerate() {
            if let Err(why) = endpoint_url(&e.url) {
                return bad(at(&format!(".endpoints[{i}].url")), &why);
            }
            if !(1..=MAX_WEIGHT).contains(&e.weight) {
                return bad(
                    at(&format!(".endpoints[{i}].weight")),
                    &format!("must be between 1 and {MAX_WEIGHT}"),
                );
            }
        }
        if !(100..=1_000).contains(&s.hash_load_factor_percent) {
            return bad(
                at(".hash_load_factor_percent"),
                "must be between 100 and 1000",
            );
        }
        if !(1..=super::MAX_DURATION_MS).contains(&s.ewma_decay_ms) {
            return bad(
                at(".ewma_decay_ms"),
                &format!("must be between 1 and {}", super::MAX_DURATION_MS),
            );
        }
        if s.ewma_default_rtt_ms > super::MAX_DURATION_MS {
            return bad(
                at(".ewma_default_rtt_ms"),
                &format!("must be at most {}", super::MAX_DURATION_MS),
            );
        }
        if s.panic_threshold_percent > 100 {
            return bad(at(".panic_threshold_percent"), "must be at most 100");
        }
        validate_outlier(&s.outlier).map_err(|(f, why)| (at(&format!(".outlier.{f}")), why))?;
        validate_health(&s.health_check)
            .map_err(|(f, why)| (at(&format!(".health_check.{f}")), why))?;
        if let Some(h) = &s.hash.header
            && http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return bad(at(".hash.header"), "is not a valid header name");
        }
        if s.hash.cookie.as_ref().is_some_and(String::is_empty) {
            return bad(at(".hash.cookie"), "must not be empty");
        }
    }
    Ok(())
}

fn validate_dns(d: &DnsEndpointsConfig) -> Result<(), (&'static str, String)> {
    let name = d.name.trim_end_matches('.');
    if name.is_empty() {
        return Err(("name", "must not be empty".to_owned()));
    }
    if name.len() > 253
        || name.starts_with(['.', '-'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(("name", format!("{:?} is not a host name", d.name)));
    }
    if d.port == 0 {
        return Err(("port", "must be between 1 and 65535".to_owned()));
    }
    if !(1..=MAX_WEIGHT).contains(&d.weight) {
        return Err(("weight", format!("must be between 1 and {MAX_WEIGHT}")));
    }
    Ok(())
}

fn validate_outlier(o: &OutlierConfig) -> Result<(), (&'static str, String)> {
    const D: u64 = super::MAX_DURATION_MS;
    let counts = [
        ("consecutive_5xx", o.consecutive_5xx, 1_000_000),
        (
            "consecutive_gateway_errors",
            o.consecutive_gateway_errors,
            1_000_000,
        ),
        (
            "consecutive_connect_failures",
            o.consecutive_connect_failures,
            1_000_000,
        ),
        (
            "success_rate_min_requests",
            o.success_rate_min_requests,
            1_000_000,
        ),
        (
            "success_rate_min_endpoints",
            o.success_rate_min_endpoints,
            10_000,
        ),
        (
            "success_rate_stdev_factor_percent",
            o.success_rate_stdev_factor_percent,
            100_000,
        ),
        ("max_ejection_percent", o.max_ejection_percent, 100),
    ];
    for (f, v, max) in counts {
        if v > max {
            return Err((f, format!("must be at most {max}")));
        }
    }
    for (f, v) in [
        ("interval_ms", o.interval_ms),
        ("base_ejection_ms", o.base_ejection_ms),
    ] {
        if !(1..=D).contains(&v) {
            return Err((f, format!("must be between 1 and {D}")));
        }
    }
    if o.max_ejection_ms > D {
        return Err(("max_ejection_ms", format!("must be at most {D}")));
    }
    if o.max_ejection_ms < o.base_ejection_ms {
        return Err((
            "max_ejection_ms",
            "must not be less than base_ejection_ms".to_owned(),
        ));
    }
    Ok(())
}

fn validate_health(h: &HealthCheckConfig) -> Result<(), (&'static str, String)> {
    const D: u64 = super::MAX_DURATION_MS;
    if !h.path.starts_with('/') || h.path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(("path", "must be a path starting with '/'".to_owned()));
    }
    for (f, v) in [("interval_ms", h.interval_ms), ("timeout_ms", h.timeout_ms)] {
        if !(1..=D).contains(&v) {
            return Err((f, format!("must be between 1 and {D}")));
        }
    }
    for (f, v) in [
        ("healthy_threshold", h.healthy_threshold),
        ("unhealthy_threshold", h.unhealthy_threshold),
    ] {
        if !(1..=1_000).contains(&v) {
            return Err((f, "must be between 1 and 1000".to_owned()));
        }
    }
    if h.expected_statuses.is_empty()
        || h.expected_statuses.iter().any(|s| !(100..=599).contains(s))
    {
        return Err((
            "expected_statuses",
            "must list statuses within 100..=599".to_owned(),
        ));
    }
    if h.jitter_percent > 100 {
        return Err(("jitter_percent", "must be at most 100".to_owned()));
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Parses an endpoint's base URL, or says what is wrong with it.
pub(crate) fn endpoint_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url:?}: the scheme must be http or https"));
    }
    let Some(auth) = uri.authority() else {
        return Err(format!("{url:?} has no host"));
    };
    if auth.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if auth.as_str().contains('@') {
        return Err(format!("{url:?}: userinfo is not allowed"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("{url:?}: a query or fragment is not allowed"));
    }
    Ok(uri)
}

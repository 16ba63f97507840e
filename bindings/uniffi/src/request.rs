//! A request as Kotlin passes it: method, URL, headers, body, and [`RequestOptions`], turned
//! into a `wirecore::Request` (every option checked here, before any I/O).

use std::time::Duration;

use crate::error::WirecoreError;

/// One header: a name and a value (a request or a response may repeat a name).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Per-request options; every field left `null` takes the client's config.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct RequestOptions {
    /// Total timeout of this request in milliseconds (above 0).
    #[uniffi(default)]
    pub timeout_ms: Option<i64>,
    /// Overrides `timeouts.connect_ms` for this request.
    #[uniffi(default)]
    pub connect_timeout_ms: Option<i64>,
    /// Overrides `timeouts.read_idle_ms` for this request.
    #[uniffi(default)]
    pub read_timeout_ms: Option<i64>,
    /// Overrides `timeouts.pool_acquire_ms` for this request.
    #[uniffi(default)]
    pub pool_timeout_ms: Option<i64>,
    /// Whether the request may be retried as if idempotent.
    #[uniffi(default)]
    pub idempotent: Option<bool>,
    /// The key a keyed rate limit counts this request under.
    #[uniffi(default)]
    pub rate_limit_key: Option<String>,
    /// The key a `consistent_hash` service places this request by.
    #[uniffi(default)]
    pub balance_key: Option<String>,
    /// An RFC 9218 priority: `"u=1, i"`, `"high"`, `"2"`.
    #[uniffi(default)]
    pub priority: Option<String>,
    /// fetch's cache mode: `default`, `no-store`, `reload`, `no-cache`, `force-cache`,
    /// `only-if-cached`.
    #[uniffi(default)]
    pub cache: Option<String>,
    /// `follow`, `manual` or `error`.
    #[uniffi(default)]
    pub redirect: Option<String>,
    /// The most redirects this request follows.
    #[uniffi(default)]
    pub max_redirects: Option<i64>,
    /// Whether the config's `default_headers` are sent (default true).
    #[uniffi(default)]
    pub default_headers: Option<bool>,
    /// The caller's W3C `traceparent`: the parent of this request's span (config `otel`), sent
    /// unchanged when tracing is off.
    #[uniffi(default)]
    pub traceparent: Option<String>,
    /// The `tracestate` that goes with `traceparent`.
    #[uniffi(default)]
    pub tracestate: Option<String>,
}

fn millis(what: &str, ms: i64) -> Result<Duration, wirecore::Error> {
    // The core's `RequestOptions::validate` bounds the value; only the sign is checked here.
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(wirecore::Error::new(
            wirecore::ErrorKind::InvalidRequest,
            format!("{what} must be a number of milliseconds above 0, got {ms}"),
        )),
    }
}

fn build(
    method: &str,
    url: &str,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
    x: Option<RequestOptions>,
) -> Result<wirecore::Request, wirecore::Error> {
    let mut req = wirecore::Request::new(wirecore::parse_method(method)?, url)?;
    let map = req.headers_mut();
    map.reserve(headers.len());
    for h in headers {
        let (n, v) = wirecore::parse_header(&h.name, &h.value)?;
        map.append(n, v);
    }
    if let Some(b) = body {
        *req.body_mut() = wirecore::RequestBody::from(bytes::Bytes::from(b));
    }
    let x = x.unwrap_or_default();
    let o = req.options_mut();
    o.timeout = x.timeout_ms.map(|t| millis("timeoutMs", t)).transpose()?;
    o.connect_timeout = x
        .connect_timeout_ms
        .map(|t| millis("connectTimeoutMs", t))
        .transpose()?;
    o.read_timeout = x
        .read_timeout_ms
        .map(|t| millis("readTimeoutMs", t))
        .transpose()?;
    o.pool_timeout = x
        .pool_timeout_ms
        .map(|t| millis("poolTimeoutMs", t))
        .transpose()?;
    o.idempotent = x.idempotent;
    o.rate_limit_key = x.rate_limit_key;
    o.balance_key = x.balance_key;
    o.traceparent = x.traceparent;
    o.tracestate = x.tracestate;
    if let Some(p) = x.priority {
        o.priority = Some(wirecore::Priority::parse(&p)?);
    }
    if let Some(p) = x.redirect {
        o.redirect = Some(wirecore::RedirectPolicy::parse(&p)?);
    }
    if let Some(n) = x.max_redirects {
        o.max_redirects = Some(wirecore::RequestOptions::checked_max_redirects(n)?);
    }
    if let Some(m) = x.cache {
        o.cache = wirecore::CacheMode::parse(&m)?;
    }
    // Here, not when sent: a bad value throws where it was given, before any I/O.
    o.validate()?;
    if let Some(d) = x.default_headers {
        *req.default_headers_mut() = d;
    }
    Ok(req)
}

/// The request, or the error Kotlin throws for its first bad part.
pub(crate) fn request(
    method: &str,
    url: &str,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
    options: Option<RequestOptions>,
) -> Result<wirecore::Request, WirecoreError> {
    build(method, url, headers, body, options).map_err(WirecoreError::from)
}

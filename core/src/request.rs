//! A request and its builder. Everything is validated here, before any I/O.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use crate::body::RequestBody;
use crate::error::{self, Error, ErrorKind};

/// One HTTP request.
#[derive(Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: RequestBody,
    pub(crate) timeout: Option<Duration>,
    /// Overrides the idempotency guess from the method (retries and hedging).
    pub(crate) idempotent: Option<bool>,
    /// The key of `rate_limit.scope = "key"`.
    pub(crate) rate_limit_key: Option<String>,
    /// Overrides of the config's phase timeouts.
    pub(crate) phases: PhaseTimeouts,
    /// Whether the client's `default_headers` go out with this request.
    pub(crate) default_headers: bool,
}

/// Per-request overrides of the phase timeouts under `timeouts.*`; `None` keeps the config's.
/// (The total timeout is [`Request::timeout_mut`].) A duration too large to represent as a
/// deadline (`Duration::MAX`) means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseTimeouts {
    /// TCP connect of a connection this request opens (`timeouts.connect_ms`).
    pub connect: Option<Duration>,
    /// Longest silence while waiting for response bytes, head or body (`timeouts.read_idle_ms`).
    pub read_idle: Option<Duration>,
    /// Longest wait for a pooled connection (`timeouts.pool_acquire_ms`).
    pub pool: Option<Duration>,
}

/// Parses and checks a URL: absolute, http or https, with a host. Accepts what browsers accept
/// (spaces, IDN hosts) by normalising through the WHATWG parser when `http::Uri` refuses.
pub fn parse_url(url: &str) -> Result<Uri, Error> {
    let uri = match url.parse::<Uri>() {
        Ok(u) if u.scheme().is_some() => u,
        _ => {
            let parsed = url::Url::parse(url).map_err(|e| {
                error::url(format!("invalid URL {:?}: {e}", error::redact_str(url)))
            })?;
            parsed
                .as_str()
                .parse::<Uri>()
                .map_err(|e| error::url(format!("invalid URL {:?}: {e}", error::redact_str(url))))?
        }
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(s) => {
            return Err(error::url(format!(
                "unsupported URL scheme {s:?} in {:?} (http and https only)",
                error::redact_str(url)
            )));
        }
        None => {
            return Err(error::url(format!(
                "URL {:?} has no scheme",
                error::redact_str(url)
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(error::url(format!(
            "URL {:?} has no host",
            error::redact_str(url)
        )));
    }
    Ok(uri)
}

impl Request {
    /// A request without body.
    ///
    /// # Errors
    /// `invalid_url` when the URL is malformed or not http/https.
    pub fn new(method: Method, url: &str) -> Result<Self, Error> {
        Ok(Self {
            method,
            uri: parse_url(url)?,
            headers: HeaderMap::new(),
            body: RequestBody::empty(),
            timeout: None,
            idempotent: None,
            rate_limit_key: None,
            phases: PhaseTimeouts::default(),
            default_headers: true,
        })
    }

    /// A request from parts already validated (`http::Request`).
    pub fn from_http<B: Into<RequestBody>>(req: http::Request<B>) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let uri = parse_url(&parts.uri.to_string())?;
        Ok(Self {
            method: parts.method,
            uri,
            headers: parts.headers,
            body: body.into(),
            timeout: None,
            idempotent: None,
            rate_limit_key: None,
            phases: PhaseTimeouts::default(),
            default_headers: true,
        })
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body, to replace.
    pub fn body_mut(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// The per-request total timeout, overriding `timeouts.total_ms`.
    pub fn timeout_mut(&mut self) -> &mut Option<Duration> {
        &mut self.timeout
    }

    /// Per-request overrides of the connect, read-idle and pool timeouts.
    pub fn phase_timeouts_mut(&mut self) -> &mut PhaseTimeouts {
        &mut self.phases
    }

    /// Declares the request safe (`Some(true)`) or unsafe to repeat; `None` decides by method
    /// and `Idempotency-Key`.
    pub fn idempotent_mut(&mut self) -> &mut Option<bool> {
        &mut self.idempotent
    }

    /// The rate-limit key (see [`crate::RequestBuilder::rate_limit_key`]).
    pub fn rate_limit_key_mut(&mut self) -> &mut Option<String> {
        &mut self.rate_limit_key
    }

    /// Whether the client's `default_headers` go out with this request (default true;
    /// `User-Agent` always does). A binding whose host follows redirects itself (Go's
    /// `http.Client`, httpx) turns them off once a redirect chain has left its first origin,
    /// as the engine does when it follows redirects.
    pub fn default_headers_mut(&mut self) -> &mut bool {
        &mut self.default_headers
    }

    /// Sets the RFC 9218 `Priority` header (`u=<urgency>`, plus `, i` when `incremental`).
    /// Urgency 0 is the most urgent, 7 the least; 3 is the default. Besides telling the server,
    /// the urgency orders this request among those waiting for a connection to its origin.
    ///
    /// # Errors
    /// `invalid_request` when `urgency` is over 7.
    pub fn set_priority(&mut self, urgency: u8, incremental: bool) -> Result<(), Error> {
        if urgency > 7 {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("priority urgency must be 0 (most urgent) to 7 (least), got {urgency}"),
            ));
        }
        let v = if incremental {
            format!("u={urgency}, i")
        } else {
            format!("u={urgency}")
        };
        self.headers.insert(
            http::header::HeaderName::from_static("priority"),
            HeaderValue::try_from(v).map_err(|_| error::header("invalid priority".to_owned()))?,
        );
        Ok(())
    }
}

/// The urgency every request has unless its `Priority` header says otherwise (RFC 9218 §4.1).
pub const DEFAULT_URGENCY: u8 = 3;

/// The urgency of a request from its `Priority` header (RFC 9218): the `u` member of the
/// structured-field dictionary, 0 (most urgent) to 7. Missing, malformed or out-of-range values
/// mean [`DEFAULT_URGENCY`], as the RFC asks of a recipient.
#[must_use]
pub fn urgency(headers: &HeaderMap) -> u8 {
    static PRIORITY: http::HeaderName = http::HeaderName::from_static("priority");
    let mut u = DEFAULT_URGENCY;
    // Several header lines form one dictionary; a later member overrides an earlier one.
    for v in headers.get_all(&PRIORITY) {
        let Ok(v) = v.to_str() else { continue };
        for member in v.split(',') {
            let member = member.trim();
            let Some(rest) = member.strip_prefix("u=") else {
                continue;
            };
            // Parameters (`;a=b`) after the value are allowed and ignored.
            let value = rest.split(';').next().unwrap_or("").trim();
            u = match value.parse::<u8>() {
                Ok(n) if n <= 7 => n,
                _ => DEFAULT_URGENCY,
            };
        }
    }
    u
}

/// Parses a method name.
///
/// # Errors
/// `invalid_request` when the name is not a valid token.
pub fn parse_method(m: &str) -> Result<Method, Error> {
    Method::from_bytes(m.as_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidRequest, format!("invalid method {m:?}")))
}

/// Parses a header pair, naming the bad part.
///
/// # Errors
/// `invalid_header`.
pub fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| error::header(format!("invalid header name {name:?}")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| error::header(format!("invalid value for header {name:?}")))?;
    Ok((n, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_io() {
        assert_eq!(
            parse_url("ftp://x/").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            parse_url("not a url").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            parse_url("/relative").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            parse_url("http://").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert!(parse_url("http://example.com/a b").is_ok());
        let e = parse_url("ftp://user:pw@host/").unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn urgency_follows_rfc_9218() {
        let of = |vals: &[&str]| {
            let mut h = HeaderMap::new();
            for v in vals {
                h.append("priority", HeaderValue::from_str(v).unwrap());
            }
            urgency(&h)
        };
        assert_eq!(of(&[]), 3);
        assert_eq!(of(&["u=0"]), 0);
        assert_eq!(of(&["i, u=6"]), 6);
        assert_eq!(of(&["u=1;x=2, i"]), 1);
        assert_eq!(of(&["u=9"]), 3, "out of range means the default");
        assert_eq!(of(&["u=high"]), 3);
        assert_eq!(of(&["u=1", "u=5"]), 5, "the last member wins");
        let mut r = Request::new(Method::GET, "http://h/").unwrap();
        r.set_priority(0, true).unwrap();
        assert_eq!(r.headers()["priority"], "u=0, i");
        assert_eq!(urgency(r.headers()), 0);
        let e = r.set_priority(8, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(e.to_string().contains("got 8"), "{e}");
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            parse_header("bad name", "x").unwrap_err().kind(),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            parse_header("x-ok", "line\nbreak").unwrap_err().kind(),
            ErrorKind::InvalidHeader
        );
        assert!(parse_header("x-ok", "fine").is_ok());
    }
}

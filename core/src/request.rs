//! A request and its builder. Everything is validated here, before any I/O.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use crate::body::RequestBody;
use crate::error::{self, Error, ErrorKind};

mod options;

pub use options::{
    CacheMode, MAX_RATE_LIMIT_KEY_BYTES, MAX_REDIRECTS, PRIORITY_WORDS, Priority, RedirectPolicy,
    RequestOptions,
};

/// One HTTP request.
#[derive(Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: RequestBody,
    pub(crate) options: RequestOptions,
    /// Whether the client's `default_headers` go out with this request.
    pub(crate) default_headers: bool,
}

/// The request's overrides of the phase timeouts under `timeouts.*` (from its
/// [`RequestOptions`]); `None` keeps the config's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PhaseTimeouts {
    pub(crate) connect: Option<Duration>,
    pub(crate) read_idle: Option<Duration>,
    pub(crate) pool: Option<Duration>,
}

impl From<&RequestOptions> for PhaseTimeouts {
    fn from(o: &RequestOptions) -> Self {
        Self {
            connect: o.connect_timeout,
            read_idle: o.read_timeout,
            pool: o.pool_timeout,
        }
    }
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
    check_absolute(&uri, || url.to_owned())?;
    Ok(uri)
}

/// What [`parse_url`] asks of a parsed URL: http or https, with a host. `url` gives the URL
/// the errors name (only for an error: formatting a `Uri` allocates).
fn check_absolute(uri: &Uri, url: impl Fn() -> String) -> Result<(), Error> {
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(s) => {
            return Err(error::url(format!(
                "unsupported URL scheme {s:?} in {:?} (http and https only)",
                error::redact_str(&url())
            )));
        }
        None => {
            return Err(error::url(format!(
                "URL {:?} has no scheme",
                error::redact_str(&url())
            )));
        }
    }
    if !has_host(uri) {
        return Err(error::url(format!(
            "URL {:?} has no host",
            error::redact_str(&url())
        )));
    }
    Ok(())
}

/// `uri.host()` is not empty: what follows the last `@` of the authority neither is empty nor
/// starts with the port's `:` (an IPv6 host starts with `[`). A scan of a few bytes, where
/// `Uri::host` splits the authority twice (~400 instructions, on every request of a bench).
fn has_host(uri: &Uri) -> bool {
    let Some(a) = uri.authority() else {
        return false;
    };
    let a = a.as_str().as_bytes();
    let host_port = match a.iter().rposition(|&b| b == b'@') {
        Some(i) => &a[i + 1..],
        None => a,
    };
    host_port.first().is_some_and(|&b| b != b':')
}

/// What [`Request::new`] accepts of a URL already parsed: absolute (see [`parse_url`]), or a
/// path and query starting with `/` (not `//`) and nothing else.
fn check_target(uri: &Uri) -> Result<(), Error> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return check_absolute(uri, || uri.to_string());
    }
    match uri.path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') && !pq.as_str().starts_with("//") => Ok(()),
        _ => Err(error::url(format!(
            "URL {:?} is neither absolute nor a path starting with /",
            error::redact_str(&uri.to_string())
        ))),
    }
}

/// A request's URL: absolute (see [`parse_url`]), or a path starting with `/` (not `//`) that
/// the client joins to its `base_url` when the request is executed.
fn parse_target(url: &str) -> Result<Uri, Error> {
    if !url.starts_with('/') || url.starts_with("//") {
        return parse_url(url);
    }
    if let Ok(u) = url.parse::<Uri>()
        && u.scheme().is_none()
    {
        return Ok(u);
    }
    // Percent-encode what `http::Uri` refuses (spaces), as `parse_url` does.
    let bad = |e: &dyn std::fmt::Display| {
        error::url(format!("invalid URL {:?}: {e}", error::redact_str(url)))
    };
    let joined = url::Url::parse("http://relative.invalid")
        .and_then(|b| b.join(url))
        .map_err(|e| bad(&e))?;
    let pq = match joined.query() {
        Some(q) => format!("{}?{q}", joined.path()),
        None => joined.path().to_owned(),
    };
    pq.parse::<Uri>().map_err(|e| bad(&e))
}

/// `rel` (a path and query) appended to `base`'s path, as httpx's `base_url`.
pub(crate) fn join_base(base: &Uri, rel: &Uri) -> Result<Uri, Error> {
    let pq = rel
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let prefix = base.path().trim_end_matches('/');
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", http::uri::Authority::as_str);
    parse_url(&format!("{scheme}://{authority}{prefix}{pq}"))
}

impl Request {
    /// A request without body. `url` is absolute, or a path starting with `/` that the client
    /// joins to its `base_url`.
    ///
    /// # Errors
    /// `invalid_url` when the URL is malformed or not http/https.
    pub fn new(method: Method, url: &str) -> Result<Self, Error> {
        Ok(Self::bare(method, parse_target(url)?))
    }

    /// A request without body to a URL already parsed, as [`Request::new`] without parsing
    /// the text again: a caller sending many requests to one URL (a load generator, a
    /// binding's prepared request) parses it once and clones the `Uri`, which shares its
    /// bytes.
    ///
    /// # Errors
    /// `invalid_url` for what [`Request::new`] refuses: a scheme other than http or https, no
    /// host, or a relative URL that is not a path starting with `/`.
    pub fn from_uri(method: Method, uri: Uri) -> Result<Self, Error> {
        check_target(&uri)?;
        Ok(Self::bare(method, uri))
    }

    /// A request to a URL already checked, with no headers, body or options of its own.
    fn bare(method: Method, uri: Uri) -> Self {
        Self {
            method,
            uri,
            headers: HeaderMap::new(),
            body: RequestBody::empty(),
            options: RequestOptions::default(),
            default_headers: true,
        }
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
            options: RequestOptions::default(),
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

    /// The per-request engine options (timeouts, idempotency, rate-limit key, priority).
    pub fn options(&self) -> &RequestOptions {
        &self.options
    }

    /// The per-request engine options, to change; checked by [`RequestOptions::validate`] when
    /// the request is executed.
    pub fn options_mut(&mut self) -> &mut RequestOptions {
        &mut self.options
    }

    /// Whether the client's `default_headers` go out with this request (default true;
    /// `User-Agent` always does). A binding whose host follows redirects itself (Go's
    /// `http.Client`, httpx) turns them off once a redirect chain has left its first origin,
    /// as the engine does when it follows redirects.
    pub fn default_headers_mut(&mut self) -> &mut bool {
        &mut self.default_headers
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

/// The `Authorization` value of HTTP Basic credentials (RFC 7617): `Basic ` and the base64 of
/// `user:password` in UTF-8 (no password: `user:`), marked sensitive. What
/// `RequestBuilder::basic_auth` sets; bindings that build their own headers use it (Node's
/// `auth` option, C's `wirecore_request_set_basic_auth`).
///
/// # Errors
/// `invalid_request` (never for UTF-8 input: base64 is always a valid header value).
pub fn basic_auth(user: &str, password: Option<&str>) -> Result<HeaderValue, Error> {
    let creds = format!("{user}:{}", password.unwrap_or(""));
    crate::redirect::basic(creds.as_bytes())
        .ok_or_else(|| Error::new(ErrorKind::InvalidRequest, "basic_auth: not a header value"))
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
    fn a_parsed_url_is_checked_as_its_text_is() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        for ok in ["http://a/x?y", "https://a:8443", "/path?q", "/"] {
            let r = Request::from_uri(Method::GET, uri(ok)).unwrap();
            let same = Request::new(Method::GET, ok).unwrap();
            assert_eq!(r.uri(), same.uri(), "{ok}");
            assert!(r.headers().is_empty() && r.default_headers, "{ok}");
        }
        for bad in ["ftp://a/x", "a:80", "*", "//a/x"] {
            let e = Request::from_uri(Method::GET, uri(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{bad}");
            assert!(Request::new(Method::GET, bad).is_err(), "{bad}");
        }
        let e = Request::from_uri(Method::GET, uri("ftp://user:pw@host/")).unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn has_host_agrees_with_uri_host() {
        let mut checked = 0;
        for u in [
            "http://a/",
            "http://a:80/",
            "http://u:p@a:80/",
            "http://u@a",
            "http://[::1]:8080/",
            "http://u:p@[::1]/",
            "http://:80/",
            "http://u@:80/",
            "http://u@/",
            "/path",
        ] {
            let Ok(uri) = u.parse::<Uri>() else { continue };
            let expected = uri.host().is_some_and(|h| !h.is_empty());
            assert_eq!(has_host(&uri), expected, "{u}");
            checked += 1;
        }
        assert!(checked >= 7, "{checked}");
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

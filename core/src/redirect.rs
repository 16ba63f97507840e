//! Redirect rules: the method and body of the next hop (RFC 9110 §15.4), and which headers may
//! follow a hop to another origin.
//!
//! Credentials (`Authorization`, `Cookie`, `Proxy-Authorization`, URL userinfo) and every
//! configured default header stay with the origin they were sent to: once a redirect crosses
//! origins they are gone for the rest of the chain, except the ones `redirect.forward_headers`
//! names for the target origin.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::config::RedirectConfig;
use crate::error::{self, Error};

/// What the next hop does with the method and body of this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hop {
    /// Same method, same body (a body that cannot be replayed stops the chain).
    Keep,
    /// `GET` without body.
    Get,
    /// Same method (`HEAD`) without body.
    DropBody,
}

/// The rule for a redirect status, or `None` when the status is not followed.
pub(crate) fn hop(status: StatusCode, method: &Method) -> Option<Hop> {
    match status {
        // Historic user agents turn POST into GET on 301/302; every other method is kept.
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND if *method == Method::POST => {
            Some(Hop::Get)
        }
        StatusCode::MOVED_PERMANENTLY
        | StatusCode::FOUND
        | StatusCode::TEMPORARY_REDIRECT
        | StatusCode::PERMANENT_REDIRECT => Some(Hop::Keep),
        StatusCode::SEE_OTHER if *method == Method::HEAD => Some(Hop::DropBody),
        StatusCode::SEE_OTHER => Some(Hop::Get),
        _ => None,
    }
}

/// Headers that describe a body; removed with it.
pub(crate) fn drop_body_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
}

fn is_https(u: &Uri) -> bool {
    u.scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
}

fn port(u: &Uri) -> u16 {
    u.port_u16().unwrap_or(if is_https(u) { 443 } else { 80 })
}

/// Same scheme, host and port, a missing port being the scheme's default.
pub(crate) fn same_origin(a: &Uri, b: &Uri) -> bool {
    is_https(a) == is_https(b)
        && port(a) == port(b)
        && match (a.host(), b.host()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => false,
        }
}

/// An https URL redirecting to a plaintext one.
pub(crate) fn is_downgrade(from: &Uri, to: &Uri) -> bool {
    is_https(from) && !is_https(to)
}

/// The credential headers a request carries itself, stripped on a cross-origin hop.
const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// `redirect.*` of the config, parsed once per client.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    pub(crate) allow_downgrade: bool,
    forward: Vec<Forward>,
}

#[derive(Debug)]
struct Forward {
    https: bool,
    host: String,
    port: u16,
    headers: Vec<HeaderName>,
}

impl Rules {
    /// # Errors
    /// `invalid_config` naming the bad entry (normally caught by `Config::validate`).
    pub(crate) fn new(cfg: &RedirectConfig) -> Result<Self, Error> {
        let mut forward = Vec::with_capacity(cfg.forward_headers.len());
        for (i, f) in cfg.forward_headers.iter().enumerate() {
            let field = format!("redirect.forward_headers[{i}]");
            let (https, host, port) = parse_origin(&f.origin)
                .map_err(|why| error::config(format!("{field}.origin: {why}")))?;
            if f.headers.is_empty() {
                return Err(error::config(format!(
                    "{field}.headers: must name at least one header"
                )));
            }
            let mut headers = Vec::with_capacity(f.headers.len());
            for (j, name) in f.headers.iter().enumerate() {
                let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    error::config(format!(
                        "{field}.headers[{j}]: {name:?} is not a valid header name"
                    ))
                })?;
                headers.push(n);
            }
            forward.push(Forward {
                https,
                host,
                port,
                headers,
            });
        }
        Ok(Self {
            allow_downgrade: cfg.allow_downgrade,
            forward,
        })
    }

    /// The headers the config lets follow a redirect to `to`'s origin.
    fn forwarded<'a>(&'a self, to: &'a Uri) -> impl Iterator<Item = &'a HeaderName> + 'a {
        let (https, p) = (is_https(to), port(to));
        let host = to.host().unwrap_or_default();
        self.forward
            .iter()
            .filter(move |f| f.https == https && f.port == p && f.host.eq_ignore_ascii_case(host))
            .flat_map(|f| f.headers.iter())
    }
}

/// Parses `scheme://host[:port]` into (https, lowercase host, port).
pub(crate) fn parse_origin(origin: &str) -> Result<(bool, String, u16), String> {
    let u = url::Url::parse(origin).map_err(|e| format!("{origin:?} is not a URL: {e}"))?;
    let https = match u.scheme() {
        "https" => true,
        "http" => false,
        s => return Err(format!("scheme {s:?} is not http or https")),
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not contain userinfo".to_owned());
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{origin:?} must be an origin only (scheme://host[:port], no path)"
        ));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{origin:?} has no host"))?;
    let port = u
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    Ok((https, host.to_ascii_lowercase(), port))
}

/// The credential state of a redirect chain after its first cross-origin hop: the credentials
/// taken from the request, kept only so a `forward_headers` origin can have them back.
#[derive(Debug, Default)]
pub(crate) struct Stripped {
    taken: HeaderMap,
    /// Headers put back for the current origin, removed again at the next hop.
    restored: Vec<HeaderName>,
}

impl Stripped {
    /// The state of a chain that left its first origin before this request, as a binding whose
    /// host follows redirects itself reports it: of the configured defaults, only those
    /// forwarded to `to` go into `headers`. The request's own headers are its host's business
    /// (Go's `http.Client` strips credentials and fills cookies from its jar per hop).
    pub(crate) fn entered(
        headers: &mut HeaderMap,
        rules: &Rules,
        defaults: &HeaderMap,
        to: &Uri,
    ) -> Self {
        let mut s = Self::default();
        for name in rules.forwarded(to) {
            if headers.contains_key(name) {
                continue;
            }
            let mut any = false;
            for v in defaults.get_all(name) {
                headers.append(name.clone(), v.clone());
                any = true;
            }
            if any {
                s.restored.push(name.clone());
            }
        }
        s
    }

    /// Sets `headers` for a hop to `to` once the chain has crossed origins: no credentials and
    /// no configured defaults (the caller stops merging them), except those forwarded to `to`.
    pub(crate) fn apply(
        &mut self,
        headers: &mut HeaderMap,
        rules: &Rules,
        defaults: &HeaderMap,
        to: &Uri,
    ) {
        for name in self.restored.drain(..) {
            headers.remove(name);
        }
        for name in CREDENTIALS {
            if let header::Entry::Occupied(e) = headers.entry(name) {
                let (name, values) = e.remove_entry_mult();
                for v in values {
                    self.taken.append(name.clone(), v);
                }
            }
        }
        for name in rules.forwarded(to) {
            if headers.contains_key(name) {
                continue;
            }
            let from = if self.taken.contains_key(name) {
                &self.taken
            } else {
                defaults
            };
            let mut any = false;
            for v in from.get_all(name) {
                headers.append(name.clone(), v.clone());
                any = true;
            }
            if any {
                self.restored.push(name.clone());
            }
        }
    }
}

/// Takes userinfo out of `uri` (it must never reach `Host` or `:authority`) and returns it as
/// `Authorization: Basic` (percent-decoded `user:password`, as curl does).
///
/// # Errors
/// `invalid_url` when the URL without its userinfo does not parse (not expected).
pub(crate) fn take_userinfo(uri: &Uri) -> Result<Option<(Uri, HeaderValue)>, Error> {
    let Some(auth) = uri.authority() else {
        return Ok(None);
    };
    let Some((userinfo, host)) = auth.as_str().rsplit_once('@') else {
        return Ok(None);
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(
        host.parse()
            .map_err(|_| error::url(format!("invalid host in {}", error::redact(uri))))?,
    );
    let clean = Uri::from_parts(parts)
        .map_err(|_| error::url(format!("invalid URL {}", error::redact(uri))))?;
    let mut token = b"Basic ".to_vec();
    base64_into(&percent_decode(userinfo), &mut token);
    let mut value = HeaderValue::from_bytes(&token)
        .map_err(|_| error::url(format!("invalid userinfo in {}", error::redact(uri))))?;
    value.set_sensitive(true);
    Ok(Some((clean, value)))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `Basic base64(credentials)`, marked sensitive.
pub(crate) fn basic(credentials: &[u8]) -> Option<HeaderValue> {
    let mut token = b"Basic ".to_vec();
    base64_into(credentials, &mut token);
    let mut value = HeaderValue::from_bytes(&token).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn base64_into(input: &[u8], out: &mut Vec<u8>) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | u32::from(c) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn method_rules_follow_rfc_9110() {
        use StatusCode as S;
        assert_eq!(hop(S::MOVED_PERMANENTLY, &Method::POST), Some(Hop::Get));
        assert_eq!(hop(S::FOUND, &Method::PUT), Some(Hop::Keep));
        assert_eq!(hop(S::SEE_OTHER, &Method::PUT), Some(Hop::Get));
        assert_eq!(hop(S::SEE_OTHER, &Method::HEAD), Some(Hop::DropBody));
        assert_eq!(hop(S::TEMPORARY_REDIRECT, &Method::POST), Some(Hop::Keep));
        assert_eq!(hop(S::PERMANENT_REDIRECT, &Method::PATCH), Some(Hop::Keep));
        assert_eq!(hop(S::NOT_MODIFIED, &Method::GET), None);
        assert_eq!(hop(S::MULTIPLE_CHOICES, &Method::GET), None);
    }

    #[test]
    fn origins_compare_normalized() {
        assert!(same_origin(&uri("http://a:80/x"), &uri("http://A/y")));
        assert!(same_origin(&uri("https://a/"), &uri("https://a:443/")));
        assert!(!same_origin(&uri("https://a/"), &uri("http://a:443/")));
        assert!(!same_origin(&uri("http://a/"), &uri("http://a:8080/")));
        assert!(!same_origin(&uri("http://a/"), &uri("http://b/")));
        assert!(is_downgrade(&uri("https://a/"), &uri("http://a/")));
        assert!(!is_downgrade(&uri("http://a/"), &uri("https://a/")));
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        let (clean, auth) = take_userinfo(&uri("http://user:p%40ss@h:8/x?q"))
            .unwrap()
            .unwrap();
        assert_eq!(clean, "http://h:8/x?q");
        // base64("user:p@ss")
        assert_eq!(auth, "Basic dXNlcjpwQHNz");
        assert!(take_userinfo(&uri("http://h/")).unwrap().is_none());
        let mut out = Vec::new();
        base64_into(b"ab", &mut out);
        assert_eq!(out, b"YWI=");
        out.clear();
        base64_into(b"a", &mut out);
        assert_eq!(out, b"YQ==");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }

    #[test]
    fn forward_origins_are_validated() {
        assert_eq!(
            parse_origin("https://API.example.com:443").unwrap(),
            (true, "api.example.com".to_owned(), 443)
        );
        assert!(parse_origin("ftp://a").is_err());
        assert!(parse_origin("http://a/path").is_err());
        assert!(parse_origin("http://u:p@a").is_err());
        assert!(parse_origin("nope").is_err());
    }

    #[test]
    fn stripped_headers_come_back_only_where_forwarded() {
        let cfg: RedirectConfig = serde_json::from_value(serde_json::json!({
            "forward_headers": [{"origin": "http://b", "headers": ["authorization", "x-key"]}]
        }))
        .unwrap();
        let rules = Rules::new(&cfg).unwrap();
        let mut defaults = HeaderMap::new();
        defaults.insert("x-key", HeaderValue::from_static("k"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s"));
        h.insert(header::COOKIE, HeaderValue::from_static("c=1"));
        h.insert("x-other", HeaderValue::from_static("o"));
        let mut st = Stripped::default();
        st.apply(&mut h, &rules, &defaults, &uri("http://c/"));
        assert!(!h.contains_key(header::AUTHORIZATION));
        assert!(!h.contains_key(header::COOKIE));
        assert!(!h.contains_key("x-key"));
        assert_eq!(h["x-other"], "o");
        st.apply(&mut h, &rules, &defaults, &uri("http://B:80/"));
        assert_eq!(h[header::AUTHORIZATION], "Bearer s");
        assert_eq!(h["x-key"], "k");
        assert!(!h.contains_key(header::COOKIE));
        st.apply(&mut h, &rules, &defaults, &uri("http://d/"));
        assert!(!h.contains_key(header::AUTHORIZATION));
        assert!(!h.contains_key("x-key"));
    }
}

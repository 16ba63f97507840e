//! The cookie jar (`cookies.enabled`): RFC 6265 storage and matching from `cookie_store`.
//!
//! Cookies are scoped by host (and `Domain`), path and `Secure`, not by port, as RFC 6265 says.
//! The redirect loop asks for each hop's cookies by that hop's URL, so a cookie set by one host
//! never goes to another; a `Cookie` header the caller set wins name by name over the jar's.

use std::sync::Mutex;

use cookie_store::{CookieDomain, CookieExpiration, CookieStore};
use http::HeaderMap;
use http::header::{self, HeaderValue};
use serde::Serialize;

use crate::config::CookieConfig;

/// One cookie in a client's jar (see [`Client::cookies`](crate::Client::cookies)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cookie {
    /// The cookie's name.
    pub name: String,
    /// Its value, as the server set it.
    pub value: String,
    /// The host it was set by (`host_only`) or its `Domain` attribute, lower case.
    pub domain: String,
    /// Whether it goes to `domain` alone rather than to its subdomains too (no `Domain`).
    pub host_only: bool,
    /// The path prefix it is sent for.
    pub path: String,
    /// Sent over https only.
    pub secure: bool,
    /// The server's `HttpOnly` (kept, and meaningless to a client without scripts).
    pub http_only: bool,
    /// The server's `SameSite` (`Strict`, `Lax` or `None`), kept as given.
    pub same_site: Option<String>,
    /// When it expires, in milliseconds since the Unix epoch; `None` for a session cookie
    /// (kept until the client is dropped or the jar cleared).
    pub expires_ms: Option<i64>,
}

pub(crate) struct Jar {
    store: Mutex<CookieStore>,
    max: usize,
}

impl Jar {
    pub(crate) fn new(cfg: &CookieConfig) -> Option<Jar> {
        cfg.enabled.then(|| Jar {
            store: Mutex::new(CookieStore::new()),
            max: usize::try_from(cfg.max_cookies).unwrap_or(usize::MAX),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CookieStore> {
        // A panic while holding the lock leaves a consistent store: every mutation is one call.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `headers` with the jar's cookies for `uri` added; `None` when the jar has none.
    pub(crate) fn headers_for(&self, uri: &http::Uri, headers: &HeaderMap) -> Option<HeaderMap> {
        let url = to_url(uri)?;
        let store = self.lock();
        // `cookie_store` counts loopback http as secure (as browsers do); here `Secure` means
        // https, as RFC 6265 §5.4 leaves to the client, so a test on 127.0.0.1 sees what
        // production sees.
        let https = url.scheme() == "https";
        let mut found: Vec<_> = store
            .matches(&url)
            .into_iter()
            .filter(|c| https || !c.secure().unwrap_or(false))
            .collect();
        if found.is_empty() {
            return None;
        }
        // RFC 6265 §5.4: longer paths first, then earlier set first (the store keeps insertion
        // order; the sort is stable).
        found.sort_by_key(|c| std::cmp::Reverse(String::from(&c.path).len()));
        let mut own: Vec<&str> = Vec::new();
        let mut value = String::new();
        for v in headers.get_all(header::COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            for pair in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                own.push(pair.split_once('=').map_or(pair, |(n, _)| n).trim());
                if !value.is_empty() {
                    value.push_str("; ");
                }
                value.push_str(pair);
            }
        }
        let mut added = false;
        for c in found {
            if own.contains(&c.name()) {
                continue;
            }
            if !value.is_empty() {
                value.push_str("; ");
            }
            value.push_str(c.name());
            value.push('=');
            value.push_str(c.value());
            added = true;
        }
        drop(store);
        if !added {
            return None;
        }
        let value = HeaderValue::from_str(&value).ok()?;
        let mut out = headers.clone();
        out.insert(header::COOKIE, value);
        Some(out)
    }

    /// Stores every `Set-Cookie` of a response to `uri`.
    pub(crate) fn store(&self, uri: &http::Uri, headers: &HeaderMap) {
        let mut set = headers.get_all(header::SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Some(url) = to_url(uri) else { return };
        let mut store = self.lock();
        for v in set {
            let Ok(v) = v.to_str() else { continue };
            let Ok(cookie) = cookie_store::Cookie::parse(v, &url) else {
                continue;
            };
            let cookie = cookie.into_owned();
            let domain = String::from(&cookie.domain);
            let known = store.contains_any(&domain, &String::from(&cookie.path), cookie.name());
            if !known && store.iter_any().count() >= self.max {
                purge_expired(&mut store);
                if store.iter_any().count() >= self.max {
                    continue;
                }
            }
            // Refused cookies (a `Domain` the host does not match, expired and unknown) are
            // ignored, as RFC 6265 §5.3 says.
            let _ = store.insert(cookie, &url);
        }
    }

    pub(crate) fn list(&self) -> Vec<Cookie> {
        let store = self.lock();
        store
            .iter_unexpired()
            .map(|c| Cookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: String::from(&c.domain),
                host_only: matches!(c.domain, CookieDomain::HostOnly(_)),
                path: String::from(&c.path),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
                expires_ms: match &c.expires {
                    CookieExpiration::AtUtc(t) => {
                        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
                    }
                    CookieExpiration::SessionEnd => None,
                },
            })
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

fn purge_expired(store: &mut CookieStore) {
    let expired: Vec<(String, String, String)> = store
        .iter_any()
        .filter(|c| c.is_expired())
        .map(|c| {
            (
                String::from(&c.domain),
                String::from(&c.path),
                c.name().to_owned(),
            )
        })
        .collect();
    for (d, p, n) in expired {
        store.remove(&d, &p, &n);
    }
}

fn to_url(uri: &http::Uri) -> Option<url::Url> {
    url::Url::parse(&uri.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(max: u64) -> Jar {
        Jar::new(&CookieConfig {
            enabled: true,
            max_cookies: max,
        })
        .unwrap()
    }

    fn set(jar: &Jar, url: &str, cookies: &[&str]) {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        jar.store(&url.parse().unwrap(), &h);
    }

    fn sent(jar: &Jar, url: &str, own: Option<&str>) -> Option<String> {
        let mut h = HeaderMap::new();
        if let Some(v) = own {
            h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        }
        jar.headers_for(&url.parse().unwrap(), &h)
            .map(|h| h[header::COOKIE].to_str().unwrap().to_owned())
    }

    #[test]
    fn off_by_default() {
        assert!(Jar::new(&CookieConfig::default()).is_none());
    }

    #[test]
    fn callers_cookie_wins_by_name_and_the_rest_are_added() {
        let j = jar(10);
        set(&j, "http://a.test/", &["s=jar", "t=2"]);
        assert_eq!(
            sent(&j, "http://a.test/", Some("s=mine; u=3")).as_deref(),
            Some("s=mine; u=3; t=2")
        );
        assert_eq!(sent(&j, "http://a.test/", Some("s=1; t=1")), None);
    }

    #[test]
    fn longer_paths_go_first() {
        let j = jar(10);
        set(&j, "http://a.test/", &["a=1; Path=/", "b=2; Path=/x/y"]);
        assert_eq!(
            sent(&j, "http://a.test/x/y/z", None).as_deref(),
            Some("b=2; a=1")
        );
    }

    #[test]
    fn domain_attribute_reaches_subdomains_but_not_other_hosts() {
        let j = jar(10);
        set(&j, "http://www.a.test/", &["d=1; Domain=a.test", "h=2"]);
        assert_eq!(sent(&j, "http://api.a.test/", None).as_deref(), Some("d=1"));
        assert_eq!(sent(&j, "http://b.test/", None), None);
        // A Domain the host is not within is refused.
        set(&j, "http://www.a.test/", &["x=1; Domain=b.test"]);
        assert_eq!(sent(&j, "http://b.test/", None), None);
    }

    #[test]
    fn a_full_jar_ignores_new_cookies_but_updates_known_ones() {
        let j = jar(2);
        set(&j, "http://a.test/", &["a=1", "b=1", "c=1", "a=2"]);
        assert_eq!(
            sent(&j, "http://a.test/", None).as_deref().map(|s| {
                let mut v: Vec<_> = s.split("; ").collect();
                v.sort_unstable();
                v.join("; ")
            }),
            Some("a=2; b=1".to_owned())
        );
        // An expired cookie makes room.
        set(&j, "http://a.test/", &["a=; Max-Age=0", "c=3"]);
        assert_eq!(
            sent(&j, "http://a.test/", None).as_deref().map(|s| {
                let mut v: Vec<_> = s.split("; ").collect();
                v.sort_unstable();
                v.join("; ")
            }),
            Some("b=1; c=3".to_owned())
        );
    }

    #[test]
    fn secure_cookies_go_over_https_only_even_to_loopback() {
        let j = jar(10);
        set(&j, "https://127.0.0.1/", &["s=1; Secure", "n=2"]);
        assert_eq!(sent(&j, "http://127.0.0.1/", None).as_deref(), Some("n=2"));
        assert_eq!(
            sent(&j, "https://127.0.0.1/", None).as_deref(),
            Some("s=1; n=2")
        );
    }

    #[test]
    fn list_reports_attributes() {
        let j = jar(10);
        set(
            &j,
            "https://a.test/p/q",
            &["s=1; Secure; HttpOnly; SameSite=Lax; Max-Age=60", "t=2"],
        );
        let mut l = j.list();
        l.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(l.len(), 2);
        assert!(l[0].secure && l[0].http_only && l[0].host_only);
        assert_eq!(l[0].same_site.as_deref(), Some("Lax"));
        assert!(l[0].expires_ms.is_some());
        assert_eq!((l[1].path.as_str(), l[1].expires_ms), ("/p", None));
        j.clear();
        assert!(j.list().is_empty());
    }
}

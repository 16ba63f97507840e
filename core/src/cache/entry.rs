//! A stored response and how it becomes a `Response` again: `Age`, 304 merging, and the
//! rule that a response to a request with `Authorization` is stored only when its directives
//! allow it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_cache_semantics::{CacheOptions, CachePolicy};

use super::{CacheStatus, ENTRY_OVERHEAD};
use crate::body::Body;
use crate::response::{Response, Timings};

/// A complete stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) policy: CachePolicy,
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Headers a 304 never replaces in the stored response: they describe the 304's own framing.
const KEEP_ON_304: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONTENT_RANGE,
    header::CONNECTION,
];

impl Entry {
    /// Its cost in the store.
    pub(crate) fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        self.body.len() as u64 + headers as u64 + ENTRY_OVERHEAD
    }

    /// The stored response as a `Response` for `url`, with its `Age`.
    pub(crate) fn response(&self, url: &Uri, now: SystemTime, status: CacheStatus) -> Response {
        let mut headers = self.headers.clone();
        headers.insert(header::AGE, age_value(self.policy.age(now)));
        Response {
            status: self.status,
            version: self.version,
            headers,
            url: url.clone(),
            body: Body::buffered(self.body.clone(), None),
            timings: Timings::default(),
            reused: false,
            tls: None,
            cache: Some(status),
        }
    }

    /// This entry updated by a `304 Not Modified`: its headers replace the stored ones (but
    /// not those about framing), the body stays, and freshness starts again from `now`.
    pub(crate) fn refreshed(
        &self,
        req: &http::request::Parts,
        not_modified: &HeaderMap,
        now: SystemTime,
        opts: CacheOptions,
    ) -> Entry {
        let mut headers = self.headers.clone();
        for name in not_modified.keys() {
            if KEEP_ON_304.contains(name) {
                continue;
            }
            headers.remove(name);
            for v in not_modified.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        let head = response_parts(self.status, &headers);
        Entry {
            policy: CachePolicy::new_options(req, &head, now, opts),
            status: self.status,
            version: self.version,
            headers,
            body: self.body.clone(),
        }
    }
}

/// The seconds of a `Cache-Control` directive of `headers` (`stale-while-revalidate=60`).
pub(crate) fn directive_secs(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            let (n, v) = d.trim().split_once('=')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"').parse().ok())?
        })
}

impl Entry {
    /// Whether this stale entry may still be served for `req` within its `directive` window
    /// (`stale-while-revalidate`, `stale-if-error`; RFC 5861): the window counts from the
    /// moment it went stale. The rules are the crate's `max-stale` ones (a request's `no-cache`
    /// or `max-age`, a response's `must-revalidate` refuse it); a `no-cache` answer never is.
    pub(crate) fn stale_usable(
        &self,
        req: &http::request::Parts,
        directive: &str,
        now: SystemTime,
    ) -> bool {
        let Some(secs) = directive_secs(&self.headers, directive).filter(|&s| s > 0) else {
            return false;
        };
        let no_cache = self
            .headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| {
                let name = d.split('=').next().unwrap_or("");
                name.trim().eq_ignore_ascii_case("no-cache")
            });
        if no_cache {
            return false;
        }
        let mut r = req.clone();
        r.headers.append(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("max-stale={secs}"))
                .unwrap_or(HeaderValue::from_static("max-stale=0")),
        );
        matches!(
            self.policy.before_request(&r, now),
            http_cache_semantics::BeforeRequest::Fresh(_)
        )
    }
}

/// Whether the response may be stored for this request: storable by RFC 9111, worth keeping
/// (fresh for a while, or revalidatable), and not an answer to `Authorization` unless its
/// directives allow sharing it (`public`, `must-revalidate`, `s-maxage`), private cache or not:
/// entries may later be shared through an L2 store.
pub(crate) fn storable(
    policy: &CachePolicy,
    req: &http::request::Parts,
    resp: &HeaderMap,
    now: SystemTime,
) -> bool {
    if !policy.is_storable() {
        return false;
    }
    if req.headers.contains_key(header::AUTHORIZATION) {
        let allowed = resp
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|d| {
                d.trim()
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            })
            .any(|d| matches!(d.as_str(), "public" | "must-revalidate" | "s-maxage"));
        if !allowed {
            return false;
        }
    }
    policy.time_to_live(now) > Duration::ZERO
        || resp.contains_key(header::ETAG)
        || resp.contains_key(header::LAST_MODIFIED)
}

/// The validators of a stored response as conditional request headers.
pub(crate) fn conditional(entry: &Entry, headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    if let Some(etag) = entry.headers.get(header::ETAG) {
        h.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = entry.headers.get(header::LAST_MODIFIED) {
        h.insert(header::IF_MODIFIED_SINCE, lm.clone());
    }
    h
}

/// A response head for the policy functions.
pub(crate) fn response_parts(status: StatusCode, headers: &HeaderMap) -> http::response::Parts {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = headers.clone();
    parts
}

fn age_value(age: Duration) -> HeaderValue {
    HeaderValue::from(age.as_secs())
}

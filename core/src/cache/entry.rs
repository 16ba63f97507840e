//! A stored response and how it becomes a `Response` again: `Age`, 304 merging, and the
//! rule that a response to a request with `Authorization` is stored only when its directives
//! allow it.
//!
//! An entry keeps, besides its policy, what a plain request needs to be answered without the
//! policy (`Quick`): the moment it goes stale and the request values its `Vary` names. A hit
//! then costs a clock compare and a few header compares, and shares the stored header map.
//! An entry read back from Redis carries that moment as its writer worked it out, and builds
//! its policy only when a request needs it (`Entry::read_back`).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use http_cache_semantics::{CacheOptions, CachePolicy, RequestLike, ResponseLike};

use super::{CacheStatus, ENTRY_OVERHEAD};
use crate::body::Body;
use crate::response::{Headers, Response, Timings};

/// A complete stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its policy, made with the entry or on first use (see [`Entry::policy`]).
    policy: Policy,
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    /// The response headers as they arrived (see [`Entry::headers`]).
    headers: Stored,
    pub(crate) body: Bytes,
    /// When the response arrived (the policy's response time).
    response_time: SystemTime,
    /// The `Age` it arrived with (the policy's reading of it).
    arrived_aged: Duration,
    /// What a request without its own `Cache-Control`, `Pragma` or `Host` is judged by;
    /// `None` when the policy must judge every request (`Vary: *`, a stored `Host`).
    quick: Option<Quick>,
    /// Its cost in the store (see [`Entry::weight`]).
    weight: u64,
    /// The headers as last served, with `Age` in whole seconds: shared by every hit within
    /// the same second.
    served: Mutex<Served>,
}

/// An entry's response headers as they arrived.
#[derive(Debug)]
enum Stored {
    /// Kept as a map.
    Map(HeaderMap),
    /// Read back from Redis: the map is read again from the entry's bytes (`raw`, its response
    /// header list at `at`) when something first needs it; a hit served within the second it
    /// was read never does (its served headers were read straight from the bytes).
    Later {
        map: OnceLock<HeaderMap>,
        raw: Bytes,
        at: usize,
    },
}

/// The headers an entry serves (with `Age`).
#[derive(Debug)]
enum Served {
    /// None served yet.
    None,
    /// An entry read back from Redis, not served yet: its headers as read, to which the first
    /// hit adds `Age` (no copy of the stored map).
    Read(HeaderMap),
    /// As last served, with `Age` in whole seconds.
    At(u64, Arc<HeaderMap>),
}

/// An entry's policy.
#[derive(Debug)]
enum Policy {
    /// Made with the entry.
    Made(CachePolicy),
    /// Built from the request an entry read back from Redis was stored for, when a request
    /// first needs it.
    Later(OnceLock<CachePolicy>, Box<Asked>),
}

/// The request (and the cache's options) an entry read back builds its policy from.
#[derive(Debug)]
struct Asked {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    opts: CacheOptions,
}

impl RequestLike for Asked {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }

    fn is_same_uri(&self, other: &Uri) -> bool {
        self.uri == *other
    }

    fn method(&self) -> &Method {
        &self.method
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The policy's answer for a plain request, worked out when the entry is made.
#[derive(Debug)]
struct Quick {
    /// Until when it is fresh (`response_time + time_to_live`); `None`: never.
    fresh_until: Option<SystemTime>,
    /// The request headers its `Vary` names, with the stored request's first value (the
    /// policy compares first values); names that are not header names always match.
    vary: Box<[(HeaderName, Option<HeaderValue>)]>,
}

/// How an entry answers a plain request (see [`Entry::quick_judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plain {
    /// Usable as is (`BeforeRequest::Fresh`).
    Fresh,
    /// Matches but must be revalidated (`BeforeRequest::Stale { matches: true }`).
    Stale,
    /// Another variant (`BeforeRequest::Stale { matches: false }`).
    Other,
    /// Only the policy can tell.
    Ask,
}

/// Headers a 304 never replaces in the stored response: they describe the 304's own framing.
const KEEP_ON_304: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONTENT_RANGE,
    header::CONNECTION,
];

/// The largest `Age` a cache counts with: RFC 9111 §1.2.2 takes a delta-seconds value larger
/// than a cache can represent as 2^31. A larger one would overflow the age's sum with the time
/// held (in http-cache-semantics as here) and panic the request path.
pub(crate) const MAX_AGE_SECS: u64 = 1 << 31;

/// Caps the `Age` of a response that enters the cache at [`MAX_AGE_SECS`], before any policy
/// reads it: a value of digits only above it (or too long for a `u64`) becomes 2^31, as RFC 9111
/// §1.2.2 says. Anything else is left as is (the policy ignores an `Age` that is no number).
pub(crate) fn bound_age(headers: &mut HeaderMap) {
    let over = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && s.parse::<u64>().map_or(true, |n| n > MAX_AGE_SECS)
        });
    if over {
        headers.insert(header::AGE, HeaderValue::from(MAX_AGE_SECS));
    }
}

/// `secs` as an `Age` value; under 100 without an allocation (a hit is usually seconds old).
fn age_value(secs: u64) -> HeaderValue {
    const ONE: &str = "0123456789";
    const TWO: &str = "\
        10111213141516171819202122232425262728293031323334353637383940414243444546474849\
        50515253545556575859606162636465666768697071727374757677787980818283848586878889\
        90919293949596979899";
    match usize::try_from(secs) {
        Ok(n @ 0..=9) => HeaderValue::from_static(&ONE[n..=n]),
        Ok(n @ 10..=99) => HeaderValue::from_static(&TWO[2 * (n - 10)..2 * (n - 9)]),
        _ => HeaderValue::from(secs),
    }
}

/// The `Age` a response arrived with (0 without one or when it is not a number of seconds; at
/// most [`MAX_AGE_SECS`]).
fn age_on_arrival(headers: &HeaderMap) -> Duration {
    Duration::from_secs(
        headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
            .min(MAX_AGE_SECS),
    )
}

impl Entry {
    /// The entry of a response to `req` that arrived at `response_time`, with its policy.
    pub(crate) fn new(
        req: &http::request::Parts,
        status: StatusCode,
        version: Version,
        mut headers: HeaderMap,
        body: Bytes,
        response_time: SystemTime,
        opts: CacheOptions,
    ) -> Entry {
        bound_age(&mut headers);
        let policy = CachePolicy::new_options(req, &Head(status, &headers), response_time, opts);
        Entry::with_policy(policy, req, status, version, headers, body, response_time)
    }

    /// As [`Entry::new`], with the policy already made (from the same request and response).
    pub(crate) fn with_policy(
        policy: CachePolicy,
        req: &http::request::Parts,
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        body: Bytes,
        response_time: SystemTime,
    ) -> Entry {
        let arrived_aged = age_on_arrival(&headers);
        let quick = quick(fresh_until(&policy, response_time), &req.headers, &headers);
        let weight = weight(&headers, &body);
        Entry {
            policy: Policy::Made(policy),
            status,
            version,
            headers: Stored::Map(headers),
            body,
            response_time,
            arrived_aged,
            quick,
            weight,
            served: Mutex::new(Served::None),
        }
    }

    /// An entry read back from the second level: the response to a `method` request for `uri`
    /// whose `Vary` named `varied` (the stored request's values), received at `response_time`
    /// and fresh until `fresh_until` (`None`: not fresh) as its writer's policy said under the
    /// same options. Its policy is built from these on first use: a hit judged without the
    /// policy never builds it. `headers` were read from `raw`'s response header list at `at`:
    /// the first hit serves them with `Age` added, and the stored map is read again from `raw`
    /// only when something needs it (see [`Stored::Later`]).
    #[expect(clippy::too_many_arguments, reason = "one stored entry's fields")]
    pub(crate) fn read_back(
        method: Method,
        uri: Uri,
        varied: HeaderMap,
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        (raw, at): (Bytes, usize),
        body: Bytes,
        response_time: SystemTime,
        fresh_until: Option<SystemTime>,
        opts: CacheOptions,
    ) -> Entry {
        let arrived_aged = age_on_arrival(&headers);
        let quick = quick(fresh_until, &varied, &headers);
        let weight = weight(&headers, &body);
        Entry {
            policy: Policy::Later(
                OnceLock::new(),
                Box::new(Asked {
                    method,
                    uri,
                    headers: varied,
                    opts,
                }),
            ),
            status,
            version,
            headers: Stored::Later {
                map: OnceLock::new(),
                raw,
                at,
            },
            body,
            response_time,
            arrived_aged,
            quick,
            weight,
            served: Mutex::new(Served::Read(headers)),
        }
    }

    /// The response headers as they arrived (`Age` as it came).
    pub(crate) fn headers(&self) -> &HeaderMap {
        match &self.headers {
            Stored::Map(h) => h,
            Stored::Later { map, raw, at } => map.get_or_init(|| {
                // The same bytes were read once already, into the headers the entry was made
                // with: they read the same way again.
                super::l2::header_list(raw, *at).unwrap_or_default()
            }),
        }
    }

    /// The stored headers of an entry made here (tests only: its weight is not updated).
    #[cfg(test)]
    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        match &mut self.headers {
            Stored::Map(h) => h,
            Stored::Later { .. } => panic!("an entry read back"),
        }
    }

    /// Its policy (RFC 9111's rules for this response), built now if it was read back and no
    /// request needed it yet.
    pub(crate) fn policy(&self) -> &CachePolicy {
        match &self.policy {
            Policy::Made(p) => p,
            Policy::Later(cell, asked) => cell.get_or_init(|| {
                let head = Head(self.status, self.headers());
                CachePolicy::new_options(&**asked, &head, self.response_time, asked.opts)
            }),
        }
    }

    /// Until when it is fresh, as its policy says (`None`: it is not).
    pub(crate) fn fresh_until(&self) -> Option<SystemTime> {
        match &self.quick {
            Some(q) => q.fresh_until,
            None => fresh_until(self.policy(), self.response_time),
        }
    }

    /// When the response arrived (the policy's response time).
    pub(crate) fn response_time(&self) -> SystemTime {
        self.response_time
    }

    /// Its cost in the store.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// How long it has been held, counting the `Age` it came with (the policy's `age`).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        self.arrived_aged + now.duration_since(self.response_time).unwrap_or_default()
    }

    /// The policy's judgement of a request that carries no `Cache-Control`, `Pragma` or
    /// `Host` (neither in `headers` nor in the client's `defaults`).
    pub(crate) fn quick_judge(
        &self,
        headers: &HeaderMap,
        defaults: &HeaderMap,
        now: SystemTime,
    ) -> Plain {
        let Some(q) = &self.quick else {
            return Plain::Ask;
        };
        // The request as the cache judges it: its own headers over the defaults.
        let matches = q.vary.iter().all(|(name, stored)| {
            let got = headers.get(name).or_else(|| defaults.get(name));
            got == stored.as_ref()
        });
        if !matches {
            Plain::Other
        } else if q.fresh_until.is_some_and(|t| now < t) {
            Plain::Fresh
        } else {
            Plain::Stale
        }
    }

    /// The stored response as a `Response` for `url`, with its `Age`.
    pub(crate) fn response(&self, url: &Uri, now: SystemTime, status: CacheStatus) -> Response {
        Response {
            status: self.status,
            version: self.version,
            headers: Headers::Shared(self.served_headers(now)),
            url: url.clone(),
            body: Body::buffered(self.body.clone(), None),
            timings: Timings::default(),
            reused: false,
            tls: None,
            cache: Some(status),
        }
    }

    /// The stored headers with `Age` as of `now`, copied at most once a second.
    pub(crate) fn served_headers(&self, now: SystemTime) -> Arc<HeaderMap> {
        let age = self.age(now).as_secs();
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let mut headers = match std::mem::replace(&mut *served, Served::None) {
            Served::At(at, h) if at == age => {
                *served = Served::At(at, h.clone());
                return h;
            }
            Served::Read(h) => h,
            Served::None | Served::At(..) => self.headers().clone(),
        };
        headers.insert(header::AGE, age_value(age));
        let headers = Arc::new(headers);
        *served = Served::At(age, headers.clone());
        headers
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
        let mut headers = self.headers().clone();
        for name in not_modified.keys() {
            if KEEP_ON_304.contains(name) {
                continue;
            }
            headers.remove(name);
            for v in not_modified.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        Entry::new(
            req,
            self.status,
            self.version,
            headers,
            self.body.clone(),
            now,
            opts,
        )
    }
}

/// The cost in the store of an entry with these headers and body.
fn weight(headers: &HeaderMap, body: &Bytes) -> u64 {
    let headers: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum();
    body.len() as u64 + headers as u64 + ENTRY_OVERHEAD
}

/// Until when a response received at `response_time` is fresh by `policy`; `None`: never.
pub(crate) fn fresh_until(policy: &CachePolicy, response_time: SystemTime) -> Option<SystemTime> {
    let ttl = policy.time_to_live(response_time);
    if ttl > Duration::ZERO {
        // A max-age of up to u64::MAX seconds: fresh for 2^31 s at most (RFC 9111 §1.2.2), not
        // "never" for want of a time that far.
        response_time.checked_add(ttl.min(Duration::from_secs(MAX_AGE_SECS)))
    } else {
        None
    }
}

/// What `policy.before_request` answers a plain request, worked out once. With no
/// `Cache-Control` or `Pragma` on the request the policy's rules reduce to: the URL and method
/// match (the store's key), the stored and presented `Host` match (neither has one here), the
/// `Vary` headers match, and `max_age > age(now)`; `max_age` is fixed, and
/// `age(now) = Age + (now - response_time)`, so freshness ends at
/// `response_time + time_to_live(response_time)`.
fn quick(fresh_until: Option<SystemTime>, req: &HeaderMap, resp: &HeaderMap) -> Option<Quick> {
    if req.contains_key(header::HOST) {
        return None;
    }
    let mut vary = Vec::new();
    for name in resp
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        if name == "*" {
            return None;
        }
        // The policy looks both sides up by this name: one that is not a header name finds
        // nothing on either side, so it always matches.
        let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
            continue;
        };
        let stored = req.get(&name).cloned();
        vary.push((name, stored));
    }
    Some(Quick {
        fresh_until,
        vary: vary.into(),
    })
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
        let Some(secs) = directive_secs(self.headers(), directive).filter(|&s| s > 0) else {
            return false;
        };
        let no_cache = self
            .headers()
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
            self.policy().before_request(&r, now),
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
    if let Some(etag) = entry.headers().get(header::ETAG) {
        h.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = entry.headers().get(header::LAST_MODIFIED) {
        h.insert(header::IF_MODIFIED_SINCE, lm.clone());
    }
    h
}

/// A response head lent to the policy functions, which copy what they keep (an
/// `http::response::Parts` would be one more copy of the headers).
pub(crate) struct Head<'a>(pub(crate) StatusCode, pub(crate) &'a HeaderMap);

impl ResponseLike for Head<'_> {
    fn status(&self) -> StatusCode {
        self.0
    }

    fn headers(&self) -> &HeaderMap {
        self.1
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use http_cache_semantics::BeforeRequest;

    use super::*;

    /// The `Age` values taken from a table are those written out.
    #[test]
    fn age_values_are_the_seconds_written_out() {
        for secs in (0..=150).chain([MAX_AGE_SECS, u64::MAX]) {
            assert_eq!(age_value(secs), HeaderValue::from(secs), "{secs}");
        }
    }

    #[test]
    fn an_age_over_two_to_the_31_is_bounded_and_others_are_left_alone() {
        let bounded = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AGE, HeaderValue::from_str(v).unwrap());
            bound_age(&mut h);
            h[header::AGE].to_str().unwrap().to_owned()
        };
        for (given, kept) in [
            ("0", "0"),
            ("2147483648", "2147483648"),
            ("2147483649", "2147483648"),
            ("18446744073709551615", "2147483648"),
            ("99999999999999999999999", "2147483648"),
            ("12x", "12x"),
            ("-5", "-5"),
        ] {
            assert_eq!(bounded(given), kept, "{given}");
        }
        let mut none = HeaderMap::new();
        bound_age(&mut none);
        assert!(none.is_empty());
    }

    fn opts(shared: bool) -> CacheOptions {
        CacheOptions {
            shared,
            cache_heuristic: 0.1,
            immutable_min_time_to_live: Duration::from_hours(24),
            ignore_cargo_cult: false,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn request(headers: HeaderMap) -> http::request::Parts {
        let (mut req, ()) = http::Request::new(()).into_parts();
        req.uri = "http://example.test/a?b=1".parse().unwrap();
        req.headers = headers;
        req
    }

    /// What the policy itself answers `req` at `now` (to compare with the judgement without it).
    pub(crate) fn policy_says(e: &Entry, req: &http::request::Parts, now: SystemTime) -> Plain {
        match e.policy().before_request(req, now) {
            BeforeRequest::Fresh(_) => Plain::Fresh,
            BeforeRequest::Stale { matches: true, .. } => Plain::Stale,
            BeforeRequest::Stale { matches: false, .. } => Plain::Other,
        }
    }

    /// The judgement without the policy is the policy's, for every response kind, request
    /// variant, split of headers between the request and the client's defaults, and moment
    /// around the end of freshness.
    #[test]
    fn the_plain_judgement_is_the_policys() {
        let day = 86_400;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_hours(500_000);
        let date = |s: u64| httpdate::fmt_http_date(t0 - Duration::from_secs(s));
        let (d0, d100, d1000) = (date(0), date(100), date(1000));
        let responses: Vec<Vec<(&str, &str)>> = vec![
            vec![("cache-control", "max-age=60")],
            vec![("cache-control", "max-age=60"), ("age", "20")],
            vec![("cache-control", "max-age=60"), ("age", "90")],
            vec![("cache-control", "max-age=60"), ("age", "x")],
            vec![("cache-control", "max-age=0")],
            vec![("cache-control", "no-cache, max-age=60")],
            vec![("cache-control", "max-age=60, must-revalidate")],
            vec![("cache-control", "max-age=60, max-age=30")],
            vec![("cache-control", "s-maxage=5, max-age=60")],
            vec![("cache-control", "private, max-age=60")],
            vec![("cache-control", "immutable"), ("date", &d0)],
            vec![("cache-control", "no-store")],
            vec![("pragma", "no-cache")],
            vec![("expires", &d0), ("date", &d100)],
            vec![("expires", "0")],
            vec![("last-modified", &d1000), ("date", &d0)],
            vec![("etag", "\"e\"")],
            vec![("cache-control", "max-age=60"), ("vary", "Accept")],
            vec![("cache-control", "max-age=60"), ("vary", "accept, X-Var")],
            vec![
                ("cache-control", "max-age=60"),
                ("vary", "Accept"),
                ("vary", "x-var"),
            ],
            vec![("cache-control", "max-age=60"), ("vary", "*")],
            vec![("cache-control", "max-age=60"), ("vary", "Accept, *")],
            vec![("cache-control", "max-age=60"), ("vary", "bad name, ")],
            vec![("cache-control", "max-age=60"), ("set-cookie", "a=1")],
        ];
        let stored_requests = [
            map(&[]),
            map(&[("accept", "text/plain")]),
            map(&[("accept", "text/plain"), ("accept", "text/html")]),
            map(&[("accept", "text/plain"), ("x-var", "1")]),
            map(&[("host", "example.test")]),
        ];
        let presented = [
            map(&[]),
            map(&[("accept", "text/plain")]),
            map(&[("accept", "text/html")]),
            map(&[("accept", "text/plain"), ("x-var", "1")]),
            map(&[("x-var", "1")]),
        ];
        let moments = [
            0,
            1,
            4,
            5,
            6,
            39,
            40,
            41,
            59,
            60,
            61,
            89,
            90,
            100,
            101,
            day,
            day + 1,
        ];
        let mut compared = 0;
        for shared in [false, true] {
            for resp in &responses {
                for stored in &stored_requests {
                    let e = Entry::new(
                        &request(stored.clone()),
                        StatusCode::OK,
                        Version::HTTP_11,
                        map(resp),
                        Bytes::new(),
                        t0,
                        opts(shared),
                    );
                    // The same entry as read back from Redis: its freshness as `e` worked it
                    // out, its policy built on first use.
                    let back = Entry::read_back(
                        Method::GET,
                        request(HeaderMap::new()).uri,
                        stored.clone(),
                        StatusCode::OK,
                        Version::HTTP_11,
                        map(resp),
                        (crate::cache::l2::list_of(&map(resp)), 0),
                        Bytes::new(),
                        t0,
                        e.fresh_until(),
                        opts(shared),
                    );
                    for own in &presented {
                        for defaults in [map(&[]), map(&[("accept", "text/plain")])] {
                            let mut merged = own.clone();
                            for (k, v) in &defaults {
                                if !own.contains_key(k) {
                                    merged.append(k.clone(), v.clone());
                                }
                            }
                            let req = request(merged);
                            for s in moments {
                                let now = t0 + Duration::from_secs(s) - Duration::from_millis(1);
                                for now in [now, now + Duration::from_millis(1)] {
                                    let plain = e.quick_judge(own, &defaults, now);
                                    assert_eq!(plain, back.quick_judge(own, &defaults, now));
                                    assert_eq!(
                                        policy_says(&e, &req, now),
                                        policy_says(&back, &req, now)
                                    );
                                    if plain == Plain::Ask {
                                        continue;
                                    }
                                    compared += 1;
                                    assert_eq!(
                                        plain,
                                        policy_says(&e, &req, now),
                                        "{resp:?} stored for {stored:?}, asked with {own:?} \
                                         over {defaults:?}, {s} s on, shared {shared}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared} judgements compared");
    }

    #[test]
    fn vary_star_and_a_stored_host_leave_the_judgement_to_the_policy() {
        let req = request(map(&[]));
        let e = |resp: &[(&str, &str)], stored: &http::request::Parts| {
            Entry::new(
                stored,
                StatusCode::OK,
                Version::HTTP_11,
                map(resp),
                Bytes::new(),
                SystemTime::now(),
                opts(false),
            )
        };
        let now = SystemTime::now();
        let star = e(&[("cache-control", "max-age=60"), ("vary", "*")], &req);
        assert_eq!(star.quick_judge(&map(&[]), &map(&[]), now), Plain::Ask);
        let host = e(
            &[("cache-control", "max-age=60")],
            &request(map(&[("host", "example.test")])),
        );
        assert_eq!(host.quick_judge(&map(&[]), &map(&[]), now), Plain::Ask);
    }

    #[test]
    fn hits_within_a_second_share_one_header_map_and_age_moves_on() {
        let t0 = SystemTime::now();
        let e = Entry::new(
            &request(map(&[])),
            StatusCode::OK,
            Version::HTTP_11,
            map(&[("cache-control", "max-age=60"), ("age", "3")]),
            Bytes::new(),
            t0,
            opts(false),
        );
        let a = e.served_headers(t0 + Duration::from_millis(100));
        let b = e.served_headers(t0 + Duration::from_millis(900));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a["age"], "3");
        let c = e.served_headers(t0 + Duration::from_millis(2_100));
        assert_eq!(c["age"], "5");
        assert_eq!(
            e.headers()["age"],
            "3",
            "the stored headers are not changed"
        );
        assert_eq!(
            e.age(t0 + Duration::from_secs(7)),
            e.policy().age(t0 + Duration::from_secs(7))
        );
    }
}

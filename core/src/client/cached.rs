//! One hop through the response cache (`crate::cache`): a fresh stored response answers without
//! the server; a stale one is revalidated with its validators; a storable answer is read whole
//! (up to `cache.max_entry_bytes`) and stored; an unsafe method's success invalidates the URL;
//! identical concurrent misses share one upstream request (`crate::cache::coalesce`).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use http_cache_semantics::CachePolicy;
use tokio::time::Instant;

use super::Client;
use super::send::Opts;
use crate::body::{Body, RequestBody};
use crate::cache::coalesce::{self, Landing, Whole};
use crate::cache::{self, Cache, CacheStatus, Entry, Lookup};
use crate::error::Error;
use crate::request::{CacheMode, PhaseTimeouts};
use crate::response::Response;

impl Client {
    /// Sends one hop, through the cache when the client has one, as `mode` asks.
    pub(super) async fn send_cached(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
        mode: CacheMode,
    ) -> Result<Response, Error> {
        let cacheable = (*method == Method::GET || *method == Method::HEAD)
            && !cache::bypasses(headers)
            && self.inner.cache.is_some();
        if mode == CacheMode::OnlyIfCached && !cacheable {
            return Ok(only_if_cached_miss(uri));
        }
        let with_mode = mode_headers(mode, headers, opts.defaults);
        let headers = with_mode.as_ref().unwrap_or(headers);
        let Some(cache) = self.inner.cache.as_ref() else {
            return self.send_resilient(method, uri, headers, body, opts).await;
        };
        if *method != Method::GET && *method != Method::HEAD {
            let resp = self
                .send_resilient(method, uri, headers, body, opts)
                .await?;
            // In every mode: the change the server made concerns every later request.
            if !method.is_safe() && (resp.status.is_success() || resp.status.is_redirection()) {
                cache.invalidate(uri, &resp.headers);
            }
            return Ok(resp);
        }
        if !cacheable || mode == CacheMode::NoStore {
            return self.send_resilient(method, uri, headers, body, opts).await;
        }
        let key = cache::key(method, uri);
        let req = cache::request_parts(method, uri, opts.defaults, headers);
        let c = &cache.counters;
        let found = match mode {
            CacheMode::Reload => Lookup::Missing,
            _ => cache.lookup(&key, &req, SystemTime::now()),
        };
        // force-cache and only-if-cached take a matching entry however stale.
        let any_age = matches!(mode, CacheMode::ForceCache | CacheMode::OnlyIfCached);
        match (found, mode) {
            (Lookup::Fresh(e), CacheMode::NoCache) | (Lookup::Stale(e), _) if !any_age => {
                c.revalidations.fetch_add(1, Relaxed);
                let cond = cache::entry::conditional(&e, headers);
                let resp = self.send_resilient(method, uri, &cond, body, opts).await?;
                let now = SystemTime::now();
                if resp.status != StatusCode::NOT_MODIFIED {
                    return store(cache, key, &req, resp, now).await;
                }
                c.not_modified.fetch_add(1, Relaxed);
                let fresh = e.refreshed(&req, &resp.headers, now, cache.opts);
                resp.drain().await;
                let out = fresh.response(uri, now, CacheStatus::Revalidated);
                cache.put(key, &req, fresh);
                Ok(out)
            }
            (Lookup::Fresh(e), _) => {
                c.hits.fetch_add(1, Relaxed);
                Ok(e.response(uri, SystemTime::now(), CacheStatus::Hit))
            }
            (Lookup::Stale(e), _) => {
                c.stale_served.fetch_add(1, Relaxed);
                Ok(e.response(uri, SystemTime::now(), CacheStatus::Stale))
            }
            (Lookup::Missing, CacheMode::OnlyIfCached) => {
                c.misses.fetch_add(1, Relaxed);
                Ok(only_if_cached_miss(uri))
            }
            (Lookup::Missing, _) => {
                c.misses.fetch_add(1, Relaxed);
                // Off for a request that may not be stored: it asked not to share anything.
                if cache.coalesce
                    && body.as_bytes().is_some_and(<[u8]>::is_empty)
                    && !no_store(&req.headers)
                    && let Some(r) = self.coalesced(cache, &key, &req, headers, opts).await
                {
                    return r;
                }
                let resp = self
                    .send_resilient(method, uri, headers, body, opts)
                    .await?;
                store(cache, key, &req, resp, SystemTime::now()).await
            }
        }
    }

    /// Joins or starts the flight of this request; `None` when its answer was too large to
    /// share and this caller must ask on its own.
    async fn coalesced(
        &self,
        cache: &Cache,
        key: &str,
        req: &http::request::Parts,
        headers: &HeaderMap,
        opts: &Opts<'_>,
    ) -> Option<Result<Response, Error>> {
        let fkey = coalesce::key(req);
        let (flight, joined) = cache.flights.join(&fkey, || {
            let client = self.clone();
            let owned = Owned {
                key: key.to_owned(),
                req: req.clone(),
                headers: headers.clone(),
                idempotent: opts.idempotent,
                rate_limit_key: opts.rate_limit_key.map(str::to_owned),
                balance_key: opts.balance_key.map(str::to_owned),
                deadline: opts.deadline,
                start: opts.start,
                phases: opts.phases,
                engine_headers: std::ptr::eq(opts.defaults, &raw const self.inner.engine_headers),
            };
            let fkey = fkey.clone();
            async move {
                let landing = client.fly(owned).await;
                if let Some(c) = &client.inner.cache {
                    c.flights.land(&fkey);
                }
                landing
            }
            .boxed()
        });
        if joined {
            cache.counters.coalesced.fetch_add(1, Relaxed);
        }
        flight.await.to_response(&req.uri)
    }

    /// The one upstream request of a flight, its answer read whole and stored when allowed.
    async fn fly(&self, o: Owned) -> Landing {
        let inner = &*self.inner;
        let Some(cache) = &inner.cache else {
            return Landing::failed(&Error::new(
                crate::error::ErrorKind::Internal,
                "a flight without a cache",
            ));
        };
        let opts = Opts {
            idempotent: o.idempotent,
            rate_limit_key: o.rate_limit_key.as_deref(),
            balance_key: o.balance_key.as_deref(),
            deadline: o.deadline,
            start: o.start,
            phases: o.phases,
            defaults: if o.engine_headers {
                &inner.engine_headers
            } else {
                &inner.default_headers
            },
        };
        let (method, uri) = (&o.req.method, &o.req.uri);
        let sent = self
            .send_resilient(method, uri, &o.headers, RequestBody::empty(), &opts)
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Landing::failed(&e),
        };
        resp.cache = Some(CacheStatus::Miss);
        if declared_len(&resp.headers).is_some_and(|n| n > cache.max_entry_bytes) {
            return Landing::too_large(resp);
        }
        let bytes = match read_up_to(&mut resp, cache.max_entry_bytes).await {
            Ok((b, true)) => b,
            Ok((ahead, false)) => {
                let unread = std::mem::replace(&mut resp.body, Body::buffered(Bytes::new(), None));
                resp.body = Body::buffered(ahead, Some(unread));
                return Landing::too_large(resp);
            }
            Err(e) => return Landing::failed(&e),
        };
        let now = SystemTime::now();
        if let Some(policy) = policy_if_storable(cache, &o.req, &resp, now) {
            cache.put(
                o.key,
                &o.req,
                Entry {
                    policy,
                    status: resp.status,
                    version: resp.version,
                    headers: resp.headers.clone(),
                    body: bytes.clone(),
                },
            );
        }
        Landing::Whole(Arc::new(Whole {
            status: resp.status,
            version: resp.version,
            headers: resp.headers,
            body: bytes,
            timings: resp.timings,
            reused: resp.reused,
            tls: resp.tls,
        }))
    }
}

/// A flight's own copy of what its request needs (it may outlive the caller that started it).
struct Owned {
    key: String,
    req: http::request::Parts,
    headers: HeaderMap,
    idempotent: Option<bool>,
    rate_limit_key: Option<String>,
    balance_key: Option<String>,
    deadline: Option<Instant>,
    start: Instant,
    phases: PhaseTimeouts,
    engine_headers: bool,
}

/// The answer of `only-if-cached` when nothing stored fits: RFC 9111's `504`, empty.
fn only_if_cached_miss(uri: &Uri) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Response {
        status: StatusCode::GATEWAY_TIMEOUT,
        version: Version::HTTP_11,
        headers,
        url: uri.clone(),
        body: Body::buffered(Bytes::new(), None),
        timings: crate::response::Timings::default(),
        reused: false,
        tls: None,
        cache: Some(CacheStatus::Miss),
    }
}

/// The request headers fetch adds for `mode` (unless the request, or the client's defaults,
/// already say something about caching), so caches on the way behave alike; `None`: unchanged.
fn mode_headers(mode: CacheMode, headers: &HeaderMap, defaults: &HeaderMap) -> Option<HeaderMap> {
    let value = match mode {
        CacheMode::NoStore | CacheMode::Reload => "no-cache",
        CacheMode::NoCache => "max-age=0",
        _ => return None,
    };
    if headers.contains_key(header::CACHE_CONTROL) || defaults.contains_key(header::CACHE_CONTROL) {
        return None;
    }
    let mut h = headers.clone();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    Some(h)
}

/// Whether the request carries `Cache-Control: no-store`.
fn no_store(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
}

fn declared_len(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// The policy of `resp` when it may be stored.
fn policy_if_storable(
    cache: &Cache,
    req: &http::request::Parts,
    resp: &Response,
    now: SystemTime,
) -> Option<CachePolicy> {
    let head = cache::entry::response_parts(resp.status, &resp.headers);
    let policy = CachePolicy::new_options(req, &head, now, cache.opts);
    cache::entry::storable(&policy, req, &resp.headers, now).then_some(policy)
}

/// Stores `resp` when its rules allow, reading its body first (a body larger than
/// `cache.max_entry_bytes` passes through unstored, the part read ahead included).
async fn store(
    cache: &Cache,
    key: String,
    req: &http::request::Parts,
    mut resp: Response,
    now: SystemTime,
) -> Result<Response, Error> {
    resp.cache = Some(CacheStatus::Miss);
    let Some(policy) = policy_if_storable(cache, req, &resp, now) else {
        return Ok(resp);
    };
    let max = cache.max_entry_bytes;
    if declared_len(&resp.headers).is_some_and(|n| n > max) {
        return Ok(resp);
    }
    let (bytes, complete) = read_up_to(&mut resp, max).await?;
    if !complete {
        let unread = std::mem::replace(&mut resp.body, Body::buffered(Bytes::new(), None));
        resp.body = Body::buffered(bytes, Some(unread));
        return Ok(resp);
    }
    resp.body = Body::buffered(bytes.clone(), None);
    cache.put(
        key,
        req,
        Entry {
            policy,
            status: resp.status,
            version: resp.version,
            headers: resp.headers.clone(),
            body: bytes,
        },
    );
    Ok(resp)
}

/// Reads `resp`'s body until its end (`true`) or past `max` bytes (`false`).
async fn read_up_to(resp: &mut Response, max: u64) -> Result<(Bytes, bool), Error> {
    let mut buf = BytesMut::new();
    let mut first: Option<Bytes> = None;
    while let Some(chunk) = resp.chunk().await? {
        // One chunk is kept as is (no copy), the usual case for a small body.
        if first.is_none() && buf.is_empty() {
            first = Some(chunk);
        } else {
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk);
        }
        let len = first.as_ref().map_or(buf.len(), Bytes::len) as u64;
        if len > max {
            return Ok((first.unwrap_or_else(|| buf.freeze()), false));
        }
    }
    Ok((first.unwrap_or_else(|| buf.freeze()), true))
}

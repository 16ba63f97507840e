//! One hop through the response cache (`crate::cache`): a fresh stored response answers without
//! the server; a stale one is revalidated with its validators; a storable answer is read whole
//! (up to `cache.max_entry_bytes`) and stored; an unsafe method's success invalidates the URL;
//! identical concurrent misses and revalidations share one upstream request
//! (`crate::cache::coalesce`). Within `stale-while-revalidate` a stale entry is served while one
//! background refresh runs; within `stale-if-error` it is served when revalidation fails.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use http_cache_semantics::{BeforeRequest, CachePolicy};
use tokio::time::Instant;

use super::Client;
use super::send::Opts;
use crate::body::{Body, RequestBody};
use crate::cache::coalesce::{self, Landing, Whole};
use crate::cache::entry::Plain;
use crate::cache::{self, Cache, CacheStatus, Entry, Key, Lookup};
use crate::error::Error;
use crate::request::{CacheMode, PhaseTimeouts, Request};
use crate::response::Response;

impl Client {
    /// The answer of a fresh stored response to `req`, taken in `execute` before the request's
    /// future is built: what `run` would answer on its first poll when its first hop is a
    /// fresh hit judged without the policy (`Cache::lookup_plain`) and no redirect follows.
    /// The same jar cookies join the lookup and the same `Set-Cookie` reach the jar, the same
    /// counter moves; `Send` or `Absent` (nothing counted) sends the request the whole way
    /// instead, `Absent` when memory holds nothing for it and the second level may
    /// ([`Client::l2_read`]).
    pub(super) fn fresh_hit<'r>(&self, req: &'r Request) -> Early<'r> {
        let inner = &*self.inner;
        let Some(cache) = inner.cache.as_ref() else {
            return Early::Send;
        };
        let Some(sent) = self.plain_hop(req) else {
            return Early::Send;
        };
        let (method, uri) = (&req.method, &req.uri);
        let now = SystemTime::now();
        let key = cache.key(method, uri);
        let e = match cache.lookup_plain(&key, &sent, &inner.default_headers, now) {
            Some(Lookup::Fresh(e)) => e,
            Some(l @ (Lookup::Empty | Lookup::Missing)) if cache.l2.is_some() => {
                return Early::Absent(Absent {
                    key,
                    empty: matches!(l, Lookup::Empty),
                    sent,
                });
            }
            _ => return Early::Send,
        };
        // A stored redirect is the redirect loop's to follow or refuse.
        if crate::redirect::hop(e.status, method).is_some() {
            return Early::Send;
        }
        cache.counters.hits.fetch_add(1, Relaxed);
        Early::Hit(self.answer_hit(&e, req, now))
    }

    /// The headers `req`'s first hop is judged by (its own and the jar's cookies) when that hop
    /// may be answered before the request's future is built: a GET or HEAD in a mode that takes
    /// a fresh stored answer and adds no request header (`mode_headers`), sent with the
    /// client's default headers, without userinfo (both change its headers in `run` first),
    /// not one the cache leaves alone.
    fn plain_hop<'r>(&self, req: &'r Request) -> Option<std::borrow::Cow<'r, HeaderMap>> {
        let Request {
            method,
            uri,
            headers,
            options,
            default_headers,
            ..
        } = req;
        if !(*method == Method::GET || *method == Method::HEAD)
            || !matches!(
                options.cache,
                CacheMode::Default | CacheMode::ForceCache | CacheMode::OnlyIfCached
            )
            || !*default_headers
            || super::redirects::has_userinfo(uri)
        {
            return None;
        }
        let sent = match self
            .inner
            .jar
            .as_ref()
            .and_then(|j| j.headers_for(uri, headers))
        {
            Some(with_cookies) => std::borrow::Cow::Owned(with_cookies),
            None => std::borrow::Cow::Borrowed(headers),
        };
        (!cache::bypasses(&sent)).then_some(sent)
    }

    /// A fresh stored response as `run` would answer it (hits counted by the caller).
    fn answer_hit(&self, e: &Entry, req: &Request, now: SystemTime) -> Response {
        let resp = e.response(&req.uri, now, CacheStatus::Hit);
        if let Some(j) = &self.inner.jar {
            j.store(&req.uri, &resp.headers);
        }
        self.resumable(
            resp,
            &req.method,
            &req.uri,
            &req.headers,
            &req.options,
            true,
        )
    }

    /// The second level's entry for `key` when memory holds nothing for a request
    /// (`Early::Absent`), read in `execute` before the request's future is built and judged by
    /// [`Client::l2_answer`]. The read waits until the L2 timeout or the request's `deadline`,
    /// whichever is first, under one timer.
    pub(super) async fn l2_read(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Bytes>, cache::l2::Late> {
        match self.inner.cache.as_ref().and_then(|c| c.l2.as_ref()) {
            Some(l2) => l2.read_until(key, deadline).await,
            None => Ok(None),
        }
    }

    /// What `send_cached` would make of the entry [`Client::l2_read`] got for `req`: a fresh
    /// plain hit is answered here (memory refilled, the same counters); whatever else Redis
    /// said (nothing, a stale entry or another variant, a stored redirect, a failure) is kept
    /// or counted as `send_cached` does, and the request goes on without reading Redis again.
    /// The deadline passing first is the request's total timeout.
    pub(super) fn l2_answer(
        &self,
        req: &Request,
        Absent { key, empty, sent }: Absent<'_>,
        read: Result<Option<Bytes>, cache::l2::Late>,
    ) -> L2Early {
        let inner = &*self.inner;
        let Some((cache, l2)) = inner.cache.as_ref().and_then(|c| Some((c, c.l2.as_ref()?))) else {
            return L2Early::Unread;
        };
        let raw = match read {
            Ok(Some(raw)) => raw,
            Ok(None) => return L2Early::Read,
            Err(cache::l2::Late) => return L2Early::Late,
        };
        let Some(entry) = l2.entry(&raw, &req.method, &req.uri, cache.opts) else {
            return L2Early::Read;
        };
        let defaults = &inner.default_headers;
        let now = SystemTime::now();
        let parts = || cache::request_parts(&req.method, &req.uri, defaults, &sent);
        let fresh = match entry.quick_judge(&sent, defaults, now) {
            Plain::Fresh => true,
            Plain::Stale => false,
            Plain::Other => {
                l2.counters.misses.fetch_add(1, Relaxed);
                return L2Early::Read;
            }
            Plain::Ask => match entry.policy().before_request(&parts(), now) {
                BeforeRequest::Fresh(_) => true,
                BeforeRequest::Stale { matches: true, .. } => false,
                BeforeRequest::Stale { .. } => {
                    l2.counters.misses.fetch_add(1, Relaxed);
                    return L2Early::Read;
                }
            },
        };
        l2.counters.hits.fetch_add(1, Relaxed);
        let entry = Arc::new(entry);
        // Memory held nothing under the key a moment ago: no second read of it before the
        // refill (`keep_with` reads it to keep the other variants).
        if empty {
            cache.refill(key, entry.clone());
        } else {
            cache.keep_with(key, parts, entry.clone(), now);
        }
        // A stale entry or a stored redirect: the hop finds it in memory.
        if !fresh || crate::redirect::hop(entry.status, &req.method).is_some() {
            return L2Early::Read;
        }
        cache.counters.hits.fetch_add(1, Relaxed);
        L2Early::Hit(self.answer_hit(&entry, req, now))
    }

    /// Sends one hop, through the cache when the client has one, as `mode` asks; `l2_read`:
    /// `Client::l2_read` asked Redis for this hop already.
    #[expect(clippy::too_many_arguments, reason = "one hop's state, passed through")]
    pub(super) async fn send_cached(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
        mode: CacheMode,
        l2_read: bool,
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
        let key = cache.key(method, uri);
        let c = &cache.counters;
        let now = SystemTime::now();
        let plain = match mode {
            CacheMode::Reload => Some(Lookup::Missing),
            _ => cache.lookup_plain(&key, headers, opts.defaults, now),
        };
        // The hit path: no request built for the policy, no header map copied.
        if mode != CacheMode::NoCache
            && let Some(Lookup::Fresh(e)) = &plain
        {
            c.hits.fetch_add(1, Relaxed);
            return Ok(e.response(uri, now, CacheStatus::Hit));
        }
        let req = cache::request_parts(method, uri, opts.defaults, headers);
        let mut found = match plain {
            Some(found) => found,
            None => cache.lookup(&key, &req, now),
        };
        // Memory missed or holds a stale copy: another process may have a fresher one (unless
        // `Client::l2_read` asked Redis for this hop already).
        if mode != CacheMode::Reload
            && !l2_read
            && cache.l2.is_some()
            && !matches!(found, Lookup::Fresh(_))
        {
            let shared = cache.lookup_l2(&key, &req).await;
            if !matches!(shared, Lookup::Missing | Lookup::Empty) {
                found = shared;
            }
        }
        // force-cache and only-if-cached take a matching entry however stale.
        let any_age = matches!(mode, CacheMode::ForceCache | CacheMode::OnlyIfCached);
        match (found, mode) {
            (Lookup::Fresh(e), CacheMode::NoCache) | (Lookup::Stale(e), _) if !any_age => {
                let now = SystemTime::now();
                // stale-while-revalidate and stale-if-error belong to the default mode: the
                // others asked for a confirmed or any-age answer.
                let lenient = mode == CacheMode::Default;
                if lenient && e.stale_usable(&req, "stale-while-revalidate", now) {
                    if self.refresh_in_background(cache, &key, &req, headers, &e, opts) {
                        c.background_refreshes.fetch_add(1, Relaxed);
                    }
                    c.stale_served.fetch_add(1, Relaxed);
                    return Ok(e.response(uri, now, CacheStatus::Stale));
                }
                if cache.coalesce
                    && body.as_bytes().is_some_and(<[u8]>::is_empty)
                    && !no_store(&req.headers)
                    && let Some(r) = self
                        .coalesced(
                            cache,
                            &key,
                            &req,
                            headers,
                            opts,
                            Some(e.clone()),
                            lenient,
                            false,
                        )
                        .await
                {
                    return r;
                }
                match self
                    .revalidate(cache, &req, headers, &e, body, opts, lenient)
                    .await
                {
                    Revalidation::NotModified(fresh) => {
                        let out = fresh.response(uri, SystemTime::now(), CacheStatus::Revalidated);
                        cache.put(key, &req, fresh);
                        Ok(out)
                    }
                    Revalidation::Stale => {
                        Ok(e.response(uri, SystemTime::now(), CacheStatus::Stale))
                    }
                    Revalidation::Answer(resp) => {
                        store(cache, key, &req, resp, SystemTime::now()).await
                    }
                    Revalidation::Failed(err) => Err(err),
                }
            }
            (Lookup::Fresh(e), _) => {
                c.hits.fetch_add(1, Relaxed);
                Ok(e.response(uri, SystemTime::now(), CacheStatus::Hit))
            }
            (Lookup::Stale(e), _) => {
                c.stale_served.fetch_add(1, Relaxed);
                Ok(e.response(uri, SystemTime::now(), CacheStatus::Stale))
            }
            (Lookup::Missing | Lookup::Empty, CacheMode::OnlyIfCached) => {
                c.misses.fetch_add(1, Relaxed);
                Ok(only_if_cached_miss(uri))
            }
            (Lookup::Missing | Lookup::Empty, _) => {
                c.misses.fetch_add(1, Relaxed);
                // A flight that landed since the lookup above has stored its answer: a mode
                // that takes a fresh stored answer takes it instead of flying again.
                let recheck = matches!(mode, CacheMode::Default | CacheMode::ForceCache);
                // Off for a request that may not be stored: it asked not to share anything.
                if cache.coalesce
                    && body.as_bytes().is_some_and(<[u8]>::is_empty)
                    && !no_store(&req.headers)
                    && let Some(r) = self
                        .coalesced(cache, &key, &req, headers, opts, None, false, recheck)
                        .await
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

    /// Joins or starts the flight of this request (revalidating `stale` when given); `None`
    /// when its answer was too large to share and this caller must ask on its own. With
    /// `recheck`, a fresh stored answer found when no flight is in the air is a hit (a flight
    /// landed between this caller's lookup and its join).
    #[expect(clippy::too_many_arguments, reason = "one hop's state, passed through")]
    async fn coalesced(
        &self,
        cache: &Cache,
        key: &Key,
        req: &http::request::Parts,
        headers: &HeaderMap,
        opts: &Opts<'_>,
        stale: Option<Arc<Entry>>,
        if_error: bool,
        recheck: bool,
    ) -> Option<Result<Response, Error>> {
        let fkey = coalesce::key(req);
        let stored = || {
            if !recheck {
                return None;
            }
            match cache.lookup(key, req, SystemTime::now()) {
                Lookup::Fresh(e) => Some(e),
                _ => None,
            }
        };
        let joined = cache.flights.join_unless(&fkey, stored, || {
            self.start_flight(&fkey, key, req, headers, opts, stale, if_error)
        });
        let (flight, joined) = match joined {
            Ok(f) => f,
            Err(e) => {
                let c = &cache.counters;
                c.misses.fetch_sub(1, Relaxed);
                c.hits.fetch_add(1, Relaxed);
                return Some(Ok(e.response(
                    &req.uri,
                    SystemTime::now(),
                    CacheStatus::Hit,
                )));
            }
        };
        if joined {
            cache.counters.coalesced.fetch_add(1, Relaxed);
        }
        flight.await.to_response(&req.uri)
    }

    /// Revalidates `stale` in a task of its own unless its flight is in the air already
    /// (whether it started one). The client's close waits for it.
    fn refresh_in_background(
        &self,
        cache: &Cache,
        key: &Key,
        req: &http::request::Parts,
        headers: &HeaderMap,
        stale: &Arc<Entry>,
        opts: &Opts<'_>,
    ) -> bool {
        if self.inner.closed.load(Relaxed) {
            return false;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let fkey = coalesce::key(req);
        let (flight, joined) = cache.flights.join(&fkey, || {
            self.start_flight(&fkey, key, req, headers, opts, Some(stale.clone()), true)
        });
        if joined {
            return false;
        }
        cache.counters.refreshing.fetch_add(1, Relaxed);
        let done = Refreshing(self.clone());
        rt.spawn(async move {
            let _done = done;
            flight.await;
        });
        true
    }

    /// The future of a flight: its own copy of the request, run once for every caller.
    #[expect(clippy::too_many_arguments, reason = "one hop's state, passed through")]
    fn start_flight(
        &self,
        fkey: &str,
        key: &Key,
        req: &http::request::Parts,
        headers: &HeaderMap,
        opts: &Opts<'_>,
        stale: Option<Arc<Entry>>,
        if_error: bool,
    ) -> futures_util::future::BoxFuture<'static, Landing> {
        let client = self.clone();
        let owned = Owned {
            key: key.clone(),
            req: req.clone(),
            headers: headers.clone(),
            idempotent: opts.idempotent,
            rate_limit_key: opts.rate_limit_key.map(str::to_owned),
            balance_key: opts.balance_key.map(str::to_owned),
            deadline: opts.deadline,
            start: opts.start,
            phases: opts.phases,
            engine_headers: std::ptr::eq(opts.defaults, &raw const self.inner.engine_headers),
            stale,
            if_error,
        };
        let fkey = fkey.to_owned();
        async move {
            let landing = client.fly(owned).await;
            if let Some(c) = &client.inner.cache {
                c.flights.land(&fkey);
            }
            landing
        }
        .boxed()
    }

    /// Sends `stale`'s validators: a 304 refreshes it; with `if_error`, a 500/502/503/504 or a
    /// failure within its `stale-if-error` window serves it stale.
    #[expect(clippy::too_many_arguments, reason = "one hop's state, passed through")]
    async fn revalidate(
        &self,
        cache: &Cache,
        req: &http::request::Parts,
        headers: &HeaderMap,
        stale: &Entry,
        body: RequestBody,
        opts: &Opts<'_>,
        if_error: bool,
    ) -> Revalidation {
        let c = &cache.counters;
        c.revalidations.fetch_add(1, Relaxed);
        let cond = cache::entry::conditional(stale, headers);
        let sent = self
            .send_resilient(&req.method, &req.uri, &cond, body, opts)
            .await;
        let now = SystemTime::now();
        let failed = sent
            .as_ref()
            .map_or(true, |r| matches!(r.status.as_u16(), 500 | 502 | 503 | 504));
        if failed && if_error && stale.stale_usable(req, "stale-if-error", now) {
            if let Ok(r) = sent {
                r.drain().await;
            }
            c.stale_if_error.fetch_add(1, Relaxed);
            c.stale_served.fetch_add(1, Relaxed);
            return Revalidation::Stale;
        }
        match sent {
            Err(e) => Revalidation::Failed(e),
            Ok(resp) if resp.status == StatusCode::NOT_MODIFIED => {
                c.not_modified.fetch_add(1, Relaxed);
                let fresh = stale.refreshed(req, &resp.headers, now, cache.opts);
                resp.drain().await;
                Revalidation::NotModified(fresh)
            }
            Ok(resp) => Revalidation::Answer(resp),
        }
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
        let sent = match &o.stale {
            None => {
                self.send_resilient(method, uri, &o.headers, RequestBody::empty(), &opts)
                    .await
            }
            Some(e) => {
                let empty = RequestBody::empty();
                match self
                    .revalidate(cache, &o.req, &o.headers, e, empty, &opts, o.if_error)
                    .await
                {
                    Revalidation::NotModified(fresh) => {
                        let w = Whole::stored(&fresh, SystemTime::now(), CacheStatus::Revalidated);
                        cache.put(o.key, &o.req, fresh);
                        return Landing::Whole(Arc::new(w));
                    }
                    Revalidation::Stale => {
                        let w = Whole::stored(e, SystemTime::now(), CacheStatus::Stale);
                        return Landing::Whole(Arc::new(w));
                    }
                    Revalidation::Answer(r) => Ok(r),
                    Revalidation::Failed(err) => Err(err),
                }
            }
        };
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
        let policy = policy_if_storable(cache, &o.req, &mut resp, now);
        let headers = resp.headers.into_shared();
        if let Some(policy) = policy {
            let entry = Entry::with_policy(
                policy,
                &o.req,
                resp.status,
                resp.version,
                (*headers).clone(),
                bytes.clone(),
                now,
            );
            cache.put(o.key, &o.req, entry);
        }
        Landing::Whole(Arc::new(Whole {
            status: resp.status,
            version: resp.version,
            headers,
            body: bytes,
            timings: resp.timings,
            reused: resp.reused,
            tls: resp.tls,
            cache: CacheStatus::Miss,
        }))
    }
}

/// What `Client::fresh_hit` found in memory.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once by value, as `Result<Response, Error>` is"
)]
pub(super) enum Early<'r> {
    /// A fresh stored answer.
    Hit(Response),
    /// Nothing stored that fits the request, which is plain and may be in Redis.
    Absent(Absent<'r>),
    /// Send the request the whole way.
    Send,
}

/// A plain request memory holds nothing for ([`Early::Absent`]): its key (what it derefs to).
pub(super) struct Absent<'r> {
    key: Key,
    /// Nothing at all is stored under the key (`Lookup::Empty`): an entry from Redis refills
    /// memory without reading it again.
    empty: bool,
    /// The headers the request was judged by in memory (`Client::plain_hop`), which judge the
    /// entry from Redis too.
    sent: std::borrow::Cow<'r, HeaderMap>,
}

impl std::ops::Deref for Absent<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.key
    }
}

/// What `Client::l2_answer` made of the second level's entry.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once by value, as `Result<Response, Error>` is"
)]
pub(super) enum L2Early {
    /// A fresh stored answer.
    Hit(Response),
    /// Redis was asked (or skipped, counted): the first hop must not ask again.
    Read,
    /// No second level: the first hop goes as usual.
    Unread,
    /// The request's deadline passed while Redis was being asked.
    Late,
}

/// A flight's own copy of what its request needs (it may outlive the caller that started it).
struct Owned {
    key: Key,
    req: http::request::Parts,
    headers: HeaderMap,
    idempotent: Option<bool>,
    rate_limit_key: Option<String>,
    balance_key: Option<String>,
    deadline: Option<Instant>,
    start: Instant,
    phases: PhaseTimeouts,
    engine_headers: bool,
    /// The stored response to revalidate, when there is one.
    stale: Option<Arc<Entry>>,
    /// `stale-if-error` applies (the default mode).
    if_error: bool,
}

/// How a revalidation ended.
#[expect(
    clippy::large_enum_variant,
    reason = "one per revalidation, its entry moved into the store at once"
)]
enum Revalidation {
    /// 304: the entry with the answer's headers, fresh again (not yet stored).
    NotModified(Entry),
    /// The server failed within the entry's `stale-if-error` window: serve it stale.
    Stale,
    /// A new answer (to store when its rules allow).
    Answer(Response),
    Failed(Error),
}

/// A background refresh in flight; the client's close waits until none is.
struct Refreshing(Client);

impl Drop for Refreshing {
    fn drop(&mut self) {
        let i = &self.0.inner;
        let Some(cache) = &i.cache else { return };
        if cache.counters.refreshing.fetch_sub(1, Relaxed) == 1 && i.closed.load(Relaxed) {
            i.drained.notify_waiters();
        }
    }
}

/// The answer of `only-if-cached` when nothing stored fits: RFC 9111's `504`, empty.
fn only_if_cached_miss(uri: &Uri) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Response {
        status: StatusCode::GATEWAY_TIMEOUT,
        version: Version::HTTP_11,
        headers: crate::response::Headers::Own(headers),
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

/// The policy of `resp` when it may be stored. An upstream answer enters the cache here: its
/// `Age` is bounded first (`bound_age`), before the policy reads it and before it is stored.
fn policy_if_storable(
    cache: &Cache,
    req: &http::request::Parts,
    resp: &mut Response,
    now: SystemTime,
) -> Option<CachePolicy> {
    cache::entry::bound_age(resp.headers.to_mut());
    let head = cache::entry::Head(resp.status, &resp.headers);
    let policy = CachePolicy::new_options(req, &head, now, cache.opts);
    cache::entry::storable(&policy, req, &resp.headers, now).then_some(policy)
}

/// Stores `resp` when its rules allow, reading its body first (a body larger than
/// `cache.max_entry_bytes` passes through unstored, the part read ahead included).
async fn store(
    cache: &Cache,
    key: Key,
    req: &http::request::Parts,
    mut resp: Response,
    now: SystemTime,
) -> Result<Response, Error> {
    resp.cache = Some(CacheStatus::Miss);
    let Some(policy) = policy_if_storable(cache, req, &mut resp, now) else {
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
    let entry = Entry::with_policy(
        policy,
        req,
        resp.status,
        resp.version,
        (*resp.headers).clone(),
        bytes,
        now,
    );
    cache.put(key, req, entry);
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

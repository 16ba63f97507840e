//! One hop through the response cache (`crate::cache`): a fresh stored response answers without
//! the server; a stale one is revalidated with its validators; a storable answer is read whole
//! (up to `cache.max_entry_bytes`) and stored; an unsafe method's success invalidates the URL.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};
use http_cache_semantics::CachePolicy;

use super::Client;
use super::send::Opts;
use crate::body::{Body, RequestBody};
use crate::cache::{self, Cache, CacheStatus, Entry, Lookup};
use crate::error::Error;
use crate::response::Response;

impl Client {
    /// Sends one hop, through the cache when the client has one.
    pub(super) async fn send_cached(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        let Some(cache) = self.inner.cache.as_ref() else {
            return self.send_resilient(method, uri, headers, body, opts).await;
        };
        if *method != Method::GET && *method != Method::HEAD {
            let resp = self
                .send_resilient(method, uri, headers, body, opts)
                .await?;
            if !method.is_safe() && (resp.status.is_success() || resp.status.is_redirection()) {
                cache.invalidate(uri, &resp.headers);
            }
            return Ok(resp);
        }
        if cache::bypasses(headers) {
            return self.send_resilient(method, uri, headers, body, opts).await;
        }
        let key = cache::key(method, uri);
        let req = cache::request_parts(method, uri, opts.defaults, headers);
        let c = &cache.counters;
        match cache.lookup(&key, &req, SystemTime::now()) {
            Lookup::Fresh(e) => {
                c.hits.fetch_add(1, Relaxed);
                Ok(e.response(uri, SystemTime::now(), CacheStatus::Hit))
            }
            Lookup::Stale(e) => {
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
            Lookup::Missing => {
                c.misses.fetch_add(1, Relaxed);
                let resp = self
                    .send_resilient(method, uri, headers, body, opts)
                    .await?;
                store(cache, key, &req, resp, SystemTime::now()).await
            }
        }
    }
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
    let head = cache::entry::response_parts(resp.status, &resp.headers);
    let policy = CachePolicy::new_options(req, &head, now, cache.opts);
    if !cache::entry::storable(&policy, req, &resp.headers, now) {
        return Ok(resp);
    }
    let max = cache.max_entry_bytes;
    let declared = resp
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
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

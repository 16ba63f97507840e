//! The cache's second level in Redis, shared by every process (of any binding) that uses the
//! same key prefix. Entries are self-describing bytes (`docs/cache-l2-format.md`), rebuilt into
//! a policy by the reader.
//!
//! Invariant: no request waits on Redis longer than `cache.l2.timeout_ms` (`redis_link`: a
//! failure skips Redis for `retry_after_ms`); writes run in the background, bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use http_cache_semantics::CacheOptions;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::Entry;
use crate::config::{CacheL2Config, TlsConfig};
use crate::error::Error;
use crate::redis_link::{Called, Link};

/// The first byte of every entry; a reader skips entries of another version as misses.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Writes and deletes in flight at once; more are dropped (counted as bypassed).
const MAX_WRITES_IN_FLIGHT: usize = 64;

/// Request headers never written to Redis, so a response that varies on them stays in memory.
const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// A read given up because the caller's deadline passed first.
#[derive(Debug)]
pub(crate) struct Late;

/// Counters of the second level, read into `Stats` (errors and bypasses are the link's).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stores: AtomicU64,
}

/// A client's connection to the second level.
pub(crate) struct L2 {
    link: Arc<Link>,
    prefix: String,
    max_entry_bytes: u64,
    stale_ttl: Duration,
    writes: Arc<Semaphore>,
    pub(crate) counters: Counters,
}

impl L2 {
    /// The second level `cfg` asks for; `None` while its URL is empty.
    pub(crate) fn new(cfg: &CacheL2Config, tls: &TlsConfig) -> Result<Option<Arc<L2>>, Error> {
        if cfg.url.is_empty() {
            return Ok(None);
        }
        let link = Link::new(
            "cache.l2.url",
            &cfg.url,
            tls,
            Duration::from_millis(cfg.timeout_ms),
            Duration::from_millis(cfg.retry_after_ms),
        )?;
        Ok(Some(Arc::new(L2 {
            link,
            prefix: cfg.key_prefix.clone(),
            max_entry_bytes: cfg.max_entry_bytes,
            stale_ttl: Duration::from_millis(cfg.stale_ttl_ms),
            writes: Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT)),
            counters: Counters::default(),
        })))
    }

    /// The stored entry under `primary` (the cache's key: method, space, URL), if Redis has one
    /// in a format this version reads.
    pub(crate) async fn read(self: &Arc<Self>, primary: &str, opts: CacheOptions) -> Option<Entry> {
        self.read_until(primary, opts, None).await.ok().flatten()
    }

    /// As [`L2::read`], giving up at `cut` too when that comes before the timeout: `Late`, and
    /// nothing counted (the caller's deadline passed, not Redis's).
    pub(crate) async fn read_until(
        self: &Arc<Self>,
        primary: &str,
        opts: CacheOptions,
        cut: Option<tokio::time::Instant>,
    ) -> Result<Option<Entry>, Late> {
        let key = [self.prefix.as_str(), primary].concat();
        let got: Option<Vec<u8>> = match self
            .link
            .call_until(cut, move |mut c| async move {
                redis::cmd("GET").arg(key).query_async(&mut c).await
            })
            .await
        {
            Called::Done(got) => got,
            Called::Skipped | Called::Failed => return Ok(None),
            Called::Late => return Err(Late),
        };
        let Some(entry) = got.and_then(|raw| decode(&Bytes::from(raw), opts)) else {
            self.counters.misses.fetch_add(1, Relaxed);
            return Ok(None);
        };
        Ok(Some(entry))
    }

    /// Writes `entry` (stored for `req`) under `primary` in the background, when a shared store
    /// may keep it; its TTL is its freshness lifetime plus the stale window.
    pub(crate) fn write(
        self: &Arc<Self>,
        primary: &str,
        req: &http::request::Parts,
        entry: &Arc<Entry>,
        now: SystemTime,
    ) {
        if entry.body.len() as u64 > self.max_entry_bytes || !shareable(&entry.headers) {
            return;
        }
        let Some(vary) = varied(&entry.headers, &req.headers) else {
            return;
        };
        let ttl = entry.policy.time_to_live(now) + self.stale_window(&entry.headers);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return;
        }
        let Some(raw) = encode(primary, entry, &vary, now) else {
            return;
        };
        let key = format!("{}{primary}", self.prefix);
        self.background(true, move |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(raw)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut c)
                .await
        });
    }

    /// Deletes the entries under these primary keys in the background.
    pub(crate) fn forget(self: &Arc<Self>, primaries: &[String]) {
        let keys: Vec<String> = primaries
            .iter()
            .map(|p| format!("{}{p}", self.prefix))
            .collect();
        self.background(false, move |mut c| async move {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut c).await
        });
    }

    /// Closes the Redis connection once the writes in flight have finished (or `until`
    /// passed): the client closed, and nothing else holds this level. Later commands are
    /// skipped (counted in `bypassed`).
    pub(crate) async fn close(&self, until: Option<tokio::time::Instant>) {
        let all = self.writes.acquire_many(MAX_WRITES_IN_FLIGHT as u32);
        match until {
            Some(at) => drop(tokio::time::timeout_at(at, all).await),
            None => drop(all.await),
        }
        self.link.close();
    }

    pub(crate) fn stats(&self, s: &mut crate::metrics::CacheStats) {
        let c = &self.counters;
        s.l2_hits = c.hits.load(Relaxed);
        s.l2_misses = c.misses.load(Relaxed);
        s.l2_stores = c.stores.load(Relaxed);
        s.l2_errors = self.link.errors.load(Relaxed);
        s.l2_bypassed = self.link.bypassed.load(Relaxed);
    }

    /// How long past freshness Redis keeps an entry: `stale_ttl_ms` when it can be revalidated,
    /// or its own `stale-while-revalidate` / `stale-if-error` window when longer.
    fn stale_window(&self, headers: &HeaderMap) -> Duration {
        let validators =
            headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
        let own = directives(headers)
            .filter_map(|(name, value)| {
                matches!(name.as_str(), "stale-while-revalidate" | "stale-if-error")
                    .then(|| value?.parse::<u64>().ok())
                    .flatten()
            })
            .max()
            .map_or(Duration::ZERO, Duration::from_secs);
        if validators {
            own.max(self.stale_ttl)
        } else {
            own
        }
    }

    /// Runs a write in the background, or drops it (counted) when Redis is skipped, too many
    /// writes are in flight, or there is no runtime to run it on.
    fn background<F, Fut>(self: &Arc<Self>, store: bool, cmd: F)
    where
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<()>> + Send,
    {
        let permit = self.writes.clone().try_acquire_owned();
        let rt = tokio::runtime::Handle::try_current();
        let (Ok(permit), Ok(rt), false) = (permit, rt, self.link.is_down()) else {
            self.link.bypassed.fetch_add(1, Relaxed);
            return;
        };
        let me = self.clone();
        rt.spawn(async move {
            if me.link.call(cmd).await.is_some() && store {
                me.counters.stores.fetch_add(1, Relaxed);
            }
            drop(permit);
        });
    }
}

impl std::fmt::Debug for L2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The `Cache-Control` directives of a response, names lowercased.
fn directives(headers: &HeaderMap) -> impl Iterator<Item = (String, Option<&str>)> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| {
            let mut kv = d.trim().splitn(2, '=');
            let name = kv.next().unwrap_or("").trim().to_ascii_lowercase();
            (name, kv.next().map(|v| v.trim().trim_matches('"')))
        })
}

/// Whether a shared store may keep this response: not `private`, no `Set-Cookie`.
fn shareable(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::SET_COOKIE) && !directives(headers).any(|(n, _)| n == "private")
}

/// The request headers the response's `Vary` names, as (name, value) pairs; `None` when it
/// cannot be shared (`Vary: *`, or a credential among them).
fn varied(resp: &HeaderMap, req: &HeaderMap) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in resp.get_all(header::VARY) {
        for name in v.to_str().ok()?.split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if CREDENTIALS.contains(&name) {
                return None;
            }
            for value in req.get_all(&name) {
                out.push((name.as_str().to_owned(), value.to_str().ok()?.to_owned()));
            }
        }
    }
    Some(out)
}

/// The JSON head of an entry (`docs/cache-l2-format.md`), as written: borrowed from the entry.
#[derive(Serialize)]
struct Head<'a> {
    status: u16,
    version: &'a str,
    method: &'a str,
    url: &'a str,
    response_time_ms: u64,
    request_headers: &'a [(String, String)],
    headers: Vec<(&'a str, &'a str)>,
}

/// The head as read: its strings borrowed from the bytes Redis returned (unless escaped).
#[derive(Deserialize)]
struct HeadIn<'a> {
    status: u16,
    #[serde(borrow)]
    version: Text<'a>,
    #[serde(borrow)]
    method: Text<'a>,
    #[serde(borrow)]
    url: Text<'a>,
    response_time_ms: u64,
    #[serde(borrow)]
    request_headers: Vec<(Text<'a>, Text<'a>)>,
    #[serde(borrow)]
    headers: Vec<(Text<'a>, Text<'a>)>,
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = std::borrow::Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(v.into())
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(v.to_owned().into())
            }
        }
        d.deserialize_str(Visit).map(Text)
    }
}

impl Text<'_> {
    /// Its bytes as a header value, sharing `raw`'s buffer when borrowed from it.
    fn value(&self, raw: &Bytes) -> Option<HeaderValue> {
        match &self.0 {
            // The same bytes `from_str` takes (text and obs-text, no controls).
            std::borrow::Cow::Borrowed(s) => {
                HeaderValue::from_maybe_shared(raw.slice_ref(s.as_bytes())).ok()
            }
            std::borrow::Cow::Owned(s) => HeaderValue::from_str(s).ok(),
        }
    }

    fn name(&self) -> Option<HeaderName> {
        HeaderName::from_bytes(self.0.as_bytes()).ok()
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn parse_version(s: &str) -> Version {
    match s {
        "HTTP/0.9" => Version::HTTP_09,
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/2" => Version::HTTP_2,
        "HTTP/3" => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// Version byte, head length (u32 big-endian), JSON head, body. `None` when a header value is
/// not text (JSON strings carry text only).
fn encode(
    primary: &str,
    entry: &Entry,
    vary: &[(String, String)],
    now: SystemTime,
) -> Option<Vec<u8>> {
    let (method, url) = primary.split_once(' ')?;
    let mut headers = Vec::with_capacity(entry.headers.len());
    for (k, v) in &entry.headers {
        headers.push((k.as_str(), v.to_str().ok()?));
    }
    // The policy keeps when the response arrived privately; its age minus the `Age` it came
    // with is how long it has been held.
    let came_with = entry
        .headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let resident = entry.policy.age(now).saturating_sub(came_with);
    let response_time = now.checked_sub(resident).unwrap_or(now);
    let head = Head {
        status: entry.status.as_u16(),
        version: version_str(entry.version),
        method,
        url,
        response_time_ms: response_time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        request_headers: vary,
        headers,
    };
    let json = serde_json::to_vec(&head).ok()?;
    let len = u32::try_from(json.len()).ok()?;
    let mut out = Vec::with_capacity(5 + json.len() + entry.body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&entry.body);
    Some(out)
}

/// An entry read back, its policy rebuilt from the stored request and response heads. The body
/// and the header values share `raw`'s buffer.
fn decode(raw: &Bytes, opts: CacheOptions) -> Option<Entry> {
    let (&version, rest) = raw.split_first()?;
    if version != FORMAT_VERSION || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    let json = rest.get(4..4 + len)?;
    let head: HeadIn<'_> = serde_json::from_slice(json).ok()?;
    let body = raw.slice(5 + len..);
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (k, v) in &head.headers {
        headers.append(k.name()?, v.value(raw)?);
    }
    let mut req_headers = HeaderMap::with_capacity(head.request_headers.len());
    for (k, v) in &head.request_headers {
        req_headers.append(k.name()?, v.value(raw)?);
    }
    let (mut req, ()) = http::Request::new(()).into_parts();
    req.method = head.method.0.parse().ok()?;
    req.uri = head.url.0.parse().ok()?;
    req.headers = req_headers;
    let status = StatusCode::from_u16(head.status).ok()?;
    let response_time = UNIX_EPOCH + Duration::from_millis(head.response_time_ms);
    Some(Entry::new(
        &req,
        status,
        parse_version(&head.version.0),
        headers,
        body,
        response_time,
        opts,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CacheOptions {
        CacheOptions {
            shared: false,
            cache_heuristic: 0.1,
            immutable_min_time_to_live: Duration::from_hours(24),
            ignore_cargo_cult: false,
        }
    }

    fn entry(
        resp_headers: &[(&str, &str)],
        req_headers: &[(&str, &str)],
    ) -> (http::request::Parts, Entry) {
        let (mut req, ()) = http::Request::new(()).into_parts();
        req.uri = "http://example.test/a?b=1".parse().unwrap();
        for (k, v) in req_headers {
            req.headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut headers = HeaderMap::new();
        for (k, v) in resp_headers {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let e = Entry::new(
            &req,
            StatusCode::OK,
            Version::HTTP_11,
            headers,
            Bytes::from_static(b"hello \x00 bytes"),
            SystemTime::now(),
            opts(),
        );
        (req, e)
    }

    #[test]
    fn an_entry_round_trips_with_its_freshness_and_vary() {
        let (req, e) = entry(
            &[
                ("cache-control", "max-age=60"),
                ("vary", "Accept"),
                ("etag", "\"x\""),
            ],
            &[("accept", "text/plain")],
        );
        let vary = varied(&e.headers, &req.headers).unwrap();
        let raw = encode(
            "GET http://example.test/a?b=1",
            &e,
            &vary,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(raw[0], FORMAT_VERSION);
        let back = decode(&Bytes::from(raw), opts()).unwrap();
        assert_eq!(back.body, e.body);
        assert_eq!(back.headers, e.headers);
        let now = SystemTime::now();
        assert!(matches!(
            back.policy.before_request(&req, now),
            http_cache_semantics::BeforeRequest::Fresh(_)
        ));
        let (other, _) = entry(&[], &[("accept", "text/html")]);
        assert!(matches!(
            back.policy.before_request(&other, now),
            http_cache_semantics::BeforeRequest::Stale { matches: false, .. }
        ));
    }

    #[test]
    fn another_format_version_or_a_short_entry_is_a_miss() {
        let (req, e) = entry(&[("cache-control", "max-age=60")], &[]);
        let vary = varied(&e.headers, &req.headers).unwrap();
        let mut raw = encode(
            "GET http://example.test/a?b=1",
            &e,
            &vary,
            SystemTime::now(),
        )
        .unwrap();
        raw[0] = 2;
        assert!(decode(&Bytes::from(raw.clone()), opts()).is_none());
        raw[0] = FORMAT_VERSION;
        raw.truncate(10);
        assert!(decode(&Bytes::from(raw), opts()).is_none());
    }

    /// Header values are taken from the entry's bytes when the JSON has no escapes, copied when
    /// it has; either way the same values are taken (`HeaderValue::from_str`'s rule).
    #[test]
    fn escaped_and_unescaped_values_decode_alike() {
        let head = |etag: &str| {
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let json = format!(
                r#"{{"status":200,"version":"HTTP/1.1","method":"GET","url":"http://example.test/a?b=1","response_time_ms":{at},"request_headers":[["accept","text/\u0070lain"]],"headers":[["cache-control","max-age=60"],["vary","accept"],["etag",{etag}]]}}"#
            );
            let mut raw = vec![FORMAT_VERSION];
            raw.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
            raw.extend_from_slice(json.as_bytes());
            raw.extend_from_slice(b"body");
            decode(&Bytes::from(raw), opts())
        };
        let plain = head(r#""abc""#).unwrap();
        assert_eq!(plain.headers["etag"], "abc");
        assert_eq!(plain.body, "body");
        let escaped = head(r#""\"abc\"""#).unwrap();
        assert_eq!(escaped.headers["etag"], "\"abc\"");
        let (req, _) = entry(&[], &[("accept", "text/plain")]);
        assert!(matches!(
            escaped.policy.before_request(&req, SystemTime::now()),
            http_cache_semantics::BeforeRequest::Fresh(_)
        ));
        let raw_utf8 = head("\"caf\u{e9}\"").unwrap();
        let escaped_utf8 = head(r#""caf\u00e9""#).unwrap();
        assert_eq!(raw_utf8.headers["etag"].as_bytes(), "caf\u{e9}".as_bytes());
        assert_eq!(escaped_utf8.headers["etag"], raw_utf8.headers["etag"]);
        assert!(head(r#""a\u0001b""#).is_none(), "a control character");
        assert!(head("\"a\u{7f}b\"").is_none(), "DEL");
    }

    #[test]
    fn private_set_cookie_and_credential_variants_are_not_shared() {
        let h = |pairs: &[(&str, &str)]| entry(pairs, &[("cookie", "a=1")]).1.headers;
        assert!(!shareable(&h(&[("cache-control", "private, max-age=60")])));
        assert!(!shareable(&h(&[("set-cookie", "a=1")])));
        assert!(shareable(&h(&[("cache-control", "public, max-age=60")])));
        let req = entry(&[], &[("cookie", "a=1")]).0.headers;
        assert!(varied(&h(&[("vary", "Cookie")]), &req).is_none());
        assert!(varied(&h(&[("vary", "*")]), &req).is_none());
        assert_eq!(varied(&h(&[("vary", "Accept")]), &req), Some(vec![]));
    }
}

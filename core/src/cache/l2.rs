//! The cache's second level in Redis, shared by every process (of any binding) that uses the
//! same key prefix. Entries are self-describing bytes (`docs/cache-l2-format.md`): a binary head
//! that carries, besides the stored request and response heads, when the writer's policy said
//! the response stops being fresh, so that a reader with the same options answers a plain hit
//! without rebuilding the policy (`Entry::read_back`).
//!
//! Invariant: no request waits on Redis longer than `cache.l2.timeout_ms` (`redis_link`: a
//! failure skips Redis for `retry_after_ms`); writes run in the background, bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use http_cache_semantics::CacheOptions;
use redis::aio::ConnectionManager;
use tokio::sync::Semaphore;

use super::Entry;
use super::entry::bound_age;
use crate::config::{CacheL2Config, TlsConfig};
use crate::error::Error;
use crate::redis_link::{Called, Link};

/// The first byte of every entry; a reader skips entries of another version as misses
/// (version 1, a JSON head, is read as a miss since version 2).
pub(crate) const FORMAT_VERSION: u8 = 2;

/// The longest an entry is kept in Redis: 2^31 seconds.
const MAX_TTL: Duration = Duration::from_secs(super::entry::MAX_AGE_SECS);

/// The three bytes after the version: an entry this version writes (so that a value someone
/// else put under the key is a miss too).
const MAGIC: [u8; 3] = *b"wce";

/// The fixed part of the head: version, magic, status, HTTP version, response time, fresh
/// until, the writer's policy options (flags, heuristic, immutable minimum).
const FIXED: usize = 1 + 3 + 2 + 1 + 8 + 8 + 1 + 4 + 4;

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

    /// The stored entry under `primary` (the cache's key for a `method` request of `uri`:
    /// method, space, URL), if Redis has one in a format this version reads.
    pub(crate) async fn read(
        self: &Arc<Self>,
        primary: &str,
        method: &Method,
        uri: &Uri,
        opts: CacheOptions,
    ) -> Option<Entry> {
        let raw = self.read_until(primary, None).await.ok().flatten()?;
        self.entry(&raw, method, uri, opts)
    }

    /// The bytes stored under `primary` ([`L2::entry`] reads them), giving up at `cut` too
    /// when that comes before the timeout: `Late`, and nothing counted (the caller's deadline
    /// passed, not Redis's). Nothing stored is a miss, counted.
    pub(crate) async fn read_until(
        self: &Arc<Self>,
        primary: &str,
        cut: Option<tokio::time::Instant>,
    ) -> Result<Option<Bytes>, Late> {
        // Sized for its two arguments up front: written piece by piece, the command's buffer
        // grew three times.
        let mut get = redis::Cmd::with_capacity(2, 3 + self.prefix.len() + primary.len());
        get.arg("GET").arg(Prefixed(&self.prefix, primary));
        let got: Option<Vec<u8>> = match self
            .link
            .call_until(
                cut,
                move |mut c| async move { get.query_async(&mut c).await },
            )
            .await
        {
            Called::Done(got) => got,
            Called::Skipped | Called::Failed => return Ok(None),
            Called::Late => return Err(Late),
        };
        let Some(raw) = got else {
            self.counters.misses.fetch_add(1, Relaxed);
            return Ok(None);
        };
        Ok(Some(Bytes::from(raw)))
    }

    /// The entry `raw` (read under the key of a `method` request of `uri`) holds, when it is
    /// in this version's format; otherwise a miss, counted.
    pub(crate) fn entry(
        &self,
        raw: &Bytes,
        method: &Method,
        uri: &Uri,
        opts: CacheOptions,
    ) -> Option<Entry> {
        let entry = decode(raw, method, uri, opts);
        if entry.is_none() {
            self.counters.misses.fetch_add(1, Relaxed);
        }
        entry
    }

    /// Writes `entry` (stored for `req`, its policy made under `opts`) under `primary` in the
    /// background, when a shared store may keep it; its TTL is its freshness lifetime plus the
    /// stale window.
    pub(crate) fn write(
        self: &Arc<Self>,
        primary: &str,
        req: &http::request::Parts,
        entry: &Arc<Entry>,
        now: SystemTime,
        opts: &CacheOptions,
    ) {
        if entry.body.len() as u64 > self.max_entry_bytes || !shareable(entry.headers()) {
            return;
        }
        let Some(vary) = varied(entry.headers(), &req.headers) else {
            return;
        };
        // Both may be up to u64::MAX seconds (a directive's delta-seconds): their sum saturates,
        // and Redis keeps an entry at most 2^31 s (RFC 9111's largest delta-seconds; an
        // expiry past what Redis can represent would fail the SET).
        let ttl = (entry.policy().time_to_live(now))
            .saturating_add(self.stale_window(entry.headers()))
            .min(MAX_TTL);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return;
        }
        let Some(raw) = encode(entry, &vary, now, opts) else {
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
fn varied(resp: &HeaderMap, req: &HeaderMap) -> Option<Vec<(HeaderName, HeaderValue)>> {
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
                out.push((name.clone(), value.clone()));
            }
        }
    }
    Some(out)
}

/// A Redis key written as one argument from its prefix and the cache's key, without joining
/// them in a string first.
struct Prefixed<'a>(&'a str, &'a str);

impl redis::ToRedisArgs for Prefixed<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // Writes into the command's buffer: they cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(self.1.as_bytes());
    }
}

/// The HTTP version as one byte: `9` (0.9), `10`, `11`, `20` or `30`.
fn version_code(v: Version) -> u8 {
    match v {
        Version::HTTP_09 => 9,
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        Version::HTTP_3 => 30,
        _ => 11,
    }
}

fn version_of(code: u8) -> Option<Version> {
    Some(match code {
        9 => Version::HTTP_09,
        10 => Version::HTTP_10,
        11 => Version::HTTP_11,
        20 => Version::HTTP_2,
        30 => Version::HTTP_3,
        _ => return None,
    })
}

/// The options a policy was made under, as the flags byte of the head: bit 0 a shared cache,
/// bit 1 `ignore_cargo_cult`.
fn flags(opts: &CacheOptions) -> u8 {
    u8::from(opts.shared) | (u8::from(opts.ignore_cargo_cult) << 1)
}

/// Milliseconds since the Unix epoch (0 before it).
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends a header list: its count (u16), then each name (u16 length, bytes) and value (u32
/// length, bytes). `None` when a count or length does not fit.
fn put_headers<'h>(
    out: &mut Vec<u8>,
    count: usize,
    headers: impl Iterator<Item = (&'h HeaderName, &'h HeaderValue)>,
) -> Option<()> {
    out.extend_from_slice(&u16::try_from(count).ok()?.to_be_bytes());
    for (k, v) in headers {
        out.extend_from_slice(&u16::try_from(k.as_str().len()).ok()?.to_be_bytes());
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(&u32::try_from(v.len()).ok()?.to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    Some(())
}

/// An entry in format version 2 (`docs/cache-l2-format.md`), written under the cache options
/// `opts` its policy was made with: the fixed head, the varied request headers, the response
/// headers, the body. `None` when a length does not fit its field.
fn encode(
    entry: &Entry,
    vary: &[(HeaderName, HeaderValue)],
    now: SystemTime,
    opts: &CacheOptions,
) -> Option<Vec<u8>> {
    // Not after `now`: an entry is never held for less than nothing.
    let response_time = entry.response_time().min(now);
    let heads: usize = vary
        .iter()
        .map(|(k, v)| (k, v))
        .chain(entry.headers().iter())
        .map(|(k, v)| 6 + k.as_str().len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(FIXED + 4 + heads + entry.body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&entry.status.as_u16().to_be_bytes());
    out.push(version_code(entry.version));
    out.extend_from_slice(&epoch_ms(response_time).to_be_bytes());
    out.extend_from_slice(&entry.fresh_until().map_or(0, epoch_ms).to_be_bytes());
    out.push(flags(opts));
    out.extend_from_slice(&opts.cache_heuristic.to_bits().to_be_bytes());
    let immutable = u32::try_from(opts.immutable_min_time_to_live.as_secs()).ok()?;
    out.extend_from_slice(&immutable.to_be_bytes());
    put_headers(&mut out, vary.len(), vary.iter().map(|(k, v)| (k, v)))?;
    put_headers(&mut out, entry.headers().len(), entry.headers().iter())?;
    out.extend_from_slice(&entry.body);
    Some(out)
}

/// A cursor over an entry's bytes; every read is bounds-checked (`None` past the end).
struct Reader<'a> {
    raw: &'a Bytes,
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let raw: &'a Bytes = self.raw;
        let s = raw.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A header list as [`put_headers`] writes it, in a map with room for `spare` more; the
    /// values share the entry's buffer.
    fn headers(&mut self, spare: usize) -> Option<HeaderMap> {
        let count = usize::from(self.u16()?);
        // Each pair takes six bytes at least: a count the bytes cannot hold is not believed.
        let mut map = HeaderMap::try_with_capacity(count.min(64) + spare).ok()?;
        for _ in 0..count {
            let name_len = usize::from(self.u16()?);
            let name = header_name(self.take(name_len)?)?;
            let value_len = usize::try_from(self.u32()?).ok()?;
            let start = self.at;
            self.take(value_len)?;
            let value = HeaderValue::from_maybe_shared(self.raw.slice(start..self.at)).ok()?;
            map.try_append(name, value).ok()?;
        }
        Some(map)
    }
}

/// The header name `raw` spells: the common response headers by their bytes as the format
/// writes them (lowercase), without parsing; the others parsed.
fn header_name(raw: &[u8]) -> Option<HeaderName> {
    Some(match raw {
        b"accept-ranges" => header::ACCEPT_RANGES,
        b"age" => header::AGE,
        b"cache-control" => header::CACHE_CONTROL,
        b"content-encoding" => header::CONTENT_ENCODING,
        b"content-language" => header::CONTENT_LANGUAGE,
        b"content-length" => header::CONTENT_LENGTH,
        b"content-type" => header::CONTENT_TYPE,
        b"date" => header::DATE,
        b"etag" => header::ETAG,
        b"expires" => header::EXPIRES,
        b"last-modified" => header::LAST_MODIFIED,
        b"server" => header::SERVER,
        b"vary" => header::VARY,
        _ => HeaderName::from_bytes(raw).ok()?,
    })
}

/// The header list of `raw` at `at` (an entry's response headers, read by [`decode`] once
/// already), for an entry read back that needs its stored map (`Entry::headers`).
pub(crate) fn header_list(raw: &Bytes, at: usize) -> Option<HeaderMap> {
    let mut headers = Reader { raw, at }.headers(0)?;
    bound_age(&mut headers);
    Some(headers)
}

/// `headers` as a header list alone (tests of `Entry::read_back`).
#[cfg(test)]
pub(crate) fn list_of(headers: &HeaderMap) -> Bytes {
    let mut out = Vec::new();
    put_headers(&mut out, headers.len(), headers.iter()).unwrap();
    Bytes::from(out)
}

/// The entry `raw` holds, read under the key of a `method` request of `uri` (which the key
/// implies, so the entry does not repeat them), when it is in this version's format. Written
/// under the same cache options, its freshness is taken as written and its policy built only
/// when a request needs it; under others, the policy is built now and judges. The body and the
/// header values share `raw`'s buffer.
fn decode(raw: &Bytes, method: &Method, uri: &Uri, opts: CacheOptions) -> Option<Entry> {
    let mut r = Reader { raw, at: 0 };
    if r.array::<1>()? != [FORMAT_VERSION] || r.array::<3>()? != MAGIC {
        return None;
    }
    let status = StatusCode::from_u16(r.u16()?).ok()?;
    let version = version_of(r.array::<1>()?[0])?;
    let response_time = UNIX_EPOCH.checked_add(Duration::from_millis(r.u64()?))?;
    let fresh_until = match r.u64()? {
        0 => None,
        ms => Some(UNIX_EPOCH.checked_add(Duration::from_millis(ms))?),
    };
    let written_flags = r.array::<1>()?[0];
    let heuristic = r.u32()?;
    let immutable = Duration::from_secs(u64::from(r.u32()?));
    let varied = r.headers(0)?;
    let at = r.at;
    // Room for the `Age` a hit adds when it serves these headers (`Entry::served_headers`).
    let mut headers = r.headers(1)?;
    // Another writer's entry may carry any `Age`: bounded as an origin's is.
    bound_age(&mut headers);
    let body = raw.slice(r.at..);
    let same_opts = written_flags == flags(&opts)
        && heuristic == opts.cache_heuristic.to_bits()
        && immutable == opts.immutable_min_time_to_live;
    if same_opts {
        return Some(Entry::read_back(
            method.clone(),
            uri.clone(),
            varied,
            status,
            version,
            headers,
            (raw.clone(), at),
            body,
            response_time,
            fresh_until,
            opts,
        ));
    }
    let (mut req, ()) = http::Request::new(()).into_parts();
    req.method = method.clone();
    req.uri = uri.clone();
    req.headers = varied;
    Some(Entry::new(
        &req,
        status,
        version,
        headers,
        body,
        response_time,
        opts,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::Plain;
    use crate::cache::entry::tests::policy_says as says;

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

    fn uri() -> Uri {
        "http://example.test/a?b=1".parse().unwrap()
    }

    fn round_trip(e: &Entry, req: &http::request::Parts, read_with: CacheOptions) -> Entry {
        let vary = varied(e.headers(), &req.headers).unwrap();
        let raw = encode(e, &vary, SystemTime::now(), &opts()).unwrap();
        assert_eq!(raw[0], FORMAT_VERSION);
        decode(&Bytes::from(raw), &Method::GET, &uri(), read_with).unwrap()
    }

    /// Another writer's entry whose `Age` is too large to count with (its writer did not bound
    /// it) is read back with 2^31 s, as an origin's: judging it seconds later neither panics (in
    /// http-cache-semantics' age sum) nor finds it fresh.
    #[test]
    fn an_entry_with_an_age_too_large_is_read_back_with_two_to_the_31() {
        let (req, _) = entry(&[], &[]);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        headers.insert(header::AGE, HeaderValue::from(u64::MAX));
        let now = SystemTime::now();
        // As a writer that does not bound `Age` would store it (Entry::new bounds it).
        let policy = http_cache_semantics::CachePolicy::new_options(
            &req,
            &super::super::entry::Head(StatusCode::OK, &headers),
            now,
            opts(),
        );
        let e = Entry::with_policy(
            policy,
            &req,
            StatusCode::OK,
            Version::HTTP_11,
            headers,
            Bytes::from_static(b"x"),
            now,
        );
        let raw = encode(&e, &[], now, &opts()).unwrap();
        let back = decode(&Bytes::from(raw), &Method::GET, &uri(), opts()).unwrap();
        let later = now + Duration::from_secs(5);
        assert_eq!(back.age(later).as_secs(), (1 << 31) + 5);
        assert_eq!(says(&back, &req, later), Plain::Stale);
        assert_eq!(back.headers()[header::AGE], "2147483648");
    }

    /// An entry read back serves the headers it read with `Age` added (the stored map is not
    /// built and copied first), keeps the `Age` it arrived with in its stored headers, and
    /// serves later seconds from those: what it serves is what a memory entry serves.
    #[test]
    fn an_entry_read_back_serves_its_headers_with_age() {
        let strip = |h: &HeaderMap| {
            h.iter()
                .filter(|(k, _)| *k != header::AGE)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        for (arrived, with_age) in [(10, true), (0, false)] {
            let mut resp = vec![("cache-control", "max-age=60"), ("x-a", "1"), ("x-a", "2")];
            if with_age {
                resp.insert(1, ("age", "10"));
            }
            let (req, e) = entry(&resp, &[]);
            let back = round_trip(&e, &req, opts());
            assert_eq!(back.weight(), e.weight());
            let now = SystemTime::now();
            let age = back.age(now).as_secs();
            assert!(age >= arrived && age < arrived + 5, "{age}");
            let first = back.served_headers(now);
            assert_eq!(first["age"], age.to_string().as_str());
            assert!(Arc::ptr_eq(&first, &back.served_headers(now)));
            assert_eq!(strip(&first), strip(e.headers()));
            assert_eq!(first.len(), e.headers().len() + usize::from(!with_age));
            assert_eq!(
                back.headers(),
                e.headers(),
                "the stored headers are as they came"
            );
            let later = now + Duration::from_secs(5);
            let second = back.served_headers(later);
            assert_eq!(back.age(later).as_secs(), age + 5);
            assert_eq!(second["age"], (age + 5).to_string().as_str());
            assert_eq!(strip(&second), strip(e.headers()));
            assert_eq!(
                first["age"],
                age.to_string().as_str(),
                "a served map is not changed"
            );
        }
    }

    #[test]
    fn an_entry_round_trips_with_its_freshness_and_vary() {
        let (req, e) = entry(
            &[
                ("cache-control", "max-age=60"),
                ("vary", "Accept"),
                ("etag", "\"x\""),
                ("age", "10"),
            ],
            &[("accept", "text/plain")],
        );
        let back = round_trip(&e, &req, opts());
        assert_eq!(back.body, e.body);
        assert_eq!(back.headers(), e.headers());
        assert_eq!(back.status, e.status);
        assert_eq!(back.version, e.version);
        let (other, _) = entry(&[], &[("accept", "text/html")]);
        let none = HeaderMap::new();
        // Judged without the policy and by the policy (built on first use), now and past
        // the end of freshness (60 s less the 10 s it arrived with).
        for later in [0, 49, 51] {
            let now = SystemTime::now() + Duration::from_secs(later);
            let want = if later < 50 {
                Plain::Fresh
            } else {
                Plain::Stale
            };
            assert_eq!(back.quick_judge(&req.headers, &none, now), want, "{later}");
            assert_eq!(says(&back, &req, now), want, "{later}");
            assert_eq!(back.quick_judge(&other.headers, &none, now), Plain::Other);
            assert_eq!(says(&back, &other, now), Plain::Other);
            assert_eq!(back.age(now).as_secs(), e.age(now).as_secs());
        }
    }

    /// A header value that is not text (obs-text) is written and read back as its bytes.
    #[test]
    fn values_that_are_not_text_round_trip() {
        let (req, mut e) = entry(&[("cache-control", "max-age=60")], &[]);
        e.headers_mut()
            .insert("x-latin1", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let back = round_trip(&e, &req, opts());
        assert_eq!(back.headers()["x-latin1"].as_bytes(), b"caf\xe9");
    }

    /// A reader whose cache options differ from the writer's judges by its own: a shared
    /// cache takes `s-maxage` where the private writer took `max-age`.
    #[test]
    fn another_writers_options_are_judged_by_the_readers() {
        let (req, e) = entry(&[("cache-control", "s-maxage=5, max-age=60")], &[]);
        let shared = CacheOptions {
            shared: true,
            ..opts()
        };
        let none = HeaderMap::new();
        let later = SystemTime::now() + Duration::from_secs(30);
        let private = round_trip(&e, &req, opts());
        assert_eq!(private.quick_judge(&none, &none, later), Plain::Fresh);
        let shared = round_trip(&e, &req, shared);
        assert_eq!(shared.quick_judge(&none, &none, later), Plain::Stale);
        assert_eq!(says(&shared, &req, later), Plain::Stale);
    }

    /// A name read without parsing is the one parsing reads; any other is parsed as before.
    #[test]
    fn header_names_read_as_parsed() {
        for name in [
            "accept-ranges",
            "age",
            "cache-control",
            "content-encoding",
            "content-language",
            "content-length",
            "content-type",
            "date",
            "etag",
            "expires",
            "last-modified",
            "server",
            "vary",
            "x-served",
            "Content-Type",
        ] {
            let parsed = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(header_name(name.as_bytes()), Some(parsed), "{name}");
        }
        assert_eq!(header_name(b"bad name"), None);
        assert_eq!(header_name(b""), None);
    }

    /// Version 1 (a JSON head), another version, another magic, a short or cut entry: all
    /// misses, and no byte changed anywhere makes the reader fail otherwise than by `None`.
    #[test]
    fn another_format_or_a_cut_or_garbled_entry_is_a_miss() {
        let (req, e) = entry(&[("cache-control", "max-age=60"), ("etag", "\"x\"")], &[]);
        let raw = encode(&e, &[], SystemTime::now(), &opts()).unwrap();
        let read = |raw: &[u8]| decode(&Bytes::copy_from_slice(raw), &Method::GET, &uri(), opts());
        assert!(read(&raw).is_some());
        let json = br#"{"status":200,"version":"HTTP/1.1","method":"GET","url":"http://example.test/a?b=1","response_time_ms":1,"request_headers":[],"headers":[["cache-control","max-age=60"]]}"#;
        let mut v1 = vec![1];
        v1.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
        v1.extend_from_slice(json);
        v1.extend_from_slice(b"body");
        assert!(read(&v1).is_none(), "version 1");
        for (at, byte) in [(0, 3), (0, 0), (1, b'x'), (3, b'E')] {
            let mut other = raw.clone();
            other[at] = byte;
            assert!(read(&other).is_none(), "byte {at} = {byte}");
        }
        let heads_end = raw.len() - e.body.len();
        for cut in 0..heads_end {
            assert!(read(&raw[..cut]).is_none(), "cut at {cut}");
        }
        for at in 0..heads_end {
            for byte in [0, 1, 0x7f, 0xff] {
                let mut garbled = raw.clone();
                garbled[at] = byte;
                if let Some(back) = read(&garbled) {
                    std::hint::black_box(says(&back, &req, SystemTime::now()));
                }
            }
        }
        assert!(read(b"").is_none());
        assert!(read(b"not an entry").is_none());
    }

    #[test]
    fn private_set_cookie_and_credential_variants_are_not_shared() {
        let h = |pairs: &[(&str, &str)]| entry(pairs, &[("cookie", "a=1")]).1.headers().clone();
        assert!(!shareable(&h(&[("cache-control", "private, max-age=60")])));
        assert!(!shareable(&h(&[("set-cookie", "a=1")])));
        assert!(shareable(&h(&[("cache-control", "public, max-age=60")])));
        let req = entry(&[], &[("cookie", "a=1")]).0.headers;
        assert!(varied(&h(&[("vary", "Cookie")]), &req).is_none());
        assert!(varied(&h(&[("vary", "*")]), &req).is_none());
        assert_eq!(varied(&h(&[("vary", "Accept")]), &req), Some(vec![]));
    }
}

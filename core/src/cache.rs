//! The RFC 9111 response cache: GET and HEAD responses kept in memory (a `quick_cache` store
//! bounded by bytes, [`Store`]), reused while fresh and revalidated once stale; the rules
//! (freshness, `Vary`, validators) come from `http-cache-semantics`. The client consults it
//! around each redirect hop, outside retries (`client/cached.rs`), so a hit costs no attempt,
//! token or connection.
//!
//! Invariant: only complete bodies are stored; a response is put in the store once its whole
//! body has been read, never a prefix.

pub(crate) mod coalesce;
pub(crate) mod entry;
pub(crate) mod l2;

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};
use http::{Method, Uri};
use http_cache_semantics::{BeforeRequest, CacheOptions};

pub(crate) use self::entry::Entry;
use self::entry::Plain;
use crate::config::Config;
use crate::error::Error;

/// Where a response came from, when the cache was consulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// A fresh stored response; the server was not asked.
    Hit,
    /// No usable stored response: the server answered (and the answer may have been stored).
    Miss,
    /// A stale stored response the server confirmed (`304 Not Modified`), with updated headers.
    Revalidated,
    /// A stale stored response served without asking the server (`only-if-cached` or
    /// `force-cache`, and later stale-while-revalidate / stale-if-error).
    Stale,
}

impl CacheStatus {
    /// `"hit"`, `"miss"`, `"revalidated"` or `"stale"`: the same word in every binding.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Revalidated => "revalidated",
            Self::Stale => "stale",
        }
    }
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored responses of one URL and method: one per `Vary` variant, newest last. Most keys
/// hold one, kept without a list around it: a refill allocates nothing more, and a lookup
/// follows one pointer less.
#[derive(Clone, Debug)]
enum Variants {
    One(Arc<Entry>),
    Many(Arc<[Arc<Entry>]>),
}

impl std::ops::Deref for Variants {
    type Target = [Arc<Entry>];

    fn deref(&self) -> &[Arc<Entry>] {
        match self {
            Variants::One(e) => std::slice::from_ref(e),
            Variants::Many(list) => list,
        }
    }
}

impl From<Vec<Arc<Entry>>> for Variants {
    fn from(mut list: Vec<Arc<Entry>>) -> Variants {
        match list.pop() {
            Some(e) if list.is_empty() => Variants::One(e),
            newest => Variants::Many(list.into_iter().chain(newest).collect()),
        }
    }
}

/// Variants kept per URL; the oldest goes first.
const MAX_VARIANTS: usize = 8;

/// Request headers of their own that only the policy judges (see [`Cache::lookup_plain`]).
const OWN: [header::HeaderName; 3] = [header::CACHE_CONTROL, header::PRAGMA, header::HOST];

/// Fixed cost of an entry besides its body and headers, so that many tiny entries still fill
/// `cache.max_bytes`.
const ENTRY_OVERHEAD: u64 = 512;

/// Room for an entry's headers beside its body, when shards are sized to hold the largest.
const HEADERS_ROOM: u64 = 64 << 10;

/// Memory: `quick_cache`'s concurrent store, bounded by the bytes its entries weigh ([`Weigh`]),
/// in shards of equal shares, each behind its own lock. A lookup is a read lock and a table
/// probe; an insert a write lock, a table insert and the evictions it needs, with no write log,
/// frequency sketch or housekeeping behind it (`moka`'s insert cost a Redis hit's refill 1.3 µs:
/// `bench/results/2026-12-06-cache-l2-binary.md`, sections 6 and 7). Its policy is CLOCK-Pro's
/// (close to S3-FIFO): a new key is always admitted, so the answer just stored is there for the
/// next request however full memory is; entries read since they came outlast those read once,
/// and a key evicted lately comes back among the former.
type Store = quick_cache::sync::Cache<Key, Variants, Weigh, Prehashed>;

/// What an entry weighs in memory: its variants (bodies, headers, [`ENTRY_OVERHEAD`]) and its
/// key. Fixed for the entry's life (the variants are immutable), as the store requires.
#[derive(Clone, Copy, Debug)]
struct Weigh;

impl quick_cache::Weighter<Key, Variants> for Weigh {
    fn weight(&self, key: &Key, v: &Variants) -> u64 {
        v.iter().map(|e| e.weight()).sum::<u64>() + key.len() as u64
    }
}

/// The store for `cache.max_bytes`. A shard holds an equal share and refuses an entry over 97 %
/// of it, so there are as many shards as `quick_cache` would make (four per CPU) only while a
/// share still holds four of the largest entries (`max_entry_bytes` and their headers); the
/// shares add up to `max_bytes` at most.
fn store(max_bytes: u64, max_entry_bytes: u64) -> Result<Store, Error> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let largest = max_entry_bytes
        .saturating_add(HEADERS_ROOM)
        .saturating_mul(4);
    let shards = 1u64 << (max_bytes / largest).clamp(1, cpus * 4).ilog2();
    let opts = quick_cache::OptionsBuilder::new()
        .shards(usize::try_from(shards).unwrap_or(1))
        .weight_capacity(max_bytes / shards * shards)
        // Used for the shards' least size (32 entries) and the evicted keys remembered (half).
        .estimated_items_capacity(usize::try_from(max_bytes / 2048).unwrap_or(usize::MAX))
        .build()
        .map_err(|e| crate::error::config(format!("cache.max_bytes: {e}")))?;
    Ok(Store::with_options(
        opts,
        Weigh,
        Prehashed,
        quick_cache::sync::DefaultLifecycle::default(),
    ))
}

/// A request's key in memory: the text [`key`] makes of its method and URL (which the Redis key
/// repeats), and that text's hash, worked out once per request with the cache's own seeded
/// hasher (SipHash, as `HashMap`'s): the store's lookup, its refill and its table's growth reuse
/// it ([`Prehashed`]) instead of hashing the text again each time, and two keys with different
/// hashes differ without their text being compared.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    hash: u64,
    text: String,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl std::ops::Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// The store's hasher: a [`Key`] hashes as the hash it carries. Anything else written (never,
/// in this store) is folded in FNV-1a's way, so it stays a hasher.
#[derive(Clone, Copy, Debug, Default)]
struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0xcbf2_9ce4_8422_2325)
    }
}

/// See [`Prehashed`].
#[derive(Debug)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Which keys memory may hold: one bit per slot of a key's hash, set before the key is stored
/// and never cleared. A clear bit means memory holds nothing under the key, so the lookup of a
/// key memory never held (a request on its way to Redis or the server) costs one load instead
/// of the store's shard lock and probe (a chain of dependent cache misses in a table of
/// thousands of entries). Keys stored and later evicted or invalidated keep their bits: once
/// half the bits are set, every key may be held and the store is asked each time, as without it.
struct Seen {
    words: Box<[AtomicU64]>,
    /// The number of bits less one (a power of two less one).
    mask: u64,
    /// Bits set so far.
    set: AtomicU64,
}

impl Seen {
    /// Four bits per entry memory can hold at most (each weighs [`ENTRY_OVERHEAD`] at least),
    /// between 4 Ki and 1 Mi bits (512 B to 128 KiB): 64 KiB for the default 64 MiB.
    fn new(max_bytes: u64) -> Seen {
        let bits = (max_bytes / ENTRY_OVERHEAD)
            .saturating_mul(4)
            .clamp(1 << 12, 1 << 20)
            .next_power_of_two();
        Seen {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
            set: AtomicU64::new(0),
        }
    }

    /// The word and bit of `hash`: its high half (the store's table takes the low bits).
    fn slot(&self, hash: u64) -> (&AtomicU64, u64) {
        let bit = (hash >> 32) & self.mask;
        let word = usize::try_from(bit / 64).unwrap_or(0);
        (&self.words[word], 1 << (bit % 64))
    }

    /// Before `hash`'s key is stored: a lookup that happens after the store sees the bit.
    fn add(&self, hash: u64) {
        let (word, bit) = self.slot(hash);
        if word.load(Acquire) & bit == 0 && word.fetch_or(bit, Release) & bit == 0 {
            self.set.fetch_add(1, Relaxed);
        }
    }

    /// Whether memory may hold a key with this hash (`false`: it surely does not).
    fn may_hold(&self, hash: u64) -> bool {
        if self.set.load(Relaxed) > self.mask / 2 {
            return true;
        }
        let (word, bit) = self.slot(hash);
        word.load(Acquire) & bit != 0
    }
}

/// A client's response cache.
pub(crate) struct Cache {
    store: Store,
    /// The seed of the keys' hashes ([`Key`]).
    hasher: RandomState,
    /// The keys memory may hold (every insert into `store` goes through [`Cache::insert`]).
    seen: Seen,
    pub(crate) opts: CacheOptions,
    pub(crate) max_entry_bytes: u64,
    /// `cache.coalesce`.
    pub(crate) coalesce: bool,
    pub(crate) flights: coalesce::Flights,
    pub(crate) counters: Counters,
    /// The second level in Redis, when `cache.l2.url` is set.
    pub(crate) l2: Option<Arc<l2::L2>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.store.len())
            .finish_non_exhaustive()
    }
}

/// Counters of the cache, read into `Stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) revalidations: AtomicU64,
    pub(crate) not_modified: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    /// Background revalidations started (stale-while-revalidate).
    pub(crate) background_refreshes: AtomicU64,
    /// Stale responses served because their revalidation failed (stale-if-error).
    pub(crate) stale_if_error: AtomicU64,
    /// Background refreshes in flight now (not a statistic: the client's close waits for 0).
    pub(crate) refreshing: AtomicU64,
    pub(crate) stores: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    /// Callers that joined another's flight instead of sending their own request.
    pub(crate) coalesced: AtomicU64,
}

/// What the store holds for a request.
pub(crate) enum Lookup {
    /// Usable as is.
    Fresh(Arc<Entry>),
    /// Matches the request but must be revalidated before use.
    Stale(Arc<Entry>),
    /// Nothing for this request.
    Missing,
    /// Nothing under its key at all (as `Missing`, from [`Cache::lookup_plain`]): memory may
    /// be refilled without reading it first ([`Cache::refill`]).
    Empty,
}

impl Cache {
    /// The cache `config.cache` asks for; `None` when it is off.
    pub(crate) fn new(config: &Config) -> Result<Option<Cache>, Error> {
        let cfg = &config.cache;
        if !cfg.enabled {
            return Ok(None);
        }
        let l2 = l2::L2::new(&cfg.l2, &config.tls)?;
        Ok(Some(Cache {
            store: store(cfg.max_bytes, cfg.max_entry_bytes)?,
            hasher: RandomState::new(),
            seen: Seen::new(cfg.max_bytes),
            opts: CacheOptions {
                shared: cfg.shared,
                cache_heuristic: cfg.heuristic_percent as f32 / 100.0,
                immutable_min_time_to_live: Duration::from_hours(24),
                ignore_cargo_cult: false,
            },
            max_entry_bytes: cfg.max_entry_bytes,
            coalesce: cfg.coalesce,
            flights: coalesce::Flights::default(),
            counters: Counters::default(),
            l2,
        }))
    }

    /// The key of a `method` request for `uri` (see [`Key`]).
    pub(crate) fn key(&self, method: &Method, uri: &Uri) -> Key {
        self.key_of(key(method, uri))
    }

    fn key_of(&self, text: String) -> Key {
        Key {
            hash: self.hasher.hash_one(text.as_str()),
            text,
        }
    }

    /// The stored response for a request under `key` with these headers (its own over the
    /// client's `defaults`), judged without building the request for the policy; `None` when
    /// the policy must judge ([`Cache::lookup`]): the request carries `Cache-Control`, `Pragma`
    /// or `Host`, or a variant cannot be judged so.
    pub(crate) fn lookup_plain(
        &self,
        key: &Key,
        headers: &HeaderMap,
        defaults: &HeaderMap,
        now: SystemTime,
    ) -> Option<Lookup> {
        if OWN
            .iter()
            .any(|h| headers.contains_key(h) || defaults.contains_key(h))
        {
            return None;
        }
        if !self.seen.may_hold(key.hash) {
            return Some(Lookup::Empty);
        }
        let Some(variants) = self.store.get(key) else {
            return Some(Lookup::Empty);
        };
        let mut stale = None;
        // Newest first, as `lookup`. The key holds the method and URL, which the policy would
        // compare next.
        for e in variants.iter().rev() {
            match e.quick_judge(headers, defaults, now) {
                Plain::Fresh => return Some(Lookup::Fresh(e.clone())),
                Plain::Stale if stale.is_none() => stale = Some(e.clone()),
                Plain::Stale | Plain::Other => {}
                Plain::Ask => return None,
            }
        }
        Some(stale.map_or(Lookup::Missing, Lookup::Stale))
    }

    /// The stored response for `req`, if any matches (URL, method and `Vary`).
    pub(crate) fn lookup(&self, key: &Key, req: &http::request::Parts, now: SystemTime) -> Lookup {
        if !self.seen.may_hold(key.hash) {
            return Lookup::Missing;
        }
        let Some(variants) = self.store.get(key) else {
            return Lookup::Missing;
        };
        let mut stale = None;
        // Newest first: a later variant replaces an earlier one for the same request.
        for e in variants.iter().rev() {
            match e.policy().before_request(req, now) {
                BeforeRequest::Fresh(_) => return Lookup::Fresh(e.clone()),
                BeforeRequest::Stale { matches: true, .. } if stale.is_none() => {
                    stale = Some(e.clone());
                }
                BeforeRequest::Stale { .. } => {}
            }
        }
        stale.map_or(Lookup::Missing, Lookup::Stale)
    }

    /// The stored response for `req` in the second level, kept in memory when it matches;
    /// `Missing` without a second level.
    pub(crate) async fn lookup_l2(&self, key: &Key, req: &http::request::Parts) -> Lookup {
        let Some(l2) = &self.l2 else {
            return Lookup::Missing;
        };
        let Some(entry) = l2.read(key, &req.method, &req.uri, self.opts).await else {
            return Lookup::Missing;
        };
        let now = SystemTime::now();
        // A plain request is judged as in memory (`lookup_plain`): `req`'s headers are the
        // request's own over the defaults already.
        let plain = if OWN.iter().any(|h| req.headers.contains_key(h)) {
            Plain::Ask
        } else {
            entry.quick_judge(&req.headers, &HeaderMap::new(), now)
        };
        let fresh = match plain {
            Plain::Fresh => true,
            Plain::Stale => false,
            Plain::Other => {
                l2.counters.misses.fetch_add(1, Relaxed);
                return Lookup::Missing;
            }
            Plain::Ask => match entry.policy().before_request(req, now) {
                BeforeRequest::Fresh(_) => true,
                BeforeRequest::Stale { matches: true, .. } => false,
                BeforeRequest::Stale { .. } => {
                    l2.counters.misses.fetch_add(1, Relaxed);
                    return Lookup::Missing;
                }
            },
        };
        l2.counters.hits.fetch_add(1, Relaxed);
        let entry = Arc::new(entry);
        self.keep(key.clone(), req, entry.clone(), now);
        if fresh {
            Lookup::Fresh(entry)
        } else {
            Lookup::Stale(entry)
        }
    }

    /// Stores `entry` for `req`, replacing the variants `req` selects, and writes it through to
    /// the second level.
    pub(crate) fn put(&self, key: Key, req: &http::request::Parts, entry: Entry) {
        let now = SystemTime::now();
        let entry = Arc::new(entry);
        if let Some(l2) = &self.l2 {
            l2.write(&key, req, &entry, now, &self.opts);
        }
        self.keep(key, req, entry, now);
    }

    /// Stores `entry` in memory only.
    fn keep(&self, key: Key, req: &http::request::Parts, entry: Arc<Entry>, now: SystemTime) {
        self.keep_with(key, || req, entry, now);
    }

    /// Stores `entry` in memory only, for the request `req` gives: asked for only when the key
    /// holds variants already (those that `req` selects are replaced).
    pub(crate) fn keep_with<R: std::borrow::Borrow<http::request::Parts>>(
        &self,
        key: Key,
        req: impl FnOnce() -> R,
        entry: Arc<Entry>,
        now: SystemTime,
    ) {
        let held = self.seen.may_hold(key.hash).then(|| self.store.get(&key));
        let mut list: Vec<Arc<Entry>> = match held.flatten() {
            // A concurrent put of another variant may be lost here: the cache is best effort.
            Some(old) => {
                let req = req();
                old.iter()
                    .filter(|e| {
                        !matches!(
                            e.policy().before_request(req.borrow(), now),
                            BeforeRequest::Fresh(_) | BeforeRequest::Stale { matches: true, .. }
                        )
                    })
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        };
        if list.len() >= MAX_VARIANTS {
            list.remove(0);
        }
        list.push(entry);
        self.counters.stores.fetch_add(1, Relaxed);
        self.insert(key, list.into());
    }

    /// Every insert into the store: its key marked seen first ([`Seen::add`]).
    fn insert(&self, key: Key, variants: Variants) {
        self.seen.add(key.hash);
        self.store.insert(key, variants);
    }

    /// Stores `entry` in memory only, as the only variant under `key`: for a key
    /// [`Cache::lookup_plain`] just found empty (`Lookup::Empty`), without reading it again. A
    /// variant another request stored in between is replaced (the cache is best effort).
    pub(crate) fn refill(&self, key: Key, entry: Arc<Entry>) {
        self.counters.stores.fetch_add(1, Relaxed);
        self.insert(key, Variants::One(entry));
    }

    /// Forgets the stored responses of `uri` and of the `Location` / `Content-Location` of an
    /// unsafe method's response on the same origin (RFC 9111 §4.4).
    pub(crate) fn invalidate(&self, uri: &Uri, resp_headers: &HeaderMap) {
        self.forget(uri);
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(loc) = resp_headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let Some(target) = resolve(uri, loc) else {
                continue;
            };
            if target.scheme() == uri.scheme() && target.authority() == uri.authority() {
                self.forget(&target);
            }
        }
    }

    /// The counters and the store's size.
    pub(crate) fn stats(&self) -> crate::metrics::CacheStats {
        let c = &self.counters;
        let mut s = crate::metrics::CacheStats {
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            revalidations: c.revalidations.load(Relaxed),
            not_modified: c.not_modified.load(Relaxed),
            stale_served: c.stale_served.load(Relaxed),
            background_refreshes: c.background_refreshes.load(Relaxed),
            stale_if_error: c.stale_if_error.load(Relaxed),
            coalesced: c.coalesced.load(Relaxed),
            stores: c.stores.load(Relaxed),
            invalidations: c.invalidations.load(Relaxed),
            l1_entries: self.store.len() as u64,
            l1_bytes: self.store.weight(),
            ..Default::default()
        };
        if let Some(l2) = &self.l2 {
            l2.stats(&mut s);
        }
        s
    }

    /// The owning client closed: the second level's Redis connection closes once its writes
    /// in flight are done (or `until` passed). The cache is its client's alone (clones share
    /// it, and close together).
    pub(crate) async fn close(&self, until: Option<tokio::time::Instant>) {
        if let Some(l2) = &self.l2 {
            l2.close(until).await;
        }
    }

    /// Drops the entry of a GET of `uri` from memory only.
    pub(crate) fn forget_in_memory(&self, uri: &Uri) {
        self.store.remove(&self.key(&Method::GET, uri));
    }

    fn forget(&self, uri: &Uri) {
        let keys = [self.key(&Method::GET, uri), self.key(&Method::HEAD, uri)];
        for k in &keys {
            self.store.remove(k);
        }
        if let Some(l2) = &self.l2 {
            l2.forget(&keys.map(|k| k.text));
        }
        self.counters.invalidations.fetch_add(1, Relaxed);
    }
}

/// The primary key of a request: method, a space and the URL as `Uri` displays it (also the
/// Redis key after its prefix: `docs/cache-l2-format.md`), built without formatting.
pub(crate) fn key(method: &Method, uri: &Uri) -> String {
    let scheme = uri.scheme_str();
    let authority = uri.authority().map(http::uri::Authority::as_str);
    let path = uri.path();
    let query = uri.query();
    let len = method.as_str().len()
        + 1
        + scheme.map_or(0, |s| s.len() + 3)
        + authority.map_or(0, str::len)
        + path.len()
        + query.map_or(0, |q| q.len() + 1);
    let mut k = String::with_capacity(len);
    k.push_str(method.as_str());
    k.push(' ');
    if let Some(s) = scheme {
        k.push_str(s);
        k.push_str("://");
    }
    if let Some(a) = authority {
        k.push_str(a);
    }
    k.push_str(path);
    if let Some(q) = query {
        k.push('?');
        k.push_str(q);
    }
    k
}

/// Requests the cache leaves alone: conditional and range requests carry the caller's own
/// validators, and their answers (304, 206) are the caller's to interpret.
pub(crate) fn bypasses(headers: &HeaderMap) -> bool {
    [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
        header::RANGE,
    ]
    .iter()
    .any(|h| headers.contains_key(h))
}

/// The request as the cache judges it: the default headers overlaid by the request's own.
pub(crate) fn request_parts(
    method: &Method,
    uri: &Uri,
    defaults: &HeaderMap,
    headers: &HeaderMap,
) -> http::request::Parts {
    let mut merged = headers.clone();
    for name in defaults.keys() {
        if !merged.contains_key(name) {
            for v in defaults.get_all(name) {
                merged.append(name.clone(), v.clone());
            }
        }
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method.clone();
    parts.uri = uri.clone();
    parts.headers = merged;
    parts
}

fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let base = url::Url::parse(&base.to_string()).ok()?;
    base.join(location).ok()?.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use http::{StatusCode, Version};

    use super::*;

    fn cache(max_bytes: u64) -> Cache {
        cache_of(max_bytes, Config::default().cache.max_entry_bytes)
    }

    fn entry() -> Arc<Entry> {
        let (req, ()) = http::Request::new(()).into_parts();
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, "max-age=60".parse().unwrap());
        Arc::new(Entry::new(
            &req,
            StatusCode::OK,
            Version::HTTP_11,
            headers,
            bytes::Bytes::from_static(b"x"),
            SystemTime::now(),
            CacheOptions::default(),
        ))
    }

    /// A key memory never held is found empty by its bit alone; every way into memory (a
    /// refill, a store, a keep) marks its key first, so a lookup after it finds the entry, as
    /// it does after the key was forgotten and stored again.
    #[test]
    fn a_key_never_stored_is_empty_and_one_stored_any_way_is_found() {
        let c = cache(1 << 20);
        let none = HeaderMap::new();
        let now = SystemTime::now();
        let (req, ()) = http::Request::new(()).into_parts();
        let uris: Vec<Uri> = (0..200)
            .map(|i| format!("http://example.test/{i}").parse().unwrap())
            .collect();
        for (i, uri) in uris.iter().enumerate() {
            let k = c.key(&Method::GET, uri);
            assert!(matches!(
                c.lookup_plain(&k, &none, &none, now),
                Some(Lookup::Empty)
            ));
            match i % 3 {
                0 => c.refill(k.clone(), entry()),
                1 => c.keep(k.clone(), &req, entry(), now),
                _ => c.keep_with(k.clone(), || &req, entry(), now),
            }
            assert!(c.seen.may_hold(k.hash));
            assert!(matches!(
                c.lookup_plain(&k, &none, &none, now),
                Some(Lookup::Fresh(_))
            ));
            assert!(matches!(c.lookup(&k, &req, now), Lookup::Fresh(_)));
        }
        let k = c.key(&Method::GET, &uris[0]);
        c.forget_in_memory(&uris[0]);
        assert!(matches!(
            c.lookup_plain(&k, &none, &none, now),
            Some(Lookup::Empty)
        ));
        c.refill(k.clone(), entry());
        assert!(matches!(
            c.lookup_plain(&k, &none, &none, now),
            Some(Lookup::Fresh(_))
        ));
        // Most keys never stored are told apart by their bit (8 Ki bits, 200 keys).
        let clear = (200..1200)
            .filter(|i| {
                let uri: Uri = format!("http://example.test/{i}").parse().unwrap();
                !c.seen.may_hold(c.key(&Method::GET, &uri).hash)
            })
            .count();
        assert!(clear > 800, "{clear} of 1000");
    }

    /// No stored key is ever missed; once half the bits are set, every key may be held.
    #[test]
    fn the_seen_bits_never_miss_a_key_and_give_up_when_half_full() {
        let seen = Seen::new(0);
        assert_eq!(seen.mask, (1 << 12) - 1);
        assert_eq!(Seen::new(64 << 20).mask, (1 << 19) - 1);
        assert_eq!(Seen::new(1 << 53).mask, (1 << 20) - 1);
        let state = RandomState::new();
        let hashes: Vec<u64> = (0..4096u32).map(|i| state.hash_one(i)).collect();
        let mut given_up = false;
        for (i, &h) in hashes.iter().enumerate() {
            seen.add(h);
            assert!(hashes[..=i].iter().all(|&h| seen.may_hold(h)));
            given_up = seen.set.load(Relaxed) > seen.mask / 2;
            if given_up {
                break;
            }
        }
        assert!(given_up);
        assert!((0..1000u32).all(|i| seen.may_hold(state.hash_one(i + 1_000_000))));
    }

    fn cache_of(max_bytes: u64, max_entry_bytes: u64) -> Cache {
        let mut config = Config::default();
        config.cache.enabled = true;
        config.cache.max_bytes = max_bytes;
        config.cache.max_entry_bytes = max_entry_bytes;
        Cache::new(&config).unwrap().unwrap()
    }

    fn fresh(c: &Cache, k: &Key) -> bool {
        let none = HeaderMap::new();
        matches!(
            c.lookup_plain(k, &none, &none, SystemTime::now()),
            Some(Lookup::Fresh(_))
        )
    }

    /// Ten times more entries than fit: memory keeps to `cache.max_bytes` and still holds most
    /// of it, its stats count exactly what a lookup finds, and the entry refilled last (the
    /// answer just read from Redis or the server) is among them, however full memory is.
    #[test]
    fn memory_keeps_to_max_bytes_its_stats_agree_and_the_last_refill_is_held() {
        let max = 64 << 10;
        let c = cache_of(max, 4 << 10);
        let keys: Vec<Key> = (0..1100)
            .map(|i| {
                let uri: Uri = format!("http://example.test/{i:05}").parse().unwrap();
                c.key(&Method::GET, &uri)
            })
            .collect();
        let weight = entry().weight() + keys[0].len() as u64;
        for k in &keys {
            c.refill(k.clone(), entry());
        }
        let s = c.stats();
        assert!(fresh(&c, &keys[keys.len() - 1]), "{s:?}");
        assert!(s.l1_bytes <= max, "{s:?}");
        assert!(s.l1_bytes >= max / 2, "{s:?}");
        let held = keys.iter().filter(|k| fresh(&c, k)).count() as u64;
        assert_eq!((s.l1_entries, s.l1_bytes), (held, held * weight), "{s:?}");
    }

    /// Keys read again and again stay while ten times memory's worth of keys read once stream
    /// through (the store's eviction resists scans).
    #[test]
    fn keys_read_often_outlast_a_stream_of_keys_read_once() {
        let c = cache_of(64 << 10, 4 << 10);
        let key = |i: usize| {
            let uri: Uri = format!("http://example.test/{i:05}").parse().unwrap();
            c.key(&Method::GET, &uri)
        };
        let popular: Vec<Key> = (0..10).map(key).collect();
        for k in &popular {
            c.refill(k.clone(), entry());
        }
        for i in 10..1100 {
            c.refill(key(i), entry());
            for k in &popular {
                assert!(fresh(&c, k), "{i}: {:?}", c.stats());
            }
        }
    }

    /// A list of one is kept bare, a longer one in order.
    #[test]
    fn variants_keep_their_order() {
        let (a, b, c) = (entry(), entry(), entry());
        let one = Variants::from(vec![a.clone()]);
        assert!(matches!(one, Variants::One(_)));
        assert!(one.len() == 1 && Arc::ptr_eq(&one[0], &a));
        let three = Variants::from(vec![a.clone(), b.clone(), c.clone()]);
        assert!(matches!(three, Variants::Many(_)));
        assert_eq!(three.len(), 3);
        assert!(
            Arc::ptr_eq(&three[0], &a) && Arc::ptr_eq(&three[1], &b) && Arc::ptr_eq(&three[2], &c)
        );
    }

    /// Keys are equal when their text is, whatever the order they were made in.
    #[test]
    fn keys_of_the_same_request_are_equal_and_hash_alike() {
        let c = cache(1 << 20);
        let a: Uri = "http://example.test/a".parse().unwrap();
        let b: Uri = "http://example.test/b".parse().unwrap();
        assert_eq!(c.key(&Method::GET, &a), c.key(&Method::GET, &a));
        assert_eq!(c.key(&Method::GET, &a).hash, c.key(&Method::GET, &a).hash);
        assert_ne!(c.key(&Method::GET, &a), c.key(&Method::GET, &b));
        assert_ne!(c.key(&Method::GET, &a), c.key(&Method::HEAD, &a));
        assert_eq!(&*c.key(&Method::GET, &a), "GET http://example.test/a");
    }

    #[test]
    fn the_key_is_the_method_and_the_url_as_uri_displays_it() {
        for url in [
            "http://example.test/a/b?c=1&d=%20",
            "https://user@example.test:8443/",
            "http://example.test",
            "http://[::1]:80/x?",
            "/relative?q",
            "*",
        ] {
            let uri: Uri = url.parse().unwrap();
            for m in [Method::GET, Method::HEAD] {
                assert_eq!(key(&m, &uri), format!("{m} {uri}"), "{url}");
            }
        }
    }
}

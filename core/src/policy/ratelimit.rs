//! Rate limits: local GCRA (governor) per key, or shared through Redis with one atomic Lua script
//! per check (token bucket, sliding window, fixed window), falling back as configured.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::{
    RateLimitBackend, RateLimitConfig, RateLimitMode, RedisAlgorithm, RedisFailure, TlsConfig,
};
use crate::error::{Error, ErrorKind};

/// Counters of the rate limiter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) allowed: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
}

pub(crate) struct RateLimiter {
    cfg: RateLimitConfig,
    quota: Quota,
    /// Per-request keys (`scope = "key"`); origins and the client use direct limiters.
    local: DefaultKeyedRateLimiter<Arc<str>>,
    client: DefaultDirectRateLimiter,
    clock: DefaultClock,
    redis: Option<Redis>,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

struct Redis {
    client: redis::Client,
    /// The connection, made on the first check; `None` once the client is closed (dropping
    /// the manager closes its socket: a closed client must not hold it until it is dropped,
    /// which a garbage-collected binding does late).
    conn: std::sync::Mutex<Option<Arc<OnceCell<redis::aio::ConnectionManager>>>>,
    script: redis::Script,
    seq: AtomicU64,
}

/// Refills `rate` tokens per ms up to `burst`; the clock is Redis's own, shared by every process.
const TOKEN_BUCKET: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait}
";

/// At most ARGV[1] requests in any ARGV[2] ms: a sorted set of admission times.
const SLIDING_WINDOW: &str = r"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + window - now)}
";

/// At most ARGV[1] requests per aligned ARGV[2] ms window: one counter per window.
const FIXED_WINDOW: &str = r"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = math.floor(now / window)
local k = KEYS[1] .. ':' .. id
local n = redis.call('INCR', k)
if n == 1 then redis.call('PEXPIRE', k, window * 2) end
if n <= limit then return {1, 0} end
return {0, math.max(1, (id + 1) * window - now)}
";

/// Where the local state of a key lives: a limiter of its own (an origin, the client: no
/// hashing), or the keyed map.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Local<'a> {
    Direct(&'a DefaultDirectRateLimiter),
    Client,
    Keyed,
}

/// The answer of one check.
pub(crate) enum Verdict {
    Allowed,
    Wait(Duration),
}

impl RateLimiter {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Result<Self, Error> {
        Self::with_roots(cfg, &TlsConfig::default())
    }

    /// A limiter; a `rediss://` Redis is verified with `tls`'s extra roots when it has some.
    pub(crate) fn with_roots(cfg: &RateLimitConfig, tls: &TlsConfig) -> Result<Self, Error> {
        let burst = if cfg.burst == 0 {
            cfg.requests
        } else {
            cfg.burst
        };
        let period = Duration::from_nanos(
            cfg.per_ms.saturating_mul(1_000_000) / u64::from(cfg.requests.max(1)),
        )
        .max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .ok_or_else(|| crate::error::config("rate_limit.per_ms: too small"))?
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let redis = if cfg.backend == RateLimitBackend::Redis {
            let client = redis_client(&cfg.redis.url, tls, "rate_limit.redis.url")?;
            let src = match cfg.redis.algorithm {
                RedisAlgorithm::TokenBucket => TOKEN_BUCKET,
                RedisAlgorithm::SlidingWindow => SLIDING_WINDOW,
                RedisAlgorithm::FixedWindow => FIXED_WINDOW,
            };
            Some(Redis {
                client,
                conn: std::sync::Mutex::new(Some(Arc::new(OnceCell::new()))),
                script: redis::Script::new(src),
                seq: AtomicU64::new(0),
            })
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            quota,
            local: DefaultKeyedRateLimiter::keyed(quota),
            client: DefaultDirectRateLimiter::direct(quota),
            clock: DefaultClock::default(),
            redis,
            counters: Counters::default(),
        })
    }

    /// Waits for a slot for `key` (in `wait` mode, up to `max_wait_ms` and `deadline`), or fails
    /// with `rate_limited`.
    pub(crate) async fn acquire(
        &self,
        key: &Arc<str>,
        local: Local<'_>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let mut start = None;
        let max_wait = Duration::from_millis(self.cfg.max_wait_ms);
        let mut waited = false;
        loop {
            let wait = match self.check(key, local).await? {
                Verdict::Allowed => {
                    if self.counters.allowed.fetch_add(1, Relaxed) % 4096 == 4095 {
                        // Forget keys idle long enough to be full again (bounded memory).
                        self.retain_recent();
                    }
                    if waited {
                        self.counters.waited.fetch_add(1, Relaxed);
                    }
                    return Ok(());
                }
                Verdict::Wait(d) => d,
            };
            let now = Instant::now();
            let first = *start.get_or_insert(now);
            // A wait past any representable time is too long.
            let until = now.checked_add(wait);
            let too_long = self.cfg.mode == RateLimitMode::Fail
                || until.is_none_or(|u| {
                    first.checked_add(max_wait).is_some_and(|m| u > m)
                        || deadline.is_some_and(|d| u >= d)
                });
            let (false, Some(until)) = (too_long, until) else {
                self.counters.rejected.fetch_add(1, Relaxed);
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "rate limit of {} per {} ms reached for {key} (next slot in {} ms)",
                        self.cfg.requests,
                        self.cfg.per_ms,
                        wait.as_millis()
                    ),
                ));
            };
            waited = true;
            tokio::time::sleep_until(until).await;
        }
    }

    /// A direct limiter with this limiter's quota (one per origin).
    pub(crate) fn direct(&self) -> DefaultDirectRateLimiter {
        DefaultDirectRateLimiter::direct(self.quota)
    }

    async fn check(&self, key: &Arc<str>, local: Local<'_>) -> Result<Verdict, Error> {
        if let Some(r) = &self.redis {
            match self.check_redis(r, key).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.counters.redis_errors.fetch_add(1, Relaxed);
                    if self.cfg.redis.on_error == RedisFailure::FailClosed {
                        self.counters.rejected.fetch_add(1, Relaxed);
                        return Err(Error::new(
                            ErrorKind::RateLimited,
                            format!("the shared rate limit is unavailable (fail closed): {e}"),
                        ));
                    }
                    self.counters.fallbacks.fetch_add(1, Relaxed);
                }
            }
        }
        Ok(self.check_local(key, local))
    }

    /// One GCRA check: a compare-and-swap (after a hash lookup for per-request keys).
    pub(crate) fn check_local(&self, key: &Arc<str>, local: Local<'_>) -> Verdict {
        let res = match local {
            Local::Direct(l) => l.check(),
            Local::Client => self.client.check(),
            Local::Keyed => self.local.check_key(key),
        };
        match res {
            Ok(()) => Verdict::Allowed,
            Err(not_until) => Verdict::Wait(not_until.wait_time_from(self.clock.now())),
        }
    }

    async fn check_redis(&self, r: &Redis, key: &str) -> Result<Verdict, String> {
        let timeout = Duration::from_millis(self.cfg.redis.timeout_ms);
        let cell = r
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| "the client is closed".to_owned())?;
        let fut = async {
            let conn = cell
                .get_or_try_init(|| async {
                    let cfg = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_millis(200));
                    r.client.get_connection_manager_with_config(cfg).await
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut conn = conn.clone();
            let c = &self.cfg;
            let full_key = format!("{}{key}", c.redis.key_prefix);
            let mut inv = r.script.key(full_key);
            match c.redis.algorithm {
                RedisAlgorithm::TokenBucket => {
                    let burst = if c.burst == 0 { c.requests } else { c.burst };
                    let rate = f64::from(c.requests) / c.per_ms as f64;
                    inv.arg(rate.to_string()).arg(burst);
                }
                RedisAlgorithm::SlidingWindow | RedisAlgorithm::FixedWindow => {
                    let member = format!(
                        "{}-{}-{}",
                        std::process::id(),
                        r.seq.fetch_add(1, Relaxed),
                        fastrand::u64(..)
                    );
                    inv.arg(c.requests).arg(c.per_ms).arg(member);
                }
            }
            let v: Vec<i64> = inv
                .invoke_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            match v.as_slice() {
                [1, ..] => Ok(Verdict::Allowed),
                [_, wait, ..] => Ok(Verdict::Wait(Duration::from_millis(
                    u64::try_from(*wait).unwrap_or(1).max(1),
                ))),
                _ => Err(format!("unexpected script reply {v:?}")),
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer from Redis within {} ms",
                timeout.as_millis()
            )),
        }
    }

    /// Closes the Redis connection (checks still running finish on it); later checks fail
    /// over to the configured fallback.
    pub(crate) fn close(&self) {
        if let Some(r) = &self.redis {
            r.conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
        }
    }

    /// Drops local state of keys idle long enough to be full again.
    fn retain_recent(&self) {
        self.local.retain_recent();
    }
}

/// A Redis client for `url`. Over TLS (`rediss://`) it trusts `tls.extra_ca_pem` and
/// `tls.ca_files` when given, else the system's roots.
/// `field` names the URL's config field in errors.
pub(crate) fn redis_client(
    url: &str,
    tls: &TlsConfig,
    field: &str,
) -> Result<redis::Client, Error> {
    let bad = |e: &dyn std::fmt::Display| crate::error::config(format!("{field}: {e}"));
    if !url.starts_with("rediss://") {
        return redis::Client::open(url).map_err(|e| bad(&e));
    }
    // redis builds its rustls config with the process default provider: make sure there is one,
    // so a process that links two providers does not panic (TOOLCHAIN.md pitfall 2).
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut pem = tls.extra_ca_pem.join("\n").into_bytes();
    for (i, path) in tls.ca_files.iter().enumerate() {
        let text = std::fs::read(path)
            .map_err(|e| crate::error::config(format!("tls.ca_files[{i}]: {path}: {e}")))?;
        pem.push(b'\n');
        pem.extend(text);
    }
    if pem.iter().all(u8::is_ascii_whitespace) {
        return redis::Client::open(url).map_err(|e| bad(&e));
    }
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    redis::Client::build_with_tls(url, certs).map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(requests: u32, per_ms: u64, burst: u32, mode: RateLimitMode) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            requests,
            per_ms,
            burst,
            mode,
            max_wait_ms: 500,
            ..RateLimitConfig::default()
        }
    }

    #[tokio::test]
    async fn gcra_admits_the_burst_then_spaces_requests() {
        // 10 per second with a burst of 5: 5 at once, then one every 100 ms.
        let l = RateLimiter::new(&cfg(10, 1_000, 5, RateLimitMode::Fail)).unwrap();
        let k: Arc<str> = "k".into();
        for i in 0..5 {
            assert!(
                matches!(l.check_local(&k, Local::Keyed), Verdict::Allowed),
                "burst slot {i}"
            );
        }
        match l.check_local(&k, Local::Keyed) {
            Verdict::Wait(d) => {
                assert!(
                    d > Duration::from_millis(50) && d <= Duration::from_millis(100),
                    "{d:?}"
                );
            }
            Verdict::Allowed => panic!("the sixth request must wait"),
        }
        // Keys are independent.
        assert!(matches!(
            l.check_local(&"other".into(), Local::Keyed),
            Verdict::Allowed
        ));
        let e = l.acquire(&k, Local::Keyed, None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(l.counters.rejected.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn wait_mode_waits_for_the_next_slot() {
        let l = RateLimiter::new(&cfg(20, 1_000, 1, RateLimitMode::Wait)).unwrap();
        let k: Arc<str> = "k".into();
        let t = Instant::now();
        for _ in 0..4 {
            l.acquire(&k, Local::Keyed, None).await.unwrap();
        }
        // 1 at once, then 3 × 50 ms.
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(140), "{took:?}");
        assert_eq!(l.counters.waited.load(Relaxed), 3);
        assert_eq!(l.counters.allowed.load(Relaxed), 4);
    }

    #[tokio::test]
    async fn wait_is_bounded_by_max_wait_and_deadline() {
        let l = RateLimiter::new(&cfg(1, 10_000, 1, RateLimitMode::Wait)).unwrap();
        let k: Arc<str> = "k".into();
        l.acquire(&k, Local::Keyed, None).await.unwrap();
        let t = Instant::now();
        let e = l.acquire(&k, Local::Keyed, None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "fails without waiting in vain"
        );
        let l = RateLimiter::new(&cfg(2, 1_000, 1, RateLimitMode::Wait)).unwrap();
        l.acquire(&k, Local::Keyed, None).await.unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(
            l.acquire(&k, Local::Keyed, Some(soon)).await.is_err(),
            "the total deadline comes first"
        );
    }
}

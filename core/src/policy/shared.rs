//! Open circuit breakers shared through Redis (`breaker.redis`).
//!
//! A breaker that opens (or closes after a good probe) leaves a note here; a background task
//! writes the notes to one sorted set in Redis (origin → open-until, by Redis's clock) and reads
//! the whole set back every `refresh_ms`, handing each origin's remaining open time to the local
//! breaker. The request path reads one more atomic and never waits for Redis; with Redis down
//! the breakers are local only and the failures are counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use crate::config::{BreakerRedisConfig, TlsConfig};
use crate::error::Error;

/// Notes an origin open for ARGV[2] ms from now (Redis's clock), keeping a later time already
/// there; ARGV[2] = 0 removes it. The set expires when its last entry would.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
if ms <= 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local untl = now + ms
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if (not cur) or cur < untl then
  redis.call('ZADD', KEYS[1], untl, ARGV[1])
end
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('PEXPIRE', KEYS[1], ms)
end
return 1
";

/// The origins open now, each with the ms it stays open (at most ARGV[1] of them).
const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local r = redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #r, 2 do
  out[#out + 1] = r[i]
  out[#out + 1] = tonumber(r[i + 1]) - now
end
return out
";

/// Most origins read back per refresh.
const MAX_READ: usize = 100_000;

/// Counters of the shared breakers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
}

/// The Redis side of the breakers of one client.
pub(crate) struct SharedBreakers {
    cfg: BreakerRedisConfig,
    client: redis::Client,
    /// The connection, made on first use; `None` once the client is closed (dropping the
    /// manager closes its socket: a closed client must not hold it until it is dropped, which a
    /// garbage-collected binding does late).
    conn: Mutex<Option<Arc<OnceCell<redis::aio::ConnectionManager>>>>,
    key: String,
    publish: redis::Script,
    read: redis::Script,
    /// Changes not yet written, by origin: open for so many ms, or closed (0).
    pending: Mutex<HashMap<Arc<str>, u64>>,
    wake: Notify,
    /// Origins open in Redis as last read, and until when.
    remote: RwLock<HashMap<Arc<str>, Instant>>,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for SharedBreakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBreakers")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SharedBreakers {
    pub(crate) fn new(cfg: &BreakerRedisConfig, tls: &TlsConfig) -> Result<Self, Error> {
        Ok(Self {
            client: super::ratelimit::redis_client(&cfg.url, tls, "breaker.redis.url")?,
            conn: Mutex::new(Some(Arc::new(OnceCell::new()))),
            key: format!("{}open", cfg.key_prefix),
            publish: redis::Script::new(PUBLISH),
            read: redis::Script::new(READ),
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            remote: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            cfg: cfg.clone(),
        })
    }

    /// A breaker of `origin` opened for `open`: written by the background task.
    pub(crate) fn opened(&self, origin: &Arc<str>, open: Duration) {
        let ms = u64::try_from(open.as_millis()).unwrap_or(u64::MAX).max(1);
        self.note(origin, ms);
    }

    /// A breaker of `origin` closed after good probes.
    pub(crate) fn closed(&self, origin: &Arc<str>) {
        self.note(origin, 0);
    }

    fn note(&self, origin: &Arc<str>, ms: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(origin.clone(), ms);
        self.wake.notify_one();
    }

    /// Until when `origin` is open elsewhere, as last read.
    pub(crate) fn remote(&self, origin: &str) -> Option<Instant> {
        self.remote
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            .copied()
            .filter(|&t| t > Instant::now())
    }

    /// Origins open elsewhere, as last read.
    pub(crate) fn open_remotely(&self) -> u64 {
        let now = Instant::now();
        let r = self.remote.read().unwrap_or_else(PoisonError::into_inner);
        r.values().filter(|&&t| t > now).count() as u64
    }

    /// Writes the notes and reads the set every `refresh_ms`, calling `apply` after each read
    /// (it hands the remote state to the breakers); returns when `apply` says the client is
    /// gone.
    pub(crate) async fn run(&self, apply: impl Fn(&Self) -> bool) {
        let every = Duration::from_millis(self.cfg.refresh_ms);
        loop {
            let next = Instant::now() + every;
            self.flush().await;
            // On failure what was read last stays: each entry still ends with its open time.
            if let Ok(open) = self.read_all().await {
                self.counters.refreshes.fetch_add(1, Relaxed);
                let now = Instant::now();
                let map = open
                    .into_iter()
                    .filter(|&(_, ms)| ms > 0)
                    .map(|(o, ms)| {
                        let ms = u64::try_from(ms).unwrap_or(0);
                        (Arc::from(o), now + Duration::from_millis(ms))
                    })
                    .collect();
                *self.remote.write().unwrap_or_else(PoisonError::into_inner) = map;
            }
            if !apply(self) {
                return;
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => break,
                    () = self.wake.notified() => self.flush().await,
                }
            }
        }
    }

    /// Closes the Redis connection (its client closed; the background task stopped with it).
    /// Nothing connects again.
    pub(crate) fn close(&self) {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, ()> {
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let Some(cell) = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return Err(());
        };
        let c = cell
            .get_or_try_init(|| async {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                self.client.get_connection_manager_with_config(cfg).await
            })
            .await;
        c.cloned().map_err(|_| {
            self.counters.redis_errors.fetch_add(1, Relaxed);
        })
    }

    /// Runs `f` within the timeout; a failure or timeout is counted.
    async fn call<T>(&self, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T, ()> {
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        if let Ok(Ok(v)) = tokio::time::timeout(timeout, f).await {
            return Ok(v);
        }
        self.counters.redis_errors.fetch_add(1, Relaxed);
        Err(())
    }

    /// Writes the pending notes; those that fail are dropped (the breakers stay local).
    async fn flush(&self) {
        let notes: Vec<(Arc<str>, u64)> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        if notes.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conn().await else {
            return;
        };
        for (origin, ms) in notes {
            let mut inv = self.publish.key(&self.key);
            inv.arg(&*origin).arg(ms);
            if self.call(inv.invoke_async::<i64>(&mut conn)).await.is_ok() {
                self.counters.published.fetch_add(1, Relaxed);
            }
        }
    }

    async fn read_all(&self) -> Result<Vec<(String, i64)>, ()> {
        let mut conn = self.conn().await?;
        let mut inv = self.read.key(&self.key);
        inv.arg(MAX_READ);
        self.call(inv.invoke_async::<Vec<(String, i64)>>(&mut conn))
            .await
    }
}

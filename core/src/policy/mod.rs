//! Resilience policies, in request order: retry (with budget and hedging) → rate limit →
//! circuit breaker → adaptive concurrency → the pool. State is kept per origin; the client's
//! attempt loop (`client/send.rs`) drives them, and [`crate::layer`] offers them as tower layers.

pub(crate) mod breaker;
pub(crate) mod limit;
pub(crate) mod ratelimit;
pub(crate) mod retry;
pub(crate) mod shared;
mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use http::{HeaderMap, StatusCode};
use tokio::sync::broadcast;
use tokio::time::Instant;

pub use self::breaker::BreakerState;
use self::breaker::{Breaker, OnChange, Outcome};
use self::limit::{Limiter, Signal};
use self::ratelimit::{Local, RateLimiter};
use self::retry::{Budget, Reason};
use crate::config::{Config, RateLimitScope};
use crate::error::{Error, ErrorKind};

/// A circuit breaker changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerEvent {
    /// The origin (`http://host:port`).
    pub origin: String,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
}

/// What the policies read of a response: its status and headers, and how to let it go before a
/// retry. Implemented for [`crate::Response`] and for any `http::Response<B>` (tower layers).
pub trait Answer: Send {
    /// The status.
    fn status(&self) -> StatusCode;
    /// The headers (`Retry-After`, `RateLimit-Reset`).
    fn headers(&self) -> &HeaderMap;
    /// Frees the response before a retry; wirecore reads a small body so the connection is
    /// reused.
    fn discard(self) -> impl Future<Output = ()> + Send;
}

impl Answer for crate::Response {
    fn status(&self) -> StatusCode {
        crate::Response::status(self)
    }
    fn headers(&self) -> &HeaderMap {
        crate::Response::headers(self)
    }
    fn discard(self) -> impl Future<Output = ()> + Send {
        self.drain()
    }
}

impl<B: Send> Answer for http::Response<B> {
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }
    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }
    fn discard(self) -> impl Future<Output = ()> + Send {
        drop(self);
        std::future::ready(())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) attempts: AtomicU64,
    pub(crate) retries: [AtomicU64; 4],
    pub(crate) budget_exhausted: AtomicU64,
    pub(crate) hedges_sent: AtomicU64,
    pub(crate) hedges_won: AtomicU64,
    /// Breaker trips, breaker rejections and `overloaded` of forgotten origins, so that totals
    /// never go down.
    gone: [AtomicU64; 3],
}

/// State of one origin.
#[derive(Debug)]
pub(crate) struct OriginPolicy {
    /// The origin (`http://host:port`), for log events.
    pub(crate) key: Arc<str>,
    pub(crate) budget: Budget,
    pub(crate) breaker: Option<Arc<Breaker>>,
    pub(crate) concurrency: Option<Arc<Limiter>>,
    /// The origin's own local rate limiter (`rate_limit.scope = "origin"`, and `"key"` requests
    /// without a key).
    rate: Option<governor::DefaultDirectRateLimiter>,
    /// Latency to response head, for percentile hedge delays.
    latency: Option<Mutex<Histogram<u64>>>,
}

pub(crate) struct Policies {
    pub(crate) cfg: Config,
    origins: RwLock<HashMap<Arc<str>, Arc<OriginPolicy>>>,
    pub(crate) rate: Option<RateLimiter>,
    /// Breakers shared through Redis (`breaker.redis`).
    pub(crate) shared: Option<Arc<shared::SharedBreakers>>,
    pub(crate) counters: Counters,
    events: broadcast::Sender<BreakerEvent>,
    base: Instant,
    client_key: Arc<str>,
    /// Origins in the map that trigger a sweep of unused ones.
    prune_at: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Policies {
    pub(crate) fn new(cfg: &Config) -> Result<Self, Error> {
        let rate = if cfg.rate_limit.enabled {
            Some(RateLimiter::with_roots(&cfg.rate_limit, &cfg.tls)?)
        } else {
            None
        };
        let shared = if cfg.breaker.enabled && cfg.breaker.redis.enabled {
            Some(Arc::new(shared::SharedBreakers::new(
                &cfg.breaker.redis,
                &cfg.tls,
            )?))
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            origins: RwLock::new(HashMap::new()),
            rate,
            shared,
            counters: Counters::default(),
            events: broadcast::channel(256).0,
            base: Instant::now(),
            client_key: Arc::from("*"),
            prune_at: std::sync::atomic::AtomicUsize::new(cfg.pool.max_origins),
        })
    }

    /// Breaker state changes, for logging. Slow receivers miss events (`Lagged`).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BreakerEvent> {
        self.events.subscribe()
    }

    /// The state of `origin`, created on first use. Past `pool.max_origins` origins, those
    /// nobody holds are forgotten first (the client forgets the rest with the pool's).
    pub(crate) fn origin(&self, key: &Arc<str>) -> Arc<OriginPolicy> {
        if let Some(p) = self
            .origins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return p.clone();
        }
        let mut map = self.origins.write().unwrap_or_else(PoisonError::into_inner);
        // Amortised: after a sweep, the next waits until the map has doubled.
        if map.len() >= self.prune_at.load(Relaxed) && !map.contains_key(key) {
            let unused: Vec<Arc<str>> = map
                .iter()
                .filter(|(_, p)| Arc::strong_count(p) == 1)
                .map(|(k, _)| k.clone())
                .collect();
            for k in unused {
                if let Some(p) = map.remove(&k) {
                    self.count_gone(&p);
                }
            }
            let cap = self.cfg.pool.max_origins;
            self.prune_at.store(cap.max(map.len() * 2), Relaxed);
        }
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(self.new_origin(key)))
            .clone()
    }

    /// State for `key` kept by its caller, outside the map (never forgotten with the pool's):
    /// a balanced service's retry budget and hedge latencies.
    pub(crate) fn detached(&self, key: &Arc<str>) -> Arc<OriginPolicy> {
        Arc::new(self.new_origin(key))
    }

    /// Forgets the state of these origins.
    pub(crate) fn forget(&self, keys: &[Arc<str>]) {
        let mut map = self.origins.write().unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            if let Some(p) = map.remove(k) {
                self.count_gone(&p);
            }
        }
    }

    fn count_gone(&self, p: &OriginPolicy) {
        let g = &self.counters.gone;
        if let Some(b) = &p.breaker {
            g[0].fetch_add(b.trips.load(Relaxed), Relaxed);
            g[1].fetch_add(b.rejected.load(Relaxed), Relaxed);
        }
        if let Some(l) = &p.concurrency {
            g[2].fetch_add(l.snapshot().3, Relaxed);
        }
    }

    /// Hands what was last read from Redis to every breaker.
    pub(crate) fn apply_remote(&self, shared: &shared::SharedBreakers) {
        let map = self.origins.read().unwrap_or_else(PoisonError::into_inner);
        for (k, p) in map.iter() {
            if let Some(b) = &p.breaker {
                b.set_remote(shared.remote(k));
            }
        }
    }

    /// Origins with state.
    pub(crate) fn origin_count(&self) -> usize {
        self.origins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn new_origin(&self, key: &Arc<str>) -> OriginPolicy {
        let cfg = &self.cfg;
        let breaker = cfg.breaker.enabled.then(|| {
            let tx = self.events.clone();
            let on: OnChange = Arc::new(move |origin, from, to| {
                tracing::info!(
                    event = "breaker_state",
                    origin,
                    from = from.as_str(),
                    to = to.as_str(),
                    "circuit breaker state changed"
                );
                let _ = tx.send(BreakerEvent {
                    origin: origin.to_owned(),
                    from,
                    to,
                });
            });
            let b = Breaker::new(&cfg.breaker, key.clone(), on);
            Arc::new(match &self.shared {
                Some(s) => b.with_shared(s.clone()),
                None => b,
            })
        });
        let latency = cfg.retry.hedge.enabled.then(|| {
            #[expect(clippy::expect_used, reason = "constant bounds are valid")]
            Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("bounds"))
        });
        OriginPolicy {
            key: key.clone(),
            budget: Budget::new(&cfg.retry.budget, self.base),
            breaker,
            concurrency: cfg
                .concurrency
                .enabled
                .then(|| Arc::new(Limiter::new(&cfg.concurrency))),
            rate: self.rate.as_ref().map(RateLimiter::direct),
            latency,
        }
    }

    /// The rate-limit key of a request and where its local state lives (allocates only for a
    /// per-request key).
    fn rate_key<'a>(
        &self,
        op: &'a OriginPolicy,
        origin: &Arc<str>,
        key: Option<&str>,
    ) -> (Arc<str>, Local<'a>) {
        let own = || op.rate.as_ref().map_or(Local::Keyed, Local::Direct);
        match (self.cfg.rate_limit.scope, key) {
            (RateLimitScope::Client, _) => (self.client_key.clone(), Local::Client),
            (RateLimitScope::Key, Some(k)) => (Arc::from(k), Local::Keyed),
            _ => (origin.clone(), own()),
        }
    }

    pub(crate) fn count_retry(&self, reason: Reason) {
        self.counters.retries[reason.index()].fetch_add(1, Relaxed);
    }

    /// Runs the per-attempt policies (rate limit, breaker, concurrency), then `send`, and
    /// reports the outcome back to them.
    pub(crate) async fn attempt<R, F, T>(
        &self,
        op: &OriginPolicy,
        origin: &Arc<str>,
        rate_key: Option<&str>,
        deadline: Option<Instant>,
        send: F,
    ) -> Result<R, Error>
    where
        R: Answer,
        F: FnOnce() -> T,
        T: Future<Output = Result<R, Error>>,
    {
        self.counters.attempts.fetch_add(1, Relaxed);
        if let Some(rl) = &self.rate {
            let (key, local) = self.rate_key(op, origin, rate_key);
            // Boxed, as the concurrency limit's wait below: a request without them (the
            // default) carries no room for their futures down the request path.
            Box::pin(rl.acquire(&key, local, deadline)).await?;
        }
        let permit = match &op.breaker {
            Some(b) => Some(b.check().map_err(|wait| {
                Error::new(
                    ErrorKind::CircuitOpen,
                    format!(
                        "the circuit breaker of {origin} is open (next probe in {} ms)",
                        wait.as_millis()
                    ),
                )
            })?),
            None => None,
        };
        let slot = match &op.concurrency {
            Some(c) => {
                let wait = crate::config::ms(self.cfg.timeouts.pool_acquire_ms)
                    .and_then(|d| Instant::now().checked_add(d));
                let until = match (wait, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Some(Box::pin(c.acquire(origin, until)).await?)
            }
            None => None,
        };
        // Only the breaker, the limiter and hedging read the attempt's latency.
        let timed = permit.is_some() || slot.is_some() || op.latency.is_some();
        let t0 = timed.then(Instant::now);
        // An attempt the client's total deadline cuts short is dropped by the client's own timer;
        // the guard reports it to the breaker and the limiter as a timeout then (one timer per
        // request, not one more per attempt).
        let mut cut = Cut {
            permit,
            slot,
            deadline,
        };
        let res = send().await;
        let elapsed = t0.map_or(Duration::ZERO, |t| t.elapsed());
        if let Some(p) = cut.permit.take() {
            p.record(self.breaker_outcome(&res));
        }
        if let Some(s) = cut.slot.take() {
            s.release(concurrency_signal(&res, elapsed));
        }
        if let (Some(h), Ok(_)) = (&op.latency, &res) {
            let us = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let _ = h.lock().unwrap_or_else(PoisonError::into_inner).record(us);
        }
        res
    }

    fn breaker_outcome<R: Answer>(&self, res: &Result<R, Error>) -> Outcome {
        let b = &self.cfg.breaker;
        match res {
            Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                if b.failure_on_429 {
                    Outcome::Failure
                } else {
                    Outcome::Ignore
                }
            }
            Ok(r) if r.status().is_server_error() && b.failure_on_5xx => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) if e.kind().is_transport() || e.kind() == ErrorKind::TimeoutTotal => {
                Outcome::Failure
            }
            Err(_) => Outcome::Ignore,
        }
    }

    /// Retries `attempt` as the retry config allows: only what is safe (`idempotent`, or a
    /// failure that proves the request never left), only while `replayable`, with backoff or
    /// the server's `Retry-After` (up to its cap), within `deadline` and the origin's budget.
    /// Each try is hedged when hedging is on. `started` is when the request began (its first
    /// attempt is counted in the budget's second of that time).
    pub(crate) async fn run<R, F, T>(
        &self,
        op: &OriginPolicy,
        idempotent: bool,
        replayable: bool,
        deadline: Option<Instant>,
        started: Instant,
        mut attempt: F,
    ) -> Result<R, Error>
    where
        R: Answer,
        F: FnMut() -> T,
        T: Future<Output = Result<R, Error>>,
    {
        let rc = &self.cfg.retry;
        let max_attempts = if rc.enabled && replayable {
            rc.max_attempts
        } else {
            1
        };
        if rc.enabled {
            op.budget.deposit(started);
        }
        let may_repeat = idempotent || rc.non_idempotent;
        let hedge = rc.enabled && rc.hedge.enabled && idempotent && replayable;
        let mut n = 0u32;
        loop {
            n += 1;
            // Hedging holds two attempts at once: boxed, so that a request without it (the
            // default) carries room for one attempt only, not three (the request's future is
            // moved on every call down the request path; see `Client::execute`).
            let res = if hedge {
                Box::pin(self.hedged(op, &mut attempt)).await
            } else {
                attempt().await
            };
            if n >= max_attempts {
                return res;
            }
            let (reason, asked) = match &res {
                Ok(r) => match retry::classify_status(rc, r.status(), may_repeat) {
                    Some(reason) => (
                        reason,
                        retry::retry_after(r.headers(), std::time::SystemTime::now()),
                    ),
                    None => return res,
                },
                Err(e) => match retry::classify_error(e, may_repeat) {
                    Some(reason) => (reason, None),
                    None => return res,
                },
            };
            let delay = match asked {
                Some(d) if d > Duration::from_millis(rc.retry_after_max_ms) => return res,
                Some(d) => d,
                None => retry::backoff(rc, n, fastrand::f64()),
            };
            let now = Instant::now();
            // A delay past any representable time is past the deadline too.
            if deadline.is_some_and(|d| now.checked_add(delay).is_none_or(|t| t >= d)) {
                return res;
            }
            if !op.budget.try_withdraw(now) {
                self.counters.budget_exhausted.fetch_add(1, Relaxed);
                return res;
            }
            self.count_retry(reason);
            let (error_code, status) = match &res {
                Ok(r) => ("status", Some(r.status().as_u16())),
                Err(e) => (e.kind().code(), None),
            };
            tracing::info!(
                event = "retry",
                origin = &*op.key,
                attempt = n,
                reason = reason.label(),
                error_code,
                status,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
            if let Ok(r) = res {
                Box::pin(r.discard()).await;
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Starts an attempt, and a second one if the first has not answered within the hedge
    /// delay; the first good answer wins and the other is cancelled (dropped).
    async fn hedged<R, F, T>(&self, op: &OriginPolicy, attempt: &mut F) -> Result<R, Error>
    where
        R: Answer,
        F: FnMut() -> T,
        T: Future<Output = Result<R, Error>>,
    {
        let Some(delay) = self.hedge_delay(op) else {
            return attempt().await;
        };
        let first = attempt();
        tokio::pin!(first);
        tokio::select! {
            r = &mut first => return r,
            () = tokio::time::sleep(delay) => {}
        }
        if !op.budget.try_withdraw(Instant::now()) {
            self.counters.budget_exhausted.fetch_add(1, Relaxed);
            return first.await;
        }
        self.counters.hedges_sent.fetch_add(1, Relaxed);
        let second = attempt();
        tokio::pin!(second);
        let rc = &self.cfg.retry;
        let good = |r: &Result<R, Error>| {
            r.as_ref()
                .is_ok_and(|r| retry::classify_status(rc, r.status(), true).is_none())
        };
        tokio::select! {
            r = &mut first => if good(&r) { r } else { second.await },
            r = &mut second => {
                if good(&r) {
                    self.counters.hedges_won.fetch_add(1, Relaxed);
                    r
                } else {
                    first.await
                }
            }
        }
    }

    /// The hedge delay of an origin: fixed, or its latency percentile once known.
    pub(crate) fn hedge_delay(&self, op: &OriginPolicy) -> Option<Duration> {
        let h = &self.cfg.retry.hedge;
        if h.delay_ms > 0 {
            return Some(Duration::from_millis(h.delay_ms));
        }
        let hist = op
            .latency
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if hist.len() < h.min_samples {
            return None;
        }
        let us = hist.value_at_percentile(h.percentile);
        Some(Duration::from_micros(us).max(Duration::from_millis(h.min_delay_ms)))
    }
}

/// The breaker permit and concurrency slot of an attempt in flight. Dropped with them still
/// inside (the attempt was dropped), it counts the attempt as timed out when the request's
/// deadline has passed, and as cancelled (nothing recorded) otherwise.
struct Cut<'a> {
    permit: Option<breaker::Permit<'a>>,
    slot: Option<limit::Slot>,
    deadline: Option<Instant>,
}

impl Drop for Cut<'_> {
    fn drop(&mut self) {
        if self.permit.is_none() && self.slot.is_none() {
            return;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(p) = self.permit.take() {
                p.record(Outcome::Failure);
            }
            if let Some(s) = self.slot.take() {
                s.release(Signal::Overload);
            }
        }
    }
}

fn concurrency_signal<R: Answer>(res: &Result<R, Error>, elapsed: Duration) -> Signal {
    match res {
        Ok(r)
            if r.status() == StatusCode::TOO_MANY_REQUESTS
                || r.status() == StatusCode::SERVICE_UNAVAILABLE =>
        {
            Signal::Overload
        }
        Ok(_) => Signal::Ok(elapsed),
        Err(e) if e.is_timeout() && e.kind() != ErrorKind::TimeoutPool => Signal::Overload,
        Err(_) => Signal::Ignore,
    }
}

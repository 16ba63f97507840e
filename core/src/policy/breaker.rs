//! A circuit breaker per origin. The closed-state check is one atomic load; state changes and
//! the sliding window take a mutex.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::BreakerConfig;

/// The state of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; failures are counted.
    Closed,
    /// Requests fail fast with `circuit_open`.
    Open,
    /// A few probes test the origin.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Called on every state change with (origin, from, to).
pub(crate) type OnChange = Arc<dyn Fn(&str, BreakerState, BreakerState) + Send + Sync>;

pub(crate) struct Breaker {
    cfg: BreakerConfig,
    origin: Arc<str>,
    base: Instant,
    state: AtomicU8,
    open_until_ms: AtomicU64,
    consecutive: AtomicU32,
    pub(crate) trips: AtomicU64,
    pub(crate) rejected: AtomicU64,
    inner: Mutex<Inner>,
    on_change: OnChange,
    /// Where opening and closing are told to other processes (`breaker.redis`).
    shared: Option<Arc<super::shared::SharedBreakers>>,
    /// Open elsewhere until then (ms since `base`; 0: not open elsewhere), as read from Redis.
    remote_until_ms: AtomicU64,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("origin", &self.origin)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// (second, successes, failures) per slot of the ratio window.
    window: Vec<(u64, u32, u32)>,
    trips_in_row: u32,
    probes: u32,
    probe_successes: u32,
}

/// What an attempt let through by [`Breaker::check`] turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// Cancelled or not the origin's fault (e.g. a 4xx): counts neither way.
    Ignore,
}

/// Proof that the breaker let an attempt through; report its outcome with [`Permit::record`].
/// Dropped unrecorded (a cancelled attempt), it counts as [`Outcome::Ignore`].
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    pub(crate) fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker.record(self.probe, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // An unrecorded normal attempt counts for nothing; a probe gives its slot back.
        if !self.done && self.probe {
            self.breaker.record(true, Outcome::Ignore);
        }
    }
}

impl Breaker {
    pub(crate) fn new(cfg: &BreakerConfig, origin: Arc<str>, on_change: OnChange) -> Self {
        let slots = usize::try_from(cfg.window_ms.div_ceil(1000))
            .unwrap_or(10)
            .max(1);
        Self {
            cfg: cfg.clone(),
            origin,
            base: Instant::now(),
            state: AtomicU8::new(CLOSED),
            open_until_ms: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            trips: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                window: vec![(0, 0, 0); slots],
                ..Inner::default()
            }),
            on_change,
            shared: None,
            remote_until_ms: AtomicU64::new(0),
        }
    }

    /// Tells `shared` when this breaker opens or closes, and starts from what it last read.
    pub(crate) fn with_shared(mut self, shared: Arc<super::shared::SharedBreakers>) -> Self {
        self.set_remote(shared.remote(&self.origin));
        self.shared = Some(shared);
        self
    }

    /// Open elsewhere until `until` (`None`: not open elsewhere).
    pub(crate) fn set_remote(&self, until: Option<Instant>) {
        let ms = until.map_or(0, |t| self.ms(t).max(1));
        self.remote_until_ms.store(ms, Ordering::Release);
    }

    /// How long the breaker is open elsewhere, counting a rejection; forgets an expired mark.
    fn remote_wait(&self, until: u64) -> Option<Duration> {
        let now_ms = self.ms(Instant::now());
        if now_ms < until {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Some(Duration::from_millis(until - now_ms));
        }
        let _ =
            self.remote_until_ms
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed);
        None
    }

    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// How much longer the breaker stays open (`None` when it lets attempts through), without
    /// counting a rejection: the balancer skips such an endpoint.
    pub(crate) fn open_for(&self) -> Option<Duration> {
        let remote = self.remote_until_ms.load(Ordering::Acquire);
        let local = if self.state.load(Ordering::Acquire) == OPEN {
            self.open_until_ms.load(Ordering::Acquire)
        } else {
            0
        };
        let until = remote.max(local);
        if until == 0 {
            return None;
        }
        let now_ms = self.ms(Instant::now());
        (now_ms < until).then(|| Duration::from_millis(until - now_ms))
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// Lets an attempt through, or says how long the breaker stays open (here or, through
    /// Redis, elsewhere). Closed and not open elsewhere, this is two atomic loads: no clock, no
    /// lock, no reference count.
    pub(crate) fn check(&self) -> Result<Permit<'_>, Duration> {
        let remote = self.remote_until_ms.load(Ordering::Acquire);
        if remote != 0
            && let Some(wait) = self.remote_wait(remote)
        {
            return Err(wait);
        }
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(Permit {
                breaker: self,
                probe: false,
                done: false,
            });
        }
        self.check_slow(Instant::now())
    }

    fn check_slow(&self, now: Instant) -> Result<Permit<'_>, Duration> {
        let now_ms = self.ms(now);
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = self.state.load(Ordering::Acquire);
        if state == OPEN {
            let until = self.open_until_ms.load(Ordering::Acquire);
            if now_ms < until {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Duration::from_millis(until - now_ms));
            }
            g.probes = 0;
            g.probe_successes = 0;
            self.set_state(OPEN, HALF_OPEN);
            state = HALF_OPEN;
        }
        match state {
            CLOSED => Ok(Permit {
                breaker: self,
                probe: false,
                done: false,
            }),
            _ if g.probes < self.cfg.half_open_probes => {
                g.probes += 1;
                Ok(Permit {
                    breaker: self,
                    probe: true,
                    done: false,
                })
            }
            _ => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Duration::ZERO)
            }
        }
    }

    fn set_state(&self, from: u8, to: u8) {
        self.state.store(to, Ordering::Release);
        (self.on_change)(
            &self.origin,
            BreakerState::from_u8(from),
            BreakerState::from_u8(to),
        );
    }

    fn record(&self, probe: bool, outcome: Outcome) {
        if probe {
            let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if self.state.load(Ordering::Acquire) != HALF_OPEN {
                return;
            }
            g.probes = g.probes.saturating_sub(1);
            match outcome {
                Outcome::Success => {
                    g.probe_successes += 1;
                    if g.probe_successes >= self.cfg.success_threshold {
                        g.trips_in_row = 0;
                        for s in &mut g.window {
                            *s = (0, 0, 0);
                        }
                        self.consecutive.store(0, Ordering::Relaxed);
                        self.set_state(HALF_OPEN, CLOSED);
                        if let Some(s) = &self.shared {
                            s.closed(&self.origin);
                        }
                    }
                }
                Outcome::Failure => self.trip(&mut g, HALF_OPEN, Instant::now()),
                Outcome::Ignore => {}
            }
            return;
        }
        if outcome == Outcome::Ignore || self.state.load(Ordering::Acquire) != CLOSED {
            return;
        }
        let failed = outcome == Outcome::Failure;
        let in_row = if failed {
            self.consecutive.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.consecutive.store(0, Ordering::Relaxed);
            0
        };
        let ratio = self.cfg.failure_ratio_percent;
        if ratio == 0 && !failed {
            return;
        }
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut trip =
            failed && self.cfg.consecutive_failures > 0 && in_row >= self.cfg.consecutive_failures;
        if ratio > 0 {
            let sec = now.saturating_duration_since(self.base).as_secs() + 1;
            let n = g.window.len() as u64;
            let i = usize::try_from(sec % n).unwrap_or(0);
            if g.window[i].0 != sec {
                g.window[i] = (sec, 0, 0);
            }
            if failed {
                g.window[i].2 += 1;
            } else {
                g.window[i].1 += 1;
            }
            let (ok, bad) = g
                .window
                .iter()
                .filter(|s| s.0 + n > sec && s.0 <= sec)
                .fold((0u64, 0u64), |(a, b), s| {
                    (a + u64::from(s.1), b + u64::from(s.2))
                });
            let total = ok + bad;
            trip |= failed
                && total >= u64::from(self.cfg.min_requests)
                && bad * 100 >= total * u64::from(ratio);
        }
        if trip && self.state.load(Ordering::Acquire) == CLOSED {
            self.trip(&mut g, CLOSED, now);
        }
    }

    fn trip(&self, g: &mut Inner, from: u8, now: Instant) {
        g.trips_in_row += 1;
        let factor = 1u64 << (g.trips_in_row - 1).min(20);
        let open_for = self
            .cfg
            .open_ms
            .saturating_mul(factor)
            .min(self.cfg.max_open_ms);
        self.open_until_ms
            .store(self.ms(now).saturating_add(open_for), Ordering::Release);
        for s in &mut g.window {
            *s = (0, 0, 0);
        }
        g.probes = 0;
        g.probe_successes = 0;
        self.consecutive.store(0, Ordering::Relaxed);
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.set_state(from, OPEN);
        if let Some(s) = &self.shared {
            s.opened(&self.origin, Duration::from_millis(open_for));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cfg: &BreakerConfig) -> (Arc<Breaker>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let on: OnChange = Arc::new(move |o, a, b| {
            l.lock()
                .unwrap()
                .push(format!("{o}:{}->{}", a.as_str(), b.as_str()));
        });
        (Arc::new(Breaker::new(cfg, "http://a:80".into(), on)), log)
    }

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 3,
            failure_ratio_percent: 0,
            open_ms: 1_000,
            max_open_ms: 3_000,
            half_open_probes: 2,
            success_threshold: 2,
            ..BreakerConfig::default()
        }
    }

    fn fail(b: &Arc<Breaker>) {
        b.check().unwrap().record(Outcome::Failure);
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_trip_and_probes_close() {
        let (b, log) = breaker(&cfg());
        fail(&b);
        fail(&b);
        b.check().unwrap().record(Outcome::Success);
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Closed, "a success resets the run");
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        let wait = b.check().unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        tokio::time::advance(Duration::from_millis(1_001)).await;
        let p1 = b.check().unwrap();
        let p2 = b.check().unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.check().is_err(), "only two probes at a time");
        p1.record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::HalfOpen, "two successes needed");
        p2.record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "http://a:80:closed->open",
                "http://a:80:open->half_open",
                "http://a:80:half_open->closed"
            ]
        );
        assert_eq!(b.trips.load(Ordering::Relaxed), 1);
        assert_eq!(b.rejected.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_longer_up_to_the_cap() {
        let (b, _) = breaker(&cfg());
        for _ in 0..3 {
            fail(&b);
        }
        let mut expected = [2_000, 3_000, 3_000].into_iter();
        for _ in 0..3 {
            let wait = b.check().unwrap_err();
            tokio::time::advance(wait + Duration::from_millis(1)).await;
            b.check().unwrap().record(Outcome::Failure);
            assert_eq!(b.state(), BreakerState::Open);
            assert_eq!(
                b.check().unwrap_err(),
                Duration::from_millis(expected.next().unwrap())
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_rule_needs_volume() {
        let (b, _) = breaker(&BreakerConfig {
            consecutive_failures: 0,
            failure_ratio_percent: 50,
            min_requests: 10,
            ..cfg()
        });
        // Alternating: never 3 in a row, 50 % failures; trips at the 10th request.
        for i in 0..9 {
            let p = b.check().unwrap();
            p.record(if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            });
            assert_eq!(b.state(), BreakerState::Closed, "request {i}");
        }
        b.check().unwrap().record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Closed, "a success never trips");
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn open_elsewhere_rejects_until_then_without_touching_the_local_state() {
        let (b, log) = breaker(&cfg());
        b.set_remote(Some(Instant::now() + Duration::from_millis(500)));
        assert_eq!(b.check().unwrap_err(), Duration::from_millis(500));
        assert_eq!(b.open_for(), Some(Duration::from_millis(500)));
        assert_eq!(b.state(), BreakerState::Closed);
        tokio::time::advance(Duration::from_millis(501)).await;
        b.check().unwrap().record(Outcome::Success);
        assert_eq!(b.open_for(), None);
        assert_eq!(b.rejected.load(Ordering::Relaxed), 1);
        assert!(log.lock().unwrap().is_empty(), "no local state change");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_probe_frees_its_slot() {
        let (b, _) = breaker(&BreakerConfig {
            half_open_probes: 1,
            success_threshold: 1,
            ..cfg()
        });
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_millis(1_001)).await;
        drop(b.check().unwrap());
        let p = b.check().unwrap();
        p.record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}

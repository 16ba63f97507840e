//! Adaptive concurrency per origin (AIMD): the limit on requests in flight drops by
//! `backoff_ratio` on an overload signal (429, 503, timeout, latency far above the best seen) and
//! grows by one after a limit's worth of successes. Requests over the limit queue (bounded) or
//! fail with `overloaded`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConcurrencyConfig;
use crate::error::{Error, ErrorKind};

#[derive(Debug)]
pub(crate) struct Limiter {
    cfg: ConcurrencyConfig,
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: u32,
    waiting: usize,
    best_latency: Option<Duration>,
    rejected: u64,
}

/// What a finished attempt says about the origin's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Answered normally; the latency is compared with the best seen.
    Ok(Duration),
    /// 429, 503 or a timeout: shrink.
    Overload,
    /// Cancelled or not load-related: no change.
    Ignore,
}

/// A slot; dropping it without [`Slot::release`] gives it back with [`Signal::Ignore`].
#[derive(Debug)]
pub(crate) struct Slot {
    limiter: Arc<Limiter>,
    done: bool,
}

impl Slot {
    pub(crate) fn release(mut self, signal: Signal) {
        self.done = true;
        self.limiter.release(signal);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.release(Signal::Ignore);
        }
    }
}

/// A request counted in `waiting`.
struct Queued<'a> {
    limiter: &'a Limiter,
    counted: bool,
}

impl Queued<'_> {
    /// Stops waiting, under the lock the caller already holds.
    fn leave(mut self, s: &mut State) {
        self.counted = false;
        s.waiting -= 1;
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.limiter.lock().waiting -= 1;
            // A wake-up this waiter may have taken goes to the next one.
            self.limiter.notify.notify_one();
        }
    }
}

impl Limiter {
    pub(crate) fn new(cfg: &ConcurrencyConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            state: Mutex::new(State {
                limit: f64::from(cfg.initial_limit),
                in_flight: 0,
                waiting: 0,
                best_latency: None,
                rejected: 0,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// (limit, in flight, waiting, rejected).
    pub(crate) fn snapshot(&self) -> (u32, u32, usize, u64) {
        let s = self.lock();
        (s.limit as u32, s.in_flight, s.waiting, s.rejected)
    }

    /// Takes a slot, waiting until `until` at most.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        origin: &str,
        until: Option<Instant>,
    ) -> Result<Slot, Error> {
        // Counted in `waiting` while set; dropped with the request, it uncounts itself.
        let mut queued: Option<Queued<'_>> = None;
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if f64::from(s.in_flight) < s.limit.floor() {
                    s.in_flight += 1;
                    if let Some(q) = queued.take() {
                        q.leave(&mut s);
                    }
                    return Ok(Slot {
                        limiter: self.clone(),
                        done: false,
                    });
                }
                if queued.is_none() {
                    if s.waiting >= self.cfg.max_queue {
                        s.rejected += 1;
                        return Err(Self::overloaded(origin, &s));
                    }
                    s.waiting += 1;
                    queued = Some(Queued {
                        limiter: self,
                        counted: true,
                    });
                }
            }
            let expired = if let Some(at) = until {
                tokio::time::timeout_at(at, notified).await.is_err()
            } else {
                notified.await;
                false
            };
            if expired {
                let mut s = self.lock();
                if let Some(q) = queued.take() {
                    q.leave(&mut s);
                }
                s.rejected += 1;
                return Err(Self::overloaded(origin, &s));
            }
        }
    }

    fn overloaded(origin: &str, s: &State) -> Error {
        Error::new(
            ErrorKind::Overloaded,
            format!(
                "{origin} is at its adaptive concurrency limit ({} in flight, {} waiting)",
                s.in_flight, s.waiting
            ),
        )
    }

    fn release(&self, signal: Signal) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let (min, max) = (f64::from(self.cfg.min_limit), f64::from(self.cfg.max_limit));
        let before = s.limit.floor();
        match signal {
            Signal::Ok(latency) => {
                let best = *s.best_latency.get_or_insert(latency);
                if latency < best {
                    s.best_latency = Some(latency);
                }
                let slow =
                    latency.as_secs_f64() > best.as_secs_f64() * self.cfg.latency_tolerance + 0.001;
                if slow {
                    s.limit = (s.limit * self.cfg.backoff_ratio).max(min);
                } else {
                    s.limit = (s.limit + 1.0 / s.limit).min(max);
                }
            }
            Signal::Overload => s.limit = (s.limit * self.cfg.backoff_ratio).max(min),
            Signal::Ignore => {}
        }
        let grew = s.limit.floor() > before;
        drop(s);
        if grew {
            self.notify.notify_waiters();
        } else {
            self.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(initial: u32, max_queue: usize) -> Arc<Limiter> {
        Arc::new(Limiter::new(&ConcurrencyConfig {
            enabled: true,
            initial_limit: initial,
            min_limit: 1,
            max_limit: 100,
            max_queue,
            ..ConcurrencyConfig::default()
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn shrinks_multiplicatively_and_grows_additively() {
        let l = limiter(10, 10);
        let s = l.acquire("o", None).await.unwrap();
        s.release(Signal::Overload);
        assert_eq!(l.snapshot().0, 9);
        for _ in 0..30 {
            l.acquire("o", None)
                .await
                .unwrap()
                .release(Signal::Overload);
        }
        assert_eq!(l.snapshot().0, 1, "never below min_limit");
        // +1/limit per success: from 1, two successes reach 2, then 2 more reach 3.
        for _ in 0..4 {
            l.acquire("o", None)
                .await
                .unwrap()
                .release(Signal::Ok(Duration::from_millis(10)));
        }
        assert_eq!(l.snapshot().0, 3);
        l.acquire("o", None)
            .await
            .unwrap()
            .release(Signal::Ok(Duration::from_millis(50)));
        assert_eq!(
            l.snapshot().0,
            2,
            "latency 5× the best is an overload signal"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let l = limiter(1, 4);
        let a = l.acquire("o", None).await.unwrap();
        for _ in 0..3 {
            let wait = l.acquire("o", None);
            assert!(
                tokio::time::timeout(Duration::from_millis(10), wait)
                    .await
                    .is_err()
            );
        }
        assert_eq!(l.snapshot().2, 0, "cancelled waiters are not counted");
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire("o", None).await.map(drop) });
        tokio::task::yield_now().await;
        assert_eq!(l.snapshot().2, 1);
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(l.snapshot().2, 0);
        drop(a);
        let _b = l.acquire("o", None).await.unwrap();
        assert_eq!(l.snapshot().1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_limit_waits_then_fails_overloaded() {
        let l = limiter(2, 1);
        let a = l.acquire("o", None).await.unwrap();
        let _b = l.acquire("o", None).await.unwrap();
        let l2 = l.clone();
        let waiter = tokio::spawn(async move {
            l2.acquire("o", Some(Instant::now() + Duration::from_secs(5)))
                .await
        });
        tokio::task::yield_now().await;
        assert_eq!(l.snapshot().2, 1, "one waiting");
        let e = l.acquire("o", None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Overloaded, "the queue is full");
        drop(a);
        let _c = waiter.await.unwrap().unwrap();
        let e = l
            .acquire("o", Some(Instant::now() + Duration::from_millis(10)))
            .await
            .unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Overloaded,
            "a wait past the deadline fails"
        );
        assert_eq!(l.snapshot().3, 2);
    }
}

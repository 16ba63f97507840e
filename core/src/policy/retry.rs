//! Retry decisions: what is retryable, backoff with full jitter, `Retry-After`, the budget.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use crate::config::{RetryBudgetConfig, RetryConfig};
use crate::error::{Error, ErrorKind};

/// Why an attempt is retried (a label of `wirecore_retries_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Connect, DNS, TLS timeout or refused stream: the request never left.
    Unsent,
    /// The connection reset or closed mid-exchange.
    Reset,
    /// A status in `retry_on_status`.
    Status,
    /// 429 Too Many Requests.
    TooManyRequests,
}

impl Reason {
    pub(crate) const ALL: [Reason; 4] = [
        Reason::Unsent,
        Reason::Reset,
        Reason::Status,
        Reason::TooManyRequests,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Reason::Unsent => "unsent",
            Reason::Reset => "reset",
            Reason::Status => "status",
            Reason::TooManyRequests => "429",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Idempotent by method (RFC 9110 §9.2.2).
pub(crate) fn idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Idempotent by method, or by an `Idempotency-Key` header.
pub(crate) fn idempotent(method: &Method, headers: &HeaderMap) -> bool {
    idempotent_method(method) || headers.contains_key("idempotency-key")
}

/// Whether a failed attempt may be retried, and why.
pub(crate) fn classify_error(e: &Error, idempotent: bool) -> Option<Reason> {
    if e.is_definitive() {
        return None;
    }
    if matches!(
        e.kind(),
        ErrorKind::Dns
            | ErrorKind::Tls
            | ErrorKind::TimeoutPool
            | ErrorKind::CircuitOpen
            | ErrorKind::RateLimited
            | ErrorKind::Overloaded
    ) {
        // Retrying these at once only repeats the answer (or adds load to a protected origin).
        return None;
    }
    if e.is_unsent() {
        return Some(Reason::Unsent);
    }
    (idempotent && e.kind() == ErrorKind::Io).then_some(Reason::Reset)
}

/// Whether a response may be retried, and why.
pub(crate) fn classify_status(
    cfg: &RetryConfig,
    status: StatusCode,
    idempotent: bool,
) -> Option<Reason> {
    if !idempotent {
        return None;
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return cfg.retry_on_429.then_some(Reason::TooManyRequests);
    }
    cfg.retry_on_status
        .contains(&status.as_u16())
        .then_some(Reason::Status)
}

/// The backoff before retry number `n` (1-based): uniform in `[0, min(max, base × mult^(n-1))]`.
pub(crate) fn backoff(cfg: &RetryConfig, n: u32, unit: f64) -> Duration {
    let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let cap = (cfg.backoff_base_ms as f64 * cfg.backoff_multiplier.powi(exp))
        .min(cfg.backoff_max_ms as f64);
    Duration::try_from_secs_f64(cap * unit.clamp(0.0, 1.0) / 1000.0)
        .unwrap_or_else(|_| Duration::from_millis(cfg.backoff_max_ms))
}

/// How long the server asked to wait: `Retry-After` (seconds or HTTP-date), else
/// `RateLimit-Reset`, else `X-RateLimit-Reset` (seconds, or a Unix time if that large).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        if let Some(secs) = get(name).and_then(|v| v.parse::<u64>().ok()) {
            let unix_now = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // A value beyond a year of seconds is a Unix time (GitHub's convention).
            let delta = if secs > 365 * 24 * 3600 {
                secs.saturating_sub(unix_now)
            } else {
                secs
            };
            return Some(Duration::from_secs(delta));
        }
    }
    None
}

/// The retry budget of one origin: per-second slots over a sliding window.
#[derive(Debug)]
pub(crate) struct Budget {
    cfg: RetryBudgetConfig,
    base: Instant,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    sec: u64,
    requests: u64,
    retries: u64,
}

impl Budget {
    pub(crate) fn new(cfg: &RetryBudgetConfig, base: Instant) -> Self {
        let n = usize::try_from(cfg.window_ms.div_ceil(1000))
            .unwrap_or(10)
            .max(1);
        Self {
            cfg: cfg.clone(),
            base,
            slots: Mutex::new(vec![Slot::default(); n]),
        }
    }

    fn with_slot<R>(&self, now: Instant, f: impl FnOnce(&mut [Slot], usize, u64) -> R) -> R {
        let sec = now.saturating_duration_since(self.base).as_secs() + 1;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let n = slots.len();
        let i = usize::try_from(sec % n as u64).unwrap_or(0);
        if slots[i].sec != sec {
            slots[i] = Slot {
                sec,
                ..Slot::default()
            };
        }
        f(&mut slots, i, sec)
    }

    /// Counts a first attempt.
    pub(crate) fn deposit(&self, now: Instant) {
        self.with_slot(now, |s, i, _| s[i].requests += 1);
    }

    /// Retries left in the window ending at second `sec`: the floor plus the ratio of the
    /// requests, minus the retries already taken.
    fn left(&self, slots: &[Slot], sec: u64) -> u64 {
        let n = slots.len() as u64;
        let live = slots.iter().filter(|x| x.sec + n > sec && x.sec <= sec);
        let (req, ret) = live.fold((0, 0), |(a, b), x| (a + x.requests, b + x.retries));
        let allowed =
            u64::from(self.cfg.min_per_second) * n + req * u64::from(self.cfg.ratio_percent) / 100;
        allowed.saturating_sub(ret)
    }

    /// Takes one retry from the budget, if it has one.
    pub(crate) fn try_withdraw(&self, now: Instant) -> bool {
        if !self.cfg.enabled {
            return true;
        }
        self.with_slot(now, |s, i, sec| {
            let ok = self.left(s, sec) > 0;
            if ok {
                s[i].retries += 1;
            }
            ok
        })
    }

    /// Retries left in the window now.
    pub(crate) fn available(&self, now: Instant) -> u64 {
        self.with_slot(now, |s, _, sec| self.left(s, sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cfg() -> RetryConfig {
        RetryConfig::default()
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = cfg();
        assert_eq!(backoff(&c, 1, 1.0), Duration::from_millis(50));
        assert_eq!(backoff(&c, 2, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(&c, 3, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(&c, 10, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&c, 60, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&c, 3, 0.0), Duration::ZERO);
        assert_eq!(backoff(&c, 3, 0.5), Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        let c = cfg();
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let d = backoff(&c, 3, fastrand::f64());
            assert!(d <= Duration::from_millis(200), "{d:?}");
            seen_low |= d < Duration::from_millis(50);
            seen_high |= d > Duration::from_millis(150);
        }
        assert!(seen_low && seen_high, "jitter spreads over the whole range");
    }

    #[test]
    fn retry_after_both_forms_and_reset_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        h.insert("retry-after", HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000012"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(12)));
    }

    #[test]
    fn what_is_retryable() {
        let c = cfg();
        let e = Error::new(ErrorKind::Connect, "refused");
        assert_eq!(classify_error(&e, false), Some(Reason::Unsent));
        let e = Error::new(ErrorKind::Io, "reset");
        assert_eq!(classify_error(&e, true), Some(Reason::Reset));
        assert_eq!(classify_error(&e, false), None);
        assert_eq!(classify_error(&e.unsent(), false), Some(Reason::Unsent));
        for k in [
            ErrorKind::TimeoutRead,
            ErrorKind::Tls,
            ErrorKind::CircuitOpen,
        ] {
            assert_eq!(classify_error(&Error::new(k, "x"), true), None, "{k}");
        }
        assert_eq!(
            classify_status(&c, StatusCode::SERVICE_UNAVAILABLE, true),
            Some(Reason::Status)
        );
        assert_eq!(
            classify_status(&c, StatusCode::SERVICE_UNAVAILABLE, false),
            None
        );
        assert_eq!(classify_status(&c, StatusCode::NOT_FOUND, true), None);
        assert_eq!(
            classify_status(&c, StatusCode::INTERNAL_SERVER_ERROR, true),
            None
        );
        assert_eq!(
            classify_status(&c, StatusCode::TOO_MANY_REQUESTS, true),
            Some(Reason::TooManyRequests)
        );
        let mut h = HeaderMap::new();
        assert!(idempotent(&Method::PUT, &h));
        assert!(!idempotent(&Method::POST, &h));
        h.insert("idempotency-key", HeaderValue::from_static("k1"));
        assert!(idempotent(&Method::POST, &h));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_allows_ratio_plus_floor_over_the_window() {
        let cfg = RetryBudgetConfig {
            enabled: true,
            ratio_percent: 20,
            min_per_second: 1,
            window_ms: 10_000,
        };
        let b = Budget::new(&cfg, Instant::now());
        let now = Instant::now();
        for _ in 0..100 {
            b.deposit(now);
        }
        // 10 s × 1/s floor + 20 % of 100.
        assert_eq!(b.available(now), 30);
        let granted = (0..100).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(granted, 30);
        assert!(!b.try_withdraw(now));
        // Once the window has moved past them, the old requests and retries no longer count.
        tokio::time::advance(Duration::from_secs(11)).await;
        let later = Instant::now();
        assert_eq!(b.available(later), 10);
        assert!(b.try_withdraw(later));
    }

    #[test]
    fn disabled_budget_always_allows() {
        let cfg = RetryBudgetConfig {
            enabled: false,
            ..RetryBudgetConfig::default()
        };
        let b = Budget::new(&cfg, Instant::now());
        assert!((0..1000).all(|_| b.try_withdraw(Instant::now())));
    }
}

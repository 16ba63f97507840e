//! The picking strategies, each over a slice of endpoints and a predicate saying which may be
//! picked now (not ejected, not already tried by this request, breaker not open).
//!
//! P2C over peak-EWMA is written here rather than taken from `tower::balance::p2c` and
//! `tower::load::PeakEwma`: those balance `tower::Service`s with `poll_ready`, and measure
//! latency by wrapping each endpoint's service and its response future. The engine's request
//! path is plain async functions over one pool (no service per endpoint to wrap, no readiness),
//! and the strategy must skip endpoints a request already tried; the algorithm itself is a few
//! lines (`Endpoint::cost`, `p2c`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::endpoint::Endpoint;

/// Each endpoint in turn from `start` (see [`Rotation::start`]).
pub(crate) fn round_robin(
    eps: &[Arc<Endpoint>],
    start: Option<usize>,
    ok: impl Fn(&Endpoint) -> bool,
) -> Option<usize> {
    let n = eps.len();
    let mut i = start?;
    for _ in 0..n {
        if ok(&eps[i]) {
            return Some(i);
        }
        i = if i + 1 == n { 0 } else { i + 1 };
    }
    None
}

/// Where the rotating strategies' scans over `n` endpoints start: a shared 32-bit counter
/// modulo `n`, computed with a precomputed reciprocal (two multiplications) instead of a
/// division, which was a seventh of a round-robin pick. The counter wraps at 2^32 picks,
/// where the rotation skips ahead once.
#[derive(Debug)]
pub(crate) struct Rotation {
    n: u32,
    /// ⌈2^64 / n⌉ (Lemire, Kaser and Kurz, "Faster Remainder by Direct Computation", 2019:
    /// exact for every 32-bit dividend and divisor); 0 when `n` is 0.
    reciprocal: u64,
}

impl Rotation {
    pub(crate) fn new(n: usize) -> Self {
        // More endpoints than a u32 counts cannot be configured or resolved; saturate anyway.
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let reciprocal = match n {
            // No endpoints: never used. One: ⌈2^64 / 1⌉ does not fit, and 0 makes every
            // index 0, as it should be.
            0 | 1 => 0,
            n => u64::MAX / u64::from(n) + 1,
        };
        Self { n, reciprocal }
    }

    /// `x % n`, for `n` > 0.
    fn rem(&self, x: u32) -> u32 {
        let low = self.reciprocal.wrapping_mul(u64::from(x));
        ((u128::from(low) * u128::from(self.n)) >> 64) as u32
    }

    /// The next start index (`None` when there are no endpoints).
    pub(crate) fn start(&self, next: &AtomicU32) -> Option<usize> {
        (self.n > 0).then(|| self.rem(next.fetch_add(1, Relaxed)) as usize)
    }
}

/// nginx's smooth weighted round robin: each pick adds every candidate's weight to its
/// current weight, takes the largest, and subtracts the candidates' total from it. Over
/// W = Σ weights picks each endpoint gets exactly its weight, interleaved.
pub(crate) fn smooth_weighted(
    eps: &[Arc<Endpoint>],
    current: &std::sync::Mutex<Vec<i64>>,
    ok: impl Fn(&Endpoint) -> bool,
) -> Option<usize> {
    let mut cur = current
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for (i, e) in eps.iter().enumerate() {
        if !ok(e) {
            continue;
        }
        let w = i64::from(e.weight);
        cur[i] += w;
        total += w;
        if best.is_none_or(|b| cur[i] > cur[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    cur[b] -= total;
    Some(b)
}

/// Longest `weighted_round_robin` cycle kept precomputed (2 bytes a step).
const MAX_CYCLE: u64 = 1 << 16;

/// One whole cycle of [`smooth_weighted`] over all of `eps` (Σ weights picks, after which the
/// current weights are back to zero), or `None` when it would be longer than [`MAX_CYCLE`] or
/// there are more endpoints than a `u16` indexes.
pub(crate) fn smooth_weighted_cycle(eps: &[Arc<Endpoint>]) -> Option<Box<[u16]>> {
    let total: u64 = eps.iter().map(|e| u64::from(e.weight)).sum();
    if eps.is_empty() || total > MAX_CYCLE || eps.len() > usize::from(u16::MAX) {
        return None;
    }
    let current = std::sync::Mutex::new(vec![0; eps.len()]);
    (0..total)
        .map(|_| smooth_weighted(eps, &current, |_| true).and_then(|i| u16::try_from(i).ok()))
        .collect()
}

/// The candidate with the fewest requests in flight; the scan starts at a rotating index
/// (`start`, see [`Rotation::start`]) so ties go round.
pub(crate) fn least_outstanding(
    eps: &[Arc<Endpoint>],
    start: Option<usize>,
    ok: impl Fn(&Endpoint) -> bool,
) -> Option<usize> {
    let n = eps.len();
    let mut i = start?;
    let mut best: Option<(usize, u64)> = None;
    for _ in 0..n {
        let e = &eps[i];
        if ok(e) {
            let load = e.outstanding.load(Relaxed);
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
                if load == 0 {
                    break;
                }
            }
        }
        i = if i + 1 == n { 0 } else { i + 1 };
    }
    best.map(|(i, _)| i)
}

/// Power of two choices: two distinct endpoints at random, the cheaper (lower peak-EWMA cost)
/// wins. When a draw hits endpoints that may not be picked, a few more draws, then a scan for
/// the cheapest.
pub(crate) fn p2c(
    eps: &[Arc<Endpoint>],
    decay_ns: f64,
    ok: impl Fn(&Endpoint) -> bool,
) -> Option<usize> {
    let n = eps.len();
    match n {
        0 => return None,
        1 => return ok(&eps[0]).then_some(0),
        _ => {}
    }
    for _ in 0..3 {
        let a = fastrand::usize(..n);
        let mut b = fastrand::usize(..n - 1);
        if b >= a {
            b += 1;
        }
        match (ok(&eps[a]), ok(&eps[b])) {
            (true, true) => {
                return Some(if eps[b].cheaper_than(&eps[a], decay_ns) {
                    b
                } else {
                    a
                });
            }
            (true, false) => return Some(a),
            (false, true) => return Some(b),
            (false, false) => {}
        }
    }
    eps.iter()
        .enumerate()
        .filter(|(_, e)| ok(e))
        .map(|(i, e)| (i, e.cost_rank(decay_ns)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(i, _)| i)
}

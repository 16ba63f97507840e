//! Consistent hashing: a ring of virtual nodes with bounded load.
//!
//! A ring rather than jump or Maglev hashing: endpoints leave in any order (ejection, health,
//! DNS), and on a ring only the keys of the endpoint that left move (≤ 1/N), while jump hash
//! can only drop the last bucket and Maglev's table rebuild moves a few more keys than that.
//! A ring also gives bounded load for free: a key whose endpoint is over the bound walks on to
//! the next endpoint along the ring (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
//! Bounded Loads"), so a hot key spills over to the same neighbours every time.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::endpoint::Endpoint;

/// Virtual nodes per unit of weight.
const POINTS_PER_WEIGHT: u64 = 100;
/// Most virtual nodes in one ring (memory and build time stay bounded with 10k endpoints of
/// weight 1000).
const MAX_POINTS: u64 = 1 << 20;

/// A stable 64-bit hash (FNV-1a, then a splitmix64 finalizer to spread nearby inputs): the
/// same key maps to the same place in every process and language binding.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Points sorted by hash, each naming an endpoint by index.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// A ring over `eps`; an endpoint's points depend only on its URL and weight, so the same
    /// endpoint sits at the same places in every ring it is part of.
    pub(crate) fn new(eps: &[Arc<Endpoint>]) -> Self {
        let total: u64 = eps.iter().map(|e| u64::from(e.weight)).sum();
        let per_weight = if total * POINTS_PER_WEIGHT > MAX_POINTS {
            (MAX_POINTS / total.max(1)).max(1)
        } else {
            POINTS_PER_WEIGHT
        };
        let mut points = Vec::new();
        for (i, e) in eps.iter().enumerate() {
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            for v in 0..u64::from(e.weight) * per_weight {
                points.push((hash(format!("{}#{v}", e.url).as_bytes()), idx));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The first candidate at or after `key` along the ring whose load stays within
    /// `factor` × its weighted share of the requests in flight (counting this one).
    pub(crate) fn pick(
        &self,
        eps: &[Arc<Endpoint>],
        key: u64,
        factor: f64,
        ok: impl Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let (mut total, mut weights) = (1u64, 0u64);
        for e in eps.iter().filter(|e| ok(e)) {
            total += e.outstanding.load(Relaxed);
            weights += u64::from(e.weight);
        }
        if weights == 0 {
            return None;
        }
        let bound = |e: &Endpoint| {
            (factor * total as f64 * f64::from(e.weight) / weights as f64).ceil() as u64
        };
        let n = self.points.len();
        let start = self.points.partition_point(|p| p.0 < key);
        for k in 0..n {
            let i = self.points[(start + k) % n].1 as usize;
            let e = &eps[i];
            if ok(e) && e.outstanding.load(Relaxed) < bound(e) {
                return Some(i);
            }
        }
        // Only reached when loads changed under the walk: the least loaded candidate.
        eps.iter()
            .enumerate()
            .filter(|(_, e)| ok(e))
            .min_by_key(|(_, e)| e.outstanding.load(Relaxed))
            .map(|(i, _)| i)
    }
}

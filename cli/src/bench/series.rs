//! Completions over time: buckets of 100 ms (doubled whenever there are more than
//! [`MAX_BUCKETS`], so a long run stays small), each with a coarse latency histogram
//! (three bins per octave, within 13 %) for p50/p99 over time.

use std::time::Duration;

/// Buckets kept before pairs are merged.
const MAX_BUCKETS: usize = 2400;
const FIRST_WIDTH: Duration = Duration::from_millis(100);
/// Bins per doubling of latency.
const PER_OCTAVE: f64 = 3.0;
/// 1 µs to 2^28 µs (about 4.5 minutes).
const BINS: usize = 84;

/// Counts and a coarse latency histogram of one time bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub ok: u64,
    pub errors: u64,
    bins: [u32; BINS],
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            ok: 0,
            errors: 0,
            bins: [0; BINS],
        }
    }
}

fn bin_of(us: u64) -> usize {
    ((us.max(1) as f64).log2() * PER_OCTAVE) as usize
}

/// The geometric middle of a bin, in microseconds.
fn bin_value(bin: usize) -> f64 {
    2f64.powf((bin as f64 + 0.5) / PER_OCTAVE)
}

impl Bucket {
    pub fn add(&mut self, o: &Bucket) {
        self.ok += o.ok;
        self.errors += o.errors;
        for (a, b) in self.bins.iter_mut().zip(o.bins.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The latency at quantile `q` (0..=1), microseconds; `None` without responses.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total: u64 = self.bins.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let want = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += u64::from(n);
            if seen >= want {
                return Some(bin_value(i));
            }
        }
        Some(bin_value(BINS - 1))
    }
}

/// Buckets of equal width from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub width: Duration,
    pub buckets: Vec<Bucket>,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            width: FIRST_WIDTH,
            buckets: Vec::new(),
        }
    }
}

impl Series {
    /// A completion at `at` after the start: a response with its latency, or an error.
    pub fn record(&mut self, at: Duration, latency_us: Option<u64>) {
        let mut i = (at.as_nanos() / self.width.as_nanos()) as usize;
        while i >= MAX_BUCKETS {
            self.coarsen();
            i = (at.as_nanos() / self.width.as_nanos()) as usize;
        }
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        let b = &mut self.buckets[i];
        match latency_us {
            Some(us) => {
                b.ok += 1;
                let bin = bin_of(us).min(BINS - 1);
                b.bins[bin] = b.bins[bin].saturating_add(1);
            }
            None => b.errors += 1,
        }
    }

    /// Doubles the width, merging neighbours.
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        for pair in old.chunks(2) {
            let mut b = pair[0].clone();
            if let Some(second) = pair.get(1) {
                b.add(second);
            }
            self.buckets.push(b);
        }
        self.width *= 2;
    }

    /// Folds `o` in; the coarser width wins (widths are 100 ms times a power of two).
    pub fn merge(&mut self, o: &Series) {
        let mut o = o.clone();
        while o.width < self.width {
            o.coarsen();
        }
        while self.width < o.width {
            self.coarsen();
        }
        if self.buckets.len() < o.buckets.len() {
            self.buckets.resize_with(o.buckets.len(), Bucket::default);
        }
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            a.add(b);
        }
    }

    /// The buckets merged `factor` at a time (for fewer, steadier points).
    pub fn regroup(&self, factor: usize) -> Vec<Bucket> {
        self.buckets
            .chunks(factor.max(1))
            .map(|c| {
                let mut b = Bucket::default();
                for x in c {
                    b.add(x);
                }
                b
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_and_estimate_quantiles() {
        let mut s = Series::default();
        for i in 0..100u64 {
            s.record(Duration::from_millis(50), Some(1000 + i));
        }
        s.record(Duration::from_millis(150), None);
        assert_eq!(s.buckets.len(), 2);
        assert_eq!(s.buckets[0].ok, 100);
        assert_eq!(s.buckets[1].errors, 1);
        let p50 = s.buckets[0].quantile_us(0.5).unwrap();
        assert!((900.0..1200.0).contains(&p50), "{p50}");
    }

    #[test]
    fn long_runs_coarsen_and_merge_across_widths() {
        let mut a = Series::default();
        a.record(Duration::from_mins(5), Some(10));
        assert!(a.width > FIRST_WIDTH);
        assert!(a.buckets.len() <= MAX_BUCKETS);
        let mut b = Series::default();
        b.record(Duration::from_millis(10), Some(10));
        b.merge(&a);
        assert_eq!(b.width, a.width);
        assert_eq!(b.buckets.iter().map(|x| x.ok).sum::<u64>(), 2);
    }
}

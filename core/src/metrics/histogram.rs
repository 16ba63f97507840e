//! The Prometheus latency histogram: fixed buckets (`metrics.latency_buckets_ms`) per origin and
//! status class, cumulative only when rendered.
//!
//! Nothing is allocated until an origin's first response, and at most `pool.max_origins` origins
//! are kept (later ones count under `origin="other"`); an origin the pool forgets goes too.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// The label of origins beyond the cap.
const OTHER: &str = "other";
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Latency histograms per origin and status class, as of a [`Stats`](super::Stats) snapshot.
/// Rendered by [`Stats::prometheus`](super::Stats::prometheus); not part of the JSON snapshot
/// (whose `latency` holds the percentiles).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyHistogram {
    /// Upper bounds of the buckets, seconds, ascending (`+Inf` is implied).
    pub bounds_seconds: Vec<f64>,
    /// By origin (`http://host:port`), then status class (`"2xx"`); only series with a count.
    pub series: BTreeMap<String, BTreeMap<String, HistogramSeries>>,
}

/// One histogram series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSeries {
    /// Cumulative counts: responses at most each bound, then all of them (`+Inf`).
    pub buckets: Vec<u64>,
    /// Sum of the durations, seconds.
    pub sum_seconds: f64,
}

impl HistogramSeries {
    /// Responses counted (the `+Inf` bucket).
    pub fn count(&self) -> u64 {
        self.buckets.last().copied().unwrap_or(0)
    }
}

/// One origin's counters: for each class, a count per bucket (`+Inf` last), then the sum in
/// nanoseconds.
#[derive(Debug)]
struct Counters {
    label: Arc<str>,
    cells: Box<[AtomicU64]>,
}

/// The live histograms of a client.
#[derive(Debug)]
pub(crate) struct Latency {
    bounds_ns: Box<[u64]>,
    cap: usize,
    maps: RwLock<Maps>,
}

/// Each origin's counters by label, and by URL authority for `http` (0) and `https` (1), so a
/// request finds its own without building the label.
#[derive(Debug, Default)]
struct Maps {
    by_label: HashMap<Arc<str>, Arc<Counters>>,
    /// Looked up on every request: foldhash, several times faster than SipHash on a short
    /// authority (the map holds at most `pool.max_origins` keys, and foldhash is seeded per
    /// process all the same).
    by_authority: [HashMap<Box<str>, Arc<Counters>, foldhash::fast::RandomState>; 2],
}

/// Where one request's response is counted, found before it is sent.
#[derive(Debug)]
pub(crate) struct Series(Arc<Counters>);

impl Latency {
    pub(crate) fn new(upper_ms: &[f64], cap: usize) -> Self {
        let bounds_ns = upper_ms
            .iter()
            .map(|ms| (ms * 1e6).round() as u64)
            .collect();
        Self {
            bounds_ns,
            cap,
            maps: RwLock::new(Maps::default()),
        }
    }

    fn width(&self) -> usize {
        self.bounds_ns.len() + 2
    }

    /// The series of `uri`'s origin; none for a URL without one (refused before any I/O).
    pub(crate) fn series(&self, uri: &http::Uri) -> Option<Series> {
        let slot = match uri.scheme_str()? {
            "http" => 0,
            "https" => 1,
            _ => return None,
        };
        let auth = uri.authority()?.as_str();
        if let Some(c) = self
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_authority[slot]
            .get(auth)
        {
            return Some(Series(c.clone()));
        }
        let origin = crate::origin::Origin::from_uri(uri).ok()?;
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        // Beyond the cap, one shared series (several authorities may name one origin).
        let kept = maps.by_label.len() - usize::from(maps.by_label.contains_key(OTHER));
        let label: Arc<str> = if kept >= self.cap && !maps.by_label.contains_key(&origin.key) {
            Arc::from(OTHER)
        } else {
            origin.key
        };
        let width = self.width();
        let c = maps
            .by_label
            .entry(label)
            .or_insert_with_key(|k| {
                Arc::new(Counters {
                    label: k.clone(),
                    cells: (0..width * CLASSES.len())
                        .map(|_| AtomicU64::new(0))
                        .collect(),
                })
            })
            .clone();
        if maps.by_authority[slot].len() < self.cap {
            maps.by_authority[slot].insert(auth.into(), c.clone());
        }
        Some(Series(c))
    }

    /// Counts a response of `status` that took `elapsed`.
    pub(crate) fn record(&self, series: &Series, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self.bounds_ns.partition_point(|b| *b < ns);
        let row = &series.0.cells[class * self.width()..(class + 1) * self.width()];
        row[bucket].fetch_add(1, Relaxed);
        row[self.bounds_ns.len() + 1].fetch_add(ns, Relaxed);
    }

    /// Drops the histograms of origins the pool forgot.
    pub(crate) fn forget(&self, keys: &[Arc<str>]) {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        let mut gone = false;
        for k in keys {
            gone |= maps.by_label.remove(k).is_some();
        }
        if gone {
            let Maps {
                by_label,
                by_authority,
            } = &mut *maps;
            for m in by_authority {
                m.retain(|_, c| by_label.contains_key(&c.label));
            }
        }
    }

    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        let n = self.bounds_ns.len();
        let mut series = BTreeMap::new();
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        for c in maps.by_label.values() {
            let mut classes = BTreeMap::new();
            for (i, class) in CLASSES.iter().enumerate() {
                let row = &c.cells[i * (n + 2)..(i + 1) * (n + 2)];
                let mut total = 0;
                let buckets: Vec<u64> = row[..=n]
                    .iter()
                    .map(|b| {
                        total += b.load(Relaxed);
                        total
                    })
                    .collect();
                if total > 0 {
                    let sum_seconds = row[n + 1].load(Relaxed) as f64 / 1e9;
                    classes.insert(
                        (*class).to_owned(),
                        HistogramSeries {
                            buckets,
                            sum_seconds,
                        },
                    );
                }
            }
            if !classes.is_empty() {
                series.insert(c.label.to_string(), classes);
            }
        }
        LatencyHistogram {
            bounds_seconds: self.bounds_ns.iter().map(|ns| *ns as f64 / 1e9).collect(),
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(l: &Latency, url: &str, status: u16, elapsed: Duration) {
        let s = l.series(&url.parse().unwrap()).unwrap();
        l.record(&s, status, elapsed);
    }

    #[test]
    fn buckets_are_cumulative_by_origin_and_class() {
        let l = Latency::new(&[1.0, 10.0, 100.0], 8);
        let ms = Duration::from_millis;
        record(&l, "http://a/x", 200, ms(0));
        record(&l, "http://a:80/y", 200, ms(1)); // on the bound: le="0.001"
        record(&l, "http://A/", 200, ms(50));
        record(&l, "http://a/", 503, ms(500));
        record(&l, "http://b/", 404, ms(5));
        let s = l.snapshot();
        assert_eq!(s.bounds_seconds, [0.001, 0.01, 0.1]);
        let a = &s.series["http://a:80"];
        assert_eq!(a["2xx"].buckets, [2, 2, 3, 3]);
        assert!((a["2xx"].sum_seconds - 0.051).abs() < 1e-9);
        assert_eq!(a["5xx"].buckets, [0, 0, 0, 1]);
        assert!(!a.contains_key("4xx"));
        assert_eq!(s.series["http://b:80"]["4xx"].count(), 1);
        assert!(l.series(&"/relative".parse().unwrap()).is_none());
    }

    #[test]
    fn origins_beyond_the_cap_count_as_other_and_forgotten_ones_go() {
        let l = Latency::new(&[1.0], 2);
        for o in [
            "http://a:1",
            "http://b:1",
            "http://c:1",
            "http://d:1",
            "http://a:1",
        ] {
            record(&l, o, 200, Duration::ZERO);
        }
        let s = l.snapshot();
        let labels: Vec<&str> = s.series.keys().map(String::as_str).collect();
        assert_eq!(labels, ["http://a:1", "http://b:1", "other"]);
        assert_eq!(s.series["http://a:1"]["2xx"].count(), 2);
        assert_eq!(s.series["other"]["2xx"].count(), 2);
        l.forget(&[Arc::from("http://a:1")]);
        assert!(!l.snapshot().series.contains_key("http://a:1"));
        record(&l, "http://a:1", 200, Duration::ZERO);
        assert_eq!(l.snapshot().series["http://a:1"]["2xx"].count(), 1);
    }
}

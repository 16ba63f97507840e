//! `http.client.request.duration`: a histogram in seconds per attribute set, with the semantic
//! conventions' bucket boundaries, kept cumulative from the client's start.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Attrs, attr_json, unix_nanos};

/// The boundaries the semantic conventions advise for `http.client.request.duration`.
pub(crate) const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Most attribute sets kept; a request with a new set beyond this is not recorded (hosts and
/// statuses are unbounded, memory is not).
const MAX_SERIES: usize = 2_000;

#[derive(Clone, Debug, Default)]
struct Series {
    counts: [u64; BOUNDS.len() + 1],
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

#[derive(Debug)]
pub(crate) struct Durations {
    start_ns: u64,
    series: Mutex<HashMap<Attrs, Series>>,
}

impl Durations {
    pub(crate) fn new() -> Self {
        Self {
            start_ns: unix_nanos(std::time::SystemTime::now()),
            series: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn record(&self, attrs: Attrs, seconds: f64) {
        let mut g = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let len = g.len();
        let s = match g.get_mut(&attrs) {
            Some(s) => s,
            None if len < MAX_SERIES => g.entry(attrs).or_default(),
            None => return,
        };
        let i = BOUNDS.partition_point(|b| *b < seconds);
        s.counts[i] += 1;
        if s.count == 0 || seconds < s.min {
            s.min = seconds;
        }
        if s.count == 0 || seconds > s.max {
            s.max = seconds;
        }
        s.count += 1;
        s.sum += seconds;
    }

    /// Requests recorded so far, over every attribute set.
    pub(crate) fn total(&self) -> u64 {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|s| s.count)
            .sum()
    }

    /// The OTLP JSON `Metric` (cumulative temporality), or `None` before the first request.
    pub(crate) fn otlp(&self) -> Option<Value> {
        let now = unix_nanos(std::time::SystemTime::now()).to_string();
        let start = self.start_ns.to_string();
        let g = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.is_empty() {
            return None;
        }
        let points: Vec<Value> = g
            .iter()
            .map(|(a, s)| {
                json!({
                    "attributes": attr_json(&a.list()),
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                    "count": s.count.to_string(),
                    "sum": s.sum,
                    "min": s.min,
                    "max": s.max,
                    "bucketCounts": s.counts.iter().map(u64::to_string).collect::<Vec<_>>(),
                    "explicitBounds": BOUNDS,
                })
            })
            .collect();
        Some(json!({
            "name": "http.client.request.duration",
            "description": "Duration of HTTP client requests.",
            "unit": "s",
            // AGGREGATION_TEMPORALITY_CUMULATIVE
            "histogram": { "aggregationTemporality": 2, "dataPoints": points },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_boundaries_inclusively() {
        let d = Durations::new();
        let a = Attrs::for_test();
        for s in [0.001, 0.005, 0.0051, 11.0] {
            d.record(a.clone(), s);
        }
        let m = d.otlp().unwrap();
        let p = &m["histogram"]["dataPoints"][0];
        assert_eq!(p["count"], "4");
        let counts = p["bucketCounts"].as_array().unwrap();
        assert_eq!(counts.len(), 15);
        assert_eq!(counts[0], "2");
        assert_eq!(counts[1], "1");
        assert_eq!(counts[14], "1");
        assert_eq!(p["min"], 0.001);
        assert_eq!(p["max"], 11.0);
        assert_eq!(d.total(), 4);
    }
}

//! Config section of the metrics: the latency histogram's buckets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most buckets a latency histogram may have (each origin and status class keeps one counter
/// per bucket).
pub const MAX_LATENCY_BUCKETS: usize = 64;

/// Metrics: the Prometheus latency histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Upper bounds (`le`) of the buckets of `wirecore_request_duration_seconds`, milliseconds,
    /// ascending; `+Inf` is implied. 1 to 64 values, each above 0 and at most one year.
    /// Default: [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000].
    pub latency_buckets_ms: Vec<f64>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            latency_buckets_ms: vec![
                1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0,
                10_000.0,
            ],
        }
    }
}

/// The section's own rules: (field, problem).
pub(super) fn validate(c: &MetricsConfig) -> Result<(), (&'static str, &'static str)> {
    const FIELD: &str = "metrics.latency_buckets_ms";
    let b = &c.latency_buckets_ms;
    if b.is_empty() || b.len() > MAX_LATENCY_BUCKETS {
        return Err((FIELD, "must have 1 to 64 values"));
    }
    let max = super::MAX_DURATION_MS as f64;
    if b.iter().any(|v| !v.is_finite() || *v <= 0.0 || *v > max) {
        return Err((FIELD, "each value must be above 0 and at most one year"));
    }
    if b.windows(2).any(|w| w[0] >= w[1]) {
        return Err((FIELD, "must be strictly ascending"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn with_buckets(b: &serde_json::Value) -> String {
        let v = serde_json::json!({ "metrics": { "latency_buckets_ms": b } });
        Config::from_value(v).map_or_else(|e| e.to_string(), |_| "ok".to_owned())
    }

    #[test]
    fn latency_buckets_must_be_ascending_positive_and_few() {
        assert_eq!(
            with_buckets(&serde_json::json!([0.5, 1, 2.5, 60_000])),
            "ok"
        );
        let many: Vec<u64> = (1..=65).collect();
        for bad in [
            serde_json::json!([]),
            serde_json::json!([1, 1]),
            serde_json::json!([5, 2]),
            serde_json::json!([0, 1]),
            serde_json::json!([-1]),
            serde_json::json!([1e300]),
            serde_json::json!(many),
        ] {
            let e = with_buckets(&bad);
            assert!(e.contains("metrics.latency_buckets_ms"), "{bad}: {e}");
        }
    }
}

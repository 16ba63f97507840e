//! Config section of OpenTelemetry tracing: client spans, `traceparent` propagation and the
//! `http.client.request.duration` histogram, exported as OTLP/HTTP JSON.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// OpenTelemetry: a client span per request (HTTP semantic conventions), W3C `traceparent` and
/// `tracestate` sent with it, and the `http.client.request.duration` histogram. Off by default;
/// off, a request costs one branch, and a caller's `traceparent` option is sent unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// Record spans and the duration metric. Default: false.
    pub enabled: bool,
    /// Base URL of an OTLP/HTTP collector (`http://127.0.0.1:4318`): spans are POSTed to
    /// `/v1/traces` and the metric to `/v1/metrics`, as JSON, through an engine client of their
    /// own. Default: "" (nothing is exported; `traceparent` still carries this client's span).
    pub endpoint: String,
    /// Headers sent with every export (a collector's API key). Default: none.
    pub headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute. Default: "unknown_service".
    pub service_name: String,
    /// Export finished spans and the metric this often; a full batch goes at once. At least 1,
    /// at most one year. Default: 5_000.
    pub export_interval_ms: u64,
    /// Finished spans waiting for export; more are dropped and counted. At least 1, at most
    /// 1_000_000. Default: 2_048.
    pub max_queue: u64,
    /// Export the `http.client.request.duration` histogram too. Default: true.
    pub metrics: bool,
    /// Finished spans waiting for the span callback (`Client::on_span` and each binding's
    /// `on_span`), which gets them on a thread of its own; more are dropped and counted in
    /// `otel.dropped`, so a slow callback never holds up a request. At least 1, at most
    /// 1_000_000. Default: 2_048.
    pub callback_queue: u64,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: String::new(),
            headers: BTreeMap::new(),
            service_name: "unknown_service".to_owned(),
            export_interval_ms: 5_000,
            max_queue: 2_048,
            metrics: true,
            callback_queue: 2_048,
        }
    }
}

/// The section's own rules: (field, problem).
pub(super) fn validate(c: &OtelConfig) -> Result<(), (String, String)> {
    if c.export_interval_ms == 0 {
        return Err((
            "otel.export_interval_ms".into(),
            "must be at least 1".into(),
        ));
    }
    if c.max_queue == 0 {
        return Err(("otel.max_queue".into(), "must be at least 1".into()));
    }
    if c.callback_queue == 0 {
        return Err(("otel.callback_queue".into(), "must be at least 1".into()));
    }
    if !c.endpoint.is_empty() {
        let ok = crate::request::parse_url(&c.endpoint).is_ok()
            && !c.endpoint.contains(['?', '#'])
            && (c.endpoint.starts_with("http://") || c.endpoint.starts_with("https://"));
        if !ok {
            return Err((
                "otel.endpoint".into(),
                "must be an http(s) URL without query or fragment".into(),
            ));
        }
    }
    for (name, value) in &c.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err((
                format!("otel.headers.{name}"),
                "is not a valid header".into(),
            ));
        }
    }
    if c.service_name.is_empty() {
        return Err(("otel.service_name".into(), "must not be empty".into()));
    }
    Ok(())
}

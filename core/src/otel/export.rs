//! The export task: finished spans wait in a bounded queue and go to `{endpoint}/v1/traces`
//! in batches, the duration metric to `{endpoint}/v1/metrics`, every `export_interval_ms`, as
//! OTLP/HTTP JSON through an engine client of its own (tracing off, so exports are not traced).
//!
//! The task ends when the client is dropped (its queue closes), after a last export.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::metric::Durations;
use super::{Counts, SpanData};
use crate::config::{Config, OtelConfig};
use crate::error::Error;
use crate::{Client, Method};

/// Spans per POST, at most.
const MAX_BATCH: usize = 512;

enum Msg {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
    /// Export what is queued, close the exporter's client, end the task.
    Close(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) struct Exporter {
    tx: mpsc::Sender<Msg>,
    counts: Arc<Counts>,
}

struct Task {
    client: Client,
    traces: String,
    metrics: String,
    resource: Value,
    durations: Option<Arc<Durations>>,
    /// Requests in the metric at its last export (nothing new: nothing sent).
    exported_total: u64,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Span(_) => "Span",
            Msg::Flush(_) => "Flush",
            Msg::Close(_) => "Close",
        })
    }
}

impl Exporter {
    pub(super) fn spawn(
        c: &OtelConfig,
        durations: Option<Arc<Durations>>,
        counts: Arc<Counts>,
        rt: &tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let mut cfg = Config::default();
        cfg.default_headers.clone_from(&c.headers);
        cfg.timeouts.total_ms = 10_000;
        let client = Client::from_config(cfg)?;
        let base = c.endpoint.trim_end_matches('/');
        let queue = usize::try_from(c.max_queue).unwrap_or(usize::MAX);
        let (tx, rx) = mpsc::channel(queue);
        let task = Task {
            client,
            traces: format!("{base}/v1/traces"),
            metrics: format!("{base}/v1/metrics"),
            resource: json!({ "attributes": super::attr_json(&[
                ("service.name", super::AttrValue::Str(c.service_name.clone())),
                ("telemetry.sdk.name", super::AttrValue::Str("wirecore".into())),
                ("telemetry.sdk.language", super::AttrValue::Str("rust".into())),
                ("telemetry.sdk.version", super::AttrValue::Str(env!("CARGO_PKG_VERSION").into())),
            ]) }),
            durations,
            exported_total: 0,
            counts: counts.clone(),
        };
        rt.spawn(task.run(rx, Duration::from_millis(c.export_interval_ms)));
        Ok(Self { tx, counts })
    }

    pub(super) fn offer(&self, span: SpanData) {
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            self.counts.dropped.fetch_add(1, Relaxed);
        }
    }

    pub(super) async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Exports what is queued, closes the exporter's own client and ends its task (spans
    /// offered later are counted dropped).
    pub(super) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

fn scope() -> Value {
    json!({ "name": "wirecore", "version": env!("CARGO_PKG_VERSION") })
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, every: Duration) {
        let mut batch: Vec<SpanData> = Vec::new();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Msg::Span(s)) => {
                        batch.push(*s);
                        if batch.len() >= MAX_BATCH {
                            self.send_spans(&mut batch).await;
                        }
                    }
                    Some(Msg::Flush(ack)) => {
                        // Spans queued before the flush are part of it.
                        while let Ok(Msg::Span(s)) = rx.try_recv() {
                            batch.push(*s);
                        }
                        self.export(&mut batch).await;
                        let _ = ack.send(());
                    }
                    Some(Msg::Close(ack)) => {
                        while let Ok(Msg::Span(s)) = rx.try_recv() {
                            batch.push(*s);
                        }
                        self.export(&mut batch).await;
                        self.client.close(Duration::from_secs(1)).await;
                        let _ = ack.send(());
                        return;
                    }
                    None => {
                        self.export(&mut batch).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(&mut batch).await,
            }
        }
    }

    async fn export(&mut self, batch: &mut Vec<SpanData>) {
        self.send_spans(batch).await;
        self.send_metric().await;
    }

    async fn send_spans(&self, batch: &mut Vec<SpanData>) {
        for chunk in batch.chunks(MAX_BATCH) {
            let spans: Vec<Value> = chunk.iter().map(SpanData::otlp).collect();
            let n = spans.len() as u64;
            let doc = json!({ "resourceSpans": [{
                "resource": self.resource,
                "scopeSpans": [{ "scope": scope(), "spans": spans }],
            }]});
            let c = &self.counts;
            if self.post(&self.traces, &doc).await {
                c.exported.fetch_add(n, Relaxed);
            } else {
                c.dropped.fetch_add(n, Relaxed);
            }
        }
        batch.clear();
    }

    async fn send_metric(&mut self) {
        let Some(d) = &self.durations else { return };
        let total = d.total();
        if total == self.exported_total {
            return;
        }
        let Some(metric) = d.otlp() else { return };
        let doc = json!({ "resourceMetrics": [{
            "resource": self.resource,
            "scopeMetrics": [{ "scope": scope(), "metrics": [metric] }],
        }]});
        if self.post(&self.metrics, &doc).await {
            self.exported_total = total;
        }
    }

    /// POSTs one export; true when the collector took it (a 2xx).
    async fn post(&self, url: &str, doc: &Value) -> bool {
        let body = serde_json::to_vec(doc).unwrap_or_default();
        let res = self
            .client
            .request(Method::POST, url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) => {
                let status = r.status();
                let _ = r.bytes().await;
                if !status.is_success() {
                    tracing::warn!(
                        event = "otel_export_failed",
                        url,
                        status = status.as_u16(),
                        "the OTLP collector refused an export"
                    );
                }
                status.is_success()
            }
            Err(e) => {
                tracing::warn!(event = "otel_export_failed", url, error = %e, code = e.kind().code(), "an OTLP export failed");
                false
            }
        }
    }
}

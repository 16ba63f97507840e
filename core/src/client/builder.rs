//! [`ClientBuilder`]: sugar over [`Config`].

use std::time::Duration;

use super::{Client, millis};
use crate::config::Config;
use crate::dead_letter::{DeadLetter, DeadLetterSink};
use crate::error::Error;
use crate::otel::{SpanRecord, SpanSink};

/// Sugar over [`Config`]: setters never fail; [`build`](ClientBuilder::build) reports the first
/// bad value, naming the field.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    config: Config,
    dead_letter: DeadLetterSlot,
    span: SpanSlot,
    tracer: Option<std::sync::Arc<opentelemetry::global::BoxedTracer>>,
}

/// The builder's span callback.
#[derive(Clone, Default)]
struct SpanSlot(Option<SpanSink>);

impl std::fmt::Debug for SpanSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// The builder's dead-letter callback.
#[derive(Clone, Default)]
struct DeadLetterSlot(Option<DeadLetterSink>);

impl std::fmt::Debug for DeadLetterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

impl ClientBuilder {
    /// Replaces the whole config.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Total timeout per request, including redirects and the body. Default: 30 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.total_ms = millis(d);
        self
    }

    /// TCP connect timeout. Default: 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.connect_ms = millis(d);
        self
    }

    /// Longest wait for the next byte of a response. Default: off.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.read_idle_ms = millis(d);
        self
    }

    /// Longest wait for a pooled connection. Default: 10 s.
    pub fn pool_acquire_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.pool_acquire_ms = millis(d);
        self
    }

    /// Open connections per origin. Default: 50.
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.config.pool.max_connections_per_host = n;
        self
    }

    /// Open connections in all. Default: 100.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.pool.max_connections = n;
        self
    }

    /// Idle HTTP/1.1 connections kept per origin. Default: 10.
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.config.pool.max_idle_per_host = n;
        self
    }

    /// Closes connections idle this long. Default: 90 s.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.config.pool.idle_timeout_ms = millis(d);
        self
    }

    /// Speak h2c to cleartext origins without negotiation.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.config.http2.prior_knowledge = true;
        self
    }

    /// Trusts an extra CA certificate (PEM).
    pub fn add_root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.config.tls.extra_ca_pem.push(pem.into());
        self
    }

    /// Accepts any server certificate. Dangerous; for tests only.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.config.tls.danger_accept_invalid_certs = yes;
        self
    }

    /// The URL a request URL starting with `/` is joined to (appended to its path, as httpx's
    /// `base_url`). Default: none.
    pub fn base_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.config.base_url);
        self
    }

    /// Redirects followed; 0 disables. Default: 10.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.config.redirect.max = n;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field (`otel.enabled` when a span callback is set
    /// with tracing off).
    pub fn build(self) -> Result<Client, Error> {
        let c = Client::from_config(self.config)?;
        if let Some(sink) = self.span.0 {
            c.on_span(move |s| sink(s))?;
        }
        if let Some(t) = self.tracer {
            c.set_tracer(t)?;
        }
        if let Some(sink) = self.dead_letter.0 {
            c.on_dead_letter(move |l| sink(l));
        }
        Ok(c)
    }

    /// Calls `sink` with every request that fails after every retry (see
    /// [`Client::on_dead_letter`]). Default: none.
    pub fn on_dead_letter(mut self, sink: impl Fn(&DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letter = DeadLetterSlot(Some(std::sync::Arc::new(sink)));
        self
    }

    /// Calls `sink` with every finished request's span, on a thread of its own (see
    /// [`Client::on_span`]); needs `otel.enabled`. Default: none.
    pub fn on_span(mut self, sink: impl Fn(&SpanRecord) + Send + Sync + 'static) -> Self {
        self.span = SpanSlot(Some(std::sync::Arc::new(sink)));
        self
    }

    /// Starts each request's client span in the application's own OpenTelemetry
    /// `TracerProvider` too (see [`Client::set_tracer_provider`]); needs `otel.enabled`.
    /// Default: none.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: opentelemetry::trace::TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = Some(crate::otel::tracer_of(provider));
        self
    }
}

//! The resilience policies as a `tower::Layer`, for any service of `http::Request<B>` →
//! `http::Response<_>` with [`Error`] as its error (a [`Client`](crate::Client) with its own
//! policies turned off, or another stack mapped onto wirecore errors).
//!
//! One layer type carries every policy so they share per-origin state (a retry spends the
//! budget of the origin whose breaker it passes); [`ResilienceLayer::retry`],
//! [`ResilienceLayer::breaker`], [`ResilienceLayer::rate_limit`] and
//! [`ResilienceLayer::concurrency`] build a layer with one policy on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::ServiceExt as _;

use crate::config::{BreakerConfig, ConcurrencyConfig, Config, RateLimitConfig, RetryConfig};
use crate::error::Error;
use crate::metrics::ResilienceStats;
use crate::origin::Origin;
use crate::policy::{BreakerEvent, Policies, retry};

/// Retries, hedging, rate limits, circuit breakers and adaptive concurrency around an inner
/// HTTP service. Request bodies must be `Clone` to be replayed; request extensions are not
/// carried to retries.
#[derive(Clone, Debug)]
pub struct ResilienceLayer {
    policies: Arc<Policies>,
}

impl ResilienceLayer {
    /// Every policy as `config` sets it (`retry`, `breaker`, `rate_limit`, `concurrency`, and
    /// `timeouts.pool_acquire_ms` as the longest wait for a concurrency slot).
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn new(config: &Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            policies: Arc::new(Policies::new(config)?),
        })
    }

    fn only(f: impl FnOnce(&mut Config)) -> Result<Self, Error> {
        let mut c = Config::default();
        c.retry.enabled = false;
        f(&mut c);
        Self::new(&c)
    }

    /// Retries only.
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn retry(cfg: RetryConfig) -> Result<Self, Error> {
        Self::only(|c| c.retry = cfg)
    }

    /// A circuit breaker per origin only (`enabled` is set).
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn breaker(cfg: BreakerConfig) -> Result<Self, Error> {
        Self::only(|c| {
            c.breaker = cfg;
            c.breaker.enabled = true;
        })
    }

    /// A rate limit only (`enabled` is set).
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn rate_limit(cfg: RateLimitConfig) -> Result<Self, Error> {
        Self::only(|c| {
            c.rate_limit = cfg;
            c.rate_limit.enabled = true;
        })
    }

    /// Adaptive concurrency only (`enabled` is set).
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn concurrency(cfg: ConcurrencyConfig) -> Result<Self, Error> {
        Self::only(|c| {
            c.concurrency = cfg;
            c.concurrency.enabled = true;
        })
    }

    /// The counters of this layer's policies.
    pub fn stats(&self) -> ResilienceStats {
        self.policies.stats()
    }

    /// Breaker state changes.
    pub fn breaker_events(&self) -> tokio::sync::broadcast::Receiver<BreakerEvent> {
        self.policies.subscribe()
    }
}

impl<S> tower_layer::Layer<S> for ResilienceLayer {
    type Service = Resilience<S>;

    fn layer(&self, inner: S) -> Resilience<S> {
        Resilience {
            inner,
            policies: self.policies.clone(),
        }
    }
}

/// The service of [`ResilienceLayer`].
#[derive(Clone, Debug)]
pub struct Resilience<S> {
    inner: S,
    policies: Arc<Policies>,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for Resilience<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>, Error = Error>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    B: Clone + Send + Sync + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Each attempt waits for readiness of its own clone of the inner service.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let p = self.policies.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let origin = Origin::from_uri(&parts.uri)?;
            let op = p.origin(&origin.key);
            let idem = retry::idempotent(&parts.method, &parts.headers);
            let (pol, op, origin, parts, body, inner) = (&*p, &op, &origin, &parts, &body, &inner);
            let attempt = || {
                let mut req = http::Request::new(body.clone());
                *req.method_mut() = parts.method.clone();
                *req.uri_mut() = parts.uri.clone();
                *req.version_mut() = parts.version;
                *req.headers_mut() = parts.headers.clone();
                let svc = inner.clone();
                async move {
                    pol.attempt(op, &origin.key, None, None, || svc.oneshot(req))
                        .await
                }
            };
            pol.run(op, idem, true, None, tokio::time::Instant::now(), attempt)
                .await
        })
    }
}

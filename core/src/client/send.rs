//! One hop: retries and hedging around attempts, each through rate limit, breaker and
//! concurrency limit (`crate::policy`), then request compression, the pool, the send under the
//! read-idle timeout, and the response wrapped in its body (decompression, limits).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri};
use tokio::time::Instant;

use super::build_http::{Head, build_http};
use super::route::Route;
use super::{Client, millis};
use crate::body::{Body, BodyLimits, Meter, RequestBody};
use crate::compress;
use crate::config::ms;
use crate::error::{self, Error, ErrorKind};
use crate::origin::Origin;
use crate::policy::retry;
use crate::response::{Response, Timings};

impl Client {
    /// Retries (with budget, backoff, `Retry-After`) and hedging around one attempt through
    /// rate limit, breaker and concurrency limit (see [`crate::policy`]).
    pub(super) async fn send_resilient(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        if let Some(svc) = self.inner.balancer.service_of(uri) {
            // Boxed: a request to a plain URL carries no room for the balanced path's future.
            return Box::pin(self.send_balanced(svc, method, uri, headers, body, opts)).await;
        }
        let p = &self.inner.policies;
        let rc = &p.cfg.retry;
        let (route, _using) = self.route_in_use(uri)?;
        let idem = opts
            .idempotent
            .unwrap_or_else(|| retry::idempotent(method, headers));
        let bodies = Bodies::new(body, rc);
        let replayable = bodies.replayable;
        let route = &*route;
        let (op, origin) = (&*route.policy, &route.origin);
        let attempt = || {
            crate::dead_letter::count_attempt();
            let body = bodies.next();
            async move {
                let Some(body) = body else {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        "request body already consumed",
                    ));
                };
                p.attempt(op, &origin.key, opts.rate_limit_key, opts.deadline, || {
                    self.send_once(route, method, uri, headers, body, opts)
                })
                .await
            }
        };
        p.run(op, idem, replayable, opts.deadline, opts.start, attempt)
            .await
    }

    pub(super) async fn send_once(
        &self,
        route: &Route,
        method: &Method,
        uri: &Uri,
        user_headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        let inner = &self.inner;
        let cfg = &inner.cfg;
        let origin = &route.origin;
        let (deadline, phases) = (opts.deadline, opts.phases);
        let read_idle = phases.read_idle.or_else(|| ms(cfg.timeouts.read_idle_ms));
        let (body, encoding, sent_len) = self
            .prepare(origin, user_headers, opts.defaults, body)
            .await?;
        let replay = body.try_clone();
        let mut body = Some(body);
        let urgency = || crate::request::urgency(user_headers);
        // One more try when a pooled connection turns out dead before the request went out.
        for attempt in 0..2 {
            let mut lease = inner
                .pool
                .acquire_at(&route.host, deadline, &urgency, phases)
                .await?;
            let h2 = lease.is_h2();
            let Some(b) = body.take() else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "request body already consumed",
                ));
            };
            let head = Head {
                method,
                uri,
                user: user_headers,
                defaults: opts.defaults,
                accept_encoding: inner.accept_encoding.as_ref(),
                content_encoding: encoding.as_ref(),
                host: route.host_header.as_ref(),
            };
            let mut req = build_http(&head, lease.upload(b), h2)?;
            if !h2 && let Some(proxy) = inner.pool.http_proxy(origin) {
                // RFC 9112 §3.2.2: absolute form to a proxy; its credentials go to it alone.
                *req.uri_mut() = uri.clone();
                if let Some(auth) = &proxy.auth {
                    req.headers_mut()
                        .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
                }
            }
            let t0 = Instant::now();
            let fut = lease.send(req)?;
            let head = match read_idle {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(error::timeout(
                            ErrorKind::TimeoutRead,
                            &format!("waiting for the response from {}", origin.key),
                            millis(t),
                        ));
                    }
                },
                None => fut.await,
            };
            let res = match head {
                Ok(r) => r,
                Err(e) => {
                    let unsent = e.is_canceled() || error::is_refused_stream(&e);
                    let stale = lease.reused
                        && (unsent
                            || retry::idempotent_method(method)
                                && (e.is_incomplete_message() || error::is_reset(&e)));
                    if attempt == 0
                        && stale
                        && let Some(b) = replay.as_ref().and_then(RequestBody::try_clone)
                    {
                        drop(lease);
                        body = Some(b);
                        continue;
                    }
                    let err = error::from_hyper(e, &origin.key);
                    return Err(if unsent { err.unsent() } else { err });
                }
            };
            // The engine never asks to switch protocols: a 101 leaves nothing to read.
            if res.status() == http::StatusCode::SWITCHING_PROTOCOLS
                && !user_headers.contains_key(header::UPGRADE)
            {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{} switched protocols without being asked", origin.key),
                ));
            }
            let ttfb = t0.elapsed();
            if let Some(n) = sent_len {
                inner.metrics.bytes_sent.fetch_add(n, Relaxed);
            }
            return Ok(self.finish(res, lease, uri, ttfb, deadline, read_idle));
        }
        Err(Error::new(
            ErrorKind::Io,
            format!("connection to {} failed", origin.key),
        ))
    }

    /// Encodes the body when configured; returns it with the `Content-Encoding` it got and
    /// its length. Headers are merged once, straight into the outgoing request (`build_http`).
    pub(super) async fn prepare(
        &self,
        origin: &Origin,
        user: &HeaderMap,
        defaults: &HeaderMap,
        body: RequestBody,
    ) -> Result<(RequestBody, Option<HeaderValue>, Option<u64>), Error> {
        let inner = &self.inner;
        let c = &inner.cfg.compression;
        let mut body = body;
        let mut encoding = None;
        if let Some(enc) = c.request_encoding
            && !user.contains_key(header::CONTENT_ENCODING)
            && !defaults.contains_key(header::CONTENT_ENCODING)
            && c.request_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&origin.host))
            && let Some(raw) = body.as_bytes()
            && raw.len() >= c.request_min_bytes
            && !raw.is_empty()
        {
            let encoded = compress::encode(raw, enc).await?;
            encoding = Some(HeaderValue::from_static(enc.token()));
            body = RequestBody::from(encoded);
        }
        let len = body.len();
        Ok((body, encoding, len))
    }

    fn finish(
        &self,
        res: http::Response<hyper::body::Incoming>,
        lease: crate::pool::Lease,
        uri: &Uri,
        ttfb: Duration,
        deadline: Option<Instant>,
        read_idle: Option<Duration>,
    ) -> Response {
        let inner = &self.inner;
        let cfg = &inner.cfg;
        let (mut parts, incoming) = res.into_parts();
        let decoder = compress::decoder(&parts.headers, &cfg.compression.accept);
        if matches!(decoder, Some(compress::Decoder::Layers(_))) {
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let reused = lease.reused;
        let ct = lease.timings();
        let tls = lease.tls();
        let limits = BodyLimits {
            max_bytes: cfg.limits.max_response_body_bytes,
            max_ratio: cfg.limits.max_decompression_ratio,
            deadline: deadline.map(|d| (d, cfg.timeouts.total_ms)),
            read_idle,
        };
        let body = Body::incoming(
            incoming,
            lease,
            decoder,
            Meter {
                metrics: inner.metrics.clone(),
            },
            &limits,
        );
        Response {
            status: parts.status,
            version: parts.version,
            headers: crate::response::Headers::Own(parts.headers),
            url: uri.clone(),
            body,
            timings: Timings {
                dns: ct.dns,
                connect: ct.connect,
                tls: ct.tls,
                ttfb,
                total: Duration::ZERO,
            },
            reused,
            tls,
            cache: None,
        }
    }
}

/// The body of a request's first try, and the copy later tries clone from (small in-memory
/// bodies only; behind a mutex, as a request body is `Send` but not `Sync`).
pub(super) struct Bodies {
    slots: std::sync::Mutex<(Option<RequestBody>, Option<RequestBody>)>,
    pub(super) replayable: bool,
}

impl Bodies {
    pub(super) fn new(body: RequestBody, rc: &crate::config::RetryConfig) -> Self {
        let template = if rc.enabled
            && rc.max_attempts > 1
            && body
                .len()
                .is_some_and(|n| n <= rc.max_replay_body_bytes as u64)
        {
            body.try_clone()
        } else {
            None
        };
        Self {
            replayable: template.is_some(),
            slots: std::sync::Mutex::new((Some(body), template)),
        }
    }

    /// The body of the next try, if there is one.
    pub(super) fn next(&self) -> Option<RequestBody> {
        let mut g = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.take().or_else(|| g.1.as_ref()?.try_clone())
    }
}

/// Per-request options of the resilience policies.
pub(super) struct Opts<'a> {
    pub(super) idempotent: Option<bool>,
    pub(super) rate_limit_key: Option<&'a str>,
    /// The explicit key of a `consistent_hash` service.
    pub(super) balance_key: Option<&'a str>,
    pub(super) deadline: Option<Instant>,
    /// When the request began.
    pub(super) start: Instant,
    pub(super) phases: crate::request::PhaseTimeouts,
    /// The default headers merged into this hop (none but `User-Agent` after a cross-origin
    /// redirect).
    pub(super) defaults: &'a HeaderMap,
}

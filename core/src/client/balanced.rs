//! One hop to a load-balanced service: retries and hedging as for any origin, with the
//! service's own retry budget; each attempt picks an endpoint (`crate::balance`), avoiding
//! endpoints this request already tried and endpoints whose breaker is open, then runs the
//! endpoint origin's policies (rate limit, breaker, concurrency) and `send_once`.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::{HeaderMap, Method, Uri};
use tokio::time::Instant;

use super::route::Route;
use super::send::{Bodies, Opts};
use super::{Client, Inner};
use crate::balance::{Endpoint, InFlight, Outcome, Service};
use crate::body::RequestBody;
use crate::config::HealthCheckConfig;
use crate::error::{Error, ErrorKind};
use crate::policy::retry;
use crate::pool::Using;
use crate::response::Response;

/// An attempt's endpoint, its route (marked in use) and the request's URL on it.
type Picked = (Arc<Endpoint>, Arc<Route>, Option<Using>, Uri);

impl Client {
    pub(super) async fn send_balanced(
        &self,
        svc: &Arc<Service>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        let p = &self.inner.policies;
        let idem = opts
            .idempotent
            .unwrap_or_else(|| retry::idempotent(method, headers));
        svc.ready(opts.deadline).await;
        let bodies = Bodies::new(body, &p.cfg.retry);
        let key = svc.key_hash(opts.balance_key, headers);
        // Endpoints this request's attempts went to, so a retry goes elsewhere.
        let tried = Mutex::new(Vec::<u64>::new());
        let attempt = || {
            crate::dead_letter::count_attempt();
            let body = bodies.next();
            let tried = &tried;
            async move {
                let Some(body) = body else {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        "request body already consumed",
                    ));
                };
                let (ep, route, _using, ep_uri) = self.pick_endpoint(svc, uri, key, tried)?;
                let route = &*route;
                let flight = InFlight::start(ep, svc.now_ns());
                let res = p
                    .attempt(
                        &route.policy,
                        &route.origin.key,
                        opts.rate_limit_key,
                        opts.deadline,
                        || self.send_once(route, method, &ep_uri, headers, body, opts),
                    )
                    .await;
                svc.finish(flight, Outcome::of(&res));
                res
            }
        };
        p.run(
            &svc.policy,
            idem,
            bodies.replayable,
            opts.deadline,
            opts.start,
            attempt,
        )
        .await
    }

    /// An endpoint for the next attempt, with its route and the request rewritten to it.
    /// An endpoint whose breaker is open is skipped (for as long as it stays open) and the
    /// next one picked, so a tripped endpoint costs no attempt while others are left.
    fn pick_endpoint(
        &self,
        svc: &Service,
        uri: &Uri,
        key: Option<u64>,
        tried: &Mutex<Vec<u64>>,
    ) -> Result<Picked, Error> {
        let lock = || tried.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last = None;
        for _ in 0..svc.len().max(1) {
            let ep = {
                let t = lock();
                svc.pick(key, &t)
            };
            let Some(ep) = ep else { break };
            let uri = ep.uri_for(uri)?;
            let (route, using) = self.route_in_use(&uri)?;
            lock().push(ep.id);
            match route.policy.breaker.as_ref().and_then(|b| b.open_for()) {
                Some(wait) => {
                    svc.skip(&ep, wait);
                    last = Some((ep, route, using, uri));
                }
                None => return Ok((ep, route, using, uri)),
            }
        }
        // Every endpoint is open: the attempt goes on and fails fast in the breaker.
        last.ok_or_else(|| match svc.dns_error() {
            Some(why) => Error::new(
                ErrorKind::Dns,
                format!("service {} has no endpoints: {why}", svc.name),
            ),
            None => Error::new(
                ErrorKind::Connect,
                format!("service {} has no endpoints", svc.name),
            ),
        })
    }
}

impl Client {
    /// Starts the health checks of every service that has them, one task per service on the
    /// engine's runtime; each stops when the client closes or is dropped.
    pub(super) fn start_health_checks(inner: &Arc<Inner>, rt: &tokio::runtime::Handle) {
        for svc in inner.balancer.checked() {
            let (svc, weak, stop) = (svc.clone(), Arc::downgrade(inner), inner.balancer.stopped());
            rt.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = health_loop(weak, svc) => {}
                }
            });
        }
    }

    /// Starts the lookups of every DNS-backed service, one task per service on the engine's
    /// runtime; each stops when the client closes or is dropped.
    pub(super) fn start_service_lookups(inner: &Arc<Inner>, rt: &tokio::runtime::Handle) {
        for svc in inner.balancer.dns_backed() {
            let (svc, weak, stop) = (svc.clone(), Arc::downgrade(inner), inner.balancer.stopped());
            rt.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = lookup_loop(weak, svc) => {}
                }
            });
        }
    }

    /// One check of `ep`: a GET of the check path straight through the pool (no retries,
    /// breaker or request metrics), passed when the status is expected within the timeout.
    async fn health_check(&self, svc: &Service, ep: &Endpoint, h: &HealthCheckConfig) {
        let timeout = Duration::from_millis(h.timeout_ms);
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        let check = async {
            let uri = ep.url_of(&h.path)?;
            let (route, _using) = self.route_in_use(&uri)?;
            let opts = Opts {
                idempotent: Some(true),
                rate_limit_key: None,
                balance_key: None,
                deadline,
                start,
                phases: crate::request::PhaseTimeouts::default(),
                defaults: &self.inner.engine_headers,
            };
            let empty = HeaderMap::new();
            let r = self
                .send_once(
                    &route,
                    &Method::GET,
                    &uri,
                    &empty,
                    RequestBody::empty(),
                    &opts,
                )
                .await?;
            let status = r.status().as_u16();
            r.drain().await;
            Ok::<u16, Error>(status)
        };
        let passed = matches!(
            tokio::time::timeout(timeout, check).await,
            Ok(Ok(s)) if h.expected_statuses.contains(&s)
        );
        svc.health_result(ep, passed);
    }
}

/// Checks every endpoint of `svc` at once, then waits the jittered interval; ends when the
/// client is gone or closed.
async fn health_loop(weak: Weak<Inner>, svc: Arc<Service>) {
    let Some(h) = svc.health.clone() else { return };
    loop {
        {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let client = Client { inner };
            let eps = svc.all();
            futures_util::future::join_all(eps.iter().map(|ep| client.health_check(&svc, ep, &h)))
                .await;
        }
        let spread = h.interval_ms as f64 * f64::from(h.jitter_percent) / 100.0;
        let ms = h.interval_ms as f64 + spread * (2.0 * fastrand::f64() - 1.0);
        tokio::time::sleep(Duration::from_millis(ms.max(1.0) as u64)).await;
    }
}

/// Looks a DNS-backed service's name up through the client's DNS cache, again each time the
/// answer expires (at least 100 ms apart; 1 s after a failure or when nothing says when it
/// expires); ends when the client is gone or closed.
async fn lookup_loop(weak: Weak<Inner>, svc: Arc<Service>) {
    const MIN_WAIT: Duration = Duration::from_millis(100);
    const RETRY: Duration = Duration::from_secs(1);
    let Some(name) = svc.dns.as_ref().map(|d| d.name.clone()) else {
        return;
    };
    loop {
        let wait = {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let dns = inner.pool.dns().clone();
            drop(inner);
            match dns.resolve_expiring(&name).await {
                Ok((addrs, expires)) => {
                    svc.dns_answer(Ok(&addrs));
                    expires.map_or(RETRY, |at| at.saturating_duration_since(Instant::now()))
                }
                Err(e) => {
                    svc.dns_answer(Err(&e));
                    RETRY
                }
            }
        };
        tokio::time::sleep(wait.max(MIN_WAIT)).await;
    }
}

//! The client: cheap to clone, one pool and one set of metrics shared by all clones.
//!
//! The path of one request, outermost first: metrics and the total deadline → redirects →
//! compression → read timeouts → pool → connector.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri, Version};
use tokio::time::Instant;

use crate::body::{Body, BodyLimits, Meter, RequestBody};
use crate::compress;
use crate::config::{Config, ms};
use crate::connect::Connector;
use crate::error::{self, Error, ErrorKind};
use crate::metrics::{Diagnostics, Metrics, Stats};
use crate::origin::Origin;
use crate::policy::OriginPolicy;
use crate::policy::retry;
use crate::policy::{BreakerEvent, Policies};
use crate::pool::{HostRef, Pool, Using};
use crate::redirect::{self, Hop};
use crate::request::{Request, RequestBuilder};
use crate::response::{Response, Timings};

/// An HTTP client. Clones share one pool, one DNS cache and one set of metrics.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    pool: Pool,
    metrics: Arc<Metrics>,
    policies: Policies,
    /// `default_headers` and `User-Agent`.
    default_headers: HeaderMap,
    /// `User-Agent` alone: what a redirect chain sends once it has crossed origins.
    engine_headers: HeaderMap,
    redirect: redirect::Rules,
    accept_encoding: Option<HeaderValue>,
    routes: Routes,
    closed: std::sync::atomic::AtomicBool,
    drained: tokio::sync::Notify,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

/// Sugar over [`Config`]: setters never fail; [`build`](ClientBuilder::build) reports the first
/// bad value, naming the field.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    config: Config,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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

    /// Redirects followed; 0 disables. Default: 10.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.config.redirect.max = n;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn build(self) -> Result<Client, Error> {
        Client::from_config(self.config)
    }
}

impl Client {
    /// A builder with every default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with every default.
    ///
    /// # Errors
    /// Only if the system resolver cannot be set up.
    pub fn new() -> Result<Client, Error> {
        Self::from_config(Config::default())
    }

    /// A client from a config (as bindings build it).
    ///
    /// # Errors
    /// `invalid_config` naming the first bad field.
    pub fn from_config(cfg: Config) -> Result<Client, Error> {
        cfg.validate()?;
        let metrics = Arc::new(Metrics::new());
        let handle = crate::runtime::handle();
        // The resolver and pool timers need a runtime context while they are built.
        let _enter = handle.enter();
        let connector = Connector::new(&cfg, metrics.clone())?;
        let pool = Pool::new(&cfg, connector, &handle);
        let mut default_headers = HeaderMap::new();
        for (k, v) in &cfg.default_headers {
            let (n, v) = crate::request::parse_header(k, v)
                .map_err(|e| error::config(format!("default_headers.{k}: {}", e.message())))?;
            default_headers.append(n, v);
        }
        let ua = if cfg.user_agent.is_empty() {
            HeaderValue::from_static(concat!("wirecore/", env!("CARGO_PKG_VERSION")))
        } else {
            HeaderValue::from_str(&cfg.user_agent)
                .map_err(|_| error::config("user_agent: is not a valid header value"))?
        };
        let mut engine_headers = HeaderMap::new();
        engine_headers.insert(header::USER_AGENT, ua.clone());
        default_headers.entry(header::USER_AGENT).or_insert(ua);
        let redirect = redirect::Rules::new(&cfg.redirect)?;
        let accept_encoding = compress::accept_header(&cfg.compression);
        let policies = Policies::new(&cfg)?;
        let routes = Routes::new(cfg.pool.max_origins);
        let inner = Arc::new_cyclic(|me: &std::sync::Weak<Inner>| {
            // An origin the pool forgets loses its policy state and routes at the same time.
            let me = me.clone();
            pool.on_forget(Box::new(move |keys| {
                if let Some(inner) = me.upgrade() {
                    inner.policies.forget(keys);
                    inner.routes.forget(keys);
                }
            }));
            Inner {
                cfg,
                pool,
                metrics,
                policies,
                default_headers,
                engine_headers,
                redirect,
                accept_encoding,
                routes,
                closed: std::sync::atomic::AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
            }
        });
        Ok(Client { inner })
    }

    /// The config this client was built from.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), Request::new(method, url))
    }

    /// Starts a GET.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a POST.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a PUT.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a DELETE.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Starts a HEAD.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> Stats {
        let (pool, origins) = self.inner.pool.stats();
        self.inner
            .metrics
            .snapshot(pool, origins, self.inner.policies.stats())
    }

    /// Circuit breaker state changes of this client, for logging or alerts. A receiver that
    /// falls more than 256 events behind skips ahead (`RecvError::Lagged`).
    pub fn breaker_events(&self) -> tokio::sync::broadcast::Receiver<BreakerEvent> {
        self.inner.policies.subscribe()
    }

    /// The stats in Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.stats().prometheus()
    }

    /// A health report (see [`Diagnostics`]).
    pub fn diagnostics(&self) -> Diagnostics {
        self.stats().diagnostics()
    }

    /// Closes every idle connection now (in-flight requests and their connections are left
    /// alone); the client stays usable. Go's `Transport.CloseIdleConnections`.
    pub fn close_idle_connections(&self) {
        self.inner.pool.close_idle(false);
    }

    /// Refuses new requests, waits until in-flight ones finish or `deadline` passes, then
    /// closes every idle connection.
    pub async fn close(&self, deadline: Duration) {
        let inner = &self.inner;
        inner.closed.store(true, Relaxed);
        // A deadline too far to represent waits without a limit.
        let until = Instant::now().checked_add(deadline);
        loop {
            let notified = inner.drained.notified();
            if inner.metrics.in_flight.load(Relaxed) == 0 {
                break;
            }
            match until {
                Some(at) => {
                    if tokio::time::timeout_at(at, notified).await.is_err() {
                        break;
                    }
                }
                None => notified.await,
            }
        }
        inner.pool.close();
    }

    /// Origins tracked by the pool (all, with connections, without), by the policies and by
    /// the route cache. For tests of the bounded per-origin state.
    #[doc(hidden)]
    pub fn tracked_origins(&self) -> [usize; 5] {
        let (all, live, spare) = self.inner.pool.origin_counts();
        [
            all,
            live,
            spare,
            self.inner.policies.origin_count(),
            self.inner.routes.len(),
        ]
    }

    /// The route of `uri`'s origin, marked in use until the guard drops (so the origin's
    /// state is not forgotten meanwhile).
    fn route_in_use(&self, uri: &Uri) -> Result<(Arc<Route>, Option<Using>), Error> {
        // A route found just as the pool forgot its origin is dropped and looked up again;
        // past a few races the request goes on unmarked (the pool still counts it).
        for _ in 0..3 {
            let r = self.route(uri)?;
            if let Some(u) = r.host.enter() {
                return Ok((r, Some(u)));
            }
            self.inner.routes.remove(uri, &r);
        }
        Ok((self.route(uri)?, None))
    }

    /// The route of `uri`'s origin, cached by scheme and authority.
    fn route(&self, uri: &Uri) -> Result<Arc<Route>, Error> {
        let Some((slot, auth)) = Routes::key(uri) else {
            return self.new_route(uri).map(Arc::new);
        };
        let routes = &self.inner.routes;
        if let Some(r) = read(&routes.maps[slot]).by_authority.get(auth) {
            return Ok(r.clone());
        }
        let r = Arc::new(self.new_route(uri)?);
        Ok(routes.insert(slot, auth, r))
    }

    fn new_route(&self, uri: &Uri) -> Result<Route, Error> {
        let origin = Origin::from_uri(uri)?;
        // The pool's state first: policy state forgotten after this is forgotten with it, and
        // a forgotten host is refused by `HostRef::enter`.
        let host = self.inner.pool.host_ref(&origin);
        let policy = self.inner.policies.origin(&origin.key);
        let host_header = uri.authority().and_then(|a| {
            let host = a.as_str();
            HeaderValue::from_str(host.rsplit('@').next().unwrap_or(host)).ok()
        });
        Ok(Route {
            origin,
            policy,
            host,
            host_header,
        })
    }

    /// Sends a request.
    ///
    /// # Errors
    /// Any [`ErrorKind`]; input errors are reported before any I/O.
    pub async fn execute(&self, req: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        if inner.closed.load(Relaxed) {
            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
        }
        let m = &inner.metrics;
        m.in_flight.fetch_add(1, Relaxed);
        let _guard = InFlight(self);
        let start = Instant::now();
        let total = req.timeout.or_else(|| ms(inner.cfg.timeouts.total_ms));
        // A timeout too large to represent as a deadline means no limit.
        let deadline = total.and_then(|t| start.checked_add(t));
        // Boxed: the request state machine is large (TLS connect, retries), and moving it by value
        // into timeout_at and the caller's task costs more than one allocation.
        let fut = Box::pin(self.run(req, start, deadline));
        let res = match deadline {
            Some(at) => match tokio::time::timeout_at(at, fut).await {
                Ok(r) => r,
                Err(_) => Err(error::timeout(
                    ErrorKind::TimeoutTotal,
                    "request",
                    total.map_or(0, millis),
                )),
            },
            None => fut.await,
        };
        let mut res = res;
        match &mut res {
            Ok(r) => {
                // One clock read for the response's total, the histogram and the rate window.
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(start);
                r.timings.total = elapsed;
                m.record_response(r.status.as_u16(), elapsed, now);
            }
            Err(e) => m.record_error(e.kind()),
        }
        res
    }

    async fn run(
        &self,
        req: Request,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<Response, Error> {
        let Request {
            mut method,
            mut uri,
            mut headers,
            mut body,
            timeout: _,
            idempotent,
            rate_limit_key,
            phases,
            default_headers: send_defaults,
        } = req;
        let inner = &*self.inner;
        // Userinfo is a credential: it goes out as `Authorization`, never in `Host`.
        if has_userinfo(&uri) {
            take_userinfo(&mut uri, &mut headers)?;
        }
        let max = inner.cfg.redirect.max;
        let mut hops = 0u32;
        // Set at the first cross-origin hop: from then on credentials and default headers stay
        // behind (see `redirect`).
        let mut stripped: Option<redirect::Stripped> = (!send_defaults).then(|| {
            redirect::Stripped::entered(&mut headers, &inner.redirect, &inner.default_headers, &uri)
        });
        loop {
            let replay = if max > 0 { body.try_clone() } else { None };
            let opts = Opts {
                idempotent,
                rate_limit_key: rate_limit_key.as_deref(),
                deadline,
                start,
                phases,
                defaults: if stripped.is_some() {
                    &inner.engine_headers
                } else {
                    &inner.default_headers
                },
            };
            let resp = self
                .send_resilient(&method, &uri, &headers, body, &opts)
                .await?;
            if max == 0 {
                return Ok(resp);
            }
            let Some(rule) = redirect::hop(resp.status, &method) else {
                return Ok(resp);
            };
            let Some(location) = resp
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let Ok(mut next) = resolve_location(&uri, location) else {
                return Ok(resp);
            };
            let next_body = match (rule, replay) {
                (Hop::Keep, Some(b)) => b,
                // A streamed body cannot be sent again: hand back the redirect.
                (Hop::Keep, None) => return Ok(resp),
                (Hop::Get | Hop::DropBody, _) => RequestBody::empty(),
            };
            if !inner.redirect.allow_downgrade && redirect::is_downgrade(&uri, &next) {
                return Err(Error::new(
                    ErrorKind::RedirectDowngrade,
                    format!(
                        "refused the redirect from {} to {}: redirect.allow_downgrade is false",
                        error::redact(&uri),
                        error::redact(&next)
                    ),
                ));
            }
            if hops >= max {
                return Err(Error::new(
                    ErrorKind::TooManyRedirects,
                    format!(
                        "more than {max} redirects (last to {})",
                        error::redact(&next)
                    ),
                ));
            }
            hops += 1;
            inner.metrics.redirects.fetch_add(1, Relaxed);
            resp.drain().await;
            match rule {
                Hop::Keep => {}
                Hop::Get => {
                    method = Method::GET;
                    redirect::drop_body_headers(&mut headers);
                }
                Hop::DropBody => redirect::drop_body_headers(&mut headers),
            }
            let mut next_headers = HeaderMap::new();
            if has_userinfo(&next) {
                take_userinfo(&mut next, &mut next_headers)?;
            }
            if stripped.is_some() || !redirect::same_origin(&uri, &next) {
                // A `Host` the caller set names the first origin.
                headers.remove(header::HOST);
                stripped.get_or_insert_with(Default::default).apply(
                    &mut headers,
                    &inner.redirect,
                    &inner.default_headers,
                    &next,
                );
            }
            // Userinfo in the Location is that hop's own credential.
            if let Some(auth) = next_headers.remove(header::AUTHORIZATION) {
                headers.entry(header::AUTHORIZATION).or_insert(auth);
            }
            uri = next;
            body = next_body;
        }
    }

    /// Retries (with budget, backoff, `Retry-After`) and hedging around one attempt through
    /// rate limit, breaker and concurrency limit (see [`crate::policy`]).
    async fn send_resilient(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        let p = &self.inner.policies;
        let rc = &p.cfg.retry;
        let (route, _using) = self.route_in_use(uri)?;
        let idem = opts
            .idempotent
            .unwrap_or_else(|| retry::idempotent(method, headers));
        // Kept to replay: small in-memory bodies only.
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
        // The body of the first try, and the copy later tries clone from (behind a mutex, as a
        // request body is `Send` but not `Sync`).
        let replayable = template.is_some();
        let bodies = std::sync::Mutex::new((Some(body), template));
        let route = &*route;
        let (op, origin) = (&*route.policy, &route.origin);
        let next_body = || {
            let mut g = bodies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.0.take().or_else(|| g.1.as_ref()?.try_clone())
        };
        let attempt = || {
            let body = next_body();
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

    async fn send_once(
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
        let urgency = crate::request::urgency(user_headers);
        // One more try when a pooled connection turns out dead before the request went out.
        for attempt in 0..2 {
            let mut lease = inner
                .pool
                .acquire_at(&route.host, deadline, urgency, phases)
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
            let req = build_http(&head, b, h2)?;
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
    async fn prepare(
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
            headers: parts.headers,
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
        }
    }
}

/// What every attempt to one URL authority shares, looked up once: the parsed origin, its
/// policy state, its pool state and the `Host` header HTTP/1.1 sends.
struct Route {
    origin: Origin,
    policy: Arc<OriginPolicy>,
    host: HostRef,
    host_header: Option<HeaderValue>,
}

/// Cached routes of one scheme, by URL authority, and the authorities of each origin (so the
/// routes of a forgotten origin go without a scan).
#[derive(Default)]
struct RouteTable {
    by_authority: HashMap<Box<str>, Arc<Route>>,
    by_origin: HashMap<Arc<str>, Vec<Box<str>>>,
}

impl RouteTable {
    fn remove(&mut self, auth: &str) {
        if let Some(r) = self.by_authority.remove(auth)
            && let Some(list) = self.by_origin.get_mut(&r.origin.key)
        {
            list.retain(|a| &**a != auth);
            if list.is_empty() {
                self.by_origin.remove(&r.origin.key);
            }
        }
    }
}

type RouteMap = std::sync::RwLock<RouteTable>;

fn read(m: &RouteMap) -> std::sync::RwLockReadGuard<'_, RouteTable> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(m: &RouteMap) -> std::sync::RwLockWriteGuard<'_, RouteTable> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Routes by URL authority, for `http` (0) and `https` (1), at most `cap` per scheme (URLs to
/// more authorities are resolved per request). Entries go when the pool forgets their origin.
struct Routes {
    maps: [RouteMap; 2],
    cap: usize,
}

impl Routes {
    fn new(cap: usize) -> Self {
        Self {
            maps: Default::default(),
            cap,
        }
    }

    /// The map and key of a URL, if it is cached at all.
    fn key(uri: &Uri) -> Option<(usize, &str)> {
        let slot = match uri.scheme_str() {
            Some("http") => 0,
            Some("https") => 1,
            _ => return None,
        };
        Some((slot, uri.authority()?.as_str()))
    }

    fn len(&self) -> usize {
        self.maps.iter().map(|m| read(m).by_authority.len()).sum()
    }

    /// Caches `r` for `auth` unless full; returns the cached route.
    fn insert(&self, slot: usize, auth: &str, r: Arc<Route>) -> Arc<Route> {
        let mut t = write(&self.maps[slot]);
        if let Some(old) = t.by_authority.get(auth) {
            return old.clone();
        }
        if t.by_authority.len() >= self.cap {
            return r;
        }
        let auth: Box<str> = auth.into();
        t.by_origin
            .entry(r.origin.key.clone())
            .or_default()
            .push(auth.clone());
        t.by_authority.insert(auth, r.clone());
        r
    }

    /// Drops `uri`'s cached route if it is still `r`.
    fn remove(&self, uri: &Uri, r: &Arc<Route>) {
        if let Some((slot, auth)) = Self::key(uri) {
            let mut t = write(&self.maps[slot]);
            if t.by_authority.get(auth).is_some_and(|x| Arc::ptr_eq(x, r)) {
                t.remove(auth);
            }
        }
    }

    /// Drops the routes of forgotten origins.
    fn forget(&self, keys: &[Arc<str>]) {
        for m in &self.maps {
            let mut t = write(m);
            for k in keys {
                for a in t.by_origin.remove(k).unwrap_or_default() {
                    t.by_authority.remove(&a);
                }
            }
        }
    }
}

/// Per-request options of the resilience policies.
struct Opts<'a> {
    idempotent: Option<bool>,
    rate_limit_key: Option<&'a str>,
    deadline: Option<Instant>,
    /// When the request began.
    start: Instant,
    phases: crate::request::PhaseTimeouts,
    /// The default headers merged into this hop (none but `User-Agent` after a cross-origin
    /// redirect).
    defaults: &'a HeaderMap,
}

struct InFlight<'a>(&'a Client);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let i = &self.0.inner;
        if i.metrics.in_flight.fetch_sub(1, Relaxed) == 1 && i.closed.load(Relaxed) {
            i.drained.notify_waiters();
        }
    }
}

fn has_userinfo(uri: &Uri) -> bool {
    uri.authority().is_some_and(|a| a.as_str().contains('@'))
}

/// Moves `uri`'s userinfo into `Authorization: Basic`, unless `headers` has one already.
fn take_userinfo(uri: &mut Uri, headers: &mut HeaderMap) -> Result<(), Error> {
    if let Some((clean, auth)) = redirect::take_userinfo(uri)? {
        *uri = clean;
        headers.entry(header::AUTHORIZATION).or_insert(auth);
    }
    Ok(())
}

fn resolve_location(base: &Uri, location: &str) -> Result<Uri, Error> {
    let base = url::Url::parse(&base.to_string()).map_err(|e| error::url(e.to_string()))?;
    let next = base
        .join(location)
        .map_err(|e| error::url(format!("bad Location {location:?}: {e}")))?;
    crate::request::parse_url(next.as_str())
}

/// What the outgoing request is made of: the user's headers win over the client's defaults.
struct Head<'a> {
    method: &'a Method,
    uri: &'a Uri,
    user: &'a HeaderMap,
    defaults: &'a HeaderMap,
    accept_encoding: Option<&'a HeaderValue>,
    content_encoding: Option<&'a HeaderValue>,
    /// The `Host` header of this URL's authority, when valid (h1 only).
    host: Option<&'a HeaderValue>,
}

/// Connection-specific headers, illegal in HTTP/2 (RFC 9113 §8.2.2), and `Host`, which h2
/// carries as `:authority`.
fn h2_illegal(name: &header::HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == header::HOST
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The request as hyper sends it, its headers merged in one pass (user headers, then defaults
/// the user did not set, then `Accept-Encoding` and `Content-Encoding`, then `Host` on h1).
fn build_http(
    head: &Head<'_>,
    body: RequestBody,
    h2: bool,
) -> Result<http::Request<RequestBody>, Error> {
    let (uri, user) = (head.uri, head.user);
    let mut req = http::Request::new(body);
    *req.method_mut() = head.method.clone();
    if h2 {
        *req.uri_mut() = uri.clone();
        *req.version_mut() = Version::HTTP_2;
    } else {
        // Origin form: the path and query, shared with the URL (no copy, no re-parse).
        match uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => {
                let mut parts = http::uri::Parts::default();
                parts.path_and_query = Some(pq.clone());
                *req.uri_mut() =
                    Uri::from_parts(parts).map_err(|e| error::url(format!("invalid path: {e}")))?;
            }
            pq => {
                let pq = pq.map_or("/", http::uri::PathAndQuery::as_str);
                *req.uri_mut() = pq
                    .parse()
                    .map_err(|_| error::url(format!("invalid path {pq:?}")))?;
            }
        }
    }
    let h = req.headers_mut();
    h.reserve(user.len() + head.defaults.len() + 3);
    let skip = |k: &header::HeaderName| h2 && h2_illegal(k);
    for (k, v) in user {
        if !skip(k) {
            h.append(k.clone(), v.clone());
        }
    }
    for (k, v) in head.defaults {
        // The first value of a default the user did not set.
        if !skip(k) && !h.contains_key(k) {
            h.insert(k.clone(), v.clone());
        }
    }
    if let Some(ae) = head.accept_encoding
        && !h.contains_key(header::ACCEPT_ENCODING)
    {
        h.insert(header::ACCEPT_ENCODING, ae.clone());
    }
    if let Some(ce) = head.content_encoding {
        h.insert(header::CONTENT_ENCODING, ce.clone());
    }
    if !h2
        && !h.contains_key(header::HOST)
        && let Some(v) = head.host
    {
        h.insert(header::HOST, v.clone());
    } else if !h2 && !h.contains_key(header::HOST) {
        let host = uri.authority().map_or("", http::uri::Authority::as_str);
        let host = host.rsplit('@').next().unwrap_or(host);
        let v = HeaderValue::from_str(host)
            .map_err(|_| error::url(format!("invalid host {host:?}")))?;
        h.insert(header::HOST, v);
    }
    Ok(req)
}

/// `Client` as a tower `Service`, so it composes with tower middleware.
impl<B> tower_service::Service<http::Request<B>> for Client
where
    B: http_body::Body + Send + 'static,
    B::Data: Into<bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut r = Request::new(parts.method, &parts.uri.to_string())?;
            r.headers = parts.headers;
            r.body = RequestBody::wrap(body);
            client.execute(r).await.map(Response::into_http)
        })
    }
}

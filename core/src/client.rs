//! The client: cheap to clone, one pool and one set of metrics shared by all clones.
//!
//! The path of one request, outermost first: metrics and the total deadline → redirects →
//! compression → read timeouts → pool → connector.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use tokio::time::Instant;

use crate::body::{Body, BodyLimits, Meter, RequestBody};
use crate::compress;
use crate::config::{Config, Encoding, ms};
use crate::connect::Connector;
use crate::error::{self, Error, ErrorKind};
use crate::metrics::{Diagnostics, Metrics, Stats};
use crate::policy::retry;
use crate::policy::{BreakerEvent, Policies};
use crate::pool::{Origin, Pool, Sender};
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
    default_headers: HeaderMap,
    accept_encoding: Option<HeaderValue>,
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
        default_headers.entry(header::USER_AGENT).or_insert(ua);
        let accept_encoding = compress::accept_header(&cfg.compression);
        let policies = Policies::new(&cfg)?;
        Ok(Client {
            inner: Arc::new(Inner {
                cfg,
                pool,
                metrics,
                policies,
                default_headers,
                accept_encoding,
                closed: std::sync::atomic::AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
            }),
        })
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
        let until = Instant::now() + deadline;
        loop {
            let notified = inner.drained.notified();
            if inner.metrics.in_flight.load(Relaxed) == 0 {
                break;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                break;
            }
        }
        inner.pool.close();
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
        let deadline = total.map(|t| start + t);
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
        match &res {
            Ok(r) => m.record_response(r.status.as_u16(), start.elapsed()),
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
        } = req;
        let max = self.inner.cfg.redirect.max;
        let mut hops = 0u32;
        loop {
            let replay = if max > 0 { body.try_clone() } else { None };
            let opts = Opts {
                idempotent,
                rate_limit_key: rate_limit_key.as_deref(),
                deadline,
                phases,
            };
            let mut resp = self
                .send_resilient(&method, &uri, &headers, body, &opts)
                .await?;
            resp.timings.total = start.elapsed();
            let status = resp.status;
            if max == 0 || !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(location) = resp
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let Ok(next) = resolve_location(&uri, location) else {
                return Ok(resp);
            };
            // 307/308 resend the body; a streamed body cannot be, so hand back the redirect.
            let keep_method = matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            );
            let next_body = if keep_method {
                match replay {
                    Some(b) => b,
                    None => return Ok(resp),
                }
            } else {
                RequestBody::empty()
            };
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
            self.inner.metrics.redirects.fetch_add(1, Relaxed);
            resp.drain().await;
            if !keep_method
                && (status == StatusCode::SEE_OTHER || method == Method::POST)
                && method != Method::HEAD
            {
                method = Method::GET;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
                headers.remove(header::CONTENT_ENCODING);
            }
            if !same_origin(&uri, &next) {
                headers.remove(header::AUTHORIZATION);
                headers.remove(header::COOKIE);
                headers.remove(header::PROXY_AUTHORIZATION);
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
        let origin = Origin::from_uri(uri)?;
        let op = p.origin(&origin.key);
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
        let (op, origin) = (&op, &origin);
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
                    self.send_once(origin, method, uri, headers, body, opts)
                })
                .await
            }
        };
        p.run(op, idem, replayable, opts.deadline, attempt).await
    }

    async fn send_once(
        &self,
        origin: &Origin,
        method: &Method,
        uri: &Uri,
        user_headers: &HeaderMap,
        body: RequestBody,
        opts: &Opts<'_>,
    ) -> Result<Response, Error> {
        let inner = &self.inner;
        let cfg = &inner.cfg;
        let (deadline, phases) = (opts.deadline, opts.phases);
        let read_idle = phases.read_idle.or_else(|| ms(cfg.timeouts.read_idle_ms));
        let (headers, body, sent_len) = self.prepare(origin, user_headers, body).await?;
        let replay = body.try_clone();
        let mut body = Some(body);
        let urgency = crate::request::urgency(user_headers);
        // One more try when a pooled connection turns out dead before the request went out.
        for attempt in 0..2 {
            let mut lease = inner
                .pool
                .acquire(origin, deadline, urgency, phases)
                .await?;
            let h2 = lease.is_h2();
            let Some(b) = body.take() else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "request body already consumed",
                ));
            };
            let req = build_http(method, uri, &headers, b, h2)?;
            let t0 = Instant::now();
            let fut = match lease.sender() {
                Some(Sender::H1(tx)) => futures_util::future::Either::Left(tx.send_request(req)),
                Some(Sender::H2(mut tx)) => {
                    futures_util::future::Either::Right(async move { tx.send_request(req).await })
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        "lease without a connection",
                    ));
                }
            };
            let head = match read_idle {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(error::timeout(
                            ErrorKind::TimeoutRead,
                            &format!("waiting for the response from {}", origin.key),
                            t.as_millis() as u64,
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

    /// Merges default headers, sets Accept-Encoding, and encodes the body when configured.
    async fn prepare(
        &self,
        origin: &Origin,
        user: &HeaderMap,
        body: RequestBody,
    ) -> Result<(HeaderMap, RequestBody, Option<u64>), Error> {
        let inner = &self.inner;
        let mut headers = user.clone();
        for (k, v) in &inner.default_headers {
            if !headers.contains_key(k) {
                headers.insert(k.clone(), v.clone());
            }
        }
        if let Some(ae) = &inner.accept_encoding
            && !headers.contains_key(header::ACCEPT_ENCODING)
        {
            headers.insert(header::ACCEPT_ENCODING, ae.clone());
        }
        let c = &inner.cfg.compression;
        let mut body = body;
        if let Some(enc) = c.request_encoding
            && !headers.contains_key(header::CONTENT_ENCODING)
            && c.request_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&origin.host))
            && let Some(raw) = body.as_bytes()
            && raw.len() >= c.request_min_bytes
            && !raw.is_empty()
        {
            let encoded = compress::encode(raw, enc).await?;
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(enc.token()),
            );
            body = RequestBody::from(encoded);
        }
        let len = body.len();
        Ok((headers, body, len))
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
        let decoder: Option<Encoding> = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| compress::parse_encoding(v, &cfg.compression.accept));
        if decoder.is_some() {
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let reused = lease.reused;
        let ct = lease.timings;
        let limits = BodyLimits {
            max_bytes: cfg.limits.max_response_body_bytes,
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
        }
    }
}

/// Per-request options of the resilience policies.
struct Opts<'a> {
    idempotent: Option<bool>,
    rate_limit_key: Option<&'a str>,
    deadline: Option<Instant>,
    phases: crate::request::PhaseTimeouts,
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

fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme() == b.scheme() && a.host() == b.host() && a.port_u16() == b.port_u16()
}

fn resolve_location(base: &Uri, location: &str) -> Result<Uri, Error> {
    let base = url::Url::parse(&base.to_string()).map_err(|e| error::url(e.to_string()))?;
    let next = base
        .join(location)
        .map_err(|e| error::url(format!("bad Location {location:?}: {e}")))?;
    crate::request::parse_url(next.as_str())
}

fn build_http(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: RequestBody,
    h2: bool,
) -> Result<http::Request<RequestBody>, Error> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method.clone();
    if h2 {
        *req.uri_mut() = uri.clone();
        *req.version_mut() = Version::HTTP_2;
    } else {
        let pq = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        *req.uri_mut() = pq
            .parse()
            .map_err(|_| error::url(format!("invalid path {pq:?}")))?;
    }
    let h = req.headers_mut();
    h.reserve(headers.len() + 1);
    for (k, v) in headers {
        h.append(k.clone(), v.clone());
    }
    if !h2 && !h.contains_key(header::HOST) {
        let host = uri.authority().map_or("", http::uri::Authority::as_str);
        let host = host.rsplit('@').next().unwrap_or(host);
        let v = HeaderValue::from_str(host)
            .map_err(|_| error::url(format!("invalid host {host:?}")))?;
        h.insert(header::HOST, v);
    }
    if h2 {
        // Connection-specific headers are illegal in HTTP/2.
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::HOST,
        ] {
            h.remove(name);
        }
        h.remove("keep-alive");
        h.remove("proxy-connection");
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

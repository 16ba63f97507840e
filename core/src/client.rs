//! The client: cheap to clone, one pool and one set of metrics shared by all clones.
//!
//! The path of one request, outermost first (see ARCHITECTURE.md):
//! 1. `execute` (here): in-flight metrics and the total deadline;
//! 2. `redirects.rs`: userinfo, the redirect loop and what crosses origins (rules in
//!    `crate::redirect`);
//! 3. `send.rs`: retries and hedging, then per attempt rate limit → circuit breaker →
//!    concurrency limit (`crate::policy`), request compression, the pool (which opens
//!    connections through the connector), the send under the read-idle timeout, and the
//!    response body (decompression and limits, `crate::body`).
//!
//! `balanced.rs` is `send.rs` for a URL that names a load-balanced service (`crate::balance`).
//! `route.rs` caches per-authority lookups (origin, policy and pool state); `build_http.rs`
//! merges the headers into what hyper sends; `builder.rs` and `request_builder.rs` are sugar.

mod balanced;
mod build_http;
mod builder;
mod cached;
mod redirects;
pub(crate) use redirects::resolve_location;
mod request_builder;
mod route;
mod send;
#[cfg(test)]
mod sizes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use tokio::time::Instant;

pub use self::builder::ClientBuilder;
pub use self::request_builder::RequestBuilder;
use self::route::Routes;
use crate::body::{Body, RequestBody};
use crate::compress;
use crate::config::{Config, ms};
use crate::connect::Connector;
use crate::error::{self, Error, ErrorKind};
use crate::metrics::{Diagnostics, Metrics, Stats};
use crate::policy::{BreakerEvent, Policies};
use crate::pool::Pool;
use crate::redirect;
use crate::request::Request;
use crate::response::Response;

/// How long [`Client::close`] lets the OpenTelemetry export of the last spans take, at least,
/// when draining in-flight requests used up its deadline.
const CLOSE_FLUSH_MIN: Duration = Duration::from_secs(2);

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
    /// The response cache, when `cache.enabled`.
    cache: Option<crate::cache::Cache>,
    /// The cookie jar, when `cookies.enabled`.
    jar: Option<crate::cookies::Jar>,
    /// `base_url`, which a relative request URL is joined to.
    base_url: Option<http::Uri>,
    /// Load-balanced services (`Config.services`).
    balancer: crate::balance::Balancer,
    dead_letters: crate::dead_letter::DeadLetters,
    /// Spans and the duration metric, when `otel.enabled`.
    otel: Option<crate::otel::Otel>,
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
        let metrics = Arc::new(Metrics::from_config(&cfg));
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
        let cache = crate::cache::Cache::new(&cfg)?;
        let jar = crate::cookies::Jar::new(&cfg.cookies);
        let base_url = if cfg.base_url.is_empty() {
            None
        } else {
            Some(crate::request::parse_url(&cfg.base_url)?)
        };
        let balancer = crate::balance::Balancer::new(&cfg, &policies)?;
        let dead_letters = crate::dead_letter::DeadLetters::new(&cfg)?;
        let otel = crate::otel::Otel::new(&cfg, &handle)?;
        let inner = Arc::new_cyclic(|me: &std::sync::Weak<Inner>| {
            // An origin the pool forgets loses its policy state and routes at the same time.
            let me = me.clone();
            pool.on_forget(Box::new(move |keys| {
                if let Some(inner) = me.upgrade() {
                    inner.policies.forget(keys);
                    inner.routes.forget(keys);
                    inner.metrics.buckets.forget(keys);
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
                cache,
                jar,
                base_url,
                balancer,
                dead_letters,
                otel,
                closed: std::sync::atomic::AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
            }
        });
        Self::start_health_checks(&inner, &handle);
        Self::start_service_lookups(&inner, &handle);
        Self::start_shared_breakers(&inner, &handle);
        Ok(Client { inner })
    }

    /// Starts the exchange of open breakers with Redis (`breaker.redis`) on the engine's
    /// runtime; it stops when the client closes or is dropped.
    fn start_shared_breakers(inner: &Arc<Inner>, rt: &tokio::runtime::Handle) {
        let Some(shared) = inner.policies.shared.clone() else {
            return;
        };
        let (weak, stop) = (Arc::downgrade(inner), inner.balancer.stopped());
        rt.spawn(async move {
            let apply = |s: &crate::policy::shared::SharedBreakers| {
                weak.upgrade().is_some_and(|inner| {
                    inner.policies.apply_remote(s);
                    !inner.closed.load(Relaxed)
                })
            };
            tokio::select! {
                () = stop.cancelled() => {}
                () = shared.run(apply) => {}
            }
        });
    }

    /// The config this client was built from.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Starts a request. `url` is absolute, or a path starting with `/` joined to
    /// `base_url`.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let req = Request::new(method, url).and_then(|mut r| {
            self.absolute(&mut r)?;
            Ok(r)
        });
        RequestBuilder::new(self.clone(), req)
    }

    /// Joins a relative request URL to `base_url` (httpx's rule: appended to its path).
    fn absolute(&self, req: &mut Request) -> Result<(), Error> {
        if req.uri.scheme().is_some() {
            return Ok(());
        }
        let Some(base) = &self.inner.base_url else {
            return Err(error::url(format!(
                "relative URL {:?} needs the client's base_url",
                error::redact_str(&req.uri.to_string())
            )));
        };
        req.uri = crate::request::join_base(base, &req.uri)?;
        Ok(())
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

    /// The cookies in this client's jar that have not expired (empty while `cookies.enabled`
    /// is false).
    pub fn cookies(&self) -> Vec<crate::Cookie> {
        self.inner
            .jar
            .as_ref()
            .map_or_else(Vec::new, crate::cookies::Jar::list)
    }

    /// [`Client::cookies`] as a JSON array (the same field names in every language).
    pub fn cookies_json(&self) -> String {
        serde_json::to_string(&self.cookies()).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Empties this client's cookie jar.
    pub fn clear_cookies(&self) {
        if let Some(j) = &self.inner.jar {
            j.clear();
        }
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> Stats {
        let (pool, origins) = self.inner.pool.stats();
        let mut s = self
            .inner
            .metrics
            .snapshot(pool, origins, self.inner.policies.stats());
        if let Some(c) = &self.inner.cache {
            s.cache = c.stats();
        }
        s.services = self.inner.balancer.stats();
        s.dead_letter = self.inner.dead_letters.stats();
        if let Some(o) = &self.inner.otel {
            s.otel = o.stats();
        }
        s
    }

    /// Calls `sink` with every request that fails after every retry the policy allowed (an
    /// error, or a status `retry.retry_on_status` lists), replacing an earlier sink. It runs on
    /// an engine thread, after the request has returned, and should be quick: letters wait in
    /// a queue of `dead_letter.queue` and more are dropped (counted in `stats().dead_letter`).
    pub fn on_dead_letter(&self, sink: impl Fn(&crate::DeadLetter) + Send + Sync + 'static) {
        self.inner.dead_letters.set_sink(Arc::new(move |l| {
            sink(l);
            true
        }));
    }

    /// As [`Client::on_dead_letter`], for a binding's queue: `sink` returns false when it had
    /// to drop the letter (its own queue full), counted in `stats().dead_letter.dropped`.
    #[doc(hidden)]
    pub fn on_dead_letter_or_drop(
        &self,
        sink: impl Fn(&crate::DeadLetter) -> bool + Send + Sync + 'static,
    ) {
        self.inner.dead_letters.set_sink(Arc::new(sink));
    }

    /// Calls `sink` with every finished request's span ([`SpanRecord`](crate::SpanRecord)),
    /// replacing an earlier sink, besides exporting it to `otel.endpoint` when that is set. It
    /// runs on a thread of its own (`wirecore-spans`), never on an engine thread: spans wait in
    /// a queue of `otel.callback_queue` and more are dropped (counted in `stats().otel`).
    /// [`Client::flush_telemetry`] and [`Client::close`] return once the queued spans were
    /// handed over.
    ///
    /// # Errors
    /// `invalid_config` naming `otel.enabled` when tracing is off (there are no spans).
    pub fn on_span(
        &self,
        sink: impl Fn(&crate::SpanRecord) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        self.on_span_or_drop(move |s| {
            sink(s);
            true
        })
    }

    /// As [`Client::on_span`], for a binding's queue: `sink` returns false when it had to drop
    /// the span (its own queue full), counted in `stats().otel.dropped`.
    ///
    /// # Errors
    /// As [`Client::on_span`].
    #[doc(hidden)]
    pub fn on_span_or_drop(
        &self,
        sink: impl Fn(&crate::SpanRecord) -> bool + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let Some(o) = &self.inner.otel else {
            return Err(error::config(
                "otel.enabled: must be true for a span callback",
            ));
        };
        o.set_callback(Arc::new(sink));
        Ok(())
    }

    /// Starts every later request's client span in the application's own OpenTelemetry
    /// `TracerProvider` too (an `opentelemetry_sdk` one, with the app's exporters and
    /// sampler), under the caller's parent; that span's ids are the ones sent in `traceparent`
    /// and recorded in the engine's own span, and it ends with the same attributes and status.
    /// Replaces an earlier provider.
    ///
    /// # Errors
    /// `invalid_config` naming `otel.enabled` when tracing is off.
    pub fn set_tracer_provider<P>(&self, provider: &P) -> Result<(), Error>
    where
        P: opentelemetry::trace::TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.set_tracer(crate::otel::tracer_of(provider))
    }

    fn set_tracer(&self, t: Arc<opentelemetry::global::BoxedTracer>) -> Result<(), Error> {
        let Some(o) = &self.inner.otel else {
            return Err(error::config(
                "otel.enabled: must be true for a tracer provider",
            ));
        };
        o.set_tracer(t);
        Ok(())
    }

    /// Circuit breaker state changes of this client, for logging or alerts. A receiver that
    /// falls more than 256 events behind skips ahead (`RecvError::Lagged`).
    pub fn breaker_events(&self) -> tokio::sync::broadcast::Receiver<BreakerEvent> {
        self.inner.policies.subscribe()
    }

    /// Exports the finished spans and the `http.client.request.duration` metric now, when
    /// `otel.endpoint` is set, and returns once the collector answered (or the export failed)
    /// and the span callback, when set, was handed the spans queued for it.
    /// [`Client::close`] does this too; otherwise exports go every `otel.export_interval_ms`.
    pub async fn flush_telemetry(&self) {
        if let Some(o) = &self.inner.otel {
            o.flush().await;
        }
    }

    /// Spans dropped, since the client started, because the export queue (`otel.max_queue`) or
    /// the callback's (`otel.callback_queue`) was full or the collector did not take them
    /// (`stats().otel.dropped`).
    pub fn telemetry_dropped(&self) -> u64 {
        self.inner.otel.as_ref().map_or(0, |o| o.stats().dropped)
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

    /// Refuses new requests, waits until in-flight ones finish or `deadline` passes, exports
    /// the spans still queued when `otel.endpoint` is set (within what is left of `deadline`,
    /// and at least 2 s), then closes every idle connection and its Redis connections (rate
    /// limiter, shared breakers, dead-letter stream, and the cache's second level once its
    /// writes in flight are done).
    pub async fn close(&self, deadline: Duration) {
        let inner = &self.inner;
        inner.closed.store(true, Relaxed);
        // A deadline too far to represent waits without a limit.
        let until = Instant::now().checked_add(deadline);
        loop {
            let notified = inner.drained.notified();
            // Background cache refreshes count as in flight (their answers are stored).
            let refreshing = inner
                .cache
                .as_ref()
                .map_or(0, |c| c.counters.refreshing.load(Relaxed));
            if inner.metrics.in_flight.load(Relaxed) == 0 && refreshing == 0 {
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
        if let Some(o) = &inner.otel {
            // The spans of the last requests go out before close returns: the export may use
            // what is left of the deadline, and at least `CLOSE_FLUSH_MIN` even when draining
            // used it all (a close with no time to spare still exports a collector's answer).
            let floor = Instant::now() + CLOSE_FLUSH_MIN;
            match until {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.max(floor), o.close()).await;
                }
                None => o.close().await,
            }
        }
        inner.balancer.stop();
        inner.pool.close();
        if let Some(rate) = &inner.policies.rate {
            rate.close();
        }
        if let Some(shared) = &inner.policies.shared {
            shared.close();
        }
        inner.dead_letters.close();
        if let Some(c) = &inner.cache {
            c.close(until).await;
        }
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

    /// Forgets what the memory cache holds for a GET of `url` (the Redis second level keeps
    /// it). For the benchmark of a Redis hit.
    #[doc(hidden)]
    pub fn forget_cached_in_memory(&self, url: &str) {
        if let (Some(c), Ok(uri)) = (&self.inner.cache, url.parse::<http::Uri>()) {
            c.forget_in_memory(&uri);
        }
    }

    /// Sends a request.
    ///
    /// # Errors
    /// Any [`ErrorKind`]; input errors are reported before any I/O.
    pub async fn execute(&self, mut req: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        if inner.closed.load(Relaxed) {
            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
        }
        req.options.validate()?;
        self.absolute(&mut req)?;
        // The precedence rule (see `RequestOptions`): an explicit priority replaces the caller's
        // header, which the pool then reads the urgency from like any other.
        if let Some(p) = req.options.priority {
            req.headers.insert(
                header::HeaderName::from_static("priority"),
                p.header_value(),
            );
        }
        // Tracing off costs this branch; a caller's `traceparent` still goes out.
        let span = if let Some(o) = &inner.otel {
            o.start(&mut req)
        } else {
            crate::otel::pass_through(&mut req);
            None
        };
        let letter = inner.dead_letters.pending(&req);
        let m = &inner.metrics;
        let series = m.buckets.series(&req.uri);
        m.in_flight.fetch_add(1, Relaxed);
        let _guard = InFlight(self);
        let start = Instant::now();
        let total = req
            .options
            .timeout
            .or_else(|| ms(inner.cfg.timeouts.total_ms));
        // Bounded by `validate` and the config's bounds; checked all the same.
        let deadline = total.and_then(|t| start.checked_add(t));
        // Boxed: the request state machine is large (TLS connect, retries), and moving it by value
        // into timeout_at and the caller's task costs more than one allocation.
        let attempts = match (&letter, &span) {
            (Some(l), _) => Some(l.attempts.clone()),
            (None, Some(s)) => Some(s.attempts.clone()),
            (None, None) => None,
        };
        let span = span.map(|mut s| {
            if let Some(a) = &attempts {
                s.attempts = a.clone();
            }
            s
        });
        // A fresh stored answer is ready now: the request's future (its size, its two boxes)
        // is not built for it; what follows (metrics, span, dead letter) is the same.
        // So is one from Redis when memory holds nothing: under one timer, without the
        // request's future; whatever else Redis said, the first hop does not ask it again.
        let (early, l2_read) = match self.fresh_hit(&req) {
            cached::Early::Hit(hit) => (Some(Ok(hit)), false),
            cached::Early::Absent(key) => {
                let read = self.l2_read(&key, deadline).await;
                match self.l2_answer(&req, key, read) {
                    cached::L2Early::Hit(hit) => (Some(Ok(hit)), true),
                    cached::L2Early::Late => (
                        Some(Err(error::timeout(
                            ErrorKind::TimeoutTotal,
                            "request",
                            total.map_or(0, millis),
                        ))),
                        true,
                    ),
                    cached::L2Early::Read => (None, true),
                    cached::L2Early::Unread => (None, false),
                }
            }
            cached::Early::Send => (None, false),
        };
        let mut res = if let Some(res) = early {
            res
        } else {
            // `run` is boxed on its own: `counting` keeps room for the future it wraps twice
            // (its argument and the awaited scope), so boxing only the wrapper made a 32 KB box,
            // and a request moved 16 KB, 2 x 8 KB and 32 KB on the way in; now the 16 KB once.
            // The wrapper around the box is a few words: it stays inline (one box per request).
            let run = Box::pin(self.run(req, start, deadline, l2_read));
            let fut = crate::dead_letter::counting(attempts, run);
            match deadline {
                Some(at) => match tokio::time::timeout_at(at, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(error::timeout(
                        ErrorKind::TimeoutTotal,
                        "request",
                        total.map_or(0, millis),
                    )),
                },
                None => fut.await,
            }
        };
        match &mut res {
            Ok(r) => {
                // One clock read for the response's total, the histogram and the rate window.
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(start);
                r.timings.total = elapsed;
                m.record_response(series.as_ref(), r.status.as_u16(), elapsed, now);
            }
            Err(e) => m.record_error(e.kind()),
        }
        if let (Some(s), Some(o)) = (span, &inner.otel) {
            o.finish(s, &res, start.elapsed());
        }
        if let Some(l) = letter {
            inner.dead_letters.offer(l, &res);
        }
        res
    }
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

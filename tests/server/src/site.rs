//! [`Site`]: the test server's endpoints on one address, plus static files, response
//! compression, timeouts, `/healthz`, `/metrics` and a drain on shutdown (`wirecore serve`).
//!
//! The same accept loop, connection code and routes as [`crate::TestServer`]; everything a
//! site adds is off there, so the test server behaves as before.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::body::{Body, RequestGuard};
use crate::conn::{ConnCtx, Phase};
use crate::files::{Files, preferred_coding};
use crate::routes::{self, BoxError, json_response};
use crate::stats::{Counters, RequestLog, Stats};
use crate::{Options, Shared, compress, script, tls};

/// Where a [`Site`]'s certificate comes from.
#[derive(Clone, Debug)]
pub enum SiteTls {
    /// A fresh CA and a leaf for localhost, 127.0.0.1, ::1 and the listen address; the CA is
    /// written to a temp file ([`Site::ca_path`]) for clients to trust.
    Generate,
    /// A PEM certificate chain and its private key.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// PKCS#8, PKCS#1 or SEC1 private key.
        key: PathBuf,
    },
}

/// How a [`Site`] is set up.
#[derive(Clone, Debug)]
pub struct SiteOptions {
    /// Address to listen on (port 0: any free port). Default: 127.0.0.1:8080.
    pub listen: SocketAddr,
    /// TLS with ALPN h2 / http/1.1; `None`: HTTP/1.1 and h2c on plain TCP. Default: `None`.
    pub tls: Option<SiteTls>,
    /// Serve files from this directory; they take precedence over endpoints. Default: none.
    pub dir: Option<PathBuf>,
    /// Index files tried for a directory path. Default: `index.html`.
    pub index: Vec<String>,
    /// `Cache-Control` of file responses. Default: `no-cache` (revalidate with the ETag).
    pub cache_control: Option<String>,
    /// Compress files and endpoint responses by `Accept-Encoding` (zstd, br, gzip). Default: true.
    pub compress: bool,
    /// Serve the test server's endpoints (`/json`, `/sse`, `/delay/MS`, ...). Default: true.
    pub endpoints: bool,
    /// Time a client has to send a request's headers (HTTP/1.1) or finish the TLS handshake.
    /// Default: 10 s.
    pub header_read_timeout: Option<Duration>,
    /// Time a client has to send a request body; then 408. Default: 30 s.
    pub read_timeout: Option<Duration>,
    /// Time a response write may stay blocked on a client that does not read; then the
    /// connection is dropped. Default: 30 s.
    pub write_timeout: Option<Duration>,
    /// Close a connection without a request for this long. Default: 60 s.
    pub idle_timeout: Option<Duration>,
    /// Largest request head (HTTP/1.1: 431 beyond it) or header list (HTTP/2). Default: 16 KiB.
    pub max_header_bytes: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`. Default: 256.
    pub max_concurrent_streams: Option<u32>,
    /// HTTP/2 stream and connection window, in bytes. Default: 4 MiB.
    pub h2_window: u32,
}

impl Default for SiteOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            dir: None,
            index: vec!["index.html".to_owned()],
            cache_control: Some("no-cache".to_owned()),
            compress: true,
            endpoints: true,
            header_read_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_mins(1)),
            max_header_bytes: 16 * 1024,
            max_concurrent_streams: Some(256),
            h2_window: 4 << 20,
        }
    }
}

/// What a site adds to the shared server state.
pub(crate) struct SiteState {
    files: Option<Files>,
    compress: bool,
    endpoints: bool,
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_header_bytes: usize,
    draining: AtomicBool,
    started: Instant,
    /// Responses by status class: 1xx to 5xx, then anything else.
    by_class: [AtomicU64; 6],
}

/// How a drain ended ([`Site::shutdown`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    /// Requests in flight when the drain began.
    pub in_flight_at_start: u64,
    /// Requests still in flight at the deadline (cut off); 0 after a clean drain.
    pub in_flight_at_end: u64,
    /// Connections still open at the deadline.
    pub connections_left: u64,
    /// How long the drain took.
    pub took: Duration,
}

/// A running site. Dropping it stops at once; [`Site::shutdown`] drains first.
pub struct Site {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    ca: Option<tls::TempCa>,
    phase: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// Binds `opts.listen` and starts serving.
    ///
    /// # Errors
    /// The address cannot be bound, the directory is missing, or the certificate or key
    /// cannot be read.
    #[expect(
        clippy::unused_async,
        reason = "it spawns onto the caller's runtime: async says it must run inside one"
    )]
    pub async fn start(opts: SiteOptions) -> io::Result<Site> {
        let files = match &opts.dir {
            Some(dir) => Some(
                Files::new(
                    dir,
                    opts.index.clone(),
                    opts.cache_control.as_deref(),
                    opts.compress,
                )
                .map_err(|e| io::Error::new(e.kind(), format!("--dir {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let (acceptor, ca) = match &opts.tls {
            None => (None, None),
            Some(SiteTls::Generate) => {
                let (cfg, ca) = tls::site_generated(opts.listen.ip())?;
                (Some(TlsAcceptor::from(cfg)), Some(ca))
            }
            Some(SiteTls::Files { cert, key }) => {
                let cfg = tls::site_from_files(cert, key)?;
                (Some(TlsAcceptor::from(cfg)), None)
            }
        };
        let listener = listen(opts.listen)?;
        let addr = listener.local_addr()?;
        let site = SiteState {
            files,
            compress: opts.compress,
            endpoints: opts.endpoints,
            header_read_timeout: opts.header_read_timeout,
            read_timeout: opts.read_timeout,
            write_timeout: opts.write_timeout,
            idle_timeout: opts.idle_timeout,
            max_header_bytes: opts.max_header_bytes.max(8 * 1024),
            draining: AtomicBool::new(false),
            started: Instant::now(),
            by_class: Default::default(),
        };
        let shared = Arc::new(Shared {
            opts: Options {
                max_concurrent_streams: opts.max_concurrent_streams,
                tls: acceptor.is_some(),
                h1_keep_alive: true,
                h2_window: opts.h2_window,
                request_log_capacity: 0,
                plain_addr: None,
                proxies: false,
            },
            stats: Stats::untracked(),
            scripts: script::Scripts::default(),
            log: RequestLog::new(0),
            live: Arc::new(()),
            close_all: watch::Sender::new(0),
            gates: crate::routes::Gates::default(),
            torture: None,
            proxies: None,
            site: Some(site),
            otlp: std::sync::Mutex::default(),
        });
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let tls = acceptor.is_some();
        let tasks = vec![tokio::spawn(crate::conn::accept_loop(
            shared.clone(),
            listener,
            acceptor,
            phase_rx,
        ))];
        Ok(Site {
            shared,
            addr,
            tls,
            ca,
            phase,
            tasks,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR` (`https://localhost:PORT` for a generated certificate
    /// on a loopback address, the name it is valid for everywhere).
    pub fn url(&self) -> String {
        match (&self.ca, self.tls) {
            (Some(_), _) if self.addr.ip().is_loopback() => {
                format!("https://localhost:{}", self.addr.port())
            }
            (_, true) => format!("https://{}", self.addr),
            (_, false) => format!("http://{}", self.addr),
        }
    }

    /// The generated CA certificate (PEM file) to trust, with [`SiteTls::Generate`].
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|c| c.path.as_path())
    }

    /// The startup line: `{"url", "addr", "tls", "ca", "h2c", "dir"}`.
    pub fn info(&self) -> Value {
        let site = self.site();
        json!({
            "url": self.url(),
            "addr": self.addr.to_string(),
            "tls": self.tls,
            "ca": self.ca_path().map(|p| p.display().to_string()),
            "h2c": !self.tls,
            "files": site.files.is_some(),
            "endpoints": site.endpoints,
        })
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.stats.snapshot()
    }

    /// The Prometheus text `/metrics` serves.
    pub fn metrics(&self) -> String {
        metrics(&self.shared)
    }

    fn site(&self) -> &SiteState {
        site_of(&self.shared)
    }

    /// Stops accepting, asks every connection to close after its in-flight requests
    /// (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY), and waits for them up to `deadline`.
    /// `/healthz` answers 503 from now on.
    pub async fn shutdown(self, deadline: Duration) -> Drained {
        let start = Instant::now();
        self.site().draining.store(true, Relaxed);
        let in_flight_at_start = self.counters().requests_in_flight;
        self.phase.send_replace(Phase::Draining);
        let until = start + deadline;
        // Connection tasks hold clones of `live`; polling it is the drain's only signal.
        while Arc::strong_count(&self.shared.live) > 1 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let c = self.counters();
        Drained {
            in_flight_at_start,
            in_flight_at_end: c.requests_in_flight,
            connections_left: (Arc::strong_count(&self.shared.live) - 1) as u64,
            took: start.elapsed(),
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn site_of(shared: &Shared) -> &SiteState {
    shared
        .site
        .as_ref()
        .expect("a Site's shared state always has its SiteState")
}

/// A listener with a deep accept queue, so bursts of thousands of connects do not stall.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(4096)
}

/// Answers one request: `/healthz`, `/metrics`, a file, then an endpoint; compresses and
/// counts the response.
pub(crate) async fn handle(
    ctx: Arc<ConnCtx>,
    guard: RequestGuard,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let site = site_of(&ctx.shared);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let resp = if path == "/healthz" {
        let (code, status) = if site.draining.load(Relaxed) {
            (StatusCode::SERVICE_UNAVAILABLE, "draining")
        } else {
            (StatusCode::OK, "ok")
        };
        json_response(code, &json!({ "status": status })).map(|b| b.with_guard(guard))
    } else if path == "/metrics" {
        let mut r = Response::new(Body::full(metrics(&ctx.shared)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r.map(|b| b.with_guard(guard))
    } else {
        let file = match &site.files {
            Some(files) => files.serve(&parts).await,
            None => None,
        };
        match file {
            Some(r) => r.map(|b| b.with_guard(guard)),
            None if site.endpoints => {
                let accept = parts.headers.get(header::ACCEPT_ENCODING).cloned();
                let mut r = routes::endpoints(ctx.clone(), guard, parts, body).await?;
                if site.compress {
                    compress_endpoint(accept, &mut r).await;
                }
                r
            }
            None => routes::Reject::new(StatusCode::NOT_FOUND, "no such file")
                .into_response()
                .map(|b| b.with_guard(guard)),
        }
    };
    let class = (resp.status().as_u16() / 100) as usize;
    site.by_class[class.saturating_sub(1).min(5)].fetch_add(1, Relaxed);
    Ok(resp)
}

/// Compresses a whole, compressible, uncompressed 200 response of an endpoint.
async fn compress_endpoint(accept: Option<HeaderValue>, resp: &mut Response<Body>) {
    if resp.status() != StatusCode::OK || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return;
    }
    let compressible = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/") && t != "text/event-stream" || t.contains("json"));
    let Some(accept) = accept.filter(|_| compressible) else {
        return;
    };
    let Some(bytes) = resp.body().full_bytes().filter(|b| b.len() >= 256).cloned() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(header::ACCEPT_ENCODING, accept);
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(coding) = preferred_coding(&headers) else {
        return;
    };
    let Ok(encoded) = compress::encode(coding, &bytes).await else {
        return;
    };
    resp.body_mut().set_full(Bytes::from(encoded));
    resp.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.as_str()),
    );
}

/// Prometheus text of the site's counters.
fn metrics(shared: &Shared) -> String {
    let site = site_of(shared);
    let c = shared.stats.snapshot();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "# HELP wirecore_serve_{name} {help}");
        let _ = writeln!(out, "# TYPE wirecore_serve_{name} {kind}");
        let _ = writeln!(out, "wirecore_serve_{name} {value}");
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &format!("{:.3}", site.started.elapsed().as_secs_f64()),
    );
    metric(
        "requests_total",
        "counter",
        "Requests received.",
        &c.requests,
    );
    metric(
        "requests_in_flight",
        "gauge",
        "Requests being answered now.",
        &c.requests_in_flight,
    );
    metric(
        "requests_cancelled_total",
        "counter",
        "Responses the client abandoned before they completed.",
        &c.requests_cancelled,
    );
    metric(
        "connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        &c.connections_accepted,
    );
    metric(
        "connections_active",
        "gauge",
        "TCP connections open now.",
        &c.connections_active,
    );
    metric(
        "h1_connections_total",
        "counter",
        "Connections that spoke HTTP/1.x.",
        &c.h1_connections,
    );
    metric(
        "h2_connections_total",
        "counter",
        "Connections that spoke HTTP/2.",
        &c.h2_connections,
    );
    metric(
        "tls_handshakes_total",
        "counter",
        "Completed TLS handshakes.",
        &c.tls_handshakes,
    );
    metric(
        "tls_handshake_failures_total",
        "counter",
        "Failed TLS handshakes.",
        &c.tls_handshake_failures,
    );
    if let Some(files) = &site.files {
        metric(
            "file_cache_bytes",
            "gauge",
            "File content held in memory.",
            &files.cached_bytes(),
        );
    }
    let _ = writeln!(
        out,
        "# HELP wirecore_serve_responses_total Responses by status class.\n# TYPE wirecore_serve_responses_total counter"
    );
    for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "wirecore_serve_responses_total{{class=\"{class}\"}} {}",
            site.by_class[i].load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP wirecore_serve_draining 1 while shutting down.\n# TYPE wirecore_serve_draining gauge\nwirecore_serve_draining {}",
        u8::from(site.draining.load(Relaxed))
    );
    out
}

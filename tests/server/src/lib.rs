//! The fault-injecting loopback test server every wirecore test suite talks to.
//!
//! [`TestServer::start`] binds ephemeral ports on 127.0.0.1: plain HTTP/1.1 + h2c, TLS (ALPN
//! h2/http/1.1), TLS with an untrusted certificate, a control port, a DNS responder, a port
//! that never completes a connect and one that never answers. Counters are exact; control
//! traffic has its own port so it never shows in them.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod body;
mod compress;
mod conn;
mod control;
mod dns;
mod files;
mod nginx;
mod proxy;
mod routes;
mod script;
mod site;
mod socks;
mod stats;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use crate::dns::{DnsMode, DnsServer};
pub use crate::nginx::TestNginx;
pub use crate::proxy::{ProxyCounters, TestProxy};
pub use crate::script::{Action, Reply};
pub use crate::site::{Drained, Site, SiteOptions, SiteTls};
pub use crate::socks::{SocksCounters, TestSocks};
pub use crate::stats::{Counters, RecordedRequest};

use crate::conn::Phase;
use crate::stats::{RequestLog, Stats};

/// How a [`TestServer`] is set up. `Options::default()` suits most tests.
#[derive(Clone, Debug)]
pub struct Options {
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`. Default: `None`, no limit advertised.
    pub max_concurrent_streams: Option<u32>,
    /// Start the TLS and bad-TLS ports. Default: true.
    pub tls: bool,
    /// Keep HTTP/1.1 connections alive between requests. Default: true.
    pub h1_keep_alive: bool,
    /// HTTP/2 stream and connection window, in bytes. Default: 4 MiB.
    pub h2_window: u32,
    /// Requests kept in the log; 0 disables logging. Default: 10,000.
    pub request_log_capacity: usize,
    /// Where the plain port listens (e.g. `127.0.0.2:P` beside `127.0.0.3:P`: the addresses
    /// of one DNS name). Default: `None`, 127.0.0.1 with a kernel-chosen port.
    pub plain_addr: Option<SocketAddr>,
    /// Start the proxies of [`Proxies`] (the binary does; Rust tests start their own).
    /// Default: false.
    pub proxies: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_concurrent_streams: None,
            tls: true,
            h1_keep_alive: true,
            h2_window: 4 << 20,
            request_log_capacity: 10_000,
            plain_addr: None,
            proxies: false,
        }
    }
}

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    pub(crate) stats: Stats,
    pub(crate) scripts: script::Scripts,
    pub(crate) log: RequestLog,
    /// Cloned into every connection task; graceful shutdown waits for the clones to go.
    pub(crate) live: Arc<()>,
    /// Bumped to close every open connection gracefully.
    pub(crate) close_all: watch::Sender<u64>,
    /// `/gate` counts, by key.
    pub(crate) gates: routes::Gates,
    /// Files, timeouts and metrics of a [`Site`]; `None` on the test server.
    pub(crate) site: Option<site::SiteState>,
    /// The torture port (tests/torture), counted and reset with the rest; `None` on a [`Site`].
    pub(crate) torture: Option<wirecore_torture::Torture>,
    /// The proxies, with `Options::proxies`; reset with the rest.
    pub(crate) proxies: Option<Proxies>,
    /// OTLP/HTTP JSON exports received (`POST /v1/traces`, `/v1/metrics`), oldest first.
    pub(crate) otlp: std::sync::Mutex<Vec<Value>>,
}

/// User name and password the `proxy_auth` and `socks5_auth` proxies of [`Proxies`] require.
pub const PROXY_CREDENTIALS: &str = "wirecore:s3cret";

/// Proxies for the other languages' suites (the binary starts them; see `Options::proxies`):
/// an HTTP proxy and a SOCKS5 proxy, each without and with authentication
/// ([`PROXY_CREDENTIALS`]). Their counters are `GET /_control/proxies`.
#[derive(Debug)]
pub struct Proxies {
    /// HTTP proxy, no authentication.
    pub http: TestProxy,
    /// HTTP proxy requiring `Proxy-Authorization: Basic` with [`PROXY_CREDENTIALS`].
    pub http_auth: TestProxy,
    /// SOCKS5 proxy, no authentication.
    pub socks5: TestSocks,
    /// SOCKS5 proxy requiring user name and password [`PROXY_CREDENTIALS`].
    pub socks5_auth: TestSocks,
}

impl Proxies {
    async fn start() -> std::io::Result<Proxies> {
        Ok(Proxies {
            http: TestProxy::start(None).await?,
            http_auth: TestProxy::start(Some(PROXY_CREDENTIALS)).await?,
            socks5: TestSocks::start(None).await?,
            socks5_auth: TestSocks::start(Some(PROXY_CREDENTIALS)).await?,
        })
    }

    fn reset(&self) {
        self.http.reset();
        self.http_auth.reset();
        self.socks5.reset();
        self.socks5_auth.reset();
    }

    /// `{"proxy":{tunnels,forwarded,rejected},"proxy_auth":…,"socks5":{tunnels,rejected,failed,targets},"socks5_auth":…}`
    /// (named as in the info line).
    pub(crate) fn counters(&self) -> Value {
        json!({
            "proxy": self.http.counters(),
            "proxy_auth": self.http_auth.counters(),
            "socks5": self.socks5.counters(),
            "socks5_auth": self.socks5_auth.counters(),
        })
    }
}

impl Shared {
    fn reset(&self) {
        self.stats.reset();
        if let Some(t) = &self.torture {
            t.reset();
        }
        if let Some(p) = &self.proxies {
            p.reset();
        }
        self.scripts.clear();
        self.log.clear();
        self.gates.clear();
        self.otlp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The OTLP exports received so far: `{"path": "/v1/traces", "body": {...}}` each.
    pub(crate) fn otlp(&self) -> Value {
        Value::Array(
            self.otlp
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    /// The counters, the torture port's included.
    pub(crate) fn counters(&self) -> Counters {
        let mut c = self.stats.snapshot();
        if let Some(t) = &self.torture {
            let t = t.counters();
            c.torture_connections = t.connections;
            c.torture_requests = t.requests;
        }
        c
    }

    fn close_connections(&self) {
        self.close_all.send_modify(|n| *n += 1);
    }
}

/// A running test server. Dropping it stops everything at once; [`TestServer::shutdown`]
/// lets in-flight requests finish first.
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// More plain ports of the same server (`http2`, `http3` in the info line).
    extra_addrs: [SocketAddr; 2],
    tls_addr: Option<SocketAddr>,
    bad_tls_addr: Option<SocketAddr>,
    mtls_addr: Option<SocketAddr>,
    control_addr: SocketAddr,
    silent_addr: SocketAddr,
    blackhole_addr: SocketAddr,
    pki: Option<tls::Pki>,
    dns: DnsServer,
    phase: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<()>>,
    /// The server's own runtime, when started with [`TestServer::start_blocking`].
    runtime: Option<tokio::runtime::Runtime>,
    /// Keeps the blackhole's listener and the connections filling its queue alive.
    _blackhole: (socket2::Socket, Vec<TcpStream>),
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("tls_addr", &self.tls_addr)
            .field("control_addr", &self.control_addr)
            .finish_non_exhaustive()
    }
}

async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

impl TestServer {
    /// Starts every port on 127.0.0.1 with kernel-chosen port numbers.
    pub async fn start(opts: Options) -> std::io::Result<TestServer> {
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let shared = Arc::new(Shared {
            stats: Stats::default(),
            scripts: script::Scripts::default(),
            log: RequestLog::new(opts.request_log_capacity),
            live: Arc::new(()),
            close_all: watch::Sender::new(0),
            gates: routes::Gates::default(),
            torture: Some(wirecore_torture::Torture::start().await?),
            proxies: if opts.proxies {
                Some(Proxies::start().await?)
            } else {
                None
            },
            opts,
            site: None,
            otlp: std::sync::Mutex::default(),
        });
        let mut tasks = Vec::new();

        let plain = match shared.opts.plain_addr {
            Some(a) => TcpListener::bind(a).await?,
            None => bind().await?,
        };
        let addr = plain.local_addr()?;
        tasks.push(tokio::spawn(conn::accept_loop(
            shared.clone(),
            plain,
            None,
            phase_rx.clone(),
        )));

        // More plain ports sharing routes, scripts and counters: several endpoints of one
        // load-balanced service in a scenario.
        let mut extra_addrs = [addr; 2];
        for a in &mut extra_addrs {
            let listener = bind().await?;
            *a = listener.local_addr()?;
            tasks.push(tokio::spawn(conn::accept_loop(
                shared.clone(),
                listener,
                None,
                phase_rx.clone(),
            )));
        }

        let (pki, tls_addrs) = if shared.opts.tls {
            let pki = tls::Pki::generate()?;
            let mut addrs = Vec::new();
            for cfg in [pki.good.clone(), pki.bad.clone(), pki.mtls.clone()] {
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                addrs.push(addr);
                let acceptor = TlsAcceptor::from(cfg);
                tasks.push(tokio::spawn(conn::accept_loop(
                    shared.clone(),
                    listener,
                    Some(acceptor.clone()),
                    phase_rx.clone(),
                )));
                // TLS URLs say "localhost", which often resolves to ::1 first: listen there
                // too when the port is free, so clients that try only one address work.
                if let Ok(v6) =
                    TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, addr.port())).await
                {
                    tasks.push(tokio::spawn(conn::accept_loop(
                        shared.clone(),
                        v6,
                        Some(acceptor),
                        phase_rx.clone(),
                    )));
                }
            }
            (Some(pki), addrs)
        } else {
            (None, Vec::new())
        };

        let silent = bind().await?;
        let silent_addr = silent.local_addr()?;
        tasks.push(tokio::spawn(conn::silent_loop(
            shared.clone(),
            silent,
            phase_rx.clone(),
        )));

        let (blackhole, blackhole_addr, fillers) = conn::blackhole().await?;
        let dns = DnsServer::start(&phase_rx).await?;

        let control_listener = bind().await?;
        let control_addr = control_listener.local_addr()?;
        let mut server = TestServer {
            shared: shared.clone(),
            addr,
            extra_addrs,
            tls_addr: tls_addrs.first().copied(),
            bad_tls_addr: tls_addrs.get(1).copied(),
            mtls_addr: tls_addrs.get(2).copied(),
            control_addr,
            silent_addr,
            blackhole_addr,
            pki,
            dns: dns.clone(),
            phase,
            tasks,
            runtime: None,
            _blackhole: (blackhole, fillers),
        };
        let control = Arc::new(control::Control {
            shared,
            dns,
            info: server.info(),
        });
        server.tasks.push(tokio::spawn(control::control_loop(
            control,
            control_listener,
            phase_rx,
        )));
        Ok(server)
    }

    /// Starts the server on a runtime of its own (two worker threads), for synchronous tests
    /// or tests whose runtime ends before the server should.
    pub fn start_blocking(opts: Options) -> std::io::Result<TestServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wirecore-testserver")
            .enable_all()
            .build()?;
        let mut server = runtime.block_on(Self::start(opts))?;
        server.runtime = Some(runtime);
        Ok(server)
    }

    /// The plain port: HTTP/1.1, and HTTP/2 with prior knowledge (h2c), told apart per connection.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}` on the plain port.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}` on the `i`-th extra plain port (0 or 1: `http2`, `http3`):
    /// the same server (routes, scripts, counters) on another address.
    ///
    /// # Panics
    ///
    /// If `i` is not 0 or 1.
    pub fn extra_url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.extra_addrs[i])
    }

    /// The TLS port (ALPN h2 and http/1.1).
    ///
    /// # Panics
    ///
    /// If the server was started with `tls: false`.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr.expect("TestServer started without TLS")
    }

    /// `https://localhost:PORT{path}` on the TLS port; trust [`TestServer::ca_pem`] to use it.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls_addr().port())
    }

    /// The TLS port whose certificate is signed by a CA nobody trusts.
    ///
    /// # Panics
    ///
    /// If the server was started with `tls: false`.
    pub fn bad_tls_addr(&self) -> SocketAddr {
        self.bad_tls_addr.expect("TestServer started without TLS")
    }

    /// `https://localhost:PORT{path}` on the bad-TLS port: every verifying client must fail.
    pub fn bad_tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.bad_tls_addr().port())
    }

    /// The TLS port that requires a client certificate signed by the CA
    /// ([`TestServer::client_cert_pem`] is one).
    ///
    /// # Panics
    ///
    /// If the server was started with `tls: false`.
    pub fn mtls_addr(&self) -> SocketAddr {
        self.mtls_addr.expect("TestServer started without TLS")
    }

    /// `https://localhost:PORT{path}` on the mTLS port.
    pub fn mtls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.mtls_addr().port())
    }

    /// A client certificate (PEM) the mTLS port accepts.
    pub fn client_cert_pem(&self) -> &str {
        &self.pki().client_cert_pem
    }

    /// The PKCS#8 private key (PEM) of [`TestServer::client_cert_pem`].
    pub fn client_key_pem(&self) -> &str {
        &self.pki().client_key_pem
    }

    /// Temp files holding the client certificate and its key, in that order.
    pub fn client_cert_paths(&self) -> (&Path, &Path) {
        let pki = self.pki();
        (&pki.client_cert_path, &pki.client_key_path)
    }

    fn pki(&self) -> &tls::Pki {
        self.pki.as_ref().expect("TestServer started without TLS")
    }

    /// The PEM of the CA that signed the TLS port's certificate.
    ///
    /// # Panics
    ///
    /// If the server was started with `tls: false`.
    pub fn ca_pem(&self) -> &str {
        &self
            .pki
            .as_ref()
            .expect("TestServer started without TLS")
            .ca_pem
    }

    /// A temp file holding [`TestServer::ca_pem`]; removed when the server is dropped.
    ///
    /// # Panics
    ///
    /// If the server was started with `tls: false`.
    pub fn ca_path(&self) -> &Path {
        &self
            .pki
            .as_ref()
            .expect("TestServer started without TLS")
            .ca_path
    }

    /// The control port (see the `control` module docs); its traffic is never counted.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// An address whose TCP connect never completes (the listener's accept queue is full).
    pub fn blackhole_addr(&self) -> SocketAddr {
        self.blackhole_addr
    }

    /// An address that accepts TCP connections and never sends a byte.
    pub fn silent_addr(&self) -> SocketAddr {
        self.silent_addr
    }

    /// The proxies, when started with `Options::proxies`.
    pub fn proxies(&self) -> Option<&Proxies> {
        self.shared.proxies.as_ref()
    }

    /// The DNS responder.
    pub fn dns(&self) -> &DnsServer {
        &self.dns
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// Polls the counters every 5 ms until `done` holds, for events the server sees
    /// asynchronously (a client's close, a cancellation). Returns the last snapshot.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&Counters) -> bool) -> Counters {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.counters();
            if done(&c) || tokio::time::Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Zeroes the counters and DNS query counts, drops queued scripts, empties the log.
    pub fn reset(&self) {
        self.shared.reset();
        self.dns.reset_queries();
    }

    /// Closes every open connection gracefully: idle HTTP/1 connections at once, busy ones
    /// after their response, HTTP/2 with GOAWAY. Pooled clients then hold stale connections.
    pub fn close_connections(&self) {
        self.shared.close_connections();
    }

    /// Queues `replies` for the next requests to `path` (or to `path?query`, matched exactly).
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.shared.scripts.set(path, replies);
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.snapshot()
    }

    /// The OTLP/HTTP JSON exports this server received (`POST /v1/traces` and `/v1/metrics` on
    /// its plain port), oldest first: `[{"path": "/v1/traces", "body": {...}}, ...]`.
    pub fn otlp(&self) -> Value {
        self.shared.otlp()
    }

    /// The addresses as the binary prints them.
    pub fn info(&self) -> Value {
        let tls = |f: &dyn Fn() -> String| self.pki.as_ref().map(|_| f());
        json!({
            "http": format!("http://{}", self.addr),
            "http2": self.extra_url(0, ""),
            "http3": self.extra_url(1, ""),
            "https": tls(&|| self.tls_url("")),
            "bad_tls": tls(&|| self.bad_tls_url("")),
            "control": format!("http://{}", self.control_addr),
            "mtls": tls(&|| self.mtls_url("")),
            "ca": self.pki.as_ref().map(|p| p.ca_path.display().to_string()),
            "client_cert": self.pki.as_ref().map(|p| p.client_cert_path.display().to_string()),
            "client_key": self.pki.as_ref().map(|p| p.client_key_path.display().to_string()),
            "dns": self.dns.addr().to_string(),
            "blackhole": self.blackhole_addr.to_string(),
            "silent": self.silent_addr.to_string(),
            "torture": self.shared.torture.as_ref().map(wirecore_torture::Torture::url),
            "proxy": self.shared.proxies.as_ref().map(|p| p.http.addr().to_string()),
            "proxy_auth": self.shared.proxies.as_ref().map(|p| p.http_auth.addr().to_string()),
            "socks5": self.shared.proxies.as_ref().map(|p| p.socks5.addr().to_string()),
            "socks5_auth": self.shared.proxies.as_ref().map(|p| p.socks5_auth.addr().to_string()),
            "proxy_credentials": self.shared.proxies.as_ref().map(|_| PROXY_CREDENTIALS),
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to 2 s), then stops.
    pub async fn shutdown(self) {
        self.phase.send_replace(Phase::Draining);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.shared.live) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Dropping `phase` ends every connection task; the accept loops are aborted here.
        for t in &self.tasks {
            t.abort();
        }
        if let Some(rt) = self.runtime.take() {
            // Never blocks, so dropping the server inside async code is fine.
            rt.shutdown_background();
        }
    }
}

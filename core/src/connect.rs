//! The connector: DNS cache → TCP (Happy Eyeballs) → TLS (rustls, ALPN).
//!
//! Each phase has its own deadline and its own error code, and reports its duration so a
//! response can say where its time went.

mod dns;
mod proxy;
mod socks;
mod tcp;
mod tls;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::metrics::Metrics;
use crate::origin::Origin;

pub(crate) use dns::DnsCache;
pub(crate) use proxy::{Proxy, check_url as check_proxy_url};

/// A connected byte stream, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// What a new connection cost, phase by phase.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnectTimings {
    pub(crate) dns: Duration,
    pub(crate) connect: Duration,
    pub(crate) tls: Duration,
}

pub(crate) struct Connected {
    pub(crate) stream: Stream,
    pub(crate) h2: bool,
    pub(crate) timings: ConnectTimings,
    /// What the TLS handshake agreed on (`None` over plain TCP).
    pub(crate) tls: Option<Arc<crate::response::TlsInfo>>,
}

#[derive(Clone)]
pub(crate) struct Connector {
    dns: DnsCache,
    tcp: crate::config::TcpConfig,
    tls: Option<tokio_rustls::TlsConnector>,
    connect_ms: u64,
    tls_ms: u64,
    pub(crate) prior_knowledge: bool,
    proxies: Arc<proxy::Proxies>,
    /// `dns.overrides`, keys lowercased.
    overrides: Arc<std::collections::HashMap<String, std::net::IpAddr>>,
    unix: Option<Arc<std::path::Path>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("dns", &self.dns)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let tls = tls::client_config(&cfg.tls, cfg.http2.enabled)?;
        Ok(Self {
            dns: DnsCache::new(&cfg.dns, metrics)?,
            tcp: cfg.tcp.clone(),
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(tls))),
            connect_ms: cfg.timeouts.connect_ms,
            tls_ms: cfg.timeouts.tls_handshake_ms,
            prior_knowledge: cfg.http2.prior_knowledge,
            proxies: Arc::new(proxy::Proxies::new(&cfg.proxy, &|k| std::env::var(k).ok())?),
            overrides: Arc::new(
                cfg.dns
                    .overrides
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.parse().ok()?)))
                    .collect(),
            ),
            unix: cfg
                .unix_socket
                .as_deref()
                .map(|p| Arc::from(std::path::Path::new(p))),
        })
    }

    /// The DNS cache every connection resolves through.
    pub(crate) fn dns(&self) -> &DnsCache {
        &self.dns
    }

    /// Resolves, connects (within `timeout`, else `timeouts.connect_ms`) and handshakes.
    pub(crate) async fn connect(
        &self,
        origin: &Origin,
        timeout: Option<Duration>,
    ) -> Result<Connected, Error> {
        let connect_ms = timeout.map_or(self.connect_ms, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
        });
        if let Some(path) = &self.unix {
            return self.connect_unix(path, origin, connect_ms).await;
        }
        let via = self.proxies.for_origin(origin);
        let (host, port) = via.map_or((origin.host.as_str(), origin.port), |p| {
            (p.host.as_str(), p.port)
        });
        let t0 = Instant::now();
        let addrs = self.resolve(host, port).await?;
        // Through `socks5://` the client resolves the origin and sends an address; through
        // `socks5h://` the proxy resolves it (a `dns.overrides` entry still pins it here).
        let socks_targets = match via.map(|p| p.kind) {
            Some(proxy::Kind::Socks5 { remote_dns }) => {
                let pinned = self.fixed(&origin.host, origin.port);
                let literal = socks::ip_literal(&origin.host);
                match (pinned.or(literal), remote_dns) {
                    (Some(ip), _) => Some(Arc::from([ip])),
                    (None, true) => None,
                    (None, false) => Some(self.dns.resolve(&origin.host).await?),
                }
            }
            _ => None,
        };
        let dns = t0.elapsed();
        let t1 = Instant::now();
        // Through a proxy, the CONNECT exchange or the SOCKS5 handshake is part of connecting.
        let dial = async {
            match via {
                Some(p) if matches!(p.kind, proxy::Kind::Socks5 { .. }) => {
                    self.socks_dial(&addrs, p, origin, socks_targets.as_deref())
                        .await
                }
                Some(p) if origin.https => {
                    let tcp = self.dial(&addrs, port, via, origin).await?;
                    proxy::tunnel(tcp, p, origin).await
                }
                _ => self.dial(&addrs, port, via, origin).await,
            }
        };
        let tcp = tokio::time::timeout(Duration::from_millis(connect_ms), dial)
            .await
            .map_err(|_| {
                crate::error::timeout(
                    ErrorKind::TimeoutConnect,
                    &format!("connecting to {}", origin.key),
                    connect_ms,
                )
            })??;
        let connect = t1.elapsed();
        if !origin.https {
            return Ok(Connected {
                stream: Stream::Plain(tcp),
                // A forwarding proxy speaks HTTP/1.1 to the client; a SOCKS5 tunnel carries
                // whatever the origin speaks.
                h2: self.prior_knowledge && via.is_none_or(|p| p.kind != proxy::Kind::Http),
                timings: ConnectTimings {
                    dns,
                    connect,
                    tls: Duration::ZERO,
                },
                tls: None,
            });
        }
        let t2 = Instant::now();
        let Some(tls) = &self.tls else {
            return Err(Error::new(ErrorKind::Tls, "TLS is not configured"));
        };
        let stream = tls::handshake(tls, &origin.host, tcp, self.tls_ms, &origin.key).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let info = tls::info(&stream, &origin.host);
        Ok(Connected {
            stream: Stream::Tls(Box::new(stream)),
            h2,
            timings: ConnectTimings {
                dns,
                connect,
                tls: t2.elapsed(),
            },
            tls: Some(Arc::new(info)),
        })
    }
}

impl Connector {
    /// A `dns.overrides` entry for `host` (`host:port` first).
    fn fixed(&self, host: &str, port: u16) -> Option<std::net::IpAddr> {
        self.overrides
            .get(&format!("{host}:{port}"))
            .or_else(|| self.overrides.get(host))
            .copied()
    }

    /// The addresses of `host`: a `dns.overrides` entry, else the DNS cache.
    async fn resolve(&self, host: &str, port: u16) -> Result<Arc<[std::net::IpAddr]>, Error> {
        match self.fixed(host, port) {
            Some(ip) => Ok(Arc::from([ip])),
            None => self.dns.resolve(host).await,
        }
    }

    /// A TCP connection to `addrs` (the origin's, or the proxy's when `via` is set).
    async fn dial(
        &self,
        addrs: &[std::net::IpAddr],
        port: u16,
        via: Option<&Arc<Proxy>>,
        origin: &Origin,
    ) -> Result<TcpStream, Error> {
        tcp::connect(addrs, port, &self.tcp)
            .await
            .map_err(|e| match via {
                Some(p) => Error::new(
                    ErrorKind::Connect,
                    format!("cannot connect to proxy {} for {}", p.key, origin.key),
                )
                .with_source(e),
                None => Error::new(
                    ErrorKind::Connect,
                    format!("cannot connect to {}", origin.key),
                )
                .with_source(e),
            })
    }

    /// A SOCKS5 tunnel to `origin` through `proxy` (at `proxy_addrs`): to each of `targets`
    /// in turn while the proxy reports it unreachable, or to the origin's name when `targets`
    /// is `None` (`socks5h://`). Each try is a new connection to the proxy.
    async fn socks_dial(
        &self,
        proxy_addrs: &[std::net::IpAddr],
        proxy: &Arc<Proxy>,
        origin: &Origin,
        targets: Option<&[std::net::IpAddr]>,
    ) -> Result<TcpStream, Error> {
        let targets: Vec<socks::Target<'_>> = match targets {
            Some(ips) => ips
                .iter()
                .map(|ip| socks::Target::Addr(std::net::SocketAddr::new(*ip, origin.port)))
                .collect(),
            None => vec![socks::Target::Name(&origin.host, origin.port)],
        };
        let mut last = None;
        for target in targets {
            let mut tcp = self
                .dial(proxy_addrs, proxy.port, Some(proxy), origin)
                .await?;
            match socks::connect(&mut tcp, proxy, target).await {
                Ok(()) => return Ok(tcp),
                Err(f) if f.unreachable() => last = Some(f.error),
                Err(f) => return Err(f.error),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(
                ErrorKind::Connect,
                format!("no address to reach {} through {}", origin.key, proxy.key),
            )
        }))
    }

    async fn connect_unix(
        &self,
        path: &std::path::Path,
        origin: &Origin,
        connect_ms: u64,
    ) -> Result<Connected, Error> {
        if origin.https {
            return Err(Error::new(
                ErrorKind::Connect,
                format!("unix_socket carries http:// URLs only, not {}", origin.key),
            ));
        }
        let t0 = Instant::now();
        let s = tokio::time::timeout(Duration::from_millis(connect_ms), UnixStream::connect(path))
            .await
            .map_err(|_| {
                crate::error::timeout(
                    ErrorKind::TimeoutConnect,
                    &format!("connecting to unix socket {}", path.display()),
                    connect_ms,
                )
            })?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Connect,
                    format!("cannot connect to unix socket {}", path.display()),
                )
                .with_source(e)
            })?;
        Ok(Connected {
            stream: Stream::Unix(s),
            h2: self.prior_knowledge,
            timings: ConnectTimings {
                dns: Duration::ZERO,
                connect: t0.elapsed(),
                tls: Duration::ZERO,
            },
            tls: None,
        })
    }

    /// The forwarding proxy of a plain-HTTP origin: requests to it take the absolute form
    /// (never through a SOCKS5 proxy, a tunnel).
    pub(crate) fn http_proxy(&self, origin: &Origin) -> Option<&Proxy> {
        if origin.https {
            return None;
        }
        self.proxies
            .for_origin(origin)
            .filter(|p| p.kind == proxy::Kind::Http)
            .map(|p| &**p)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

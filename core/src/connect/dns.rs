//! DNS cache in front of hickory-resolver.
//!
//! Honours record TTLs (clamped), keeps at most `cache_size` names (LRU), refreshes a hot entry in
//! the background before it expires, serves a stale entry when the resolver fails, and remembers
//! failures for the negative TTL. hickory's own cache is off so the TTLs seen here are the server's.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use lru::LruCache;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

use crate::config::DnsConfig;
use crate::error::{Error, ErrorKind};
use crate::metrics::Metrics;

#[derive(Clone)]
enum Entry {
    Found {
        addrs: Arc<[IpAddr]>,
        expires: Instant,
        ttl: Duration,
        refreshing: bool,
    },
    Missing {
        expires: Instant,
        why: Arc<str>,
    },
}

/// A shared, bounded DNS cache.
#[derive(Clone)]
pub(crate) struct DnsCache {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: DnsConfig,
    resolver: Option<TokioResolver>,
    cache: Option<Mutex<LruCache<String, Entry>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for DnsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsCache")
            .field("cache_size", &self.inner.cfg.cache_size)
            .finish_non_exhaustive()
    }
}

enum Lookup {
    Found(Vec<IpAddr>, Duration),
    Missing(Option<Duration>, String),
    Failed(String),
}

impl DnsCache {
    pub(crate) fn new(cfg: &DnsConfig, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let resolver = build_resolver(cfg)?;
        let cache = NonZeroUsize::new(cfg.cache_size).map(|n| Mutex::new(LruCache::new(n)));
        Ok(Self {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                resolver,
                cache,
                metrics,
            }),
        })
    }

    /// Addresses of `host`, from the cache when fresh.
    pub(crate) async fn resolve(&self, host: &str) -> Result<Arc<[IpAddr]>, Error> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Arc::from([ip]));
        }
        let inner = &self.inner;
        let m = &inner.metrics.dns;
        let mut stale: Option<Arc<[IpAddr]>> = None;
        if let Some(cache) = &inner.cache {
            let now = Instant::now();
            let mut c = cache.lock().unwrap_or_else(PoisonError::into_inner);
            match c.get_mut(host) {
                Some(Entry::Found {
                    addrs,
                    expires,
                    ttl,
                    refreshing,
                }) if *expires > now => {
                    m.hits.fetch_add(1, Relaxed);
                    let left = *expires - now;
                    let pct = u32::from(inner.cfg.refresh_before_expiry_percent);
                    if pct > 0 && !*refreshing && left < *ttl / 100 * pct {
                        *refreshing = true;
                        let this = self.clone();
                        let name = host.to_owned();
                        tokio::spawn(async move { this.refresh(name).await });
                    }
                    return Ok(addrs.clone());
                }
                Some(Entry::Missing { expires, why }) if *expires > now => {
                    m.negative_hits.fetch_add(1, Relaxed);
                    return Err(dns_error(host, why));
                }
                Some(Entry::Found { addrs, expires, .. })
                    if now.duration_since(*expires).as_millis()
                        < u128::from(inner.cfg.serve_stale_ms) =>
                {
                    stale = Some(addrs.clone());
                }
                _ => {}
            }
        }
        m.misses.fetch_add(1, Relaxed);
        match self.lookup(host).await {
            Lookup::Found(addrs, ttl) => {
                let addrs: Arc<[IpAddr]> = Arc::from(addrs);
                self.store(
                    host,
                    Entry::Found {
                        addrs: addrs.clone(),
                        expires: expires_in(ttl),
                        ttl,
                        refreshing: false,
                    },
                );
                Ok(addrs)
            }
            Lookup::Missing(ttl, why) => {
                m.failures.fetch_add(1, Relaxed);
                let cap = Duration::from_millis(inner.cfg.negative_ttl_ms);
                let ttl = ttl.map_or(cap, |t| t.min(cap));
                if !ttl.is_zero() {
                    self.store(
                        host,
                        Entry::Missing {
                            expires: expires_in(ttl),
                            why: Arc::from(why.as_str()),
                        },
                    );
                }
                Err(dns_error(host, &why))
            }
            Lookup::Failed(why) => {
                m.failures.fetch_add(1, Relaxed);
                if let Some(addrs) = stale {
                    m.stale_served.fetch_add(1, Relaxed);
                    // Try the resolver again after a short pause, not on every request.
                    let pause = Duration::from_millis(inner.cfg.min_ttl_ms.max(1000));
                    self.store(
                        host,
                        Entry::Found {
                            addrs: addrs.clone(),
                            expires: expires_in(pause),
                            ttl: pause,
                            refreshing: false,
                        },
                    );
                    return Ok(addrs);
                }
                Err(dns_error(host, &why))
            }
        }
    }

    /// Addresses of `host` as `resolve` finds them, and when the cached answer expires (`None`
    /// when nothing is cached: an address literal, or no cache).
    pub(crate) async fn resolve_expiring(
        &self,
        host: &str,
    ) -> Result<(Arc<[IpAddr]>, Option<Instant>), Error> {
        let addrs = self.resolve(host).await?;
        let expires = self.inner.cache.as_ref().and_then(|cache| {
            match cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .peek(host)
            {
                Some(Entry::Found { expires, .. }) => Some(*expires),
                _ => None,
            }
        });
        Ok((addrs, expires))
    }

    async fn refresh(&self, host: String) {
        self.inner.metrics.dns.refreshes.fetch_add(1, Relaxed);
        match self.lookup(&host).await {
            Lookup::Found(addrs, ttl) => {
                tracing::debug!(
                    event = "dns_refresh",
                    host = &*host,
                    addresses = addrs.len(),
                    ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                    "DNS entry refreshed"
                );
                self.store(
                    &host,
                    Entry::Found {
                        addrs: Arc::from(addrs),
                        expires: expires_in(ttl),
                        ttl,
                        refreshing: false,
                    },
                );
            }
            // Keep the current entry; it will expire and then be served stale if need be.
            Lookup::Missing(..) | Lookup::Failed(_) => {
                tracing::debug!(
                    event = "dns_refresh_failed",
                    host = &*host,
                    "DNS refresh failed; the entry is kept"
                );
                if let Some(cache) = &self.inner.cache {
                    let mut c = cache.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(Entry::Found { refreshing, .. }) = c.get_mut(&host) {
                        *refreshing = false;
                    }
                }
            }
        }
    }

    fn store(&self, host: &str, e: Entry) {
        if let Some(cache) = &self.inner.cache {
            cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(host.to_owned(), e);
        }
    }

    fn clamp(&self, ttl: Duration) -> Duration {
        let c = &self.inner.cfg;
        ttl.clamp(
            Duration::from_millis(c.min_ttl_ms),
            Duration::from_millis(c.max_ttl_ms),
        )
    }

    async fn lookup(&self, host: &str) -> Lookup {
        let Some(resolver) = &self.inner.resolver else {
            return self.lookup_system(host).await;
        };
        // A trailing dot makes the name absolute, so search domains are not tried.
        let fqdn = if host.ends_with('.') {
            host.to_owned()
        } else {
            format!("{host}.")
        };
        match resolver.lookup_ip(fqdn.as_str()).await {
            Ok(found) => {
                let ttl = found
                    .as_lookup()
                    .answers()
                    .iter()
                    .map(|r| r.ttl)
                    .min()
                    .unwrap_or(0);
                let addrs: Vec<IpAddr> = found.iter().collect();
                if addrs.is_empty() {
                    return Lookup::Missing(None, "no addresses".to_owned());
                }
                Lookup::Found(addrs, self.clamp(Duration::from_secs(u64::from(ttl))))
            }
            Err(e) => match &e {
                NetError::Dns(DnsError::NoRecordsFound(nr)) => Lookup::Missing(
                    nr.negative_ttl.map(|t| Duration::from_secs(u64::from(t))),
                    e.to_string(),
                ),
                _ => Lookup::Failed(e.to_string()),
            },
        }
    }

    /// getaddrinfo, for machines without a readable resolv.conf.
    async fn lookup_system(&self, host: &str) -> Lookup {
        match tokio::net::lookup_host((host, 0)).await {
            Ok(it) => {
                let mut addrs: Vec<IpAddr> = it.map(|a: SocketAddr| a.ip()).collect();
                addrs.dedup();
                if addrs.is_empty() {
                    Lookup::Missing(None, "no addresses".to_owned())
                } else {
                    Lookup::Found(addrs, self.clamp(Duration::from_secs(30)))
                }
            }
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }
}

/// When an entry stored now with `ttl` expires. TTLs are clamped by the validated config; a
/// far future stands for "never" should one still not fit.
fn expires_in(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_hours(30 * 365 * 24))
}

fn dns_error(host: &str, why: &str) -> Error {
    Error::new(ErrorKind::Dns, format!("cannot resolve {host}: {why}"))
}

fn build_resolver(cfg: &DnsConfig) -> Result<Option<TokioResolver>, Error> {
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.timeout = Duration::from_millis(cfg.query_timeout_ms.max(1));
    opts.attempts = 1;
    opts.use_hosts_file = if cfg.use_hosts_file {
        ResolveHosts::Always
    } else {
        ResolveHosts::Never
    };
    let builder = if cfg.nameservers.is_empty() {
        match TokioResolver::builder_tokio() {
            Ok(b) => b,
            // No usable resolv.conf: fall back to getaddrinfo.
            Err(_) => return Ok(None),
        }
    } else {
        let servers = cfg
            .nameservers
            .iter()
            .map(|s| {
                let addr: SocketAddr = s
                    .parse()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| crate::error::config(format!("dns.nameservers: {s:?}")))?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                Ok(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder
        .with_options(opts)
        .build()
        .map(Some)
        .map_err(|e| crate::error::config(format!("dns: cannot build resolver: {e}")))
}

//! Load balancing over the endpoints of a named service (`Config.services`).
//!
//! A request to `http://NAME/path` (or `https://`), no port, where `services.NAME` exists, is
//! sent by `client/balanced.rs`: each attempt picks an endpoint here and goes to the endpoint's
//! own origin, so pool, breaker and stats are per endpoint. A pick never takes a lock held
//! across an await; only `weighted_round_robin` takes a short mutex.

mod endpoint;
mod outlier;
mod ring;
mod strategy;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use http::{HeaderMap, Uri};
use tokio::time::Instant;

pub(crate) use self::endpoint::{Endpoint, InFlight, Outcome};
use self::ring::Ring;
use crate::config::{Config, HealthCheckConfig, OutlierConfig, ServiceConfig, Strategy};
use crate::error::Error;
use crate::metrics::{EndpointStats, ServiceStats};
use crate::policy::{OriginPolicy, Policies};

/// Every service of a client, by name.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    services: HashMap<Box<str>, Arc<Service>>,
    /// Cancelled when the client closes or goes: health checks stop.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Balancer {
    pub(crate) fn new(cfg: &Config, policies: &Policies) -> Result<Self, Error> {
        let mut services = HashMap::new();
        for (name, sc) in &cfg.services {
            services.insert(
                name.as_str().into(),
                Arc::new(Service::new(name, sc, policies)?),
            );
        }
        Ok(Self {
            services,
            stop: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// Stops the health checks.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Cancelled when the health checks must stop.
    pub(crate) fn stopped(&self) -> tokio_util::sync::CancellationToken {
        self.stop.clone()
    }

    /// The service `uri` addresses: scheme http or https, no port, no userinfo, and a host
    /// that names a service.
    pub(crate) fn service_of(&self, uri: &Uri) -> Option<&Arc<Service>> {
        if self.services.is_empty() {
            return None;
        }
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return None;
        }
        let auth = uri.authority()?;
        if auth.port().is_some() || auth.as_str().contains('@') {
            return None;
        }
        let host = auth.host();
        match self.services.get(host) {
            Some(s) => Some(s),
            None if host.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.services.get(host.to_ascii_lowercase().as_str())
            }
            None => None,
        }
    }

    /// The services whose endpoints come from DNS.
    pub(crate) fn dns_backed(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services.values().filter(|s| s.dns.is_some())
    }

    /// The services with health checks on.
    pub(crate) fn checked(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services.values().filter(|s| s.health.is_some())
    }

    pub(crate) fn stats(&self) -> BTreeMap<String, ServiceStats> {
        self.services
            .iter()
            .map(|(k, s)| (k.to_string(), s.stats()))
            .collect()
    }
}

/// Where a service's endpoint set lives: fixed when configured as a list (read in place by a
/// pick), swappable when a DNS name's answers may replace it.
///
/// A list never changes, so its picks skip `ArcSwap::load`: the guard's debt slot costs a
/// locked exchange and a locked compare-exchange, measured at 38 % of a round-robin pick.
#[derive(Debug)]
enum Sets {
    Fixed(Arc<EndpointSet>),
    Live(ArcSwap<EndpointSet>),
}

/// The endpoints of a service as one immutable set (replaced whole when it changes, so
/// requests in flight finish on the set they picked from).
#[derive(Debug)]
struct EndpointSet {
    endpoints: Vec<Arc<Endpoint>>,
    /// `endpoints.len()` and its reciprocal, for the rotating strategies' start index.
    rotation: strategy::Rotation,
    ring: Option<Ring>,
    /// Current weights of `weighted_round_robin`, by endpoint index.
    wrr: Mutex<Vec<i64>>,
    /// `weighted_round_robin`'s whole cycle when every endpoint may be picked, precomputed so
    /// a pick is one atomic step, not a scan; `None` when the cycle is too long to keep.
    wrr_cycle: Option<WrrCycle>,
    /// The cycle's step counter (32 bits, as the rotating strategies': see `strategy::Rotation`).
    wrr_next: AtomicU32,
}

/// A precomputed smooth weighted round-robin cycle and its length's reciprocal.
#[derive(Debug)]
struct WrrCycle {
    steps: Box<[u16]>,
    rotation: strategy::Rotation,
}

impl EndpointSet {
    fn new(endpoints: Vec<Arc<Endpoint>>, strategy: Strategy) -> Self {
        let ring = (strategy == Strategy::ConsistentHash).then(|| Ring::new(&endpoints));
        let wrr_cycle = (strategy == Strategy::WeightedRoundRobin)
            .then(|| strategy::smooth_weighted_cycle(&endpoints))
            .flatten()
            .map(|steps| WrrCycle {
                rotation: strategy::Rotation::new(steps.len()),
                steps,
            });
        let wrr = Mutex::new(vec![0; endpoints.len()]);
        Self {
            rotation: strategy::Rotation::new(endpoints.len()),
            endpoints,
            ring,
            wrr,
            wrr_cycle,
            wrr_next: AtomicU32::new(0),
        }
    }
}

/// One service: its endpoints, strategy and the state the strategy keeps.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) name: Arc<str>,
    strategy: Strategy,
    set: Sets,
    /// The rotating strategies' counter (32 bits: see `strategy::Rotation`).
    next: AtomicU32,
    hash_header: Option<http::HeaderName>,
    hash_cookie: Option<String>,
    load_factor: f64,
    pub(crate) decay_ns: f64,
    base: Instant,
    outlier: OutlierConfig,
    pub(crate) health: Option<HealthCheckConfig>,
    panic_percent: usize,
    /// Set when an endpoint goes down (ejected, unhealthy), cleared by a pick that finds all
    /// available: only then do picks count the available endpoints for the panic threshold.
    down: AtomicBool,
    /// When the success-rate rule is next evaluated (ns since base).
    next_eval: AtomicU64,
    /// The latest time (ns since base) until which some endpoint is ejected or skipped, or 0
    /// when none may be: while it is 0 a pick of a strategy that does not weigh latency reads
    /// no clock (the read was a fifth of a round-robin pick). Raised after an endpoint's own
    /// deadline is stored; cleared by the first pick after it passes.
    timed_until: AtomicU64,
    /// Picks made in panic (too few available endpoints: balanced over all).
    panics: AtomicU64,
    /// Retry budget and hedging state of the service as a whole (an endpoint's breaker and
    /// limits are its origin's).
    pub(crate) policy: Arc<OriginPolicy>,
    /// Where the endpoints come from when they are a DNS name's addresses.
    pub(crate) dns: Option<DnsSource>,
    default_rtt_ns: f64,
}

/// The DNS name a service's endpoints come from, and whether it has been looked up yet.
#[derive(Debug)]
pub(crate) struct DnsSource {
    pub(crate) name: String,
    port: u16,
    weight: u32,
    /// The first lookup has ended (found or not); `ready` waits for it.
    looked_up: AtomicBool,
    notify: tokio::sync::Notify,
    /// Why the last lookup failed, while no endpoint is known.
    error: Mutex<Option<String>>,
}

impl Service {
    pub(crate) fn new(name: &str, sc: &ServiceConfig, policies: &Policies) -> Result<Self, Error> {
        let default_rtt_ns = sc.ewma_default_rtt_ms as f64 * 1e6;
        let endpoints = sc
            .endpoints
            .iter()
            .map(|e| Endpoint::new(&e.url, e.weight, default_rtt_ns).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let key: Arc<str> = Arc::from(format!("service:{name}"));
        let dns = sc.dns.as_ref().map(|d| DnsSource {
            name: d.name.clone(),
            port: d.port,
            weight: d.weight,
            looked_up: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
            error: Mutex::new(None),
        });
        Ok(Self {
            name: Arc::from(name),
            strategy: sc.strategy,
            set: {
                let set = Arc::new(EndpointSet::new(endpoints, sc.strategy));
                if dns.is_some() {
                    Sets::Live(ArcSwap::new(set))
                } else {
                    Sets::Fixed(set)
                }
            },
            next: AtomicU32::new(fastrand::u32(..)),
            hash_header: sc
                .hash
                .header
                .as_deref()
                .and_then(|h| http::HeaderName::from_bytes(h.as_bytes()).ok()),
            hash_cookie: sc.hash.cookie.clone(),
            load_factor: f64::from(sc.hash_load_factor_percent) / 100.0,
            decay_ns: sc.ewma_decay_ms as f64 * 1e6,
            base: Instant::now(),
            outlier: sc.outlier.clone(),
            health: sc.health_check.enabled.then(|| sc.health_check.clone()),
            panic_percent: sc.panic_threshold_percent as usize,
            down: AtomicBool::new(false),
            next_eval: AtomicU64::new(sc.outlier.interval_ms.saturating_mul(1_000_000)),
            timed_until: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            policy: policies.detached(&key),
            dns,
            default_rtt_ns,
        })
    }

    /// Waits (until `deadline`) for the first lookup of a DNS-backed service, so the first
    /// requests do not find it without endpoints; at once for every other service.
    pub(crate) async fn ready(&self, deadline: Option<Instant>) {
        let Some(d) = &self.dns else { return };
        loop {
            let looked_up = d.notify.notified();
            if d.looked_up.load(Relaxed) {
                return;
            }
            match deadline {
                Some(at) => {
                    if tokio::time::timeout_at(at, looked_up).await.is_err() {
                        return;
                    }
                }
                None => looked_up.await,
            }
        }
    }

    /// Why a DNS-backed service has no endpoints, when it has none because its lookups fail.
    pub(crate) fn dns_error(&self) -> Option<String> {
        let d = self.dns.as_ref()?;
        d.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the result of a lookup of a DNS-backed service's name: on success each address
    /// is an endpoint, and an address already known keeps its endpoint (stats, ejection,
    /// latency; its origin keeps breaker and connections); on failure the endpoints stay.
    /// Requests in flight keep the endpoint they picked.
    pub(crate) fn dns_answer(&self, answer: Result<&[std::net::IpAddr], &Error>) {
        let Some(d) = &self.dns else { return };
        match answer {
            Ok(addrs) => {
                let mut urls: Vec<String> = addrs
                    .iter()
                    .map(|ip| match ip {
                        std::net::IpAddr::V4(v4) => format!("http://{v4}:{}", d.port),
                        std::net::IpAddr::V6(v6) => format!("http://[{v6}]:{}", d.port),
                    })
                    .collect();
                urls.sort_unstable();
                urls.dedup();
                let old = self.endpoints();
                let same = old.endpoints.len() == urls.len()
                    && old.endpoints.iter().zip(&urls).all(|(e, u)| *e.url == **u);
                if !same {
                    let eps = urls
                        .iter()
                        .map(|u| match old.endpoints.iter().find(|e| *e.url == **u) {
                            Some(e) => Ok(e.clone()),
                            None => Endpoint::new(u, d.weight, self.default_rtt_ns).map(Arc::new),
                        })
                        .collect::<Result<Vec<_>, _>>();
                    // Addresses always make valid URLs; should one not, the set stays.
                    if let (Ok(eps), Sets::Live(live)) = (eps, &self.set) {
                        live.store(Arc::new(EndpointSet::new(eps, self.strategy)));
                    }
                }
                *d.error.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Err(e) => {
                if self.len() == 0 {
                    *d.error.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(e.message().to_owned());
                }
            }
        }
        if !d.looked_up.swap(true, Relaxed) {
            d.notify.notify_waiters();
        }
    }

    /// Nanoseconds since this service was built: the clock of its endpoints' state.
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn endpoints(&self) -> Arc<EndpointSet> {
        match &self.set {
            Sets::Fixed(set) => set.clone(),
            Sets::Live(live) => live.load_full(),
        }
    }

    /// Endpoints now.
    pub(crate) fn len(&self) -> usize {
        self.endpoints().endpoints.len()
    }

    /// Every endpoint now.
    pub(crate) fn all(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints().endpoints.clone()
    }

    /// The hash of a request's balancing key, for `consistent_hash`: the explicit key, else the
    /// configured header, else the configured cookie.
    pub(crate) fn key_hash(&self, explicit: Option<&str>, headers: &HeaderMap) -> Option<u64> {
        if self.strategy != Strategy::ConsistentHash {
            return None;
        }
        if let Some(k) = explicit {
            return Some(ring::hash(k.as_bytes()));
        }
        if let Some(h) = &self.hash_header
            && let Some(v) = headers.get(h)
        {
            return Some(ring::hash(v.as_bytes()));
        }
        let name = self.hash_cookie.as_deref()?;
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| ring::hash(v.as_bytes()))
    }

    /// Picks an endpoint for an attempt, avoiding those in `tried` (this request's earlier
    /// attempts) and those whose breaker is open, unless nothing else is left.
    /// Ejected and unhealthy endpoints are left out unless fewer than the panic threshold
    /// are available; then all are candidates.
    pub(crate) fn pick(&self, key: Option<u64>, tried: &[u64]) -> Option<Arc<Endpoint>> {
        match &self.set {
            Sets::Fixed(set) => self.pick_from(set, key, tried),
            // A guard, not a clone: no lock and no reference count (a read lock plus an Arc
            // clone cost ~55 ns per pick, measured).
            Sets::Live(live) => self.pick_from(&live.load(), key, tried),
        }
    }

    fn pick_from(
        &self,
        set: &EndpointSet,
        key: Option<u64>,
        tried: &[u64],
    ) -> Option<Arc<Endpoint>> {
        let now = self.pick_clock();
        let panic = self.down.load(Relaxed) && self.panicking(&set.endpoints, now);
        let usable = |e: &Endpoint| !e.skipped(now) && (panic || e.available(now));
        let i = self
            .pick_in(set, key, |e| usable(e) && !tried.contains(&e.id))
            .or_else(|| self.pick_in(set, key, usable))
            .or_else(|| self.pick_in(set, key, |_| true))?;
        Some(set.endpoints[i].clone())
    }

    /// The time a pick judges endpoints at: the clock when an endpoint may be ejected or
    /// skipped now; else `u64::MAX`, which no ejection or skip outlasts, without reading the
    /// clock (P2C compares latencies without it too: see `Endpoint::cheaper_than`).
    fn pick_clock(&self) -> u64 {
        let until = self.timed_until.load(Relaxed);
        if until == 0 {
            return u64::MAX;
        }
        let now = self.now_ns();
        if until != 0 && now >= until {
            // Every deadline known has passed. A deadline raised meanwhile changed the value,
            // so the exchange fails and it stays.
            let _ = self
                .timed_until
                .compare_exchange(until, 0, Relaxed, Relaxed);
        }
        now
    }

    /// Notes that some endpoint is ejected or skipped until `until` (ns since base); called
    /// after the endpoint's own deadline is stored.
    fn timed(&self, until: u64) {
        self.timed_until.fetch_max(until, Relaxed);
    }

    /// Skips `ep` for `d` (its breaker is open that long).
    pub(crate) fn skip(&self, ep: &Endpoint, d: std::time::Duration) {
        self.timed(ep.skip_for(self.now_ns(), d));
    }

    /// Whether too few endpoints are available to balance over them alone.
    fn panicking(&self, eps: &[Arc<Endpoint>], now: u64) -> bool {
        let up = eps.iter().filter(|e| e.available(now)).count();
        if up == eps.len() {
            self.down.store(false, Relaxed);
            return false;
        }
        let panic = up * 100 < self.panic_percent * eps.len();
        if panic {
            self.panics.fetch_add(1, Relaxed);
        }
        panic
    }

    /// Records how an attempt to an endpoint ended: its latency and counters, then the
    /// outlier rules (which may eject it, or others at the end of a success-rate window).
    pub(crate) fn finish(&self, flight: InFlight, outcome: Outcome) {
        self.finish_at(flight, outcome, self.now_ns());
    }

    pub(crate) fn finish_at(&self, flight: InFlight, outcome: Outcome, now: u64) {
        let ep = flight.ep.clone();
        flight.finish(outcome, now, self.decay_ns);
        let o = &self.outlier;
        if !o.enabled {
            return;
        }
        if outlier::record(o, &ep, outcome)
            && let Some(until) = outlier::eject(o, &self.all(), &ep, now)
        {
            self.timed(until);
            self.down.store(true, Relaxed);
        }
        let due = self.next_eval.load(Relaxed);
        let next = now.saturating_add(o.interval_ms.saturating_mul(1_000_000));
        if now >= due
            && self
                .next_eval
                .compare_exchange(due, next, Relaxed, Relaxed)
                .is_ok()
            && let Some(until) = outlier::evaluate(o, &self.all(), now)
        {
            self.timed(until);
            self.down.store(true, Relaxed);
        }
    }

    /// Counts a health check of `ep`.
    pub(crate) fn health_result(&self, ep: &Endpoint, passed: bool) {
        if let Some(h) = &self.health
            && outlier::health(h, ep, passed) == Some(false)
        {
            self.down.store(true, Relaxed);
        }
    }

    fn stats(&self) -> ServiceStats {
        let now = self.now_ns();
        let endpoints = self
            .all()
            .iter()
            .map(|e| {
                let s = EndpointStats {
                    state: e.state(now).to_owned(),
                    weight: e.weight,
                    ewma_ms: e.rtt_ns(now, self.decay_ns) / 1e6,
                    outstanding: e.outstanding.load(Relaxed),
                    requests: e.requests.load(Relaxed),
                    failures: e.failures.load(Relaxed),
                    ejections: e.ejections.load(Relaxed),
                    health_checks: e.health_checks.load(Relaxed),
                    health_check_failures: e.health_failures.load(Relaxed),
                };
                (e.url.to_string(), s)
            })
            .collect();
        ServiceStats {
            strategy: serde_json::to_value(self.strategy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            panic_picks: self.panics.load(Relaxed),
            endpoints,
        }
    }

    fn pick_in(
        &self,
        set: &EndpointSet,
        key: Option<u64>,
        ok: impl Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let eps = &set.endpoints;
        match self.strategy {
            Strategy::RoundRobin => strategy::round_robin(eps, set.rotation.start(&self.next), ok),
            Strategy::WeightedRoundRobin => {
                // The next step of the cycle when it may be picked, else a scan over those
                // that may (an endpoint is out or already tried).
                if let Some(cycle) = &set.wrr_cycle
                    && let Some(step) = cycle.rotation.start(&set.wrr_next)
                {
                    let i = usize::from(cycle.steps[step]);
                    if ok(&eps[i]) {
                        return Some(i);
                    }
                }
                strategy::smooth_weighted(eps, &set.wrr, ok)
            }
            Strategy::LeastOutstanding => {
                strategy::least_outstanding(eps, set.rotation.start(&self.next), ok)
            }
            Strategy::P2cPeakEwma => strategy::p2c(eps, self.decay_ns, ok),
            Strategy::ConsistentHash => {
                let ring = set.ring.as_ref()?;
                let key = key.unwrap_or_else(|| fastrand::u64(..));
                ring.pick(eps, key, self.load_factor, ok)
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Load balancing over the endpoints of a named service (`Config.services`).
//!
//! A request to `http://NAME/path` (or `https://`), no port, where `services.NAME` exists, is
//! sent by `client/balanced.rs`: each attempt picks an endpoint here and goes to the endpoint's
//! own origin, so pool, breaker and stats are per endpoint. A pick never takes a lock held
//! across an await; only `weighted_round_robin` takes a short mutex.

mod endpoint;
mod ring;
mod strategy;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use http::{HeaderMap, Uri};
use tokio::time::Instant;

pub(crate) use self::endpoint::{Endpoint, InFlight, Outcome};
use self::ring::Ring;
use crate::config::{Config, ServiceConfig, Strategy};
use crate::error::Error;
use crate::policy::{OriginPolicy, Policies};

/// Every service of a client, by name.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    services: HashMap<Box<str>, Arc<Service>>,
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
        Ok(Self { services })
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
}

/// The endpoints of a service as one immutable set (replaced whole when it changes, so
/// requests in flight finish on the set they picked from).
#[derive(Debug)]
struct EndpointSet {
    endpoints: Vec<Arc<Endpoint>>,
    ring: Option<Ring>,
    /// Current weights of `weighted_round_robin`, by endpoint index.
    wrr: Mutex<Vec<i64>>,
}

impl EndpointSet {
    fn new(endpoints: Vec<Arc<Endpoint>>, strategy: Strategy) -> Self {
        let ring = (strategy == Strategy::ConsistentHash).then(|| Ring::new(&endpoints));
        let wrr = Mutex::new(vec![0; endpoints.len()]);
        Self {
            endpoints,
            ring,
            wrr,
        }
    }
}

/// One service: its endpoints, strategy and the state the strategy keeps.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) name: Arc<str>,
    strategy: Strategy,
    set: RwLock<Arc<EndpointSet>>,
    next: AtomicUsize,
    hash_header: Option<http::HeaderName>,
    hash_cookie: Option<String>,
    load_factor: f64,
    pub(crate) decay_ns: f64,
    base: Instant,
    /// Retry budget and hedging state of the service as a whole (an endpoint's breaker and
    /// limits are its origin's).
    pub(crate) policy: Arc<OriginPolicy>,
}

impl Service {
    fn new(name: &str, sc: &ServiceConfig, policies: &Policies) -> Result<Self, Error> {
        let default_rtt_ns = sc.ewma_default_rtt_ms as f64 * 1e6;
        let endpoints = sc
            .endpoints
            .iter()
            .map(|e| Endpoint::new(&e.url, e.weight, default_rtt_ns).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let key: Arc<str> = Arc::from(format!("service:{name}"));
        Ok(Self {
            name: Arc::from(name),
            strategy: sc.strategy,
            set: RwLock::new(Arc::new(EndpointSet::new(endpoints, sc.strategy))),
            next: AtomicUsize::new(fastrand::usize(..)),
            hash_header: sc
                .hash
                .header
                .as_deref()
                .and_then(|h| http::HeaderName::from_bytes(h.as_bytes()).ok()),
            hash_cookie: sc.hash.cookie.clone(),
            load_factor: f64::from(sc.hash_load_factor_percent) / 100.0,
            decay_ns: sc.ewma_decay_ms as f64 * 1e6,
            base: Instant::now(),
            policy: policies.detached(&key),
        })
    }

    /// Nanoseconds since this service was built: the clock of its endpoints' state.
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn endpoints(&self) -> Arc<EndpointSet> {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Endpoints now.
    pub(crate) fn len(&self) -> usize {
        self.endpoints().endpoints.len()
    }

    /// Every endpoint now.
    #[cfg(test)]
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
    pub(crate) fn pick(&self, key: Option<u64>, tried: &[u64]) -> Option<Arc<Endpoint>> {
        let set = self.endpoints();
        let now = self.now_ns();
        let fresh = |e: &Endpoint| !tried.contains(&e.id) && !e.skipped(now);
        let untried = |e: &Endpoint| !tried.contains(&e.id);
        let i = self
            .pick_in(&set, key, now, fresh)
            .or_else(|| self.pick_in(&set, key, now, untried))
            .or_else(|| self.pick_in(&set, key, now, |_| true))?;
        Some(set.endpoints[i].clone())
    }

    fn pick_in(
        &self,
        set: &EndpointSet,
        key: Option<u64>,
        now: u64,
        ok: impl Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let eps = &set.endpoints;
        match self.strategy {
            Strategy::RoundRobin => strategy::round_robin(eps, &self.next, ok),
            Strategy::WeightedRoundRobin => strategy::smooth_weighted(eps, &set.wrr, ok),
            Strategy::LeastOutstanding => strategy::least_outstanding(eps, &self.next, ok),
            Strategy::P2cPeakEwma => strategy::p2c(eps, |e| e.cost(now, self.decay_ns), ok),
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

//! One endpoint of a service: where requests go (base URL) and what the strategies read of it
//! (requests in flight, peak-EWMA latency), plus its counters. All atomics: a pick takes no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};

use crate::error::{Error, ErrorKind};

/// Latency recorded for a transport failure (refused, reset, timed out): high, so
/// `p2c_peak_ewma` stops sending there at once, fading over the decay time like any peak.
const FAILURE_RTT_NS: f64 = 1e9;

/// One endpoint. Identified by `id` (unique in the process) so a request can avoid the
/// endpoints it already tried.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) id: u64,
    /// The base URL as configured.
    pub(crate) url: Arc<str>,
    scheme: Scheme,
    authority: Authority,
    /// Path prefix without a trailing `/` (often empty).
    prefix: String,
    pub(crate) weight: u32,
    /// Requests sent and not yet answered (response head).
    pub(crate) outstanding: AtomicU64,
    /// Peak-EWMA latency in ns (f64 bits) and when it was last updated (ns since the
    /// service's base instant).
    pub(super) rtt: AtomicU64,
    pub(super) rtt_at: AtomicU64,
    /// Skipped until then (ns since base): its circuit breaker is open.
    pub(super) skip_until: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) failures: AtomicU64,
    /// Passive outlier state: consecutive 5xx, gateway errors and transport failures; the
    /// success-rate window (successes, total); ejected until (ns since base); ejections.
    pub(crate) consecutive: [AtomicU32; 3],
    pub(crate) window: [AtomicU64; 2],
    pub(crate) ejected_until: AtomicU64,
    pub(crate) ejections: AtomicU64,
    /// Active health: failed its checks; the current run of passes (> 0) or failures (< 0).
    pub(crate) unhealthy: AtomicBool,
    pub(crate) health_run: std::sync::atomic::AtomicI32,
    pub(crate) health_checks: AtomicU64,
    pub(crate) health_failures: AtomicU64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Endpoint {
    pub(crate) fn new(url: &str, weight: u32, default_rtt_ns: f64) -> Result<Self, Error> {
        let uri = crate::config::balance_endpoint_url(url)
            .map_err(|why| Error::new(ErrorKind::InvalidConfig, why))?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "endpoint without host",
            ));
        };
        let prefix = parts
            .path_and_query
            .map(|p| p.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Relaxed),
            url: Arc::from(url),
            scheme,
            authority,
            prefix,
            weight,
            outstanding: AtomicU64::new(0),
            rtt: AtomicU64::new(default_rtt_ns.to_bits()),
            rtt_at: AtomicU64::new(0),
            skip_until: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive: Default::default(),
            window: Default::default(),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            unhealthy: AtomicBool::new(false),
            health_run: std::sync::atomic::AtomicI32::new(0),
            health_checks: AtomicU64::new(0),
            health_failures: AtomicU64::new(0),
        })
    }

    /// `uri` (addressed to the service) rewritten to this endpoint: its scheme, authority
    /// and path prefix, then `uri`'s path and query.
    pub(crate) fn uri_for(&self, uri: &Uri) -> Result<Uri, Error> {
        let pq = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(pq)
        } else {
            PathAndQuery::try_from(format!("{}{pq}", self.prefix))
        }
        .map_err(|e| crate::error::url(e.to_string()))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| crate::error::url(e.to_string()))
    }

    /// The latency estimate now: the stored peak-EWMA decayed toward zero over the time since
    /// it was updated, so an endpoint left alone is tried again.
    pub(crate) fn rtt_ns(&self, now_ns: u64, decay_ns: f64) -> f64 {
        let rtt = f64::from_bits(self.rtt.load(Relaxed));
        let idle = now_ns.saturating_sub(self.rtt_at.load(Relaxed)) as f64;
        rtt * (-idle / decay_ns).exp()
    }

    /// `p2c_peak_ewma`'s cost: latency × (in flight + 1) / weight (picks compare it through
    /// [`cheaper_than`](Self::cheaper_than)).
    #[cfg(test)]
    pub(crate) fn cost(&self, now_ns: u64, decay_ns: f64) -> f64 {
        let pending = self.outstanding.load(Relaxed) as f64 + 1.0;
        self.rtt_ns(now_ns, decay_ns) * pending / f64::from(self.weight)
    }

    /// Latency × (in flight + 1) / weight, without the decay since the latency was recorded.
    fn undecayed_cost(&self) -> (f64, f64) {
        let pending = self.outstanding.load(Relaxed) as f64 + 1.0;
        let rtt = f64::from_bits(self.rtt.load(Relaxed));
        (
            rtt * pending / f64::from(self.weight),
            self.rtt_at.load(Relaxed) as f64,
        )
    }

    /// Whether this endpoint's [`cost`](Self::cost) is below `other`'s at any one time: both
    /// decay at the same rate, so the comparison needs no clock, and one `exp` (of a value
    /// ≤ 0, so it cannot overflow) instead of one per endpoint.
    pub(crate) fn cheaper_than(&self, other: &Endpoint, decay_ns: f64) -> bool {
        let (a, at_a) = self.undecayed_cost();
        let (b, at_b) = other.undecayed_cost();
        // a·e^{-(now-at_a)/d} < b·e^{-(now-at_b)/d}  ⇔  a·e^{(at_a-at_b)/d} < b
        let x = (at_a - at_b) / decay_ns;
        if x <= 0.0 {
            a * x.exp() < b
        } else {
            a < b * (-x).exp()
        }
    }

    /// A number that orders endpoints as [`cost`](Self::cost) does at any one time (its
    /// logarithm plus a constant), for scans over many.
    pub(crate) fn cost_rank(&self, decay_ns: f64) -> f64 {
        let (c, at) = self.undecayed_cost();
        c.ln() + at / decay_ns
    }

    /// Records a latency: a higher one is taken at once (peak), a lower one blended in over
    /// the decay time. Concurrent updates may lose one another; an estimate tolerates that.
    fn observe(&self, rtt_ns: f64, now_ns: u64, decay_ns: f64) {
        let old = f64::from_bits(self.rtt.load(Relaxed));
        let new = if rtt_ns > old {
            rtt_ns
        } else {
            let dt = now_ns.saturating_sub(self.rtt_at.load(Relaxed)) as f64;
            let w = (-dt / decay_ns).exp();
            old * w + rtt_ns * (1.0 - w)
        };
        self.rtt.store(new.to_bits(), Relaxed);
        self.rtt_at.store(now_ns, Relaxed);
    }

    /// The base URL `path` is requested at (health checks).
    pub(crate) fn url_of(&self, path: &str) -> Result<Uri, Error> {
        self.uri_for(&Uri::try_from(path).map_err(|e| crate::error::url(e.to_string()))?)
    }

    pub(crate) fn ejected(&self, now_ns: u64) -> bool {
        self.ejected_until.load(Relaxed) > now_ns
    }

    /// Neither ejected nor failing its health checks.
    pub(crate) fn available(&self, now_ns: u64) -> bool {
        !self.ejected(now_ns) && !self.unhealthy.load(Relaxed)
    }

    /// `healthy`, `ejected` or `unhealthy`.
    pub(crate) fn state(&self, now_ns: u64) -> &'static str {
        if self.ejected(now_ns) {
            "ejected"
        } else if self.unhealthy.load(Relaxed) {
            "unhealthy"
        } else {
            "healthy"
        }
    }

    pub(crate) fn skipped(&self, now_ns: u64) -> bool {
        self.skip_until.load(Relaxed) > now_ns
    }

    /// Skips this endpoint for `d` (its breaker is open that long); returns until when.
    pub(crate) fn skip_for(&self, now_ns: u64, d: Duration) -> u64 {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let until = now_ns.saturating_add(d);
        self.skip_until.store(until, Relaxed);
        until
    }
}

/// How an attempt to an endpoint ended, for its latency and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer (any status but 5xx).
    Success,
    /// A 5xx answer (its status).
    ServerError(u16),
    /// No answer: refused, reset, timed out.
    Transport,
    /// Not the endpoint's doing (cancelled, rejected before sending): nothing recorded.
    Ignore,
}

impl Outcome {
    pub(crate) fn of(res: &Result<crate::Response, Error>) -> Self {
        match res {
            Ok(r) if r.status().is_server_error() => Outcome::ServerError(r.status().as_u16()),
            Ok(_) => Outcome::Success,
            Err(e) if e.kind().is_transport() => Outcome::Transport,
            Err(_) => Outcome::Ignore,
        }
    }
}

/// A request in flight to an endpoint: counted in `outstanding` until it ends (or is
/// dropped, a cancelled attempt, which records no latency).
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) ep: Arc<Endpoint>,
    started_ns: u64,
}

impl InFlight {
    pub(crate) fn start(ep: Arc<Endpoint>, now_ns: u64) -> Self {
        ep.outstanding.fetch_add(1, Relaxed);
        ep.requests.fetch_add(1, Relaxed);
        Self {
            ep,
            started_ns: now_ns,
        }
    }

    /// Records how the attempt ended, at `now_ns`, in the endpoint's latency and counters.
    pub(crate) fn finish(self, outcome: Outcome, now_ns: u64, decay_ns: f64) {
        let ep = &self.ep;
        let rtt = now_ns.saturating_sub(self.started_ns) as f64;
        match outcome {
            Outcome::Success => ep.observe(rtt, now_ns, decay_ns),
            Outcome::ServerError(_) => {
                ep.failures.fetch_add(1, Relaxed);
                ep.observe(rtt, now_ns, decay_ns);
            }
            Outcome::Transport => {
                ep.failures.fetch_add(1, Relaxed);
                ep.observe(rtt.max(FAILURE_RTT_NS), now_ns, decay_ns);
            }
            Outcome::Ignore => {}
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.ep.outstanding.fetch_sub(1, Relaxed);
    }
}

//! The [`Diagnostics`] health report, derived from a [`Stats`] snapshot.

use serde::Serialize;

use super::Stats;

impl Stats {
    /// A human-readable health report: per-origin health, latency, throughput, compression and
    /// DNS hit rate.
    pub fn diagnostics(&self) -> Diagnostics {
        let errors: u64 = self.errors_by_code.values().sum();
        let lookups = self.dns.hits + self.dns.misses;
        let origins = self
            .origins
            .iter()
            .map(|(name, s)| {
                let health = if s.pool.evictions.error > s.pool.connects / 2 && s.pool.connects > 0
                {
                    "degraded"
                } else if s.pool.pending > 0 {
                    "saturated"
                } else {
                    "healthy"
                };
                OriginHealth {
                    origin: name.clone(),
                    protocol: s.protocol.clone(),
                    health: health.to_owned(),
                    connections: s.pool.connections,
                    pending: s.pool.pending,
                    reuse_ratio: ratio(s.pool.reuses, s.pool.reuses + s.pool.connects),
                }
            })
            .collect();
        Diagnostics {
            requests_total: self.requests_total,
            error_rate: ratio(errors, self.requests_total),
            mean_latency_ms: self.latency.mean_ms,
            p95_latency_ms: self.latency.p95_ms,
            p99_latency_ms: self.latency.p99_ms,
            requests_per_second: self.requests_per_second,
            compression_ratio: self.compression_ratio,
            dns_hit_rate: ratio(self.dns.hits, lookups),
            connection_reuse_ratio: ratio(self.pool.reuses, self.pool.reuses + self.pool.connects),
            origins,
            services: self
                .services
                .iter()
                .map(|(name, s)| ServiceHealth {
                    service: name.clone(),
                    strategy: s.strategy.clone(),
                    endpoints: s
                        .endpoints
                        .iter()
                        .map(|(url, e)| EndpointHealth {
                            endpoint: url.clone(),
                            state: e.state.clone(),
                            ewma_ms: e.ewma_ms,
                            outstanding: e.outstanding,
                            requests: e.requests,
                            failures: e.failures,
                            ejections: e.ejections,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The health report of [`Stats::diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diagnostics {
    /// Requests finished.
    pub requests_total: u64,
    /// Errors / requests.
    pub error_rate: f64,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_latency_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_latency_ms: f64,
    /// Requests per second over the last 10 s.
    pub requests_per_second: f64,
    /// Decoded / received body bytes.
    pub compression_ratio: f64,
    /// DNS cache hits / lookups.
    pub dns_hit_rate: f64,
    /// Reused / (reused + new) connections.
    pub connection_reuse_ratio: f64,
    /// Per origin.
    pub origins: Vec<OriginHealth>,
    /// Load-balanced services and the state of their endpoints.
    pub services: Vec<ServiceHealth>,
}

/// One load-balanced service in [`Diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceHealth {
    /// Its name (`Config.services`).
    pub service: String,
    /// Its balancing strategy.
    pub strategy: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointHealth>,
}

/// One endpoint of a service in [`Diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointHealth {
    /// Base URL.
    pub endpoint: String,
    /// `healthy`, `ejected` or `unhealthy`.
    pub state: String,
    /// Peak-EWMA latency, ms.
    pub ewma_ms: f64,
    /// Attempts in flight.
    pub outstanding: u64,
    /// Attempts sent.
    pub requests: u64,
    /// Attempts failed.
    pub failures: u64,
    /// Times ejected.
    pub ejections: u64,
}

/// One origin in [`Diagnostics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OriginHealth {
    /// `scheme://host:port`.
    pub origin: String,
    /// `h1`, `h2` or `unknown`.
    pub protocol: String,
    /// `healthy`, `saturated` (requests waiting) or `degraded` (most connections failed).
    pub health: String,
    /// Open connections.
    pub connections: u64,
    /// Requests waiting.
    pub pending: u64,
    /// Reused / (reused + new).
    pub reuse_ratio: f64,
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "requests {}  errors {:.1}%  rps {:.1}  mean {:.2} ms  p95 {:.2} ms  p99 {:.2} ms",
            self.requests_total,
            self.error_rate * 100.0,
            self.requests_per_second,
            self.mean_latency_ms,
            self.p95_latency_ms,
            self.p99_latency_ms
        )?;
        writeln!(
            f,
            "compression {:.2}x  dns hit rate {:.0}%  connection reuse {:.0}%",
            self.compression_ratio,
            self.dns_hit_rate * 100.0,
            self.connection_reuse_ratio * 100.0
        )?;
        for o in &self.origins {
            writeln!(
                f,
                "  {} [{}] {}: {} connections, {} waiting, reuse {:.0}%",
                o.origin,
                o.protocol,
                o.health,
                o.connections,
                o.pending,
                o.reuse_ratio * 100.0
            )?;
        }
        for s in &self.services {
            writeln!(f, "  service {} ({})", s.service, s.strategy)?;
            for e in &s.endpoints {
                writeln!(
                    f,
                    "    {} {}: ewma {:.2} ms, {} in flight, {} requests, {} failed, {} ejections",
                    e.endpoint,
                    e.state,
                    e.ewma_ms,
                    e.outstanding,
                    e.requests,
                    e.failures,
                    e.ejections
                )?;
            }
        }
        Ok(())
    }
}

//! Passive outlier ejection (Envoy's model) and the health-check state machine, over the
//! atomics of each `Endpoint`. Ejection ends by time alone (checked at each pick), so no timer
//! runs; the success-rate rule is evaluated by the first attempt to finish after each interval.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::endpoint::{Endpoint, Outcome};
use crate::config::{HealthCheckConfig, OutlierConfig};

const C5XX: usize = 0;
const GATEWAY: usize = 1;
const TRANSPORT: usize = 2;

/// Counts an attempt's outcome against `ep`; returns whether a consecutive-failure rule now
/// asks for its ejection.
pub(crate) fn record(cfg: &OutlierConfig, ep: &Endpoint, outcome: Outcome) -> bool {
    let c = &ep.consecutive;
    let bump = |i: usize| c[i].fetch_add(1, Relaxed).saturating_add(1);
    let hit = |n: u32, limit: u32| limit > 0 && n >= limit;
    match outcome {
        Outcome::Ignore => return false,
        Outcome::Success => {
            for x in c {
                x.store(0, Relaxed);
            }
            ep.window[0].fetch_add(1, Relaxed);
        }
        Outcome::ServerError(status) => {
            c[TRANSPORT].store(0, Relaxed);
            let gw = if matches!(status, 502..=504) {
                bump(GATEWAY)
            } else {
                c[GATEWAY].store(0, Relaxed);
                0
            };
            let n5 = bump(C5XX);
            ep.window[1].fetch_add(1, Relaxed);
            return hit(n5, cfg.consecutive_5xx) || hit(gw, cfg.consecutive_gateway_errors);
        }
        Outcome::Transport => {
            c[C5XX].store(0, Relaxed);
            c[GATEWAY].store(0, Relaxed);
            let n = bump(TRANSPORT);
            ep.window[1].fetch_add(1, Relaxed);
            return hit(n, cfg.consecutive_connect_failures);
        }
    }
    ep.window[1].fetch_add(1, Relaxed);
    false
}

/// Ejects `ep` unless it is ejected already or `max_ejection_percent` of `all` (at least one)
/// is out; returns until when (ns since base) when it did. The n-th ejection lasts n × base, at
/// most the maximum.
pub(crate) fn eject(
    cfg: &OutlierConfig,
    all: &[Arc<Endpoint>],
    ep: &Endpoint,
    now: u64,
) -> Option<u64> {
    if ep.ejected(now) {
        return None;
    }
    let out = all.iter().filter(|e| e.ejected(now)).count();
    let cap = (all.len() * cfg.max_ejection_percent as usize / 100).max(1);
    if out >= cap {
        return None;
    }
    let n = ep.ejections.fetch_add(1, Relaxed) + 1;
    let ms = cfg
        .base_ejection_ms
        .saturating_mul(n)
        .min(cfg.max_ejection_ms);
    let until = now.saturating_add(ms.saturating_mul(1_000_000));
    ep.ejected_until.store(until, Relaxed);
    for x in &ep.consecutive {
        x.store(0, Relaxed);
    }
    Some(until)
}

/// The success-rate rule over one window: among endpoints with at least the minimum volume
/// (and enough of them), those below mean − factor × standard deviation are ejected. Every
/// window is reset. Returns until when the last of those it ejected stays out, when it ejected
/// any.
pub(crate) fn evaluate(cfg: &OutlierConfig, all: &[Arc<Endpoint>], now: u64) -> Option<u64> {
    let rates: Vec<(usize, f64)> = all
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let ok = e.window[0].swap(0, Relaxed);
            let total = e.window[1].swap(0, Relaxed);
            (cfg.success_rate_min_requests > 0 && total >= u64::from(cfg.success_rate_min_requests))
                .then(|| (i, ok as f64 / total as f64))
        })
        .collect();
    if rates.is_empty() || rates.len() < cfg.success_rate_min_endpoints as usize {
        return None;
    }
    let n = rates.len() as f64;
    let mean = rates.iter().map(|r| r.1).sum::<f64>() / n;
    let var = rates.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / n;
    let floor = mean - f64::from(cfg.success_rate_stdev_factor_percent) / 100.0 * var.sqrt();
    rates
        .iter()
        .filter(|(_, rate)| *rate < floor)
        .filter_map(|(i, _)| eject(cfg, all, &all[*i], now))
        .max()
}

/// Counts a health check's result; returns the endpoint's new health when it changed.
pub(crate) fn health(cfg: &HealthCheckConfig, ep: &Endpoint, passed: bool) -> Option<bool> {
    ep.health_checks.fetch_add(1, Relaxed);
    let run = ep.health_run.load(Relaxed);
    let run = if passed {
        run.max(0).saturating_add(1)
    } else {
        ep.health_failures.fetch_add(1, Relaxed);
        run.min(0).saturating_sub(1)
    };
    ep.health_run.store(run, Relaxed);
    let unhealthy = ep.unhealthy.load(Relaxed);
    let threshold = |t: u32| i32::try_from(t).unwrap_or(i32::MAX);
    if unhealthy && run >= threshold(cfg.healthy_threshold) {
        ep.unhealthy.store(false, Relaxed);
        return Some(true);
    }
    if !unhealthy && run <= -threshold(cfg.unhealthy_threshold) {
        ep.unhealthy.store(true, Relaxed);
        return Some(false);
    }
    None
}

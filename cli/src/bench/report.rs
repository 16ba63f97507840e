//! The report: built once from the merged record and the engine's stats, printed as text
//! (with a terminal histogram) or JSON, read back by `--compare`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::load::Recorder;
use crate::units::{fmt_bytes, fmt_us};

/// Everything a run measured (`--json` prints it as is).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub urls: Vec<String>,
    pub method: String,
    /// `auto`, `h1`, `h2` or `h2c`.
    pub protocol: String,
    pub concurrency: u64,
    /// Requests started per second (open loop), or `null` for a closed loop.
    pub rate: Option<f64>,
    /// `N requests` or the duration asked for.
    pub limit: String,
    /// Stopped by Ctrl-C: the figures cover the part that ran.
    pub interrupted: bool,
    pub duration_s: f64,
    /// Finished requests: `responses + errors`.
    pub requests: u64,
    /// Requests answered with any status.
    pub responses: u64,
    /// Requests that failed without a response (codes in `error_codes`).
    pub errors: u64,
    /// Requests in flight when the run stopped (a closed loop's deadline, or Ctrl-C):
    /// dropped, in no other count.
    pub cancelled: u64,
    pub req_per_s: f64,
    /// Responses only, to the last body byte; from the scheduled start with `--rate`.
    pub latency_ms: Latency,
    /// Responses by status code; sums to `responses`.
    pub status: BTreeMap<String, u64>,
    /// Errors by wirecore error code; sums to `errors`.
    pub error_codes: BTreeMap<String, u64>,
    /// One message per error code.
    pub error_samples: BTreeMap<String, String>,
    /// Responses by HTTP version.
    pub versions: BTreeMap<String, u64>,
    pub bytes: ByteCounts,
    pub connections: Connections,
    /// Latency histogram of the responses.
    pub histogram: Vec<Bin>,
    pub timeline: Vec<Point>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ByteCounts {
    /// Response body bytes read (after decoding).
    pub body: u64,
    /// Response body bytes on the wire (engine stats).
    pub received: u64,
    /// Request body bytes sent (engine stats).
    pub sent: u64,
}

/// Connections the engine opened and requests that reused one, during the measured run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Connections {
    pub opened: u64,
    pub reused: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Bin {
    pub from_ms: f64,
    pub to_ms: f64,
    pub count: u64,
}

/// One time slice of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Point {
    /// End of the slice, seconds from the start.
    pub t_s: f64,
    /// Finished requests per second in the slice.
    pub req_per_s: f64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Bins for the JSON report and the plot.
const BINS: usize = 40;
/// Bins the terminal shows.
const TERMINAL_BINS: usize = 12;
/// Points of the timeline at most.
const MAX_POINTS: usize = 200;

impl Report {
    /// Fills the measured part from `rec` over `wall` seconds.
    pub fn measure(&mut self, rec: &Recorder, wall_s: f64) {
        self.duration_s = wall_s;
        self.responses = rec.status.values().sum();
        self.errors = rec.errors.values().sum();
        self.requests = self.responses + self.errors;
        self.req_per_s = self.requests as f64 / wall_s.max(1e-9);
        let h = &rec.hist;
        let ms = |us: u64| us as f64 / 1e3;
        if !h.is_empty() {
            self.latency_ms = Latency {
                min: ms(h.min()),
                mean: h.mean() / 1e3,
                stdev: h.stdev() / 1e3,
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
            };
        }
        self.status = rec
            .status
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        self.error_codes.clone_from(&rec.errors);
        self.error_samples.clone_from(&rec.error_samples);
        self.versions.clone_from(&rec.versions);
        self.bytes.body = rec.body_bytes;
        self.histogram = bins(h, BINS);
        let factor = rec.series.buckets.len().div_ceil(MAX_POINTS).max(1);
        let width = rec.series.width.as_secs_f64() * factor as f64;
        self.timeline = rec
            .series
            .regroup(factor)
            .iter()
            .enumerate()
            .map(|(i, b)| {
                // The last slice ends with the run, usually part-way through.
                let end = (width * (i + 1) as f64).min(wall_s.max(width * i as f64 + 1e-3));
                (end, end - width * i as f64, b)
            })
            .map(|(end, span, b)| Point {
                t_s: round3(end),
                req_per_s: round3((b.ok + b.errors) as f64 / span),
                errors: b.errors,
                p50_ms: b.quantile_us(0.5).map(|u| round3(u / 1e3)),
                p99_ms: b.quantile_us(0.99).map(|u| round3(u / 1e3)),
            })
            .collect();
    }

    /// The human summary, with a terminal histogram from `hist`.
    pub fn text(&self, hist: Option<&Histogram<u64>>) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}{} {} — {} in flight{}, {}, protocol {}",
            if self.interrupted {
                "INTERRUPTED (partial report): "
            } else {
                ""
            },
            self.method,
            self.urls.join(" "),
            self.concurrency,
            self.rate
                .map_or(String::new(), |r| format!(", open loop at {r} req/s")),
            self.limit,
            self.protocol,
        );
        let _ = writeln!(o, "\nSummary:");
        let _ = writeln!(
            o,
            "  Requests:     {} finished = {} responses + {} errors{}",
            self.requests,
            self.responses,
            self.errors,
            if self.cancelled > 0 {
                format!(" ({} in flight at the stop, not counted)", self.cancelled)
            } else {
                String::new()
            }
        );
        let _ = writeln!(o, "  Duration:     {:.2} s", self.duration_s);
        let _ = writeln!(o, "  Throughput:   {:.1} req/s", self.req_per_s);
        let _ = writeln!(
            o,
            "  Transfer:     {} of bodies read, {} received on the wire, {} sent",
            fmt_bytes(self.bytes.body),
            fmt_bytes(self.bytes.received),
            fmt_bytes(self.bytes.sent)
        );
        let _ = writeln!(
            o,
            "  Connections:  {} opened, {} requests reused one",
            self.connections.opened, self.connections.reused
        );
        if self.responses > 0 {
            let l = &self.latency_ms;
            let _ = writeln!(
                o,
                "\nLatency ({}to the last body byte):",
                if self.rate.is_some() {
                    "from each request's scheduled start "
                } else {
                    ""
                }
            );
            for (name, v) in [
                ("min", l.min),
                ("p50", l.p50),
                ("p90", l.p90),
                ("p95", l.p95),
                ("p99", l.p99),
                ("p99.9", l.p99_9),
                ("max", l.max),
            ] {
                let _ = writeln!(o, "  {name:<6} {:>10}", fmt_us(v * 1e3));
            }
            let _ = writeln!(
                o,
                "  mean   {:>10}  (stdev {})",
                fmt_us(l.mean * 1e3),
                fmt_us(l.stdev * 1e3)
            );
            if let Some(h) = hist {
                let _ = writeln!(o, "\nLatency histogram:");
                o.push_str(&terminal_histogram(&bins(h, TERMINAL_BINS)));
            }
        }
        let _ = writeln!(o, "\nStatus codes:");
        if self.status.is_empty() {
            let _ = writeln!(o, "  (no responses)");
        }
        for (code, n) in &self.status {
            let _ = writeln!(o, "  {code}: {n}");
        }
        if !self.error_codes.is_empty() {
            let _ = writeln!(o, "\nErrors:");
            for (code, n) in &self.error_codes {
                let sample = self.error_samples.get(code).map_or("", String::as_str);
                let _ = writeln!(o, "  {code}: {n}  ({sample})");
            }
        }
        if !self.versions.is_empty() {
            let list: Vec<String> = self
                .versions
                .iter()
                .map(|(v, n)| format!("{v} {n}"))
                .collect();
            let _ = writeln!(o, "\nProtocols: {}", list.join(", "));
        }
        o
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `n` bins from the fastest to the slowest response: logarithmic when they span more than
/// a factor of four, else linear.
pub fn bins(h: &Histogram<u64>, n: usize) -> Vec<Bin> {
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64 + 1.0);
    let log = hi / lo > 4.0;
    let edge = |i: usize| {
        let f = i as f64 / n as f64;
        if log {
            lo * (hi / lo).powf(f)
        } else {
            lo + (hi - lo) * f
        }
    };
    let mut out: Vec<Bin> = (0..n)
        .map(|i| Bin {
            from_ms: round3(edge(i) / 1e3),
            to_ms: round3(edge(i + 1) / 1e3),
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let x = h.median_equivalent(v.value_iterated_to()) as f64;
        let i = if log {
            ((x.max(lo) / lo).ln() / (hi / lo).ln() * n as f64) as usize
        } else {
            ((x - lo).max(0.0) / (hi - lo) * n as f64) as usize
        };
        out[i.min(n - 1)].count += v.count_at_value();
    }
    out
}

/// One row per bin: `  1.20ms – 2.40ms [  1234] ■■■■■`.
fn terminal_histogram(bins: &[Bin]) -> String {
    const WIDTH: f64 = 40.0;
    let most = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let mut o = String::new();
    for b in bins {
        let bar = ((b.count as f64 / most as f64) * WIDTH).ceil() as usize;
        let _ = writeln!(
            o,
            "  {:>9} – {:<9} [{:>8}] {}",
            fmt_us(b.from_ms * 1e3),
            fmt_us(b.to_ms * 1e3),
            b.count,
            "■".repeat(if b.count > 0 { bar.max(1) } else { 0 })
        );
    }
    o
}

/// `--compare BEFORE AFTER`: each figure side by side with after ÷ before.
pub fn compare(a: &Report, b: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<14} {:>14} {:>14} {:>10}",
        "", "before", "after", "after/before"
    );
    let row = |o: &mut String, name: &str, x: f64, y: f64, better: &str| {
        let ratio = if x > 0.0 {
            format!("{:.2}×", y / x)
        } else {
            "—".to_owned()
        };
        let _ = writeln!(o, "{name:<14} {x:>14.3} {y:>14.3} {ratio:>10}  {better}");
    };
    row(
        &mut o,
        "req/s",
        a.req_per_s,
        b.req_per_s,
        "(higher is better)",
    );
    let (la, lb) = (&a.latency_ms, &b.latency_ms);
    for (name, x, y) in [
        ("p50 ms", la.p50, lb.p50),
        ("p90 ms", la.p90, lb.p90),
        ("p95 ms", la.p95, lb.p95),
        ("p99 ms", la.p99, lb.p99),
        ("p99.9 ms", la.p99_9, lb.p99_9),
        ("max ms", la.max, lb.max),
    ] {
        row(&mut o, name, x, y, "(lower is better)");
    }
    let rate = |r: &Report| r.errors as f64 / (r.requests.max(1)) as f64 * 100.0;
    row(&mut o, "error %", rate(a), rate(b), "(lower is better)");
    row(
        &mut o,
        "conns opened",
        a.connections.opened as f64,
        b.connections.opened as f64,
        "",
    );
    if a.req_per_s > 0.0 {
        let _ = writeln!(
            o,
            "\nThroughput {:.2}× the before run; p99 {:.2}× its value.",
            b.req_per_s / a.req_per_s,
            if la.p99 > 0.0 { lb.p99 / la.p99 } else { 0.0 }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::histogram;

    #[test]
    fn bins_cover_every_response_once() {
        let mut h = histogram();
        for us in [100, 150, 200, 1_000, 5_000, 50_000] {
            h.record(us).unwrap();
        }
        let b = bins(&h, 10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 6);
        assert!(b[0].from_ms <= 0.1 && b[9].to_ms >= 50.0);
    }

    #[test]
    fn compare_prints_ratios() {
        let a = Report {
            req_per_s: 100.0,
            ..Report::default()
        };
        let b = Report {
            req_per_s: 400.0,
            ..Report::default()
        };
        let out = compare(&a, &b);
        assert!(out.contains("4.00×"), "{out}");
    }
}

//! Load balancing (criterion): the cost of one pick per strategy with 10 and 100 endpoints, and a
//! load run over three test servers where one answers 20 ms late (share of requests it gets and
//! p99 latency, P2C against round robin).
//!
//! `cargo bench -p wirecore --bench balance`; with `WIRECORE_BENCH_REPORT=<file>` it also writes
//! a markdown summary (the figures quoted in the issue notes).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::Criterion;
use tokio::time::Instant;
use wirecore::bench_support::BalancePick;
use wirecore::config::{EndpointConfig, ServiceConfig, Strategy};
use wirecore::{Client, Config};
use wirecore_testserver::{Options, Reply, TestServer};

const STRATEGIES: [&str; 5] = [
    "round_robin",
    "weighted_round_robin",
    "least_outstanding",
    "p2c_peak_ewma",
    "consistent_hash",
];

fn pick_ns(p: &BalancePick, n: u64) -> f64 {
    let t = Instant::now();
    for k in 0..n {
        black_box(p.pick(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Sends `n` GETs from 8 tasks; returns the share the first server got and the p50/p99
/// latency in ms.
async fn load(c: &Client, srvs: &[TestServer], n: u64) -> (f64, f64, f64) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, next) = (c.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Relaxed) < n {
                let t = Instant::now();
                let r = c.get("http://svc/bytes/100").send().await.expect("request");
                black_box(r.bytes().await.expect("body"));
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let counts: Vec<u64> = srvs.iter().map(|s| s.counters().requests).collect();
    let share = counts[0] as f64 / counts.iter().sum::<u64>().max(1) as f64;
    (share, pct(0.5), pct(0.99))
}

fn main() {
    let mut crit = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    let mut picks = Vec::new();
    for n in [10, 100] {
        let mut group = crit.benchmark_group(format!("pick_{n}_endpoints"));
        for s in STRATEGIES {
            let p = BalancePick::new(s, n);
            let mut k = 0u64;
            group.bench_function(s, |b| {
                b.iter(|| {
                    k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    black_box(p.pick(k))
                });
            });
            picks.push((s, n, p));
        }
        group.finish();
    }
    crit.final_summary();

    let Ok(path) = std::env::var("WIRECORE_BENCH_REPORT") else {
        return;
    };
    let mut rows = String::new();
    for s in STRATEGIES {
        let ns: Vec<f64> = [10, 100]
            .iter()
            .map(|&n| {
                let p = &picks.iter().find(|x| x.0 == s && x.1 == n).expect("pick").2;
                pick_ns(p, 2_000_000)
            })
            .collect();
        let _ = writeln!(rows, "| {s} | {:.1} ns | {:.1} ns |", ns[0], ns[1]);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut load_rows = String::new();
    for strategy in [Strategy::RoundRobin, Strategy::P2cPeakEwma] {
        let srvs: Vec<TestServer> = (0..3)
            .map(|_| {
                rt.block_on(TestServer::start(Options {
                    tls: false,
                    ..Options::default()
                }))
                .expect("test server")
            })
            .collect();
        let slow = Reply {
            delay_ms: 20,
            ..Reply::default()
        };
        srvs[0].script("/bytes/100", vec![slow; 5_000]);
        let mut cfg = Config::default();
        cfg.services.insert(
            "svc".into(),
            ServiceConfig {
                endpoints: srvs
                    .iter()
                    .map(|s| EndpointConfig {
                        url: s.url(""),
                        weight: 1,
                    })
                    .collect(),
                strategy,
                ..ServiceConfig::default()
            },
        );
        let _guard = rt.enter();
        let c = Client::from_config(cfg).expect("client");
        let (share, p50, p99) = rt.block_on(load(&c, &srvs, 3_000));
        let _ = writeln!(
            load_rows,
            "| {strategy:?} | {:.1} % | {p50:.2} ms | {p99:.2} ms |",
            share * 100.0
        );
    }
    let report = format!(
        "# Load-balancing benchmarks\n\n\
         Command: `make bench` (`cargo bench -p wirecore --bench balance`), release build, {} CPUs.\n\n\
         Cost of one pick alone (no request and no in-flight guard):\n\n\
         | strategy | 10 endpoints | 100 endpoints |\n| --- | --- | --- |\n{rows}\n\
         Targets at 10 endpoints: ≤ 50 ns round robin / least outstanding, ≤ 100 ns P2C, \
         ≤ 150 ns consistent hash.\n\n\
         3,000 GETs from 8 tasks over three test servers, the first answering 20 ms late:\n\n\
         | strategy | share of the slow endpoint | p50 | p99 |\n| --- | --- | --- | --- |\n{load_rows}\n\
         Target: P2C sends the slow endpoint ≤ 10 % where round robin sends 33 %.\n",
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    std::fs::write(&path, &report).expect("write report");
    println!("{report}");
}

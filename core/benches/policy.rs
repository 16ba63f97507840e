//! Micro-benchmarks of the resilience policies (criterion): a closed breaker's check, a local
//! rate-limiter check, and the whole policy stack against the bare pool over loopback.
//!
//! `cargo bench -p wirecore --bench policy` runs criterion; with `WIRECORE_BENCH_REPORT=<file>`
//! it also writes a markdown summary with the stack overhead as a ratio measured in interleaved
//! rounds (the figure quoted in the issue notes).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use tokio::time::Instant;
use wirecore::bench_support::{BreakerCheck, LimiterCheck};
use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

fn bare_config() -> Config {
    let mut c = Config::default();
    c.retry.enabled = false;
    c
}

fn full_config() -> Config {
    let mut c = Config::default();
    // Retries (with budget) are on by default; add the rest with limits that never bind.
    c.breaker.enabled = true;
    c.rate_limit.enabled = true;
    c.rate_limit.requests = 1_000_000_000;
    c.concurrency.enabled = true;
    c.concurrency.initial_limit = 1_000;
    c.concurrency.max_limit = 1_000;
    c
}

async fn get_n(c: &Client, url: &str, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let r = c.get(url).send().await.expect("request");
        black_box(r.bytes().await.expect("body"));
    }
    t.elapsed()
}

fn per_op_ns(f: impl Fn() -> bool, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let mut crit = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let breaker = BreakerCheck::new();
    crit.bench_function("breaker_check_closed", |b| {
        b.iter(|| black_box(breaker.check()));
    });
    let limiter = LimiterCheck::new();
    crit.bench_function("rate_limit_check_local", |b| {
        b.iter(|| black_box(limiter.check()));
    });
    crit.bench_function("rate_limit_check_keyed", |b| {
        b.iter(|| black_box(limiter.check_keyed()));
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let srv = rt
        .block_on(TestServer::start(Options::default()))
        .expect("test server");
    let url = srv.url("/bytes/1024");
    let _guard = rt.enter();
    let bare = Client::from_config(bare_config()).expect("client");
    let full = Client::from_config(full_config()).expect("client");
    let mut group = crit.benchmark_group("get_1k_h1_sequential");
    for (name, client) in [("bare_pool", &bare), ("all_policies", &full)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(get_n(client, &url, iters)));
        });
    }
    group.finish();
    crit.final_summary();

    if let Ok(path) = std::env::var("WIRECORE_BENCH_REPORT") {
        // Interleaved rounds so drift on a shared machine hits both sides alike.
        let (mut t_bare, mut t_full) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..10 {
            t_bare += rt.block_on(get_n(&bare, &url, 1_000));
            t_full += rt.block_on(get_n(&full, &url, 1_000));
        }
        let overhead = (t_full.as_secs_f64() / t_bare.as_secs_f64() - 1.0) * 100.0;
        let b_ns = per_op_ns(|| breaker.check(), 10_000_000);
        let l_ns = per_op_ns(|| limiter.check(), 10_000_000);
        let k_ns = per_op_ns(|| limiter.check_keyed(), 10_000_000);
        let report = format!(
            "# Resilience policy micro-benchmarks\n\n\
             Command: `make bench` (`cargo bench -p wirecore --bench policy`), release build, \
             {} CPUs.\n\n\
             | measure | value | target |\n| --- | --- | --- |\n\
             | closed breaker check | {b_ns:.1} ns | ≤ 20 ns |\n\
             | local rate-limit check (GCRA), per origin | {l_ns:.1} ns | ≤ 50 ns |\n\
             | local rate-limit check, per request key (hash lookup) | {k_ns:.1} ns | |\n\
             | GET /bytes/1024 h1, bare pool | {:.1} µs/request | |\n\
             | same with retry+budget, breaker, rate limit, adaptive concurrency | {:.1} µs/request | |\n\
             | policy stack overhead | {overhead:+.1} % | ≤ 5 % |\n\n\
             10 interleaved rounds of 1000 sequential requests each against the in-process test \
             server; criterion's own statistics are printed above the summary when run.\n",
            std::thread::available_parallelism().map_or(0, usize::from),
            t_bare.as_secs_f64() * 1e6 / 10_000.0,
            t_full.as_secs_f64() * 1e6 / 10_000.0,
        );
        std::fs::write(&path, &report).expect("write report");
        println!("{report}");
    }
}

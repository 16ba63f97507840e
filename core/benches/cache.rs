//! Benchmarks of the response cache (criterion): a memory hit through the whole client path
//! (metrics, redirect loop, lookup, the stored body read back), a loopback GET without a cache
//! for scale, and 1,000 concurrent identical GETs coalesced into one upstream request.
//!
//! `cargo bench -p wirecore --bench cache`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::Criterion;
use tokio::time::Instant;
use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

fn client(cache: bool) -> Client {
    let mut c = Config::default();
    c.retry.enabled = false;
    c.cache.enabled = cache;
    Client::from_config(c).expect("client")
}

async fn get_n(c: &Client, url: &str, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let r = c.get(url).send().await.expect("request");
        black_box(r.bytes().await.expect("body"));
    }
    t.elapsed()
}

fn main() {
    let mut crit = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let srv = rt
        .block_on(TestServer::start(Options {
            request_log_capacity: 0,
            ..Options::default()
        }))
        .expect("test server");
    let fresh = srv.url("/cache/bench?cache_control=max-age=3600");
    let cached = client(true);
    rt.block_on(get_n(&cached, &fresh, 1));
    let plain = client(false);
    let bytes = srv.url("/bytes/1024");
    rt.block_on(get_n(&plain, &bytes, 1));

    let mut group = crit.benchmark_group("cache");
    group.bench_function("memory_hit", |b| {
        b.iter_custom(|n| rt.block_on(get_n(&cached, &fresh, n)));
    });
    group.bench_function("loopback_get_1k_uncached", |b| {
        b.iter_custom(|n| rt.block_on(get_n(&plain, &bytes, n)));
    });
    group.sample_size(10);
    // A new URL each round: every round is one miss shared by 1,000 callers.
    let round = AtomicU64::new(0);
    let upstream = AtomicU64::new(0);
    group.bench_function("coalesce_1000_concurrent_gets", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let nth = round.fetch_add(1, Relaxed);
                let url = srv.url(&format!(
                    "/cache/herd{nth}?cache_control=max-age=60&delay_ms=20"
                ));
                let shared = cached.clone();
                let before = srv.counters().requests;
                total += rt.block_on(async move {
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..1000)
                        .map(|_| {
                            let (c, url) = (shared.clone(), url.clone());
                            tokio::spawn(async move {
                                let r = c.get(&url).send().await.expect("request");
                                black_box(r.bytes().await.expect("body"));
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                    t.elapsed()
                });
                upstream.fetch_add(srv.counters().requests - before, Relaxed);
            }
            total
        });
    });
    group.finish();
    let rounds = round.load(Relaxed).max(1);
    println!(
        "coalescing: {} upstream requests for {} rounds of 1,000 identical GETs ({:.2} per round); cache stats: {:?}",
        upstream.load(Relaxed),
        rounds,
        upstream.load(Relaxed) as f64 / rounds as f64,
        cached.stats().cache
    );
    crit.final_summary();
}

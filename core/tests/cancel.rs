//! Cancellation is a normal path: requests dropped at any await point (pool wait, connect,
//! send, upload, response head, body, retry backoff, hedge, concurrency queue) give back every
//! pool slot, limiter slot and counter.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use support::*;
use wirecore::{Client, Config, RequestBody, Stats};

/// One slot per origin, so a single leaked slot wedges the origin; retries, hedges and the
/// concurrency limiter on, so their await points are cancelled too.
fn config_for(srv: &TestServer) -> Config {
    let mut c = config(srv);
    c.pool.max_connections_per_host = 1;
    c.pool.idle_timeout_ms = 300;
    c.timeouts.pool_acquire_ms = 10_000;
    c.concurrency.enabled = true;
    c.concurrency.initial_limit = 4;
    c.concurrency.min_limit = 1;
    c.concurrency.max_queue = 10_000;
    c.retry.max_attempts = 3;
    c.retry.backoff_base_ms = 1;
    c.retry.backoff_max_ms = 5;
    c.retry.budget.enabled = false;
    c.retry.hedge.enabled = true;
    c.retry.hedge.delay_ms = 3;
    c
}

/// A streamed (never replayed) upload of `chunks` × 16 KiB, a little at a time.
fn streamed(chunks: usize) -> RequestBody {
    RequestBody::wrap_stream(futures_util::stream::unfold(0, move |n| async move {
        if n == chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 16 * 1024])),
            n + 1,
        ))
    }))
}

/// Sends request number `kind` of the mix and reads its body.
async fn one(c: &Client, base: &str, kind: u32, n: u64) -> Result<(), wirecore::Error> {
    let big = Bytes::from(vec![1u8; 256 * 1024]);
    let req = match kind {
        0 => c.get(&format!("{base}/delay/{}", n % 15)),
        1 => c.get(&format!("{base}/bytes/{}", 1 + n % 200_000)),
        2 => c.get(&format!("{base}/status/503")),
        3 => c.post(&format!("{base}/upload")).body(big),
        4 => c.post(&format!("{base}/upload")).body(streamed(8)),
        5 => c.post(&format!("{base}/early?status=413")).body(big),
        6 => c
            .post(&format!("{base}/early?status=200&drain=1"))
            .body(streamed(8)),
        7 => c.put(&format!("{base}/early?drain=1")).body(big),
        _ => c.get(&format!("{base}/drip?bytes=2000&chunks=4&delay_ms=5")),
    };
    req.send().await?.bytes().await.map(drop)
}

/// Whether nothing is in use: no request, connection, waiter or limiter slot.
fn quiet(s: &Stats) -> bool {
    let p = &s.pool;
    s.requests_in_flight == 0
        && p.connections == 0
        && p.active == 0
        && p.pending == 0
        && p.connecting == 0
        && p.h2_open_streams == 0
        && s.resilience.origins.values().all(|o| {
            o.concurrency_in_flight.unwrap_or(0) == 0 && o.concurrency_waiting.unwrap_or(0) == 0
        })
}

async fn wait_quiet(c: &Client, within: Duration) -> Stats {
    let until = tokio::time::Instant::now() + within;
    loop {
        let s = c.stats();
        if quiet(&s) || tokio::time::Instant::now() >= until {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` requests of the mix, 12 at a time, each cancelled after a random delay (a quarter
/// run to the end).
async fn storm(c: &Client, base: &str, seed: u64, count: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let plan: Vec<(u32, u64, Option<u64>)> = (0..count)
        .map(|_| {
            let cut = (rng.u32(0..4) != 0).then(|| rng.u64(0..25_000));
            (rng.u32(0..9), rng.u64(..), cut)
        })
        .collect();
    futures_util::stream::iter(plan)
        .for_each_concurrent(12, |(kind, n, cut)| async move {
            let fut = one(c, base, kind, n);
            match cut {
                Some(us) => {
                    let _ = tokio::time::timeout(Duration::from_micros(us), fut).await;
                }
                None => {
                    let _ = fut.await;
                }
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_return_every_slot() {
    let srv = server().await;
    let h1 = Client::from_config(config_for(&srv)).unwrap();
    let h2 = Client::from_config(config_for(&srv)).unwrap();
    let h2c = Client::from_config({
        let mut c = config_for(&srv);
        c.http2.prior_knowledge = true;
        c
    })
    .unwrap();
    let (plain, tls) = (srv.url(""), srv.tls_url(""));
    let plain = plain.trim_end_matches('/');
    let tls = tls.trim_end_matches('/');
    let bounded = tokio::time::timeout(Duration::from_mins(2), async {
        tokio::join!(
            storm(&h1, plain, 1, 300),
            storm(&h2, tls, 2, 300),
            storm(&h2c, plain, 3, 300),
        )
    });
    bounded.await.expect("the storm ends");
    for (name, c) in [("h1", &h1), ("h2", &h2), ("h2c", &h2c)] {
        let s = wait_quiet(c, Duration::from_secs(20)).await;
        assert!(
            quiet(&s),
            "{name}: still in use after cancelling: pool {:?}, in flight {}, resilience {:?}",
            s.pool,
            s.requests_in_flight,
            s.resilience.origins
        );
    }
    let k = srv
        .wait_for(Duration::from_secs(10), |k| k.connections_active == 0)
        .await;
    assert_eq!(k.connections_active, 0, "{k:?}");
    for (c, base) in [(&h1, plain), (&h2, tls), (&h2c, plain)] {
        let r = c
            .get(&format!("{base}/bytes/10"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 10);
    }
}

/// An upload the server answered before reading (and is still reading) keeps its HTTP/1.1
/// connection busy: the connection is closed, not handed to the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_still_uploading_is_not_reused() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.pool.max_connections_per_host = 1;
        cfg.http2.enabled = false;
    });
    // An upload that sends one chunk, then stalls until the test ends.
    let (_hold, stalled) = tokio::sync::oneshot::channel::<()>();
    let body = futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("x")) })
        .chain(futures_util::stream::once(async move {
            let _ = stalled.await;
            Ok(Bytes::new())
        }));
    let r = c
        .post(&srv.url("/early?drain=1"))
        .body(RequestBody::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let r = c
        .get(&srv.url("/bytes/3"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert!(!r.reused(), "a connection still uploading was reused");
    assert_eq!(r.bytes().await.unwrap().len(), 3);
    let s = c.stats();
    assert_eq!(s.pool.evictions.error, 1, "{:?}", s.pool);
    let k = srv
        .wait_for(Duration::from_secs(5), |k| k.connections_closed >= 1)
        .await;
    assert_eq!(
        k.connections_closed, 1,
        "the abandoned upload's connection closes"
    );
}

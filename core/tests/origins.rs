//! Per-origin state (pool, policies, route cache, metrics labels) stays bounded however many
//! origins a client talks to, and is forgotten once they go quiet.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::*;
use wirecore::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_origins_stay_under_the_cap_then_go() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.pool.origin_idle_timeout_ms = 500;
        cfg.pool.idle_timeout_ms = 200;
        cfg.retry.max_attempts = 1;
        cfg.breaker.enabled = true;
        cfg.concurrency.enabled = true;
    });
    assert_eq!(c.config().pool.max_origins, 1024, "the default cap");
    // Nothing listens on this port of any 127.x address: every connect is refused at once.
    let port = free_port();
    let urls: Vec<String> = (0..10_000u32)
        .map(|i| format!("http://127.0.{}.{}:{port}/", 1 + i / 250, 1 + i % 250))
        .collect();
    let errors = std::sync::atomic::AtomicU64::new(0);
    let all = futures_util::stream::iter(&urls).for_each_concurrent(32, |u| {
        let (c, errors) = (&c, &errors);
        async move {
            let r = c.get(u).timeout(Duration::from_secs(5)).send().await;
            if r.is_err_and(|e| e.kind() == ErrorKind::Connect) {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    tokio::time::timeout(Duration::from_mins(2), all)
        .await
        .expect("10,000 refused connects end");
    assert_eq!(errors.into_inner(), 10_000);
    let [pool, live, _spare, policies, routes] = c.tracked_origins();
    assert!(pool <= 1024, "{pool} origins in the pool");
    assert!(policies <= 1024, "{policies} origins with policy state");
    assert!(routes <= 1024, "{routes} cached routes");
    assert_eq!(live, 0, "no origin has a connection");
    let s = c.stats();
    assert!(s.origins.len() <= 1024, "{} pool labels", s.origins.len());
    assert!(s.resilience.origins.len() <= 1024);
    assert_eq!(s.errors_by_code["connect"], 10_000);
    // Quiet for `origin_idle_timeout_ms`: everything goes.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.tracked_origins() != [0; 5] && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.tracked_origins(), [0; 5]);
    let s = c.stats();
    assert!(s.origins.is_empty() && s.resilience.origins.is_empty());
    assert_eq!(s.errors_by_code["connect"], 10_000, "totals never go down");
    let r = c.get(&srv.url("/bytes/4")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 4);
    assert_eq!(c.tracked_origins()[0], 1);
}

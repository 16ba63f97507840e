//! Retries, hedging, circuit breakers, local rate limits and adaptive concurrency against the
//! loopback test server, asserting what the server saw.

#![allow(
    clippy::many_single_char_names,
    reason = "c, e, k, r, s, t read well in short test bodies"
)]

mod support;

use std::time::Duration;

use support::*;
use tokio::time::Instant;
use wirecore::{BreakerState, ErrorKind};
use wirecore_testserver::Action;

fn reset() -> Reply {
    Reply {
        action: Some(Action::Reset),
        ..Reply::default()
    }
}

fn ok(body: &str) -> Reply {
    Reply {
        body: Some(body.to_owned()),
        ..Reply::default()
    }
}

fn with_header(status: u16, name: &str, value: &str) -> Reply {
    let mut r = Reply::status(status);
    r.headers.insert(name.to_owned(), value.to_owned());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_after_a_reset_is_retried_and_succeeds() {
    let srv = server().await;
    let c = client(&srv);
    srv.script("/s/flaky", vec![reset(), ok("second")]);
    let r = c.get(&srv.url("/s/flaky")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "second");
    assert_eq!(srv.counters().requests, 2);
    let s = c.stats().resilience;
    assert_eq!(s.retries["reset"], 1, "{s:?}");
    assert_eq!(s.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_retried_unless_opted_in_or_never_sent() {
    let srv = server().await;
    let c = client(&srv);
    srv.script("/s/post", vec![reset(), ok("second")]);
    let e = c
        .post(&srv.url("/s/post"))
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(
        srv.counters().requests,
        1,
        "a POST that may have been processed is not resent"
    );

    srv.reset();
    srv.script("/s/post", vec![reset(), ok("second")]);
    let r = c
        .post(&srv.url("/s/post"))
        .body("x")
        .idempotent(true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "second");
    srv.reset();
    srv.script("/s/post", vec![reset(), ok("second")]);
    let r = c
        .post(&srv.url("/s/post"))
        .header("idempotency-key", "k-1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "an Idempotency-Key makes a POST safe to repeat"
    );

    // Connection refused: the request never left, so even a POST is retried.
    let before = c.stats().resilience.attempts;
    let refused = c
        .post("http://127.0.0.1:9/")
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Connect);
    let s = c.stats().resilience;
    assert!(s.attempts >= before + 3, "refused POST retried: {s:?}");
    assert!(s.retries["unsent"] >= 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_503_then_200_succeeds_in_three_attempts() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.backoff_base_ms = 40;
        c.retry.backoff_max_ms = 40;
    });
    srv.script(
        "/s/busy",
        vec![Reply::status(503), Reply::status(503), ok("done")],
    );
    let r = c.get(&srv.url("/s/busy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "done");
    assert_eq!(srv.counters().requests, 3);
    let s = c.stats().resilience;
    assert_eq!(s.retries["status"], 2);
    assert_eq!(s.attempts, 3);
    // Out of attempts: the last 503 is returned as a response.
    srv.script("/s/down", vec![Reply::status(503); 5]);
    let r = c.get(&srv.url("/s/down")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(srv.counters().requests, 6);
    // 4xx other than 429 is never retried.
    srv.script("/s/nf", vec![Reply::status(404), ok("x")]);
    assert_eq!(c.get(&srv.url("/s/nf")).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_up_to_the_cap() {
    let srv = server().await;
    let c = client_with(&srv, |c| c.retry.retry_after_max_ms = 2_000);
    srv.script(
        "/s/429",
        vec![with_header(429, "retry-after", "1"), ok("after")],
    );
    let t = Instant::now();
    let r = c.get(&srv.url("/s/429")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(c.stats().resilience.retries["429"], 1);

    srv.script(
        "/s/429long",
        vec![with_header(429, "retry-after", "60"), ok("never")],
    );
    let t = Instant::now();
    let r = c.get(&srv.url("/s/429long")).send().await.unwrap();
    assert_eq!(r.status(), 429, "a wait beyond the cap returns the 429");
    assert!(
        t.elapsed() < Duration::from_millis(1_900),
        "no wait up to the 2 s cap"
    );
    assert_eq!(srv.counters().requests, 3);

    // RateLimit-Reset works the same way.
    srv.script(
        "/s/reset",
        vec![with_header(503, "ratelimit-reset", "1"), ok("x")],
    );
    let t = Instant::now();
    assert_eq!(
        c.get(&srv.url("/s/reset")).send().await.unwrap().status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(950));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_stops_a_retry_storm() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.max_attempts = 5;
        c.retry.backoff_base_ms = 0;
        c.retry.backoff_max_ms = 0;
        c.retry.budget.ratio_percent = 20;
        c.retry.budget.min_per_second = 0;
    });
    let n = 200u64;
    for _ in 0..n {
        let r = c.get(&srv.url("/status/503")).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    let seen = srv.counters().requests;
    let s = c.stats().resilience;
    // Without a budget a total outage would cost 5 × 200 = 1000 requests.
    assert!(seen <= n + n / 5, "{seen} requests reached the server");
    assert!(
        seen >= n + n / 10,
        "the budget still allows some retries: {seen}"
    );
    assert!(s.retry_budget_exhausted > 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_can_be_disabled() {
    let srv = server().await;
    let c = client_with(&srv, |c| c.retry.enabled = false);
    srv.script("/s/x", vec![Reply::status(503), ok("x")]);
    assert_eq!(c.get(&srv.url("/s/x")).send().await.unwrap().status(), 503);
    assert_eq!(srv.counters().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_cuts_the_tail_and_cancels_the_loser() {
    let srv = server().await;
    // Every tenth reply is slow (1 s: far above what a hedged request takes even on a loaded
    // machine). A hedge takes the next (fast) reply from the queue.
    let pattern = |n: usize| -> Vec<Reply> {
        (0..n)
            .map(|i| Reply {
                delay_ms: if i % 10 == 0 { 1_000 } else { 0 },
                body: Some("x".to_owned()),
                ..Reply::default()
            })
            .collect()
    };
    let measure = |c: wirecore::Client, url: String| async move {
        let mut worst = Duration::ZERO;
        for _ in 0..30 {
            let t = Instant::now();
            let r = c.get(&url).send().await.unwrap();
            r.bytes().await.unwrap();
            worst = worst.max(t.elapsed());
        }
        worst
    };
    let plain = client(&srv);
    srv.script("/s/tail", pattern(40));
    let worst_plain = measure(plain, srv.url("/s/tail")).await;
    assert!(worst_plain >= Duration::from_secs(1), "{worst_plain:?}");

    srv.reset();
    let hedged = client_with(&srv, |c| {
        c.retry.hedge.enabled = true;
        c.retry.hedge.delay_ms = 50;
    });
    srv.script("/s/tail", pattern(40));
    let worst_hedged = measure(hedged.clone(), srv.url("/s/tail")).await;
    assert!(
        worst_hedged < Duration::from_millis(800),
        "hedged worst {worst_hedged:?} vs plain {worst_plain:?}"
    );
    let s = hedged.stats().resilience;
    assert!(s.hedges_sent >= 3, "{s:?}");
    assert!(s.hedges_won >= 3, "{s:?}");
    let k = srv.counters();
    srv.wait_for(Duration::from_secs(3), |k| k.requests_cancelled >= 3)
        .await;
    assert!(
        srv.counters().requests_cancelled >= 3,
        "the server saw the slow losers cancelled: {k:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_fails_fast_probes_and_closes() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.breaker.enabled = true;
        c.breaker.consecutive_failures = 3;
        c.breaker.open_ms = 300;
        c.breaker.max_open_ms = 1_000;
    });
    let mut events = c.breaker_events();
    for _ in 0..3 {
        assert_eq!(
            c.get(&srv.url("/status/500"))
                .send()
                .await
                .unwrap()
                .status(),
            500
        );
    }
    let seen = srv.counters().requests;
    let t = Instant::now();
    let e = c.get(&srv.url("/bytes/10")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    // The kind and the request count prove no contact; the bound only catches a stall.
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "fails fast: {:?}",
        t.elapsed()
    );
    assert_eq!(
        srv.counters().requests,
        seen,
        "no server contact while open"
    );
    assert_eq!(
        c.stats().resilience.origins[&format!("http://{}", srv.addr())]
            .breaker_state
            .as_deref(),
        Some("open")
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = c.get(&srv.url("/bytes/10")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the probe goes through");
    assert_eq!(srv.counters().requests, seen + 1);
    c.get(&srv.url("/bytes/10")).send().await.unwrap();
    let mut log = Vec::new();
    while let Ok(ev) = events.try_recv() {
        log.push((ev.from, ev.to));
    }
    assert_eq!(
        log,
        [
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
    let s = c.stats();
    assert_eq!(s.resilience.breaker_trips, 1);
    assert_eq!(s.resilience.breaker_rejected, 1);
    assert!(s.prometheus().contains("wirecore_breaker_trips_total 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_counts_timeouts_and_connect_errors_not_4xx() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.breaker.enabled = true;
        c.breaker.consecutive_failures = 2;
    });
    for _ in 0..5 {
        assert_eq!(
            c.get(&srv.url("/status/404"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
    for _ in 0..2 {
        let e = c
            .get(&srv.url("/delay/2000"))
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimeoutTotal);
    }
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::CircuitOpen,
        "two timeouts in a row trip it"
    );
    let refused = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.breaker.enabled = true;
        c.breaker.consecutive_failures = 2;
    });
    for _ in 0..2 {
        let e = refused.get("http://127.0.0.1:9/").send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect);
    }
    let e = refused.get("http://127.0.0.1:9/").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rate_limit_waits_or_fails() {
    let srv = server().await;
    let waiting = client_with(&srv, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.requests = 10;
        c.rate_limit.per_ms = 1_000;
        c.rate_limit.burst = 1;
    });
    let t = Instant::now();
    for _ in 0..5 {
        waiting.get(&srv.url("/bytes/1")).send().await.unwrap();
    }
    assert!(
        t.elapsed() >= Duration::from_millis(380),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(waiting.stats().resilience.rate_limit.waited, 4);

    let failing = client_with(&srv, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.requests = 1;
        c.rate_limit.per_ms = 60_000;
        c.rate_limit.mode = wirecore::config::RateLimitMode::Fail;
    });
    failing.get(&srv.url("/bytes/1")).send().await.unwrap();
    let before = srv.counters().requests;
    let e = failing.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(srv.counters().requests, before, "refused before any I/O");
    // Per-key scope: another key has its own allowance.
    let keyed = client_with(&srv, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.requests = 1;
        c.rate_limit.per_ms = 60_000;
        c.rate_limit.mode = wirecore::config::RateLimitMode::Fail;
        c.rate_limit.scope = wirecore::config::RateLimitScope::Key;
    });
    for key in ["alice", "bob"] {
        keyed
            .get(&srv.url("/bytes/1"))
            .rate_limit_key(key)
            .send()
            .await
            .unwrap();
    }
    let e = keyed
        .get(&srv.url("/bytes/1"))
        .rate_limit_key("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_concurrency_shrinks_on_overload_and_recovers() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.concurrency.enabled = true;
        c.concurrency.initial_limit = 20;
        c.concurrency.latency_tolerance = 50.0;
    });
    let origin = format!("http://{}", srv.addr());
    let limit = |c: &wirecore::Client| {
        c.stats().resilience.origins[&origin]
            .concurrency_limit
            .unwrap()
    };
    for _ in 0..20 {
        c.get(&srv.url("/status/503")).send().await.unwrap();
    }
    let low = limit(&c);
    assert!(low <= 3, "20 overload signals shrink 20 to {low}");
    // Concurrent load is now held to the limit (which grows as they succeed): 30 requests at
    // once need several rounds and far fewer than 30 connections.
    srv.reset();
    let all = (0..30).map(|_| {
        let c = c.clone();
        let url = srv.url("/delay/30");
        async move { c.get(&url).send().await?.bytes().await }
    });
    let t = Instant::now();
    for r in futures_util::future::join_all(all).await {
        r.unwrap();
    }
    let took = t.elapsed();
    let k = srv.counters();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(
        k.connections_accepted <= 12,
        "{} connections for a limit that started at {low}",
        k.connections_accepted
    );
    assert!(limit(&c) > low, "successes grow it back: {}", limit(&c));
    // A full queue fails with `overloaded`.
    let tight = client_with(&srv, |c| {
        c.concurrency.enabled = true;
        c.concurrency.initial_limit = 1;
        c.concurrency.max_queue = 0;
    });
    let seen = srv.counters().requests;
    let slow = {
        let tight = tight.clone();
        let url = srv.url("/delay/300");
        tokio::spawn(async move { tight.get(&url).send().await.map(|_| ()) })
    };
    wait_arrived(&srv, seen).await;
    let e = tight.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    slow.await.unwrap().unwrap();
    assert_eq!(tight.stats().resilience.overloaded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_compose_as_a_tower_layer() {
    use tower::{Layer as _, ServiceExt as _};
    let srv = server().await;
    // The inner client sends once; the layer owns retries and the breaker.
    let inner = client_with(&srv, |c| c.retry.enabled = false);
    let mut cfg = wirecore::Config::default();
    cfg.retry.backoff_base_ms = 5;
    cfg.retry.backoff_max_ms = 5;
    cfg.breaker.enabled = true;
    cfg.breaker.consecutive_failures = 2;
    cfg.breaker.open_ms = 60_000;
    let layer = wirecore::ResilienceLayer::new(&cfg).unwrap();
    let svc = layer.layer(inner);
    srv.script("/s/l", vec![Reply::status(503), ok("layered")]);
    let req = http::Request::get(srv.url("/s/l"))
        .body(String::new())
        .unwrap();
    let r = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(srv.counters().requests, 2);
    assert_eq!(layer.stats().retries["status"], 1);
    // Two requests that exhaust their attempts on 500s trip the breaker (500 is not retried).
    for _ in 0..2 {
        let req = http::Request::get(srv.url("/status/500"))
            .body(String::new())
            .unwrap();
        assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), 500);
    }
    let req = http::Request::get(srv.url("/bytes/1"))
        .body(String::new())
        .unwrap();
    let e = svc.clone().oneshot(req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert_eq!(layer.stats().breaker_trips, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_ignores_cancelled_attempts_but_counts_deadline_cuts() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.breaker.enabled = true;
        c.breaker.consecutive_failures = 1;
    });
    // Cancelled by the caller before its deadline: not a failure of the origin.
    let seen = srv.counters().requests;
    let cancelled = {
        let c = c.clone();
        let url = srv.url("/delay/2000");
        tokio::spawn(async move {
            c.get(&url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map(|_| ())
        })
    };
    wait_arrived(&srv, seen).await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a cancelled attempt does not trip the breaker"
    );
    r.bytes().await.unwrap();
    // Cut by the total deadline: one failure, and consecutive_failures = 1 trips it.
    let e = c
        .get(&srv.url("/delay/2000"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimeoutTotal);
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert_eq!(c.stats().resilience.breaker_trips, 1);
}

//! Pool behaviour against the loopback test server, asserting the server's own counters.

mod support;

use std::time::Duration;

use support::*;
use wirecore::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_use_one_connection() {
    let srv = server().await;
    let c = client(&srv);
    for _ in 0..1000 {
        let r = c.get(&srv.url("/bytes/64")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 64);
    }
    let k = srv.counters();
    assert_eq!(k.requests, 1000);
    assert_eq!(k.connections_accepted, 1);
    let s = c.stats();
    assert_eq!(s.pool.connects, 1);
    assert_eq!(s.pool.reuses, 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_h2_burst_shares_one_connection() {
    let srv = server().await;
    // No session ever counts as busy here, so a second connection can only come from a burst
    // that did not wait for the first one (the dedupe this checks). With the default of 32, a
    // request polled after the first session was up with 198 streams on it rightly opened
    // another (seen under load on 2 cores).
    let c = client_with(&srv, |cfg| cfg.http2.busy_streams_per_session = 1_000);
    let url = srv.tls_url("/delay/20");
    let all = (0..200).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move { c.get(&url).send().await?.bytes().await }
    });
    for r in futures_util::future::join_all(all).await {
        r.unwrap();
    }
    let k = srv.counters();
    assert_eq!(k.requests, 200);
    assert_eq!(k.connections_accepted, 1, "{k:?}");
    assert_eq!(k.h2_connections, 1);
}

/// Under a config that pins one session, a warm origin keeps every stream on one connection
/// however many run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_h2_session_carries_200_concurrent_streams() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.http2.max_sessions_per_host = 1);
    let url = srv.tls_url("/delay/20");
    c.get(&url).send().await.unwrap().bytes().await.unwrap();
    let all = (0..200).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move { c.get(&url).send().await?.bytes().await }
    });
    for r in futures_util::future::join_all(all).await {
        r.unwrap();
    }
    let k = srv.counters();
    assert_eq!(k.requests, 201);
    assert_eq!(k.connections_accepted, 1, "{k:?}");
}

/// A busy origin gets more HTTP/2 sessions, up to the cap, with the load spread over them;
/// once the load is gone the extra ones close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_h2_origin_opens_sessions_up_to_the_cap_and_closes_them_when_idle() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.http2.max_sessions_per_host = 3;
        cfg.http2.busy_streams_per_session = 4;
    });
    let url = srv.tls_url("/delay/10");
    // 24 workers, 15 requests each: always more than 3 sessions x 4 streams in flight.
    let workers = (0..24).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move {
            for _ in 0..15 {
                c.get(&url).send().await?.bytes().await?;
            }
            Ok::<_, wirecore::Error>(())
        }
    });
    for r in futures_util::future::join_all(workers).await {
        r.unwrap();
    }
    let k = srv.counters();
    assert_eq!(k.requests, 360);
    assert_eq!(k.connections_accepted, 3, "the cap: {k:?}");
    assert_eq!(k.h2_connections, 3);
    // Least loaded first: every session carried a real share, not one stream.
    for (conn, n) in &k.per_connection_requests {
        assert!(*n >= 20, "connection {conn} served {n} of 360: {k:?}");
    }
    // Extra sessions close a second after going idle; the first stays.
    wait_until("the extra sessions closed", || {
        srv.counters().connections_active == 1
    })
    .await;
    assert_eq!(c.stats().pool.h2_sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_limit_opens_more_connections_up_to_the_cap() {
    let srv = server_with(Options {
        max_concurrent_streams: Some(10),
        ..Options::default()
    })
    .await;
    let c = client_with(&srv, |cfg| cfg.pool.max_connections_per_host = 4);
    let url = srv.tls_url("/delay/100");
    let all = (0..100).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move { c.get(&url).send().await?.bytes().await }
    });
    for r in futures_util::future::join_all(all).await {
        r.unwrap();
    }
    let k = srv.counters();
    assert_eq!(k.requests, 100);
    assert!(k.connections_accepted > 1, "{k:?}");
    assert!(k.connections_accepted <= 4, "{k:?}");
    assert!(k.max_concurrent_requests_per_connection <= 10, "{k:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_per_host_cap_holds_under_500_concurrent() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.pool.max_connections_per_host = 8);
    let url = srv.url("/delay/5");
    let all = (0..500).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move { c.get(&url).send().await?.bytes().await }
    });
    for r in futures_util::future::join_all(all).await {
        r.unwrap();
    }
    let k = srv.counters();
    assert_eq!(k.requests, 500);
    assert!(k.max_connections_active <= 8, "{k:?}");
    assert!(k.connections_accepted <= 8, "{k:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pool_times_out_with_timeout_pool() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.pool.max_connections_per_host = 1;
        cfg.timeouts.pool_acquire_ms = 100;
    });
    let slow = c.get(&srv.url("/delay/800")).send();
    let waiting = async {
        wait_arrived(&srv, 0).await;
        c.get(&srv.url("/bytes/1")).send().await
    };
    let (slow, waiting) = tokio::join!(slow, waiting);
    assert_eq!(slow.unwrap().status(), 200);
    assert_eq!(waiting.unwrap_err().kind(), ErrorKind::TimeoutPool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_are_counted() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.pool.idle_timeout_ms = 150);
    c.get(&srv.url("/bytes/1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(c.stats().pool.idle, 1);
    let k = srv
        .wait_for(Duration::from_secs(3), |k| k.connections_closed >= 1)
        .await;
    assert_eq!(k.connections_closed, 1);
    let s = c.stats();
    assert_eq!(s.pool.idle, 0);
    assert_eq!(s.pool.evictions.idle, 1);
    // The next request opens a fresh connection.
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert!(!r.reused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_is_an_error_and_the_pool_recovers() {
    let srv = server().await;
    let c = client(&srv);
    c.get(&srv.url("/bytes/1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let e = c
        .get(&srv.url("/reset"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    let r = c.get(&srv.url("/bytes/10")).send().await.unwrap();
    assert!(!r.reused());
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    assert_eq!(srv.counters().connections_accepted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_timeouts_never_poison_the_pool() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.pool.max_connections_per_host = 2);
    for _ in 0..100 {
        let e = c
            .get(&srv.url("/delay/1000"))
            .timeout(Duration::from_millis(5))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimeoutTotal);
    }
    let r = c.get(&srv.url("/bytes/5")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 5);
    assert_eq!(c.stats().errors_by_code["timeout.total"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_closed_idle_connection_is_never_handed_out() {
    let srv = server().await;
    let c = client(&srv);
    c.get(&srv.url("/bytes/1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    srv.close_connections();
    srv.wait_for(Duration::from_secs(2), |k| k.connections_active == 0)
        .await;
    wait_until("the client sees the close", || {
        c.stats().pool.evictions.closed_by_peer == 1
    })
    .await;
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert!(!r.reused());
    assert_eq!(c.stats().pool.evictions.closed_by_peer, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_session_resumes_on_the_second_connection() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.http2.enabled = false);
    let first = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap();
    // A second concurrent request needs a second connection.
    let second = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap();
    assert!(!second.reused());
    drop((first, second));
    let k = srv.counters();
    assert_eq!(k.tls_handshakes, 2);
    assert_eq!(k.tls_resumed, 1, "{k:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_is_presented() {
    let srv = server().await;
    let without = client(&srv).get(&srv.mtls_url("/json")).send().await;
    assert!(without.is_err() || without.unwrap().bytes().await.is_err());
    let (cert, key) = srv.client_cert_paths();
    let c = client_with(&srv, |cfg| {
        cfg.tls.client_cert = Some(cert.display().to_string());
        cfg.tls.client_key = Some(key.display().to_string());
    });
    let r = c.get(&srv.mtls_url("/json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drains_then_refuses() {
    let srv = server().await;
    let c = client(&srv);
    let seen = srv.counters().requests;
    let inflight = {
        let c = c.clone();
        let url = srv.url("/delay/200");
        tokio::spawn(async move { c.get(&url).send().await.map(|r| r.status()) })
    };
    wait_arrived(&srv, seen).await;
    c.close(Duration::from_secs(2)).await;
    assert_eq!(inflight.await.unwrap().unwrap(), 200);
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encoding_round_trips_and_is_counted() {
    let srv = server().await;
    let c = client(&srv);
    for enc in ["gzip", "deflate", "br", "zstd"] {
        let r = c
            .get(&srv.url(&format!("/{enc}?size=10000")))
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("content-encoding").is_none());
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), 10_000, "{enc}");
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    }
    let s = c.stats();
    assert_eq!(s.bytes_decoded, 40_000);
    assert!(s.compression_ratio > 1.0, "{}", s.compression_ratio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bomb_fails_without_allocating_it() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.limits.max_response_body_bytes = 8 << 20);
    for enc in ["gzip", "br", "zstd", "deflate"] {
        let r = c
            .get(&srv.url(&format!("/bomb?size=1073741824&encoding={enc}")))
            .send()
            .await
            .unwrap();
        let mut body = r.into_body();
        let mut seen = 0u64;
        let err = loop {
            match futures_util::StreamExt::next(&mut body).await {
                Some(Ok(b)) => seen += b.len() as u64,
                Some(Err(e)) => break e,
                None => panic!("{enc}: bomb fully decoded"),
            }
        };
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{enc}");
        assert!(seen <= 8 << 20, "{enc}: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_wider_than_the_idle_cap_do_not_churn_connections() {
    let srv = server().await;
    let c = client(&srv);
    let url = srv.url("/bytes/256");
    for _ in 0..5 {
        let all = (0..40).map(|_| {
            let c = c.clone();
            let url = url.clone();
            async move { c.get(&url).send().await?.bytes().await }
        });
        for r in futures_util::future::join_all(all).await {
            r.unwrap();
        }
    }
    let k = srv.counters();
    assert_eq!(k.requests, 200);
    assert!(
        k.connections_accepted <= 40,
        "5 waves of 40 reuse the same connections: {} opened",
        k.connections_accepted
    );
    // Once traffic stops, the reaper trims idle connections down to max_idle_per_host (10).
    let k = srv
        .wait_for(Duration::from_secs(5), |k| k.connections_active <= 10)
        .await;
    assert!(k.connections_active <= 10, "{k:?}");
    assert!(c.stats().pool.evictions.idle >= k.connections_accepted - 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_after_close_does_not_return_its_connection() {
    let srv = server().await;
    for url in [srv.url("/bytes/200000"), srv.tls_url("/bytes/200000")] {
        srv.reset();
        let c = client(&srv);
        let r = c.get(&url).send().await.unwrap();
        c.close(Duration::from_secs(1)).await;
        assert_eq!(r.bytes().await.unwrap().len(), 200_000);
        let k = srv
            .wait_for(Duration::from_secs(3), |k| k.connections_active == 0)
            .await;
        assert_eq!(
            k.connections_active, 0,
            "{url}: closed after its body: {k:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_idle_connections_keeps_the_client_usable() {
    let srv = server().await;
    let c = client(&srv);
    for url in [srv.url("/bytes/10"), srv.tls_url("/bytes/10")] {
        c.get(&url).send().await.unwrap().bytes().await.unwrap();
    }
    c.close_idle_connections();
    let k = srv
        .wait_for(Duration::from_secs(3), |k| k.connections_active == 0)
        .await;
    assert_eq!(k.connections_active, 0, "{k:?}");
    let r = c.get(&srv.url("/bytes/10")).send().await.unwrap();
    assert!(
        !r.reused(),
        "a fresh connection after closing the idle ones"
    );
    assert_eq!(srv.counters().connections_accepted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_requests_overtake_queued_ones() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| cfg.pool.max_connections_per_host = 1);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // `header` is a caller's own Priority header; `urgency` the explicit option, which wins.
    let send = |name: &'static str, path: &str, urgency: Option<u8>, header: Option<&str>| {
        let mut b = c.get(&srv.url(path));
        if let Some(h) = header {
            b = b.header("priority", h);
        }
        if let Some(u) = urgency {
            b = b.priority(u, false);
        }
        let order = order.clone();
        tokio::spawn(async move {
            b.send().await.unwrap().bytes().await.unwrap();
            order.lock().unwrap().push(name);
        })
    };
    let queued = |n: u64| {
        let c = c.clone();
        async move {
            for _ in 0..500 {
                if c.stats().pool.pending == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("never saw {n} waiting: {:?}", c.stats().pool);
        }
    };
    // The only connection is busy; the others queue in this order.
    let seen = srv.counters().requests;
    let mut tasks = vec![send("busy", "/delay/300", None, None)];
    wait_arrived(&srv, seen).await;
    for (i, name) in ["low-1", "low-2", "low-3"].into_iter().enumerate() {
        tasks.push(send(name, "/delay/5", Some(7), None));
        queued(i as u64 + 1).await;
    }
    tasks.push(send("demoted", "/delay/5", Some(7), Some("u=0")));
    queued(4).await;
    tasks.push(send("default", "/delay/5", None, None));
    queued(5).await;
    tasks.push(send("header-urgent", "/delay/5", None, Some("u=1, i")));
    queued(6).await;
    tasks.push(send("urgent", "/delay/5", Some(0), None));
    queued(7).await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        [
            "busy",
            "urgent",
            "header-urgent",
            "default",
            "low-1",
            "low-2",
            "low-3",
            "demoted"
        ]
    );
    assert_eq!(srv.counters().connections_accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_priority_replaces_the_callers_priority_header() {
    let srv = server().await;
    let c = client(&srv);
    let sent = |b: wirecore::RequestBuilder| async move {
        let r = b.send().await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        v["headers"]["priority"].clone()
    };
    let url = srv.url("/headers");
    let both = c.get(&url).priority(1, true).header("priority", "u=6");
    assert_eq!(sent(both).await, "u=1, i", "the option replaces the header");
    let header = c.get(&url).header("priority", "u=6;x, i");
    assert_eq!(
        sent(header).await,
        "u=6;x, i",
        "a caller's header goes unchanged"
    );
    let mut req = c.get(&url).header("priority", "u=0").build().unwrap();
    req.options_mut().priority = Some(wirecore::Priority::parse("lowest").unwrap());
    let r = c.execute(req).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["headers"]["priority"], "u=7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_timeouts_can_be_overridden_per_request() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.timeouts.connect_ms = 10_000;
        cfg.timeouts.read_idle_ms = 10_000;
        cfg.timeouts.pool_acquire_ms = 10_000;
        cfg.pool.max_connections_per_host = 1;
        cfg.retry.enabled = false;
    });
    let t = tokio::time::Instant::now();
    let e = c
        .get(&srv.url("/delay/2000"))
        .read_timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimeoutRead, "{e}");
    assert!(e.to_string().contains("100 ms"), "{e}");
    // Upper bounds stay far from the 100 ms overrides (a loaded CI machine is slow) and far
    // below the config's 10 s, which is what they tell apart.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // The only connection is busy: the override bounds the wait for it.
    let seen = srv.counters().requests;
    let busy = tokio::spawn(c.get(&srv.url("/delay/600")).send());
    wait_arrived(&srv, seen).await;
    let t = tokio::time::Instant::now();
    let e = c
        .get(&srv.url("/bytes/1"))
        .pool_timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimeoutPool, "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    busy.await.unwrap().unwrap().bytes().await.unwrap();

    let t = tokio::time::Instant::now();
    let e = c
        .get(&format!("http://{}/", srv.blackhole_addr()))
        .connect_timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimeoutConnect, "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Without overrides the config's 10 s apply: a 300 ms reply is fine.
    let r = c.get(&srv.url("/delay/300")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_outlives_its_dropped_client() {
    let srv = server().await;
    for url in [
        srv.url("/drip?bytes=4000&chunks=4&delay_ms=30"),
        srv.tls_url("/drip?bytes=4000&chunks=4&delay_ms=30"),
    ] {
        let c = client(&srv);
        // An idle connection to close at drop, besides the one the body is read from.
        c.get(&srv.url("/bytes/1"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let r = c.get(&url).send().await.expect("send");
        drop(c);
        assert_eq!(r.bytes().await.expect("body").len(), 4000);
    }
    let k = srv
        .wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
        .await;
    assert_eq!(k.connections_active, 0, "{k:?}");
}

/// A response dropped before its body ends resets its HTTP/2 stream: the server sees the
/// request abandoned, the stream slot comes back (the server takes 2 streams at once, and 12
/// are abandoned in turn on one connection), and the session stays open for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_h2_response_resets_its_stream_and_frees_the_slot() {
    let srv = server_with(Options {
        max_concurrent_streams: Some(2),
        ..Options::default()
    })
    .await;
    let c = client_with(&srv, |cfg| {
        cfg.pool.max_connections_per_host = 1;
        cfg.timeouts.total_ms = 20_000;
    });
    // 100 chunks 100 ms apart: 10 s to the end, far longer than this test takes.
    let url = srv.tls_url("/drip?bytes=100000&chunks=100&delay_ms=100");
    for _ in 0..12 {
        let mut r = c.get(&url).send().await.unwrap();
        assert_eq!(r.version(), http::Version::HTTP_2);
        assert!(!r.chunk().await.unwrap().unwrap().is_empty());
        drop(r);
    }
    let k = srv
        .wait_for(Duration::from_secs(10), |k| {
            k.requests_cancelled >= 12 && k.requests_in_flight == 0
        })
        .await;
    assert_eq!(k.requests_cancelled, 12, "{k:?}");
    assert_eq!(k.requests_in_flight, 0, "{k:?}");
    let r = c.get(&srv.tls_url("/bytes/64")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 64);
    let k = srv.counters();
    assert_eq!(k.connections_accepted, 1, "{k:?}");
    let s = c.stats();
    assert_eq!(s.pool.h2_open_streams, 0);
    assert_eq!(s.pool.connections, 1);
}

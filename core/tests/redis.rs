//! Rate limits and open circuit breakers shared through a real Redis (installed by `make
//! setup`), started on a private loopback port with persistence off and stopped by its pid: two
//! processes share one limit and one open breaker, and a dead Redis follows the configured
//! fallback (breakers: local only, counted).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use wirecore::config::{
    RateLimitBackend, RateLimitMode, RateLimitScope, RedisAlgorithm, RedisFailure,
};
use wirecore::{Client, ErrorKind};

fn algorithm(name: &str) -> RedisAlgorithm {
    match name {
        "token_bucket" => RedisAlgorithm::TokenBucket,
        "sliding_window" => RedisAlgorithm::SlidingWindow,
        _ => RedisAlgorithm::FixedWindow,
    }
}

fn limited_client(srv: &TestServer, port: u16, algo: RedisAlgorithm, prefix: &str) -> Client {
    client_with(srv, |c| {
        c.retry.enabled = false;
        let l = &mut c.rate_limit;
        l.enabled = true;
        // 20 per hour: no refill during the test, so the shared total is exactly 20.
        l.requests = 20;
        l.per_ms = 3_600_000;
        l.mode = RateLimitMode::Fail;
        l.scope = RateLimitScope::Key;
        l.backend = RateLimitBackend::Redis;
        l.redis.url = format!("redis://127.0.0.1:{port}");
        l.redis.algorithm = algo;
        prefix.clone_into(&mut l.redis.key_prefix);
        l.redis.timeout_ms = 1_000;
    })
}

/// Sends 40 requests under the shared key and counts the admitted ones.
async fn hammer(c: &Client, srv: &TestServer) -> u32 {
    let mut allowed = 0;
    for _ in 0..40 {
        match c
            .get(&srv.url("/bytes/1"))
            .rate_limit_key("shared")
            .send()
            .await
        {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                allowed += 1;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::RateLimited, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    allowed
}

/// The second process: started by the test below with `WIRECORE_REDIS_CHILD` set.
async fn child(spec: &str) {
    let mut parts = spec.split(',');
    let port: u16 = parts.next().unwrap().parse().unwrap();
    let algo = algorithm(parts.next().unwrap());
    let prefix = parts.next().unwrap().to_owned();
    let srv = server().await;
    let c = limited_client(&srv, port, algo, &prefix);
    println!("ready");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let n = hammer(&c, &srv).await;
    println!("allowed={n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limits_hold_across_two_processes() {
    if let Ok(spec) = std::env::var("WIRECORE_REDIS_CHILD") {
        return child(&spec).await;
    }
    let redis = start_redis();
    let srv = server().await;
    for name in ["token_bucket", "sliding_window", "fixed_window"] {
        let prefix = format!("wc-test:{name}:");
        let mut kid = Command::new(std::env::current_exe().unwrap())
            .args([
                "redis_limits_hold_across_two_processes",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "WIRECORE_REDIS_CHILD",
                format!("{},{name},{prefix}", redis.port),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(kid.stdout.take().unwrap()).lines();
        let ready = tokio::task::spawn_blocking(move || {
            let found = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("ready"));
            (found, lines)
        });
        let (found, lines) = ready.await.unwrap();
        assert!(found, "the child process started");
        let c = limited_client(&srv, redis.port, algorithm(name), &prefix);
        kid.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mine = hammer(&c, &srv).await;
        let theirs = tokio::task::spawn_blocking(move || {
            // Read to the end, so the child never writes into a closed pipe.
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            rest.iter().find_map(|l| {
                l.strip_prefix("allowed=")
                    .map(|n| n.parse::<u32>().unwrap())
            })
        })
        .await
        .unwrap()
        .expect("the child reported its count");
        assert!(kid.wait().unwrap().success());
        assert_eq!(
            mine + theirs,
            20,
            "{name}: the two processes together stay within the limit ({mine} + {theirs})"
        );
        assert!(
            mine > 0 && theirs > 0,
            "{name}: both processes drew from it ({mine}, {theirs})"
        );
        let s = c.stats().resilience.rate_limit;
        assert_eq!(s.redis_errors, 0, "{s:?}");
    }
}

fn fallback_client(srv: &TestServer, port: u16, on_error: RedisFailure) -> Client {
    client_with(srv, |c| {
        c.retry.enabled = false;
        let l = &mut c.rate_limit;
        l.enabled = true;
        l.requests = 1_000;
        l.per_ms = 1_000;
        l.mode = RateLimitMode::Fail;
        l.backend = RateLimitBackend::Redis;
        l.redis.url = format!("redis://127.0.0.1:{port}");
        l.redis.on_error = on_error;
        l.redis.timeout_ms = 200;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_follows_the_configured_fallback() {
    let srv = server().await;
    let redis = start_redis();
    let open = fallback_client(&srv, redis.port, RedisFailure::FailOpen);
    let closed = fallback_client(&srv, redis.port, RedisFailure::FailClosed);
    for c in [&open, &closed] {
        for _ in 0..3 {
            c.get(&srv.url("/bytes/1")).send().await.unwrap();
        }
        assert_eq!(c.stats().resilience.rate_limit.allowed, 3);
    }
    drop(redis);
    for _ in 0..3 {
        let r = open.get(&srv.url("/bytes/1")).send().await.unwrap();
        assert_eq!(r.status(), 200, "fail open: the local limiter answers");
    }
    let s = open.stats().resilience.rate_limit;
    assert_eq!(s.redis_errors, 3, "{s:?}");
    assert_eq!(s.fallbacks, 3, "{s:?}");
    let before = srv.counters().requests;
    for _ in 0..3 {
        let e = closed.get(&srv.url("/bytes/1")).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "fail closed: {e:?}");
        assert!(e.to_string().contains("unavailable"), "{e}");
    }
    assert_eq!(
        srv.counters().requests,
        before,
        "nothing sent while failing closed"
    );
    assert_eq!(closed.stats().resilience.rate_limit.redis_errors, 3);
}

/// A Redis that speaks only TLS, with a certificate for `localhost` signed by a fresh CA:
/// (the server, the CA's PEM).
fn start_redis_tls() -> (Redis, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("wirecore-rediss-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, ca_file) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    std::fs::write(&cert, leaf_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &path(&cert),
            "--tls-key-file",
            &path(&key),
        ])
        .args([
            "--tls-ca-cert-file",
            &path(&ca_file),
            "--tls-auth-clients",
            "no",
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is not installed: run `make setup`");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (Redis { child, port }, ca_cert.pem());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start with TLS on port {port}");
}

fn rediss_client(srv: &TestServer, port: u16, ca: Option<&str>) -> Client {
    client_with(srv, |c| {
        c.retry.enabled = false;
        if let Some(ca) = ca {
            c.tls.extra_ca_pem.push(ca.to_owned());
        }
        let l = &mut c.rate_limit;
        l.enabled = true;
        l.requests = 3;
        l.per_ms = 3_600_000;
        l.mode = RateLimitMode::Fail;
        l.scope = RateLimitScope::Client;
        l.backend = RateLimitBackend::Redis;
        l.redis.url = format!("rediss://127.0.0.1:{port}");
        l.redis.key_prefix = format!("wc-tls:{port}:");
        l.redis.on_error = RedisFailure::FailClosed;
        l.redis.timeout_ms = 5_000;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_urls_reach_redis_over_tls() {
    let (redis, ca) = start_redis_tls();
    let srv = server().await;
    // Trusting the Redis CA: the limit is kept in Redis.
    let c = rediss_client(&srv, redis.port, Some(&ca));
    for _ in 0..3 {
        c.get(&srv.url("/bytes/1")).send().await.unwrap();
    }
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    let s = c.stats().resilience.rate_limit;
    assert_eq!(s.redis_errors, 0, "{s:?}");
    // Without it, the certificate is refused: fail closed.
    let c = rediss_client(&srv, redis.port, None);
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.to_string().contains("unavailable"), "{e}");
    assert_eq!(c.stats().resilience.rate_limit.redis_errors, 1);
}

/// A client whose breaker opens on 3 failures for a minute, shared through the Redis on `port`.
fn shared_breaker_client(port: u16, prefix: &str) -> Client {
    let mut c = wirecore::Config::default();
    c.retry.enabled = false;
    let b = &mut c.breaker;
    b.enabled = true;
    b.consecutive_failures = 3;
    b.open_ms = 60_000;
    b.max_open_ms = 60_000;
    b.redis.enabled = true;
    b.redis.url = format!("redis://127.0.0.1:{port}");
    prefix.clone_into(&mut b.redis.key_prefix);
    b.redis.refresh_ms = 50;
    Client::from_config(c).unwrap()
}

/// The second process of the test below (`WIRECORE_BREAKER_CHILD` = "port,prefix,url"): waits
/// until it has read the open breaker from Redis, then requests the failing URL once.
async fn breaker_child(spec: &str) {
    let mut parts = spec.splitn(3, ',');
    let port: u16 = parts.next().unwrap().parse().unwrap();
    let prefix = parts.next().unwrap();
    let url = parts.next().unwrap();
    let c = shared_breaker_client(port, prefix);
    wait_until("the open breaker was read from Redis", || {
        c.stats().resilience.breaker_redis.open_remotely == 1
    })
    .await;
    let kind = match c.get(url).send().await {
        Ok(r) => format!("status {}", r.status()),
        Err(e) => e.kind().code().to_owned(),
    };
    println!("kind={kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_an_open_breaker_through_redis() {
    if let Ok(spec) = std::env::var("WIRECORE_BREAKER_CHILD") {
        return breaker_child(&spec).await;
    }
    let redis = start_redis();
    let srv = server().await;
    let failing = srv.url("/status/503");
    let prefix = "wc-test:cb:";
    let a = shared_breaker_client(redis.port, prefix);
    for _ in 0..3 {
        assert_eq!(a.get(&failing).send().await.unwrap().status(), 503);
    }
    let e = a.get(&failing).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}");
    wait_until("the opening was written to Redis", || {
        a.stats().resilience.breaker_redis.published == 1
    })
    .await;
    let sent = srv.counters().requests;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "two_processes_share_an_open_breaker_through_redis",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "WIRECORE_BREAKER_CHILD",
                format!("{},{prefix},{failing}", redis.port),
            )
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "the child process failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kind=circuit_open"),
        "the second process failed fast: {stdout}"
    );
    assert_eq!(
        srv.counters().requests,
        sent,
        "the second process sent nothing to the failing server"
    );
    let s = a.stats().resilience.breaker_redis;
    assert_eq!(s.redis_errors, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_breakers_stay_local_and_errors_are_counted() {
    let srv = server().await;
    let redis = start_redis();
    let c = shared_breaker_client(redis.port, "wc-test:cb-down:");
    wait_until("a first read from Redis", || {
        c.stats().resilience.breaker_redis.refreshes >= 1
    })
    .await;
    drop(redis);
    wait_until("Redis errors are counted", || {
        c.stats().resilience.breaker_redis.redis_errors >= 1
    })
    .await;
    // Requests are unaffected, and the breaker still opens locally.
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let failing = srv.extra_url(0, "/status/503");
    for _ in 0..3 {
        assert_eq!(c.get(&failing).send().await.unwrap().status(), 503);
    }
    let e = c.get(&failing).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}");
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.stats().resilience.breaker_trips, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_the_redis_connection() {
    let srv = server().await;
    let redis = start_redis();
    let c = limited_client(&srv, redis.port, RedisAlgorithm::TokenBucket, "close:");
    let r = c.get(&srv.url("/bytes/1")).send().await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        redis.connected_clients(),
        2,
        "the limiter's and this probe's"
    );
    c.close(Duration::from_secs(5)).await;
    // The handle lives on, as a closed client does in a garbage-collected binding until it is
    // collected; its Redis connection must not.
    let port = redis.port;
    wait_until("the closed client's Redis connection is closed", || {
        Redis::clients_on(port) == 1
    })
    .await;
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_the_shared_breakers_redis_connection() {
    let redis = start_redis();
    let c = shared_breaker_client(redis.port, "wc-test:cb-close:");
    wait_until("a first read of the open breakers from Redis", || {
        c.stats().resilience.breaker_redis.refreshes >= 1
    })
    .await;
    assert_eq!(
        redis.connected_clients(),
        2,
        "the breakers' and this probe's"
    );
    c.close(Duration::from_secs(5)).await;
    // The handle lives on, as a closed client does in a garbage-collected binding until it is
    // collected; its Redis connection must not.
    let port = redis.port;
    wait_until("the closed client's breaker connection is closed", || {
        Redis::clients_on(port) == 1
    })
    .await;
    drop(c);
}

//! Load-balanced services (`Config.services`) against several test servers: each strategy's
//! distribution, weights, P2C away from a slow endpoint, consistent-hash stickiness, retries on
//! another endpoint, and an endpoint killed under load.

#![allow(
    clippy::many_single_char_names,
    reason = "c, i, k, n, r read well in short test bodies"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use support::*;
use wirecore::config::{EndpointConfig, ServiceConfig, Strategy};
use wirecore::{Client, Config};

fn service(srvs: &[TestServer], weights: &[u32], strategy: Strategy) -> ServiceConfig {
    ServiceConfig {
        endpoints: srvs
            .iter()
            .zip(weights)
            .map(|(s, &weight)| EndpointConfig {
                url: s.url(""),
                weight,
            })
            .collect(),
        strategy,
        ..ServiceConfig::default()
    }
}

fn client_for(svc: ServiceConfig, f: impl FnOnce(&mut Config)) -> Client {
    let mut c = Config::default();
    c.services.insert("svc".into(), svc);
    f(&mut c);
    Client::from_config(c).expect("client")
}

/// Sends `n` GETs to `path` of the service from `workers` tasks; `key(i)` gives request i's
/// `x-user` header. Returns how many succeeded (status 200).
async fn load(
    c: &Client,
    path: &str,
    n: u64,
    workers: u64,
    key: impl Fn(u64) -> Option<String> + Send + Sync + 'static,
) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let key = Arc::new(key);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (c, next, ok, key) = (c.clone(), next.clone(), ok.clone(), key.clone());
        let url = format!("http://svc{path}");
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= n {
                    break;
                }
                let mut r = c.get(&url);
                if let Some(k) = key(i) {
                    r = r.header("x-user", &k);
                }
                match r.send().await {
                    Ok(resp) if resp.status() == 200 => {
                        resp.bytes().await.expect("body");
                        ok.fetch_add(1, Relaxed);
                    }
                    Ok(resp) => eprintln!("request {i}: status {}", resp.status()),
                    Err(e) => eprintln!("request {i}: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    ok.load(Relaxed)
}

fn counts(srvs: &[TestServer]) -> Vec<u64> {
    srvs.iter().map(|s| s.counters().requests).collect()
}

fn assert_near(got: &[u64], want: &[u64], tolerance: f64) {
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (*g as f64, *w as f64);
        assert!(
            (g - w).abs() <= w * tolerance,
            "got {got:?}, want {want:?} ± {}%",
            tolerance * 100.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_spreads_3000_requests_as_configured() {
    let srvs = plain_servers(3).await;
    for (strategy, weights, want, tolerance) in [
        (Strategy::RoundRobin, [1, 1, 1], [1000, 1000, 1000], 0.02),
        (
            Strategy::WeightedRoundRobin,
            [1, 2, 3],
            [500, 1000, 1500],
            0.02,
        ),
        (
            Strategy::LeastOutstanding,
            [1, 1, 1],
            [1000, 1000, 1000],
            0.2,
        ),
        // P2C follows measured latency, not a quota: on a loaded machine scheduling noise
        // makes equal endpoints look unequal, so only a gross imbalance fails.
        (Strategy::P2cPeakEwma, [1, 1, 1], [1000, 1000, 1000], 0.5),
        (Strategy::ConsistentHash, [1, 1, 1], [1000, 1000, 1000], 0.2),
    ] {
        for s in &srvs {
            s.reset();
        }
        let mut svc = service(&srvs, &weights, strategy);
        svc.hash.header = Some("x-user".into());
        let c = client_for(svc, |_| {});
        let ok = load(&c, "/bytes/10", 3000, 8, |i| Some(format!("user-{i}"))).await;
        assert_eq!(ok, 3000, "{strategy:?}");
        let got = counts(&srvs);
        assert_eq!(got.iter().sum::<u64>(), 3000, "{strategy:?}: {got:?}");
        assert_near(&got, &want, tolerance);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_sends_little_to_a_slow_endpoint() {
    let srvs = plain_servers(3).await;
    let slow = Reply {
        delay_ms: 150,
        ..Reply::default()
    };
    srvs[0].script("/json", vec![slow; 1000]);
    let c = client_for(service(&srvs, &[1, 1, 1], Strategy::P2cPeakEwma), |_| {});
    assert_eq!(load(&c, "/json", 300, 8, |_| None).await, 300);
    let got = counts(&srvs);
    // Round robin would send it 100; P2C sends it a few (at most half of that even when a
    // loaded machine makes the fast endpoints look slow now and then).
    assert!(got[0] * 6 <= 300, "the slow endpoint got {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keeps_a_key_on_one_endpoint() {
    let srvs = plain_servers(3).await;
    let mut svc = service(&srvs, &[1, 1, 1], Strategy::ConsistentHash);
    svc.hash.cookie = Some("session".into());
    let c = client_for(svc, |_| {});
    for user in ["alice", "bob", "carol", "dave"] {
        let before = counts(&srvs);
        for _ in 0..20 {
            let r = c
                .get("http://svc/json")
                .header("cookie", &format!("theme=dark; session={user}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
        let grew: Vec<u64> = counts(&srvs)
            .iter()
            .zip(&before)
            .map(|(a, b)| a - b)
            .collect();
        assert_eq!(grew.iter().filter(|&&g| g == 20).count(), 1, "{grew:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_moves_at_most_a_third_of_the_keys_when_one_of_three_leaves() {
    let srvs = plain_servers(3).await;
    let owner = |c: &Client, k: u64| {
        let c = c.clone();
        async move {
            let r = c
                .get("http://svc/json")
                .header("x-user", &format!("user-{k}"))
                .send()
                .await
                .unwrap();
            let url = r.url().to_string();
            r.bytes().await.unwrap();
            url
        }
    };
    let mut three = service(&srvs, &[1, 1, 1], Strategy::ConsistentHash);
    three.hash.header = Some("x-user".into());
    let mut two = three.clone();
    let gone = two.endpoints.remove(1).url;
    let (c3, c2) = (client_for(three, |_| {}), client_for(two, |_| {}));
    let n = 300;
    let mut moved = 0;
    for k in 0..n {
        let (a, b) = (owner(&c3, k).await, owner(&c2, k).await);
        if a != b {
            assert!(a.starts_with(&gone), "key {k} moved from {a}, which stayed");
            moved += 1;
        }
    }
    // Only the leaver's keys moved (above): the ring's whole promise. How many that is is the
    // leaver's share of the ring, 1/3 in expectation; with 100 points per endpoint that share
    // varies by about a tenth between rings (the servers' ports differ every run), and 300 keys
    // sample it, so the count is 100 +- 13. A bound at n/3 + 5% failed one CI run in ~10
    // (116 of 300); n/2 is 3.8 deviations out and still fails modulo hashing (2/3 would move).
    assert!(moved > 0 && moved <= n / 2, "{moved} of {n} moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_goes_to_another_endpoint() {
    let srvs = plain_servers(2).await;
    // Consistent hashing sends every attempt with this key to one endpoint, unless the retry
    // avoids the endpoint it already tried.
    let mut svc = service(&srvs, &[1, 1], Strategy::ConsistentHash);
    svc.hash.header = Some("x-user".into());
    // Ejection would take the failing endpoint out after five 503s: here only retries act.
    svc.outlier.enabled = false;
    let c = client_for(svc, |c| {
        c.retry.max_attempts = 2;
        c.retry.backoff_base_ms = 1;
    });
    let send = || c.get("http://svc/json").header("x-user", "k").send();
    let first = send().await.unwrap();
    let owner = srvs
        .iter()
        .position(|s| first.url().to_string().starts_with(&s.url("")))
        .unwrap();
    first.bytes().await.unwrap();
    srvs[owner].script("/json", vec![Reply::status(503); 10]);
    for _ in 0..10 {
        let r = send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.url().to_string().starts_with(&srvs[1 - owner].url("")));
        r.bytes().await.unwrap();
    }
    let got = counts(&srvs);
    assert_eq!(got[owner], 11, "{got:?}");
    assert_eq!(got[1 - owner], 10, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_endpoints_under_load_loses_no_idempotent_request() {
    let mut srvs = plain_servers(3).await;
    let c = client_for(service(&srvs, &[1, 1, 1], Strategy::P2cPeakEwma), |_| {});
    let n = 900;
    let run = {
        let c = c.clone();
        tokio::spawn(async move { load(&c, "/delay/2", n, 12, |_| None).await })
    };
    let seen = srvs[2].counters().requests;
    wait_until("the doomed endpoint has served some requests", || {
        srvs[2].counters().requests >= seen + 50
    })
    .await;
    drop(srvs.remove(2));
    let ok = run.await.unwrap();
    assert_eq!(ok, n, "requests were lost");
    let survivors: u64 = counts(&srvs).iter().sum();
    assert!(survivors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_urls_are_not_balanced() {
    let srvs = plain_servers(2).await;
    let c = client_for(service(&srvs, &[1, 1], Strategy::RoundRobin), |_| {});
    for _ in 0..4 {
        let r = c.get(&srvs[0].url("/json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert_eq!(counts(&srvs), [4, 0]);
    // A port makes it a plain URL too: nothing listens on svc:1.
    let e = c.get("http://svc:1/json").send().await.unwrap_err();
    assert!(e.to_string().contains("svc"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_balance_key_wins_over_the_header() {
    let srvs = plain_servers(3).await;
    let mut svc = service(&srvs, &[1, 1, 1], Strategy::ConsistentHash);
    svc.hash.header = Some("x-user".into());
    let c = client_for(svc, |_| {});
    let owner = |r: &wirecore::Response| r.url().authority().unwrap().to_string();
    let first = c
        .get("http://svc/json")
        .balance_key("tenant-7")
        .send()
        .await
        .unwrap();
    let want = owner(&first);
    first.bytes().await.unwrap();
    // Whatever the header says, the explicit key decides.
    for i in 0..20 {
        let r = c
            .get("http://svc/json")
            .header("x-user", &format!("user-{i}"))
            .balance_key("tenant-7")
            .send()
            .await
            .unwrap();
        assert_eq!(owner(&r), want);
        r.bytes().await.unwrap();
    }
    let e = c
        .get("http://svc/json")
        .balance_key("")
        .send()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("balance_key"), "{e}");
}

/// Two test servers on the same port of 127.0.0.2 and 127.0.0.3 (Linux serves all of 127/8
/// on lo): the two addresses of one DNS name.
async fn servers_on_one_port() -> (TestServer, TestServer) {
    let on = |addr: &str| Options {
        tls: false,
        plain_addr: Some(addr.parse().unwrap()),
        ..Options::default()
    };
    for _ in 0..20 {
        let a = server_with(on("127.0.0.2:0")).await;
        let b = format!("127.0.0.3:{}", a.addr().port());
        if let Ok(b) = TestServer::start(on(&b)).await {
            return (a, b);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_backed_service_follows_a_changed_answer() {
    let (a, b) = servers_on_one_port().await;
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let dns = a.dns().clone();
    dns.set("svc.test", &[ip("127.0.0.2")], 1);
    let mut c = Config::default();
    c.dns.nameservers = vec![dns.addr().to_string()];
    c.dns.min_ttl_ms = 0;
    c.dns.use_hosts_file = false;
    let mut svc: ServiceConfig = serde_json::from_value(serde_json::json!({
        "dns": {"name": "svc.test", "port": a.addr().port()},
        "strategy": "round_robin",
    }))
    .unwrap();
    svc.outlier.enabled = false;
    c.services.insert("svc".into(), svc);
    let c = Client::from_config(c).unwrap();
    let endpoints = |c: &Client| -> Vec<String> {
        c.stats().services["svc"]
            .endpoints
            .keys()
            .cloned()
            .collect()
    };
    let url_a = format!("http://127.0.0.2:{}", a.addr().port());
    let url_b = format!("http://127.0.0.3:{}", a.addr().port());
    let get = |c: &Client, path: &'static str| {
        let c = c.clone();
        async move {
            let r = c.get(&format!("http://svc{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    };
    // The very first request waits for the first lookup.
    for _ in 0..10 {
        get(&c, "/json").await;
    }
    assert_eq!((a.counters().requests, b.counters().requests), (10, 0));
    assert_eq!(endpoints(&c), [url_a.as_str()]);

    // The answer grows: both addresses get requests; the staying endpoint keeps its counts.
    dns.set("svc.test", &[ip("127.0.0.2"), ip("127.0.0.3")], 1);
    wait_until("the new address is an endpoint", || {
        endpoints(&c).len() == 2
    })
    .await;
    assert_eq!(endpoints(&c), [url_a.as_str(), url_b.as_str()]);
    assert!(c.stats().services["svc"].endpoints[&url_a].requests >= 10);
    for _ in 0..10 {
        get(&c, "/json").await;
    }
    assert_eq!((a.counters().requests, b.counters().requests), (15, 5));

    // The answer shrinks while a request is in flight on each address (round robin sends two
    // in a row to both): the one on the leaving address finishes there.
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get(&c, "/delay/3000")))
        .collect();
    wait_until("both slow requests reached their endpoint", || {
        a.counters().requests + b.counters().requests == 22
    })
    .await;
    assert_eq!((a.counters().requests, b.counters().requests), (16, 6));
    dns.set("svc.test", &[ip("127.0.0.3")], 1);
    wait_until("the gone address is no endpoint", || {
        endpoints(&c) == [url_b.as_str()]
    })
    .await;
    for t in slow {
        t.await.unwrap();
    }
    for _ in 0..10 {
        get(&c, "/json").await;
    }
    assert_eq!((a.counters().requests, b.counters().requests), (16, 16));

    // Closing the client stops the lookups (one may be under way).
    c.close(std::time::Duration::from_secs(1)).await;
    let q = dns.queries("svc.test");
    // Time passing is the behaviour: more than two TTLs without a lookup.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert!(dns.queries("svc.test") <= q + 1, "lookups went on");
}

//! DNS cache behaviour against the test server's loopback DNS responder.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::*;
use wirecore::ErrorKind;
use wirecore_testserver::DnsMode;

fn dns_client(srv: &TestServer, f: impl FnOnce(&mut wirecore::Config)) -> wirecore::Client {
    client_with(srv, |c| {
        c.dns.nameservers = vec![srv.dns().addr().to_string()];
        c.dns.min_ttl_ms = 0;
        c.dns.use_hosts_file = false;
        c.dns.query_timeout_ms = 300;
        f(c);
    })
}

fn lo() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap()]
}

fn url(srv: &TestServer, name: &str) -> String {
    format!("http://{name}:{}/bytes/1", srv.addr().port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_ttl_and_counts_hits() {
    let srv = server().await;
    srv.dns().set("ttl.test", &lo(), 1);
    // No idle connections, so every request connects and consults the cache.
    let c = dns_client(&srv, |c| {
        c.dns.refresh_before_expiry_percent = 0;
        c.pool.max_idle_per_host = 0;
    });
    for _ in 0..5 {
        c.get(&url(&srv, "ttl.test"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let q = srv.dns().queries("ttl.test");
    assert!((1..=2).contains(&q), "A and maybe AAAA once: {q}");
    let s = c.stats().dns;
    assert_eq!(s.misses, 1);
    assert_eq!(s.hits, 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.get(&url(&srv, "ttl.test")).send().await.unwrap();
    assert!(
        srv.dns().queries("ttl.test") > q,
        "expired entry is looked up again"
    );
    assert_eq!(c.stats().dns.misses, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_in_the_background_before_expiry() {
    let srv = server().await;
    srv.dns().set("refresh.test", &lo(), 2);
    let c = dns_client(&srv, |c| c.dns.refresh_before_expiry_percent = 60);
    c.get(&url(&srv, "refresh.test")).send().await.unwrap();
    let q = srv.dns().queries("refresh.test");
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.get(&url(&srv, "refresh.test")).send().await.unwrap();
    wait_until("refreshed in the background", || {
        srv.dns().queries("refresh.test") > q && c.stats().dns.refreshes == 1
    })
    .await;
    let s = c.stats().dns;
    assert_eq!(s.refreshes, 1);
    assert_eq!(s.misses, 1, "the request itself was a hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_stale_when_the_resolver_fails() {
    let srv = server().await;
    srv.dns().set("stale.test", &lo(), 1);
    let c = dns_client(&srv, |c| c.dns.refresh_before_expiry_percent = 0);
    c.get(&url(&srv, "stale.test")).send().await.unwrap();
    srv.dns().fail("stale.test", DnsMode::ServFail);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = c.get(&url(&srv, "stale.test")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.stats().dns.stale_served, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_failures_for_the_negative_ttl() {
    let srv = server().await;
    srv.dns().fail("missing.test", DnsMode::NxDomain);
    let c = dns_client(&srv, |c| c.dns.negative_ttl_ms = 5_000);
    for _ in 0..3 {
        let e = c.get(&url(&srv, "missing.test")).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Dns, "{e}");
    }
    let s = c.stats().dns;
    assert_eq!(s.negative_hits, 2);
    assert_eq!(s.misses, 1);
}

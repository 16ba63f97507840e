//! Against real nginx (installed by `make setup`), started on private loopback ports with a
//! generated config and certificate, stopped by its pid: h1 and h2 over TLS, gzip, keep-alive.

use wirecore::{Client, Config, Version};
use wirecore_testserver::TestNginx;

fn start() -> TestNginx {
    TestNginx::start().expect("nginx")
}

fn client(n: &TestNginx) -> Client {
    let mut c = Config::default();
    c.tls.extra_ca_pem.push(n.ca_pem().to_owned());
    Client::from_config(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h1_keepalive_and_gzip() {
    let nginx = start();
    let c = client(&nginx);
    for _ in 0..50 {
        let r = c.get(&nginx.url("/1k")).send().await.unwrap();
        assert_eq!(r.version(), Version::HTTP_11);
        assert_eq!(r.bytes().await.unwrap().len(), 1024);
    }
    let r = c.get(&nginx.url("/data.json")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 400);
    let s = c.stats();
    assert_eq!(s.pool.connects, 1, "keep-alive reuse: {:?}", s.pool);
    // 50 x 1 KiB arrive as is; the ~12 KiB JSON arrives gzipped to a fraction.
    assert!(
        s.bytes_decoded > s.bytes_received + 8_000,
        "nginx gzipped the JSON: {} decoded from {} received",
        s.bytes_decoded,
        s.bytes_received
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h2_over_tls_multiplexes() {
    let nginx = start();
    // No session counts as busy, so a second connection could only come from a burst that did
    // not wait for the first (the dedupe this checks). With the default of 32 streams, a request
    // polled after the session was up with 32 streams on it rightly opens another (seen in CI).
    let mut cfg = Config::default();
    cfg.tls.extra_ca_pem.push(nginx.ca_pem().to_owned());
    cfg.http2.busy_streams_per_session = 1_000;
    let c = Client::from_config(cfg).unwrap();
    let url = nginx.tls_url("/data.json");
    let all = (0..50).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move {
            let r = c.get(&url).send().await?;
            assert_eq!(r.version(), Version::HTTP_2);
            r.json::<serde_json::Value>().await
        }
    });
    for r in futures_util::future::join_all(all).await {
        assert_eq!(r.unwrap()["items"].as_array().unwrap().len(), 400);
    }
    assert_eq!(c.stats().pool.connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h1_over_tls_when_h2_is_off() {
    let nginx = start();
    let mut cfg = Config::default();
    cfg.tls.extra_ca_pem.push(nginx.ca_pem().to_owned());
    cfg.http2.enabled = false;
    let c = Client::from_config(cfg).unwrap();
    let r = c.get(&nginx.tls_url("/1k")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.bytes().await.unwrap().len(), 1024);
}

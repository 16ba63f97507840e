mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let srv = server().await;
    let c = client(&srv);
    let r = c.get(&srv.url("/bytes/1000")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);

    let r = c.get(&srv.tls_url("/json")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2, "ALPN picks h2 over TLS");
    let t = r.timings();
    assert!(t.tls > std::time::Duration::ZERO, "{t:?}");
    assert!(t.total >= t.ttfb, "{t:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(doc.is_object(), "{doc}");

    let r = c.get(&srv.url("/gzip")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(text.len(), 256, "decoded to the requested size");
    serde_json::from_str::<serde_json::Value>(&text).expect("decoded gzip is JSON");

    let prom = c.prometheus();
    assert!(
        prom.contains("wirecore_requests_total{outcome=\"ok\",status_class=\"2xx\"} 3"),
        "{prom}"
    );
    let d = c.diagnostics();
    assert_eq!(d.requests_total, 3, "{d}");
    assert!(d.error_rate < 1e-9, "{d}");
    assert!(d.compression_ratio > 1.0, "gzip was decoded: {d}");
    assert_eq!(d.origins.len(), 2, "plain and TLS origins: {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_info_describes_new_and_reused_connections() {
    let srv = server().await;
    let c = client(&srv);
    let r = c.get(&srv.url("/json")).send().await.unwrap();
    assert!(r.tls_info().is_none(), "plain TCP has no TLS info");
    r.bytes().await.unwrap();
    let mut first = None;
    for round in 0..2 {
        let r = c.get(&srv.tls_url("/json")).send().await.unwrap();
        assert_eq!(r.reused(), round == 1);
        let info = r.tls_info().expect("an https response has TLS info");
        assert!(matches!(info.version, 0x0303 | 0x0304), "{info:?}");
        assert_ne!(info.cipher_suite, 0);
        assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(info.server_name, "localhost");
        assert!(!info.peer_certificates.is_empty());
        r.bytes().await.unwrap();
        match &first {
            None => first = Some(info),
            Some(f) => assert_eq!(f, &info, "a reused connection reports its handshake"),
        }
    }
}

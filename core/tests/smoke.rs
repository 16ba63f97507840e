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
    println!("{:?} {:?}", r.version(), r.timings());
    let t = r.text().await.unwrap();
    println!("{t}");
    let r = c.get(&srv.url("/gzip")).send().await.unwrap();
    println!("{}", r.text().await.unwrap().len());
    println!("{}", c.prometheus());
    println!("{}", c.diagnostics());
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

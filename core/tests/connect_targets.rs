//! Where connections go besides DNS + TCP: `dns.overrides` (as curl `--resolve`) and
//! `unix_socket` (as undici's `socketPath`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use support::*;
use wirecore::ErrorKind;

/// DNS answers come only from the test server's responder, which knows no names here.
fn no_dns(srv: &TestServer, c: &mut wirecore::Config) {
    c.dns.nameservers = vec![srv.dns().addr().to_string()];
    c.dns.use_hosts_file = false;
    c.dns.query_timeout_ms = 500;
    c.retry.enabled = false;
    c.proxy.from_env = false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_overrides_replace_resolution_by_host_port_then_host() {
    let srv = server().await;
    let port = srv.addr().port();
    let url = format!("http://pinned.test:{port}/bytes/1");
    let plain = client_with(&srv, |c| no_dns(&srv, c));
    let e = plain.get(&url).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Dns, "{e}");
    for key in [format!("pinned.test:{port}"), "Pinned.test".to_owned()] {
        let c = client_with(&srv, |c| {
            no_dns(&srv, c);
            c.dns.overrides.insert(key.clone(), "127.0.0.1".into());
        });
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{key}");
    }
    // Another port's entry does not apply.
    let c = client_with(&srv, |c| {
        no_dns(&srv, c);
        c.dns.overrides.insert(
            format!("pinned.test:{}", port.wrapping_add(1)),
            "127.0.0.1".into(),
        );
    });
    assert_eq!(c.get(&url).send().await.unwrap_err().kind(), ErrorKind::Dns);
    // TLS still verifies and sends SNI for the URL's name.
    let c = client_with(&srv, |c| {
        no_dns(&srv, c);
        c.dns
            .overrides
            .insert("localhost".into(), "127.0.0.1".into());
    });
    let r = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A Unix socket in front of the test server's plain port, counting what it accepts.
struct UnixRelay {
    path: std::path::PathBuf,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl UnixRelay {
    fn start(srv: &TestServer, name: &str) -> UnixRelay {
        let path =
            std::env::temp_dir().join(format!("wirecore-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (accepted, to) = (Arc::new(AtomicU64::new(0)), srv.addr());
        let n = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                n.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                    }
                });
            }
        });
        UnixRelay {
            path,
            accepted,
            task,
        }
    }
}

impl Drop for UnixRelay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_carries_every_connection() {
    let srv = server().await;
    let relay = UnixRelay::start(&srv, "h1");
    let c = client_with(&srv, |c| {
        no_dns(&srv, c);
        c.unix_socket = Some(relay.path.to_str().unwrap().to_owned());
    });
    for _ in 0..3 {
        let r = c.get("http://svc.test/headers").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(doc["headers"]["host"], "svc.test", "{doc}");
    }
    assert_eq!(
        relay.accepted.load(Relaxed),
        1,
        "one pooled connection over the socket"
    );
    let e = c.get("https://svc.test/").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("http:// URLs only"), "{e}");
    drop(relay);
    let c = client_with(&srv, |c| {
        c.unix_socket = Some("/nonexistent/wirecore.sock".into());
        c.retry.enabled = false;
    });
    let e = c.get("http://svc.test/").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("/nonexistent/wirecore.sock"), "{e}");
}

#[test]
fn bad_overrides_and_socket_paths_are_refused() {
    for (json, field) in [
        (
            r#"{"dns":{"overrides":{"a.test":"not-an-ip"}}}"#,
            "dns.overrides.a.test",
        ),
        (r#"{"dns":{"overrides":{"":"127.0.0.1"}}}"#, "dns.overrides"),
        (r#"{"unix_socket":""}"#, "unix_socket"),
    ] {
        let e = wirecore::Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(field), "{e}");
    }
}

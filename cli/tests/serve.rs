//! `wirecore serve` on loopback: static files (200, 304, 206, 416, 404, 301, traversal),
//! compression, health and metrics, and a drain on SIGTERM that loses no request.

mod support;

use std::time::Duration;

use support::{Serve, TempDir, header, raw, raw_get, wait_exit};
use wirecore::{Client, Config};

fn site() -> (TempDir, TempDir) {
    let root = TempDir::new("www");
    let outside = TempDir::new("outside");
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    std::fs::write(root.path().join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(root.path().join("a.txt"), "0123456789abcdef").unwrap();
    std::fs::write(root.path().join("big.txt"), "wirecore ".repeat(2000)).unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/index.html"), "sub").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("link.txt"),
    )
    .unwrap();
    (root, outside)
}

#[test]
fn static_files_answer_200_304_206_and_404() {
    let (root, _outside) = site();
    let srv = Serve::start(&["--no-endpoints", "--dir", root.path().to_str().unwrap()]);
    let addr = srv.addr();

    let (status, h, body) = raw_get(&addr, "/a.txt", &[]);
    assert_eq!(status, 200);
    assert_eq!(body, b"0123456789abcdef");
    assert_eq!(
        header(&h, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&h, "cache-control"), Some("no-cache"));
    let etag = header(&h, "etag").expect("etag").to_owned();
    let modified = header(&h, "last-modified")
        .expect("last-modified")
        .to_owned();

    let (status, h, body) = raw_get(&addr, "/a.txt", &[("if-none-match", &etag)]);
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(header(&h, "etag"), Some(etag.as_str()));
    let (status, _, _) = raw_get(&addr, "/a.txt", &[("if-modified-since", &modified)]);
    assert_eq!(status, 304);
    let (status, _, _) = raw_get(&addr, "/a.txt", &[("if-none-match", "\"other\"")]);
    assert_eq!(status, 200);

    let (status, h, body) = raw_get(&addr, "/a.txt", &[("range", "bytes=2-5")]);
    assert_eq!(status, 206);
    assert_eq!(body, b"2345");
    assert_eq!(header(&h, "content-range"), Some("bytes 2-5/16"));
    let (status, _, body) = raw_get(&addr, "/a.txt", &[("range", "bytes=-3")]);
    assert_eq!((status, body.as_slice()), (206, b"def".as_slice()));
    let (status, h, _) = raw_get(&addr, "/a.txt", &[("range", "bytes=100-")]);
    assert_eq!(status, 416);
    assert_eq!(header(&h, "content-range"), Some("bytes */16"));
    let (status, _, body) = raw_get(
        &addr,
        "/a.txt",
        &[("range", "bytes=0-1"), ("if-range", "\"stale\"")],
    );
    assert_eq!((status, body.len()), (200, 16));

    let (status, h, body) = raw(&addr, "HEAD", "/a.txt", &[]);
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&h, "content-length"), Some("16"));

    let (status, _, body) = raw_get(&addr, "/", &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, b"<h1>home</h1>\n".as_slice())
    );
    let (status, h, _) = raw_get(&addr, "/sub?x=1", &[]);
    assert_eq!(status, 301);
    assert_eq!(header(&h, "location"), Some("/sub/?x=1"));
    let (status, _, body) = raw_get(&addr, "/sub/", &[]);
    assert_eq!((status, body.as_slice()), (200, b"sub".as_slice()));
    assert_eq!(raw_get(&addr, "/missing.txt", &[]).0, 404);
    assert_eq!(raw_get(&addr, "/json", &[]).0, 404, "--no-endpoints");
}

#[test]
fn paths_never_leave_the_served_directory() {
    let (root, outside) = site();
    let srv = Serve::start(&["--dir", root.path().to_str().unwrap()]);
    let addr = srv.addr();
    let name = outside.path().file_name().unwrap().to_str().unwrap();
    for path in [
        format!("/../{name}/secret.txt"),
        format!("/%2e%2e/{name}/secret.txt"),
        format!("/sub/..%2f..%2f{name}%2fsecret.txt"),
        format!("/sub/../../{name}/secret.txt"),
        "/a.txt%00.html".to_owned(),
        "/..%5c..%5cetc%5cpasswd".to_owned(),
    ] {
        let (status, _, body) = raw_get(&addr, &path, &[]);
        assert_eq!(status, 400, "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains("top secret"),
            "{path}"
        );
    }
    // A symlink out of the directory is as good as missing (then the endpoints answer 404).
    let (status, _, body) = raw_get(&addr, "/link.txt", &[]);
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("top secret"));
}

#[test]
fn text_is_compressed_by_accept_encoding() {
    let (root, _outside) = site();
    let srv = Serve::start(&["--dir", root.path().to_str().unwrap()]);
    let addr = srv.addr();
    for coding in ["gzip", "br", "zstd"] {
        let (status, h, body) = raw_get(&addr, "/big.txt", &[("accept-encoding", coding)]);
        assert_eq!(status, 200);
        assert_eq!(header(&h, "content-encoding"), Some(coding));
        assert_eq!(header(&h, "vary"), Some("accept-encoding"));
        assert!(body.len() < 18_000 / 10, "{coding}: {} bytes", body.len());
        // Any representation's tag revalidates.
        let etag = header(&h, "etag").unwrap().to_owned();
        assert_eq!(
            raw_get(&addr, "/big.txt", &[("if-none-match", &etag)]).0,
            304
        );
    }
    let (_, h, body) = raw_get(&addr, "/big.txt", &[("accept-encoding", "gzip;q=0")]);
    assert_eq!(header(&h, "content-encoding"), None);
    assert_eq!(body.len(), 18_000);
}

#[test]
fn health_metrics_and_endpoints_are_served() {
    let srv = Serve::start(&[]);
    let addr = srv.addr();
    let (status, _, body) = raw_get(&addr, "/healthz", &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, br#"{"status":"ok"}"#.as_slice())
    );
    assert_eq!(raw_get(&addr, "/json", &[]).0, 200);
    assert_eq!(raw_get(&addr, "/status/503", &[]).0, 503);
    let (status, h, body) = raw_get(&addr, "/sse?events=3", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), Some("text/event-stream"));
    assert_eq!(
        String::from_utf8_lossy(&body)
            .matches("event: message")
            .count(),
        3
    );
    let (status, _, body) = raw_get(&addr, "/metrics", &[]);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("wirecore_serve_requests_total 5"), "{text}");
    assert!(
        text.contains("wirecore_serve_responses_total{class=\"5xx\"} 1"),
        "{text}"
    );
    // Headers beyond --max-header-bytes get 431.
    let big = "x".repeat(20_000);
    assert_eq!(raw_get(&addr, "/json", &[("x-big", &big)]).0, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_in_flight_request() {
    const N: usize = 20;
    let mut srv = Serve::start(&["--drain-timeout", "20s"]);
    let client = Client::from_config(Config::default()).unwrap();
    let mut calls = Vec::new();
    for _ in 0..N {
        let (c, url) = (client.clone(), format!("{}/delay/1500", srv.url));
        calls.push(tokio::spawn(async move {
            let r = c.get(&url).send().await?;
            let status = r.status().as_u16();
            let body = r.text().await?;
            Ok::<_, wirecore::Error>((status, body))
        }));
    }
    // Wait until the server holds all of them (the /metrics request itself is one more).
    let addr = srv.addr();
    let in_flight = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        // At most 20 s.
        for _ in 0..1000 {
            let (_, _, body) = raw_get(&addr, "/metrics", &[]);
            let text = String::from_utf8_lossy(&body).into_owned();
            n = text
                .lines()
                .find_map(|l| l.strip_prefix("wirecore_serve_requests_in_flight "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if n > N as u64 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(in_flight, N as u64 + 1);
    srv.signal("TERM");
    for call in calls {
        let (status, body) = call.await.unwrap().expect("request survives the drain");
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"delay_ms":1500}"#);
    }
    let status = wait_exit(&mut srv.child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut srv.child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("20 requests were in flight, 0 cut off"),
        "{err}"
    );
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(srv.addr()).is_err());
}

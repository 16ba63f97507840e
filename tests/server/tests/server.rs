//! The test server tested over real sockets with hyper's client connections.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use async_compression::tokio::bufread::{
    BrotliDecoder, GzipDecoder, GzipEncoder, ZlibDecoder, ZstdDecoder,
};
use http::StatusCode;
use http_body_util::BodyExt;
use support::{Conn, Proto, get, pattern, plain, post, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wirecore_testserver::{Action, Options, Reply, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

async fn read_all(r: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut r = r;
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

/// Runs the endpoint checks on one connection of each kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_over_h1_h2_plain_and_tls() {
    let s = server().await;
    for (name, conn) in [
        ("h1", plain(s.addr(), Proto::H1).await),
        ("h2c", plain(s.addr(), Proto::H2).await),
        ("h1+tls", tls(&s, Proto::H1).await),
        ("h2+tls", tls(&s, Proto::H2).await),
    ] {
        endpoints(name, conn).await;
    }
    // The two HTTP/2 passes each abandon one /hang request.
    let c = s
        .wait_for(Duration::from_secs(2), |c| c.requests_cancelled >= 2)
        .await;
    assert_eq!(c.connections_accepted, 4);
    assert_eq!((c.h1_connections, c.h2_connections), (2, 2));
    assert_eq!(c.tls_handshakes, 2);
    assert_eq!(c.requests_cancelled, 2, "{c:?}");
}

async fn endpoints(name: &str, mut c: Conn) {
    let h2 = name.starts_with("h2");
    let version = if h2 { "HTTP/2.0" } else { "HTTP/1.1" };

    for n in [0, 10, 1024, (1 << 20) + 7, 3 << 20] {
        let r = c.get(&format!("/bytes/{n}")).await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-length"), n.to_string(), "{name}");
        assert!(r.body == pattern(n), "{name} /bytes/{n}: wrong bytes");
    }
    assert_eq!(c.get("/json").await.json()["name"], "wirecore");
    assert_eq!(c.get("/status/418").await.status, 418);
    assert_eq!(c.get("/status/204").await.status, 204);
    assert_eq!(c.get("/nope").await.status, 404);
    assert_eq!(c.get("/bytes/x").await.status, 400);

    let t = Instant::now();
    assert_eq!(c.get("/delay/100").await.json()["delay_ms"], 100);
    assert!(t.elapsed() >= Duration::from_millis(100));

    // Echo decodes a gzip request body and reports both lengths.
    let text = "hello ".repeat(100);
    let gz = read_all(GzipEncoder::new(text.as_bytes())).await;
    let mut req = post("/echo?a=1&a=2&b=x%20y", gz.clone());
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    req.headers_mut().append("x-multi", "1".parse().unwrap());
    req.headers_mut().append("x-multi", "2".parse().unwrap());
    let e = c.request(req).await.unwrap().json();
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/echo");
    assert_eq!(e["query"], "a=1&a=2&b=x%20y");
    assert_eq!(e["args"]["a"], serde_json::json!(["1", "2"]));
    assert_eq!(e["args"]["b"], "x y");
    assert_eq!(e["version"], version);
    assert_eq!(e["headers"]["x-multi"], serde_json::json!(["1", "2"]));
    assert_eq!(e["body"], text.as_str());
    assert_eq!(e["body_len"], text.len());
    assert_eq!(e["raw_body_len"], gz.len());
    assert_eq!(e["content_encoding"], "gzip");
    assert_eq!(e["tls"], name.contains("tls"));

    let mut req = get("/headers");
    req.headers_mut().insert("x-test", "yes".parse().unwrap());
    assert_eq!(
        c.request(req).await.unwrap().json()["headers"]["x-test"],
        "yes"
    );

    let r = c.get("/redirect/2").await;
    assert_eq!(
        (r.status.as_u16(), r.header("location")),
        (302, "/redirect/1")
    );
    assert_eq!(c.get("/redirect/0").await.status, 200);
    let r = c
        .get("/redirect-to?url=http%3A%2F%2Fexample.test%2Fx&status=307")
        .await;
    assert_eq!(
        (r.status.as_u16(), r.header("location")),
        (307, "http://example.test/x")
    );

    let r = c.get("/retry-after?seconds=3&status=429").await;
    assert_eq!((r.status.as_u16(), r.header("retry-after")), (429, "3"));
    let r = c.get("/retry-after?seconds=3&date=1").await;
    assert_eq!(r.status, 503);
    assert!(
        r.header("retry-after").ends_with(" GMT"),
        "{}",
        r.header("retry-after")
    );

    for coding in ["gzip", "deflate", "br", "zstd"] {
        let r = c.get(&format!("/{coding}?size=5000")).await;
        assert_eq!(r.header("content-encoding"), coding);
        let plain = match coding {
            "gzip" => read_all(GzipDecoder::new(&r.body[..])).await,
            "deflate" => read_all(ZlibDecoder::new(&r.body[..])).await,
            "br" => read_all(BrotliDecoder::new(&r.body[..])).await,
            _ => read_all(ZstdDecoder::new(&r.body[..])).await,
        };
        assert_eq!(plain.len(), 5000, "{name} {coding}");
        let doc: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(doc["coding"], coding);
    }

    let t = Instant::now();
    let r = c.get("/drip?bytes=100&chunks=4&delay_ms=30").await;
    assert_eq!(r.body, drip_body(100, 4));
    assert_eq!(r.header("content-length"), "100");
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t.elapsed()
    );

    let r = c.get("/stream?chunks=5&size=1000").await;
    assert_eq!(r.body.len(), 5000);
    assert!(r.headers.get("content-length").is_none());
    if !h2 {
        assert_eq!(r.header("transfer-encoding"), "chunked");
    }

    let r = c.get("/sse?events=3").await;
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(text.matches("data: ").count(), 3, "{text}");

    let r = c.get("/etag").await;
    let tag = r.header("etag").to_owned();
    assert_eq!((r.status.as_u16(), tag.as_str()), (200, "\"wirecore-v1\""));
    let mut req = get("/etag");
    req.headers_mut().insert(
        "if-none-match",
        format!("\"other\", W/{tag}").parse().unwrap(),
    );
    assert_eq!(c.request(req).await.unwrap().status, 304);

    let r = c.get("/bomb?size=1000000&encoding=zstd").await;
    assert!(r.body.len() < 2000);
    assert!(read_all(ZstdDecoder::new(&r.body[..])).await == vec![0u8; 1_000_000]);

    // /hang never answers; giving up on it must leave the connection usable for h2 only.
    if h2 {
        let hung = tokio::time::timeout(Duration::from_millis(100), c.send(get("/hang"))).await;
        assert!(hung.is_err());
        assert_eq!(c.get("/json").await.status, 200);
    }
}

/// `/drip` splits `total` bytes into `chunks` chunks, each a prefix of the pattern.
fn drip_body(total: usize, chunks: usize) -> Vec<u8> {
    (0..chunks)
        .flat_map(|i| pattern(total / chunks + usize::from(i < total % chunks)))
        .collect()
}

#[tokio::test]
async fn reset_endpoint_aborts_mid_body() {
    let s = server().await;
    let mut c = plain(s.addr(), Proto::H1).await;
    let resp = c.send(get("/reset?bytes=1000")).await.unwrap();
    assert_eq!(resp.headers()["content-length"], "1000");
    let mut body = resp.into_body();
    let mut got = 0;
    let err = loop {
        match body.frame().await {
            Some(Ok(f)) => got += f.into_data().map_or(0, |d| d.len()),
            Some(Err(e)) => break e,
            None => panic!("body ended cleanly"),
        }
    };
    assert_eq!(got, 500, "{err}");

    // HTTP/2: the stream is reset, the connection lives on.
    let mut c = plain(s.addr(), Proto::H2).await;
    let resp = c.send(get("/reset")).await.unwrap();
    assert!(resp.into_body().collect().await.is_err());
    assert_eq!(c.get("/json").await.status, 200);
    let c2 = s.counters();
    assert_eq!(
        c2.requests_cancelled, 0,
        "server-side aborts are not cancellations"
    );
}

#[tokio::test]
async fn scripts_inject_faults_then_routing_resumes() {
    let s = server().await;
    s.script(
        "/json",
        vec![
            Reply::status(503).header("retry-after", "1").body("busy"),
            Reply::action(Action::Reset),
            Reply::action(Action::ResetMidBody).body_bytes(100),
            Reply::action(Action::Close).body("bye"),
            Reply::status(201).delay_ms(50),
        ],
    );
    let mut c = plain(s.addr(), Proto::H1).await;
    let r = c.get("/json").await;
    assert_eq!((r.status.as_u16(), r.header("retry-after")), (503, "1"));
    assert_eq!(r.body, "busy");

    assert!(
        c.request(get("/json")).await.is_err(),
        "reset gives no response"
    );

    let mut c = plain(s.addr(), Proto::H1).await;
    let resp = c.send(get("/json")).await.unwrap();
    assert_eq!(resp.headers()["content-length"], "100");
    assert!(resp.into_body().collect().await.is_err());

    let mut c = plain(s.addr(), Proto::H1).await;
    let r = c.get("/json").await;
    assert_eq!(
        (r.header("connection"), &r.body[..]),
        ("close", &b"bye"[..])
    );
    assert!(
        c.request(get("/json")).await.is_err(),
        "connection was closed"
    );

    let mut c = plain(s.addr(), Proto::H1).await;
    let t = Instant::now();
    assert_eq!(c.get("/json").await.status, 201);
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(c.get("/json").await.json()["name"], "wirecore");

    // On HTTP/2 a reset kills only the stream; hang never answers.
    s.script(
        "/x",
        vec![Reply::action(Action::Reset), Reply::action(Action::Hang)],
    );
    let mut c = plain(s.addr(), Proto::H2).await;
    assert!(c.request(get("/x")).await.is_err());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), c.send(get("/x")))
            .await
            .is_err()
    );
    assert_eq!(c.get("/x").await.status, 404);
    let log = s.requests();
    assert_eq!(log.last().unwrap().path, "/x");
    assert_eq!(log.last().unwrap().version, "HTTP/2.0");
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let s = server().await;
    for proto in [Proto::H1, Proto::H2] {
        s.reset();
        let mut c = plain(s.addr(), proto).await;
        for _ in 0..300 {
            assert_eq!(c.get("/bytes/1024").await.body.len(), 1024);
        }
        let n = s.counters();
        assert_eq!((n.connections_accepted, n.requests), (1, 300), "{proto:?}");
        assert_eq!(
            n.per_connection_requests
                .values()
                .copied()
                .collect::<Vec<_>>(),
            [300]
        );
        assert_eq!(n.max_concurrent_requests_per_connection, 1);
    }
    assert_eq!(s.requests().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_h2_requests_share_one_connection() {
    let s = server().await;
    let Conn::H2(send) = plain(s.addr(), Proto::H2).await else {
        unreachable!()
    };
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let mut c = Conn::H2(send.clone());
        tasks.push(tokio::spawn(
            async move { c.get("/delay/200").await.status },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let n = s.counters();
    assert_eq!(
        (n.connections_accepted, n.h2_connections, n.requests),
        (1, 1, 200)
    );
    assert_eq!(n.max_concurrent_requests_per_connection, 200);
    assert_eq!(n.requests_in_flight, 0);
}

/// Relays one TLS connection to `to`, counting the TLS records the server sends.
async fn counting_relay(
    to: SocketAddr,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let records = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = records.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(to).await.unwrap();
        let (mut client_rd, mut client_wr) = client.into_split();
        let (mut server_rd, mut server_wr) = server.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut client_rd, &mut server_wr).await });
        // A record is a 5-byte header (type, version, length) and `length` bytes.
        let (mut header, mut have, mut skip) = ([0u8; 5], 0usize, 0usize);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = server_rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            // Counted before they are passed on, so the client never sees uncounted ones.
            let mut at = 0;
            while at < n {
                if skip > 0 {
                    let step = skip.min(n - at);
                    skip -= step;
                    at += step;
                    continue;
                }
                header[have] = buf[at];
                have += 1;
                at += 1;
                if have == 5 {
                    have = 0;
                    skip = usize::from(u16::from_be_bytes([header[3], header[4]]));
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }
            if client_wr.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    (addr, records)
}

/// A `GET path` HEADERS frame on `stream` that ends the stream (HPACK without the tables).
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87]; // :method GET, :scheme https (static table)
    for (name_index, value) in [(4u8, path), (1, "localhost")] {
        // Literal without indexing, name from the static table (:path, :authority).
        block.extend([name_index, u8::try_from(value.len()).unwrap()]);
        block.extend(value.as_bytes());
    }
    let mut frame = u32::try_from(block.len()).unwrap().to_be_bytes()[1..].to_vec();
    frame.extend([0x1, 0x5]); // HEADERS, END_STREAM | END_HEADERS
    frame.extend(stream.to_be_bytes());
    frame.extend(block);
    frame
}

/// Reads HTTP/2 frames until `streams` more streams have ended, acknowledging SETTINGS.
async fn h2_until_ended<S>(io: &mut S, buf: &mut Vec<u8>, mut streams: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut chunk = vec![0u8; 64 * 1024];
    while streams > 0 {
        while buf.len() >= 9 {
            let len = usize::from(buf[1]) << 8 | usize::from(buf[2]) | usize::from(buf[0]) << 16;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            assert_ne!(kind, 0x7, "GOAWAY");
            if kind == 0x4 && flags & 0x1 == 0 {
                io.write_all(&[0, 0, 0, 0x4, 0x1, 0, 0, 0, 0])
                    .await
                    .unwrap();
            }
            if (kind == 0x0 || kind == 0x1) && flags & 0x1 != 0 {
                streams -= 1;
            }
            buf.drain(..9 + len);
        }
        if streams == 0 {
            return;
        }
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Responses that are ready together leave together: 64 requests that arrive in one write
/// are answered in a few full TLS records (16 KiB), not one record (and one `writev`) per
/// response.
/// One worker, as `wirecore serve --threads 1` runs: no other worker steals a stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn h2_responses_ready_together_are_written_together() {
    use std::sync::atomic::Ordering;
    let s = server().await;
    let (relay, records) = counting_relay(s.tls_addr()).await;
    let cfg = support::tls_config(s.ca_pem(), Proto::H2);
    let mut io = support::tls_stream(relay, cfg).await.unwrap();
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    // WINDOW_UPDATE on the connection: 64 KiB of bodies exceed its initial 65,535 bytes.
    io.write_all(&[0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0x10, 0, 0])
        .await
        .unwrap();
    io.write_all(&h2_get(1, "/bytes/16")).await.unwrap();
    let mut buf = Vec::new();
    h2_until_ended(&mut io, &mut buf, 1).await;
    let before = records.load(Ordering::SeqCst);
    // 1 KiB bodies: h2 chains such a payload instead of copying it, and flushes before it.
    let batch: Vec<u8> = (0..64u32)
        .flat_map(|i| h2_get(3 + 2 * i, "/bytes/1024"))
        .collect();
    io.write_all(&batch).await.unwrap();
    h2_until_ended(&mut io, &mut buf, 64).await;
    let written = records.load(Ordering::SeqCst) - before;
    eprintln!("64 responses in {written} TLS records");
    assert!(written <= 8, "64 responses took {written} TLS records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_streams_is_enforced() {
    let s = TestServer::start(Options {
        max_concurrent_streams: Some(3),
        tls: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let Conn::H2(send) = plain(s.addr(), Proto::H2).await else {
        unreachable!()
    };
    // Let the client see the server's SETTINGS before it opens streams.
    Conn::H2(send.clone()).get("/json").await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let mut c = Conn::H2(send.clone());
            tokio::spawn(async move { c.get("/delay/50").await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(s.counters().max_concurrent_requests_per_connection, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_gauges_track_concurrent_connections() {
    let s = server().await;
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(plain(s.addr(), Proto::H1).await);
    }
    for c in &mut conns {
        c.get("/json").await;
    }
    let n = s.counters();
    assert_eq!((n.connections_active, n.max_connections_active), (8, 8));
    drop(conns);
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.connections_active == 0)
        .await;
    assert_eq!((n.connections_active, n.connections_closed), (0, 8));
    s.reset();
    let n = s.counters();
    assert_eq!((n.connections_accepted, n.max_connections_active), (0, 0));
    assert!(n.per_connection_requests.is_empty());
}

#[tokio::test]
async fn client_cancellation_is_counted() {
    let s = server().await;
    // HTTP/2: dropping the response future resets the stream.
    let mut c = plain(s.addr(), Proto::H2).await;
    let _ = tokio::time::timeout(Duration::from_millis(50), c.send(get("/delay/5000"))).await;
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.requests_cancelled == 1)
        .await;
    assert_eq!(n.requests_cancelled, 1);
    // HTTP/2 mid-body: drop the body of a slow drip.
    let resp = c
        .send(get("/drip?bytes=10&chunks=10&delay_ms=50"))
        .await
        .unwrap();
    drop(resp);
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.requests_cancelled == 2)
        .await;
    assert_eq!(n.requests_cancelled, 2);
    // HTTP/1: the client closes the connection while the server waits.
    let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
    tcp.write_all(b"GET /delay/5000 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    s.wait_for(Duration::from_secs(2), |c| c.requests_in_flight == 1)
        .await;
    drop(tcp);
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.requests_cancelled == 3)
        .await;
    assert_eq!((n.requests_cancelled, n.requests_in_flight), (3, 0));
}

#[tokio::test]
async fn tls_sessions_resume_and_alpn_picks_the_protocol() {
    let s = server().await;
    let cfg = support::tls_config(s.ca_pem(), Proto::H2);
    for _ in 0..2 {
        let stream = support::tls_stream(s.tls_addr(), cfg.clone())
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut c = Conn::H2(
            hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .map(|(send, conn)| {
                tokio::spawn(conn);
                send
            })
            .unwrap(),
        );
        // A request lets the client read the session ticket before the next connect.
        assert_eq!(c.get("/json").await.status, 200);
    }
    let n = s.counters();
    assert_eq!(
        (n.tls_handshakes, n.tls_resumed, n.h2_connections),
        (2, 1, 2)
    );
    assert!(
        std::fs::read_to_string(s.ca_path())
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(s.tls_url("/x").starts_with("https://localhost:"));
}

#[tokio::test]
async fn bad_tls_port_fails_verification() {
    let s = server().await;
    let cfg = support::tls_config(s.ca_pem(), Proto::H1);
    let err = support::tls_stream(s.bad_tls_addr(), cfg)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.tls_handshake_failures == 1)
        .await;
    assert_eq!((n.tls_handshake_failures, n.tls_handshakes), (1, 0));
}

#[tokio::test]
async fn blackhole_connect_hangs_and_silent_port_says_nothing() {
    let s = server().await;
    let t = tokio::time::timeout(
        Duration::from_millis(1200),
        TcpStream::connect(s.blackhole_addr()),
    );
    assert!(t.await.is_err(), "connect to the blackhole completed");

    let mut tcp = TcpStream::connect(s.silent_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await;
    assert!(read.is_err(), "silent port sent something");
    assert_eq!(s.counters().silent_connections, 1);
    assert_eq!(s.counters().connections_accepted, 0);
}

#[tokio::test]
async fn bomb_is_small_and_inflates_to_size() {
    let s = server().await;
    let mut c = plain(s.addr(), Proto::H1).await;
    let size = 16u64 << 20;
    for coding in ["gzip", "deflate", "br"] {
        let r = c.get(&format!("/bomb?size={size}&encoding={coding}")).await;
        assert_eq!(r.header("content-encoding"), coding);
        assert!(
            (r.body.len() as u64) < size / 500,
            "{coding}: {}",
            r.body.len()
        );
        let mut sink = tokio::io::sink();
        let n = match coding {
            "gzip" => tokio::io::copy(&mut GzipDecoder::new(&r.body[..]), &mut sink).await,
            "deflate" => tokio::io::copy(&mut ZlibDecoder::new(&r.body[..]), &mut sink).await,
            _ => tokio::io::copy(&mut BrotliDecoder::new(&r.body[..]), &mut sink).await,
        };
        assert_eq!(n.unwrap(), size, "{coding}");
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let s = server().await;
    let mut c = plain(s.addr(), Proto::H2).await;
    let pending = tokio::spawn(async move { c.get("/delay/200").await.status });
    let addr = s.addr();
    let k = s
        .wait_for(Duration::from_secs(10), |k| k.requests_in_flight == 1)
        .await;
    assert_eq!(k.requests_in_flight, 1, "the request reached the server");
    s.shutdown().await;
    assert_eq!(pending.await.unwrap(), StatusCode::OK);
    assert!(TcpStream::connect(addr).await.is_err());
}

async fn control(addr: SocketAddr, method: &str, path: &str, body: &str) -> serde_json::Value {
    let mut c = plain(addr, Proto::H1).await;
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let r = c.request(req).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[tokio::test]
async fn control_port_scripts_and_reads_without_being_counted() {
    let s = server().await;
    let ctl = s.control_addr();
    control(
        ctl,
        "POST",
        "/_control/script",
        r#"{"path":"/json","replies":[{"status":500}]}"#,
    )
    .await;
    let mut c = plain(s.addr(), Proto::H1).await;
    assert_eq!(c.get("/json").await.status, 500);
    assert_eq!(c.get("/json").await.status, 200);
    let n = control(ctl, "GET", "/_control/counters", "").await;
    assert_eq!(
        (n["requests"].as_u64(), n["connections_accepted"].as_u64()),
        (Some(2), Some(1))
    );
    let log = control(ctl, "GET", "/_control/requests", "").await;
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["headers"]["host"], "localhost");

    control(
        ctl,
        "POST",
        "/_control/dns",
        r#"{"name":"svc.test","ips":["127.0.0.1"],"ttl":5}"#,
    )
    .await;
    control(
        ctl,
        "POST",
        "/_control/dns",
        r#"{"name":"bad.test","fail":"servfail"}"#,
    )
    .await;
    let (rcode, _) = dns_udp(
        s.dns().addr(),
        "svc.test.",
        hickory_proto::rr::RecordType::A,
    )
    .await
    .unwrap();
    assert_eq!(rcode, hickory_proto::op::ResponseCode::NoError);
    let d = control(ctl, "GET", "/_control/dns", "").await;
    assert_eq!(d["queries"]["svc.test."], 1);

    control(ctl, "POST", "/_control/reset", "").await;
    assert_eq!(s.counters().requests, 0);
    assert!(s.requests().is_empty());
    assert_eq!(s.dns().queries("svc.test"), 0);
    let info = control(ctl, "GET", "/_control/info", "").await;
    assert_eq!(info["http"], format!("http://{}", s.addr()));
    // The data ports do not serve control endpoints.
    assert_eq!(c.get("/_control/counters").await.status, 404);
}

/// Sends one query over UDP; `None` when no answer comes within 300 ms.
async fn dns_udp(
    addr: SocketAddr,
    name: &str,
    ty: hickory_proto::rr::RecordType,
) -> Option<(hickory_proto::op::ResponseCode, hickory_proto::op::Message)> {
    use hickory_proto::op::{Message, Query};
    let mut q = Message::query();
    q.add_query(Query::query(
        hickory_proto::rr::Name::from_ascii(name).unwrap(),
        ty,
    ));
    q.metadata.recursion_desired = true;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    Some((m.metadata.response_code, m))
}

#[tokio::test]
async fn dns_answers_fails_and_counts() {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{RData, RecordType};
    use wirecore_testserver::DnsMode;
    let s = server().await;
    let dns = s.dns();
    let addr = dns.addr();
    dns.set(
        "svc.test",
        &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        42,
    );
    dns.fail("sf.test", DnsMode::ServFail);
    dns.fail("nx.test", DnsMode::NxDomain);
    dns.fail("drop.test", DnsMode::Drop);
    dns.set_negative_ttl(3);

    let (rc, m) = dns_udp(addr, "svc.test.", RecordType::A).await.unwrap();
    assert_eq!(rc, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 42);
    assert!(matches!(&m.answers[0].data, RData::A(a) if a.0 == std::net::Ipv4Addr::LOCALHOST));
    let (_, m) = dns_udp(addr, "SVC.test.", RecordType::AAAA).await.unwrap();
    assert!(matches!(&m.answers[0].data, RData::AAAA(a) if a.0 == std::net::Ipv6Addr::LOCALHOST));

    assert_eq!(
        dns_udp(addr, "sf.test.", RecordType::A).await.unwrap().0,
        ResponseCode::ServFail
    );
    let (rc, m) = dns_udp(addr, "nx.test.", RecordType::A).await.unwrap();
    assert_eq!(rc, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].ttl, 3);
    assert_eq!(
        dns_udp(addr, "unknown.test.", RecordType::A)
            .await
            .unwrap()
            .0,
        ResponseCode::NXDomain
    );
    assert!(dns_udp(addr, "drop.test.", RecordType::A).await.is_none());

    assert_eq!(dns.queries("svc.test"), 2);
    assert_eq!(dns.queries("drop.test."), 1);
    assert_eq!(dns.all_queries().values().sum::<u64>(), 6);

    // TCP, length-prefixed.
    let mut q = hickory_proto::op::Message::query();
    q.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii("svc.test.").unwrap(),
        RecordType::A,
    ));
    let wire = q.to_vec().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_u16(u16::try_from(wire.len()).unwrap())
        .await
        .unwrap();
    tcp.write_all(&wire).await.unwrap();
    let len = tcp.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    tcp.read_exact(&mut buf).await.unwrap();
    let m = hickory_proto::op::Message::from_vec(&buf).unwrap();
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn binary_prints_addresses_and_exits_on_stdin_eof() {
    use std::io::{BufRead, Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirecore-testserver"))
        .args(["--exit-on-stdin-eof", "--max-concurrent-streams", "50"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in [
        "http",
        "http2",
        "http3",
        "https",
        "bad_tls",
        "control",
        "ca",
        "dns",
        "blackhole",
        "silent",
    ] {
        assert!(info[key].is_string(), "{key} missing in {line}");
    }
    let http = info["http"].as_str().unwrap().trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(http).unwrap();
    tcp.write_all(b"GET /json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let ca = info["ca"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&ca).exists());

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after stdin EOF");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut trailing = String::new();
    out.read_to_string(&mut trailing).unwrap();
    assert!(trailing.is_empty(), "exactly one line, then {trailing}");
    assert!(
        !std::path::Path::new(&ca).exists(),
        "CA file removed on exit"
    );
}

#[tokio::test]
async fn mtls_port_requires_the_client_certificate() {
    let s = server().await;
    let stream = support::tls_stream(s.mtls_addr(), support::mtls_config(&s, Proto::H2))
        .await
        .unwrap();
    let mut c = support::conn_over(stream, Proto::H2).await;
    assert_eq!(c.get("/json").await.status, 200);

    // Without a certificate the handshake (or, in TLS 1.3, the first read) fails.
    let cfg = support::tls_config(s.ca_pem(), Proto::H1);
    if let Ok(stream) = support::tls_stream(s.mtls_addr(), cfg).await {
        let mut c = support::conn_over(stream, Proto::H1).await;
        assert!(c.request(get("/json")).await.is_err());
    }
    let (cert, key) = s.client_cert_paths();
    assert!(
        std::fs::read_to_string(cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        std::fs::read_to_string(key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
}

#[tokio::test]
async fn tls_port_listens_on_ipv6_loopback_too() {
    let s = server().await;
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, s.tls_addr().port()));
    if TcpStream::connect(v6).await.is_ok() {
        let stream = support::tls_stream(v6, support::tls_config(s.ca_pem(), Proto::H1))
            .await
            .unwrap();
        let mut c = support::conn_over(stream, Proto::H1).await;
        assert_eq!(c.get("/json").await.status, 200);
    }
}

#[tokio::test]
async fn close_connections_leaves_pooled_clients_stale() {
    let s = server().await;
    let mut h1 = plain(s.addr(), Proto::H1).await;
    let mut h2 = plain(s.addr(), Proto::H2).await;
    h1.get("/json").await;
    h2.get("/json").await;
    s.close_connections();
    let n = s
        .wait_for(Duration::from_secs(2), |c| c.connections_active == 0)
        .await;
    assert_eq!(n.connections_closed, 2);
    assert!(h1.request(get("/json")).await.is_err());
    assert!(h2.request(get("/json")).await.is_err());
    // New connections are served as usual.
    assert_eq!(
        plain(s.addr(), Proto::H1).await.get("/json").await.status,
        200
    );
}

#[tokio::test]
async fn upload_streams_and_echo_reports_the_host() {
    let s = server().await;
    let mut c = plain(s.addr(), Proto::H2).await;
    let body = pattern(3 << 20);
    let r = c
        .request(post("/upload", body.clone()))
        .await
        .unwrap()
        .json();
    assert_eq!(r["body_len"], 3 << 20);
    assert_eq!(r["crc32"], crc32fast::hash(&body));
    assert_eq!(s.requests()[0].body_len, 3 << 20);
    assert_eq!(c.get("/echo").await.json()["host"], "localhost");
}

#[test]
fn start_blocking_serves_without_a_caller_runtime() {
    use std::io::{Read, Write};
    let s = TestServer::start_blocking(Options {
        tls: false,
        ..Options::default()
    })
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(s.addr()).unwrap();
    tcp.write_all(b"GET /bytes/5 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    tcp.read_to_end(&mut resp).unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 200") && resp.ends_with(&[0, 1, 2, 3, 4]));
    assert_eq!(s.counters().requests, 1);
}

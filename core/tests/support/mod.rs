//! Shared helpers for the core's integration tests.
#![allow(dead_code, unused_imports, reason = "each test binary uses a subset")]

mod redis_server;

pub use redis_server::{Redis, start_redis};
use wirecore::{Client, Config};
pub use wirecore_testserver::{Options, Reply, TestServer};

pub async fn server() -> TestServer {
    TestServer::start(Options::default())
        .await
        .expect("test server")
}

pub async fn server_with(opts: Options) -> TestServer {
    TestServer::start(opts).await.expect("test server")
}

/// `n` test servers without TLS (the endpoints of a load-balanced service).
pub async fn plain_servers(n: usize) -> Vec<TestServer> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            server_with(Options {
                tls: false,
                ..Options::default()
            })
            .await,
        );
    }
    v
}

/// A config that trusts the test server's CA.
pub fn config(srv: &TestServer) -> Config {
    let mut c = Config::default();
    c.tls.extra_ca_pem.push(srv.ca_pem().to_owned());
    c
}

pub fn client(srv: &TestServer) -> Client {
    Client::from_config(config(srv)).expect("client")
}

pub fn client_with(srv: &TestServer, f: impl FnOnce(&mut Config)) -> Client {
    let mut c = config(srv);
    f(&mut c);
    Client::from_config(c).expect("client")
}

/// A loopback port nobody listens on right now (for servers the tests start themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A loopback port that refuses connections for as long as the returned socket lives: bound to
/// 127.0.0.1, not listening, without `SO_REUSEADDR`, so no server (another test's, which binds
/// port 0 or reuses addresses) can take it before the request. A port from [`free_port`] can be
/// taken meanwhile, and the request then gets that server's answer instead of a refusal.
pub fn refused_port() -> (socket2::Socket, u16) {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    s.bind(&any.into()).expect("bind");
    let port = s
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("an IP address")
        .port();
    (s, port)
}

/// Polls `cond` every 5 ms until it holds; panics naming `what` after 10 s. The way tests wait
/// for something the client or server does asynchronously (never a bare sleep).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Waits until the test server has received a request after the `seen` it had counted (a slow
/// request has reached it). Counting arrivals, not requests in flight: the server goes on
/// sleeping on requests that the client gave up on earlier.
pub async fn wait_arrived(srv: &TestServer, seen: u64) {
    wait_until("a request reached the server", || {
        srv.counters().requests > seen
    })
    .await;
}

/// Sends `req` and reads its body as JSON (the test server's `/echo` and `/headers` answers).
pub async fn json_of(req: wirecore::RequestBuilder) -> serde_json::Value {
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json body")
}

/// GETs `url`, asserts a 200 and reads the whole body (a request that leaves an idle
/// connection behind).
pub async fn get_all(c: &Client, url: &str) {
    let r = c.get(url).send().await.expect("send");
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("body");
}

/// Polls `probe` every 20 ms until `done` holds for its value or `within` passes; returns the
/// last value (the caller asserts on it, naming what it counted).
pub async fn settle(
    within: std::time::Duration,
    mut probe: impl FnMut() -> usize,
    done: impl Fn(usize) -> bool,
) -> usize {
    let until = tokio::time::Instant::now() + within;
    loop {
        let n = probe();
        if done(n) || tokio::time::Instant::now() >= until {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

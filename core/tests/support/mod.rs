//! Shared helpers for the core's integration tests.
#![allow(dead_code, unused_imports, reason = "each test binary uses a subset")]

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

//! `base_url` (relative request URLs, as httpx's), `RequestBuilder::basic_auth`, and a caller's
//! `Host` header carried as HTTP/2's `:authority`.

mod support;

use serde_json::Value;
use support::*;
use wirecore::{Client, ErrorKind, Method, Request};

async fn echo(client: &Client, req: Request) -> Value {
    let resp = client.execute(req).await.expect("request");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// The path and query of the last request the server logged.
fn last_path(srv: &TestServer) -> String {
    srv.requests().last().expect("a request").path.clone()
}

#[tokio::test]
async fn relative_urls_join_the_base_urls_path() {
    let srv = server().await;
    let client = Client::builder()
        .config(config(&srv))
        .base_url(&srv.url("/api/"))
        .build()
        .expect("client");
    // httpx's rule: the relative path is appended to the base path.
    let resp = client.get("/v1/items?a=1").send().await.expect("request");
    assert_eq!(resp.url().to_string(), srv.url("/api/v1/items?a=1"));
    drop(resp);
    assert_eq!(last_path(&srv), "/api/v1/items?a=1");
    // From a Request built without the client (as the bindings do).
    let req = Request::new(Method::GET, "/x y").expect("relative request");
    client.execute(req).await.expect("request");
    assert_eq!(last_path(&srv), "/api/x%20y");
    // query() after a relative URL.
    client
        .get("/q")
        .query(&[("k", "a b")])
        .send()
        .await
        .expect("query");
    assert_eq!(last_path(&srv), "/api/q?k=a+b");
    // An absolute URL ignores base_url.
    let v = echo(
        &client,
        Request::new(Method::GET, &srv.url("/echo")).expect("abs"),
    )
    .await;
    assert_eq!(v["path"], "/echo");
    // A base without a trailing '/' joins the same way.
    let client = Client::builder()
        .config(config(&srv))
        .base_url(&srv.url("/api"))
        .build()
        .expect("client");
    client.get("/v2").send().await.expect("request");
    assert_eq!(last_path(&srv), "/api/v2");
}

#[tokio::test]
async fn a_relative_url_without_base_url_is_invalid_url() {
    let srv = server().await;
    let client = client(&srv);
    let err = client.get("/echo").send().await.expect_err("no base_url");
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    assert!(err.to_string().contains("base_url"), "{err}");
    let req = Request::new(Method::GET, "/echo").expect("relative request");
    let err = client.execute(req).await.expect_err("no base_url");
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    // Not every string is a relative URL: one without a leading '/' is still refused at once.
    assert_eq!(
        Request::new(Method::GET, "example.com/x")
            .expect_err("no scheme")
            .kind(),
        ErrorKind::InvalidUrl
    );
}

#[tokio::test]
async fn base_url_is_validated_in_config() {
    for (bad, why) in [
        ("ftp://x/", "scheme"),
        ("/relative", "relative"),
        ("http://h/?q=1", "query"),
        ("http://h/#f", "fragment"),
    ] {
        let err =
            wirecore::Config::from_json(&format!(r#"{{"base_url": "{bad}"}}"#)).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let msg = err.to_string();
        assert!(
            msg.contains("base_url") && msg.contains(why),
            "{bad}: {msg}"
        );
    }
}

#[tokio::test]
async fn basic_auth_sets_authorization() {
    let srv = server().await;
    let client = client(&srv);
    let v: Value = json_of(
        client
            .get(&srv.url("/echo"))
            .basic_auth("user", Some("p@ss:word")),
    )
    .await;
    // base64("user:p@ss:word")
    assert_eq!(v["headers"]["authorization"], "Basic dXNlcjpwQHNzOndvcmQ=");
    let v: Value = json_of(client.get(&srv.url("/echo")).basic_auth("user", None)).await;
    assert_eq!(v["headers"]["authorization"], "Basic dXNlcjo=");
}

#[tokio::test]
async fn a_host_header_becomes_the_h2_authority() {
    let srv = server().await;
    let client = client(&srv);
    let v: Value = json_of(
        client
            .get(&srv.tls_url("/echo"))
            .header("host", "api.example.test"),
    )
    .await;
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["host"], "api.example.test");
    // Without one, :authority is the URL's.
    let v: Value = json_of(client.get(&srv.tls_url("/echo"))).await;
    assert_eq!(v["host"], format!("localhost:{}", srv.tls_addr().port()));
}

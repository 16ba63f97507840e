//! The cookie jar (`cookies.enabled`): what is stored from `Set-Cookie` (every redirect hop),
//! what goes back (host, path, `Secure`, expiry), and that a cookie never reaches another host.

mod support;

use serde_json::Value;
use support::*;
use wirecore::{Client, Config};

fn jar_config(srv: &TestServer) -> Config {
    let mut c = config(srv);
    c.cookies.enabled = true;
    for host in ["a.cookies.test", "b.cookies.test"] {
        c.dns
            .overrides
            .insert(host.to_owned(), "127.0.0.1".to_owned());
    }
    c
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `Cookie` header `/headers` (or `/set-cookie`) received, if any.
async fn cookie_sent(client: &Client, url: &str) -> Option<String> {
    let v: Value = json_of(client.get(url)).await;
    v["headers"]["cookie"].as_str().map(str::to_owned)
}

async fn set(client: &Client, base: &str, cookies: &[&str]) {
    let q: Vec<String> = cookies.iter().map(|c| format!("c={}", enc(c))).collect();
    let resp = client
        .get(&format!("{base}/set-cookie?{}", q.join("&")))
        .send()
        .await
        .expect("set-cookie");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
}

#[tokio::test]
async fn cookies_are_off_by_default() {
    let srv = server().await;
    let client = client(&srv);
    set(&client, &srv.url(""), &["a=1"]).await;
    assert_eq!(cookie_sent(&client, &srv.url("/headers")).await, None);
    assert!(client.cookies().is_empty());
    assert_eq!(client.cookies_json(), "[]");
}

#[tokio::test]
async fn a_stored_cookie_is_sent_back_and_listed() {
    let srv = server().await;
    let client = Client::from_config(jar_config(&srv)).expect("client");
    set(
        &client,
        &srv.url(""),
        &["a=1", "b=2; SameSite=Strict; HttpOnly"],
    )
    .await;
    let sent = cookie_sent(&client, &srv.url("/headers")).await;
    let mut got: Vec<&str> = sent.as_deref().unwrap_or("").split("; ").collect();
    got.sort_unstable();
    assert_eq!(got, ["a=1", "b=2"]);
    let mut list = client.cookies();
    list.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(list.len(), 2);
    assert_eq!(
        (
            list[0].domain.as_str(),
            list[0].host_only,
            list[0].path.as_str()
        ),
        ("127.0.0.1", true, "/")
    );
    assert_eq!(list[1].same_site.as_deref(), Some("Strict"));
    assert!(list[1].http_only);
    let json: Value = serde_json::from_str(&client.cookies_json()).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    client.clear_cookies();
    assert!(client.cookies().is_empty());
    assert_eq!(cookie_sent(&client, &srv.url("/headers")).await, None);
}

#[tokio::test]
async fn redirect_hops_store_cookies_and_never_carry_them_to_another_host() {
    let srv = server().await;
    let client = Client::from_config(jar_config(&srv)).expect("client");
    let port = srv.addr().port();
    let a = format!("http://a.cookies.test:{port}");
    let b = format!("http://b.cookies.test:{port}");
    // a sets sa and sends to b, which sets sb and sends back to a's /headers.
    let back = format!("{a}/headers");
    let via_b = format!("{b}/set-cookie?c={}&redirect={}", enc("sb=2"), enc(&back));
    let start = format!("{a}/set-cookie?c={}&redirect={}", enc("sa=1"), enc(&via_b));
    srv.reset();
    let last = cookie_sent(&client, &start).await;
    // The third hop is a again: the cookie a set in the first hop goes there, b's does not.
    assert_eq!(last.as_deref(), Some("sa=1"));
    let seen = srv.requests();
    let hop_b = seen
        .iter()
        .find(|r| r.headers.get("host").is_some_and(|h| h.starts_with("b.")))
        .expect("the hop to b");
    assert_eq!(hop_b.headers.get("cookie"), None, "a's cookie reached b");
    assert_eq!(
        cookie_sent(&client, &format!("{b}/headers"))
            .await
            .as_deref(),
        Some("sb=2")
    );
}

#[tokio::test]
async fn a_domain_cookie_reaches_subdomains_only() {
    let srv = server().await;
    let mut cfg = jar_config(&srv);
    cfg.dns
        .overrides
        .insert("api.a.cookies.test".to_owned(), "127.0.0.1".to_owned());
    let client = Client::from_config(cfg).expect("client");
    let port = srv.addr().port();
    set(
        &client,
        &format!("http://a.cookies.test:{port}"),
        &[
            "d=1; Domain=a.cookies.test",
            "h=2",
            "x=3; Domain=b.cookies.test",
        ],
    )
    .await;
    let sub = cookie_sent(
        &client,
        &format!("http://api.a.cookies.test:{port}/headers"),
    )
    .await;
    assert_eq!(sub.as_deref(), Some("d=1"));
    let other = cookie_sent(&client, &format!("http://b.cookies.test:{port}/headers")).await;
    assert_eq!(other, None, "a Domain the host is not within was stored");
}

#[tokio::test]
async fn max_age_zero_deletes_a_cookie() {
    let srv = server().await;
    let client = Client::from_config(jar_config(&srv)).expect("client");
    let base = srv.url("");
    set(&client, &base, &["a=1", "b=2"]).await;
    set(&client, &base, &["a=gone; Max-Age=0"]).await;
    assert_eq!(
        cookie_sent(&client, &srv.url("/headers")).await.as_deref(),
        Some("b=2")
    );
    assert_eq!(client.cookies().len(), 1);
    // An Expires in the past deletes too.
    set(
        &client,
        &base,
        &["b=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
    )
    .await;
    assert_eq!(cookie_sent(&client, &srv.url("/headers")).await, None);
}

#[tokio::test]
async fn a_cookie_goes_only_to_its_path() {
    let srv = server().await;
    let client = Client::from_config(jar_config(&srv)).expect("client");
    set(&client, &srv.url(""), &["p=1; Path=/headers", "r=2"]).await;
    assert_eq!(
        cookie_sent(&client, &srv.url("/headers")).await.as_deref(),
        Some("p=1; r=2")
    );
    let echo: Value = json_of(client.get(&srv.url("/echo"))).await;
    assert_eq!(echo["headers"]["cookie"], "r=2");
}

#[tokio::test]
async fn a_secure_cookie_is_not_sent_over_http() {
    let srv = server().await;
    let mut cfg = jar_config(&srv);
    cfg.dns
        .overrides
        .insert("localhost".to_owned(), "127.0.0.1".to_owned());
    let client = Client::from_config(cfg).expect("client");
    // Set over https://localhost; cookies ignore the port, so the plain port is the same host.
    let plain = format!("http://localhost:{}", srv.addr().port());
    set(&client, &srv.tls_url(""), &["s=1; Secure", "n=2"]).await;
    let over_http = cookie_sent(&client, &format!("{plain}/headers")).await;
    assert_eq!(over_http.as_deref(), Some("n=2"));
    let over_tls = cookie_sent(&client, &srv.tls_url("/headers")).await;
    assert_eq!(over_tls.as_deref(), Some("s=1; n=2"));
}

#[tokio::test]
async fn the_callers_cookie_header_wins_by_name() {
    let srv = server().await;
    let client = Client::from_config(jar_config(&srv)).expect("client");
    set(&client, &srv.url(""), &["a=jar", "b=jar"]).await;
    let v: Value = json_of(client.get(&srv.url("/headers")).header("cookie", "a=mine")).await;
    assert_eq!(v["headers"]["cookie"], "a=mine; b=jar");
}

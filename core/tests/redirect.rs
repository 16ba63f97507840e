//! Redirects: the method and body of each hop (RFC 9110 §15.4), credentials across origins,
//! https → http, and URL userinfo.

mod support;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use support::*;
use wirecore::{Client, ErrorKind, Method, RequestBody, Response};

const BODY: &[u8] = br#"{"important":"data"}"#;

fn url(srv: &TestServer, key: &str) -> String {
    srv.info()[key].as_str().expect("server url").to_owned()
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What the target must see: `None` when the 3xx itself must come back.
struct Want {
    method: Method,
    body: bool,
}

fn want(status: u16, method: &Method, streamed: bool) -> Option<Want> {
    match (status, method) {
        (301 | 302, &Method::POST) | (303, _) => Some(Want {
            method: if *method == Method::HEAD {
                Method::HEAD
            } else {
                Method::GET
            },
            body: false,
        }),
        // Method and body kept, which a streamed body cannot be.
        _ if streamed => None,
        _ => Some(Want {
            method: method.clone(),
            body: true,
        }),
    }
}

async fn method_body_table(client: &Client, base: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for status in [301u16, 302, 303, 307, 308] {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            for streamed in [false, true] {
                let case = format!("{status} {method} streamed={streamed}");
                let body = if streamed {
                    RequestBody::wrap_stream(futures_util::stream::iter([
                        Ok::<_, std::io::Error>(Bytes::from_static(&BODY[..7])),
                        Ok(Bytes::from_static(&BODY[7..])),
                    ]))
                } else {
                    RequestBody::from(BODY)
                };
                let resp = client
                    .request(
                        method.clone(),
                        &format!("{base}/redirect-to?url=/echo&status={status}"),
                    )
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                let resp = match resp {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{case}: {e}"));
                        continue;
                    }
                };
                let got = resp.status().as_u16();
                let Some(w) = want(status, &method, streamed) else {
                    if got != status {
                        failures.push(format!("{case}: want the {status} back, got {got}"));
                    }
                    continue;
                };
                let mut bad = Vec::new();
                if got != 200 {
                    bad.push(format!("status {got}"));
                }
                let m = header(&resp, "x-echo-method");
                if m.as_deref() != Some(w.method.as_str()) {
                    bad.push(format!("method {m:?}"));
                }
                let (len, crc) = if w.body {
                    (BODY.len(), crc32(BODY))
                } else {
                    (0, crc32(b""))
                };
                let got_len = header(&resp, "x-echo-body-len");
                let got_crc = header(&resp, "x-echo-body-crc32");
                if got_len != Some(len.to_string()) || got_crc != Some(crc.to_string()) {
                    bad.push(format!("body len {got_len:?} crc {got_crc:?}"));
                }
                let cl = header(&resp, "x-echo-content-length");
                let ct = header(&resp, "x-echo-content-type");
                let te = header(&resp, "x-echo-transfer-encoding");
                if w.body {
                    if cl.as_deref() != Some("20") || ct.as_deref() != Some("application/json") {
                        bad.push(format!(
                            "body headers content-length {cl:?} content-type {ct:?}"
                        ));
                    }
                } else if cl.is_some() || ct.is_some() || te.is_some() {
                    bad.push(format!(
                        "body headers left: content-length {cl:?} content-type {ct:?} \
                         transfer-encoding {te:?}"
                    ));
                }
                if !bad.is_empty() {
                    failures.push(format!("{case}: {}", bad.join(", ")));
                }
            }
        }
    }
    failures
}

/// CRC-32 (IEEE), as the test server reports it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_and_body_follow_rfc_9110_on_h1_and_h2() {
    let srv = server().await;
    let h1 = client(&srv);
    let mut failures = method_body_table(&h1, &url(&srv, "http")).await;
    let h2 = client_with(&srv, |c| c.http2.prior_knowledge = true);
    failures.extend(
        method_body_table(&h2, &url(&srv, "http"))
            .await
            .into_iter()
            .map(|f| format!("h2c {f}")),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_after_301_with_explicit_content_length_does_not_stall() {
    let srv = server().await;
    let client = client(&srv);
    let resp = client
        .put(&format!(
            "{}/redirect-to?url=/echo&status=301",
            url(&srv, "http")
        ))
        .header("content-length", &BODY.len().to_string())
        .body(BODY)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("no stall");
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["method"], "PUT");
    assert_eq!(doc["body"], std::str::from_utf8(BODY).unwrap());
}

async fn echo(client: &Client, url: &str) -> Value {
    let resp = client
        .get(url)
        .header("authorization", "Bearer secret")
        .header("cookie", "session=1")
        .header("proxy-authorization", "Basic cHJveHk6cHc=")
        .header("x-request", "kept")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.expect("json")
}

fn with_defaults(srv: &TestServer, f: impl FnOnce(&mut wirecore::Config)) -> Client {
    client_with(srv, |c| {
        c.default_headers
            .insert("authorization".into(), "Bearer default".into());
        c.default_headers.insert("x-team".into(), "core".into());
        c.user_agent = "redirect-test/1".into();
        f(c);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_hop_drops_credentials_and_default_headers() {
    let srv = server().await;
    let (http, https) = (url(&srv, "http"), url(&srv, "https"));
    let client = with_defaults(&srv, |_| {});
    // Default Authorization only (the issue's reproduction).
    let resp = client
        .get(&format!("{http}/redirect-to?url={https}/echo&status=302"))
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    let h = &doc["headers"];
    assert!(h.get("authorization").is_none(), "default leaked: {h}");
    assert!(h.get("x-team").is_none(), "default leaked: {h}");
    assert_eq!(h["user-agent"], "redirect-test/1");
    assert!(h.get("accept-encoding").is_some(), "{h}");

    let doc = echo(&client, &format!("{http}/redirect-to?url={https}/echo")).await;
    let h = &doc["headers"];
    for name in ["authorization", "cookie", "proxy-authorization", "x-team"] {
        assert!(h.get(name).is_none(), "{name} leaked: {h}");
    }
    assert_eq!(h["x-request"], "kept");

    // Back to the first origin: what was dropped stays dropped.
    let there_and_back = format!("{https}/redirect-to?url={http}/echo");
    let doc = echo(
        &client,
        &format!(
            "{http}/redirect-to?url={}",
            there_and_back.replace('?', "%3F").replace('=', "%3D")
        ),
    )
    .await;
    assert_eq!(doc["path"], "/echo");
    let h = &doc["headers"];
    for name in ["authorization", "cookie", "x-team"] {
        assert!(h.get(name).is_none(), "{name} came back: {h}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_hop_keeps_credentials() {
    let srv = server().await;
    let http = url(&srv, "http");
    let client = with_defaults(&srv, |_| {});
    let doc = echo(&client, &format!("{http}/redirect-to?url=/echo&status=301")).await;
    let h = &doc["headers"];
    assert_eq!(h["authorization"], "Bearer secret");
    assert_eq!(h["cookie"], "session=1");
    assert_eq!(h["x-team"], "core");
    let resp = client
        .get(&format!("{http}/redirect-to?url={http}/echo"))
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["headers"]["authorization"], "Bearer default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_headers_opt_in_per_origin() {
    let srv = server().await;
    let (http, https) = (url(&srv, "http"), url(&srv, "https"));
    let client = with_defaults(&srv, |c| {
        c.redirect
            .forward_headers
            .push(wirecore::config::ForwardHeaders {
                origin: https.to_uppercase().replace("HTTPS://", "https://"),
                headers: vec!["Authorization".into(), "x-team".into()],
            });
    });
    let doc = echo(&client, &format!("{http}/redirect-to?url={https}/echo")).await;
    let h = &doc["headers"];
    assert_eq!(h["authorization"], "Bearer secret");
    assert_eq!(h["x-team"], "core");
    assert!(h.get("cookie").is_none(), "{h}");
    let resp = client
        .get(&format!("{http}/redirect-to?url={https}/echo"))
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["headers"]["authorization"], "Bearer default");

    let e = wirecore::Config::from_json(
        r#"{"redirect": {"forward_headers": [{"origin": "http://a/x", "headers": ["a"]}]}}"#,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.to_string().contains("redirect.forward_headers[0].origin"),
        "{e}"
    );
    let e = wirecore::Config::from_json(
        r#"{"redirect": {"forward_headers": [{"origin": "http://a", "headers": ["bad name"]}]}}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("redirect.forward_headers[0].headers[0]"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_http_is_cross_origin_and_refusable() {
    let srv = server().await;
    let (http, https) = (url(&srv, "http"), url(&srv, "https"));
    let to_http = format!("{https}/redirect-to?url={http}/echo&status=302");
    let client = with_defaults(&srv, |_| {});
    let doc = echo(&client, &to_http).await;
    let h = &doc["headers"];
    assert!(h.get("authorization").is_none(), "{h}");
    assert!(h.get("x-team").is_none(), "{h}");

    let strict = with_defaults(&srv, |c| c.redirect.allow_downgrade = false);
    let e = strict.get(&to_http).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RedirectDowngrade);
    assert_eq!(e.code(), "redirect_downgrade");
    assert!(e.to_string().contains("allow_downgrade"), "{e}");
    // http → https is an upgrade: followed.
    let resp = strict
        .get(&format!("{http}/redirect-to?url={https}/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_is_sent_as_basic_auth_never_in_the_authority() {
    let srv = server().await;
    let (http, https) = (url(&srv, "http"), url(&srv, "https"));
    let with_userinfo =
        |base: &str, userinfo: &str| base.replacen("://", &format!("://{userinfo}@"), 1);
    let h1 = client(&srv);
    let h2c = client_with(&srv, |c| c.http2.prior_knowledge = true);
    for (name, client, base, version) in [
        ("h1", &h1, &http, "HTTP/1.1"),
        ("h2 tls", &h1, &https, "HTTP/2.0"),
        ("h2c", &h2c, &http, "HTTP/2.0"),
    ] {
        for (userinfo, decoded) in [
            ("user:p%40ss", "user:p@ss"),
            ("user:p@ss", "user:p@ss"),
            ("only", "only"),
        ] {
            let target = with_userinfo(base, userinfo);
            let resp = client.get(&format!("{target}/echo")).send().await.unwrap();
            assert!(!resp.url().to_string().contains('@'), "{}", resp.url());
            let doc: Value = resp.json().await.unwrap();
            let ctx = format!("{name} {userinfo}");
            assert_eq!(doc["version"], version, "{ctx}");
            let host = doc["host"].as_str().unwrap();
            assert!(
                !host.contains('@') && !host.contains("user"),
                "{ctx}: {host}"
            );
            assert_eq!(base.split("://").nth(1), Some(host), "{ctx}");
            let want = format!("Basic {}", base64(decoded.as_bytes()));
            assert_eq!(doc["headers"]["authorization"], want.as_str(), "{ctx}");
        }
    }
    // The request's own Authorization wins.
    let resp = h1
        .get(&format!("{}/echo", with_userinfo(&http, "u:p")))
        .bearer_auth("mine")
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["headers"]["authorization"], "Bearer mine");
    // A credential: it does not follow a cross-origin redirect.
    let resp = h1
        .get(&format!(
            "{}/redirect-to?url={https}/echo",
            with_userinfo(&http, "u:p")
        ))
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["headers"].get("authorization").is_none(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_show_userinfo() {
    let (_refusing, port) = refused_port();
    let client = Client::new().unwrap();
    for url in [
        format!("http://admin:s3cret@pw@127.0.0.1:{port}/x"),
        format!("http://admin:s3cret%40pw@127.0.0.1:{port}/x"),
        "ftp://admin:s3cret@pw@example.com/".to_owned(),
        format!("http://admin:s3cret@pw@127.0.0.1:{port}:1/"),
    ] {
        let e = client
            .get(&url)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap_err();
        for text in [e.to_string(), e.full_message(), format!("{e:?}")] {
            assert!(
                !text.contains("s3cret") && !text.contains("admin") && !text.contains("pw@"),
                "{url}: {text}"
            );
        }
    }
}

fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A hop of a chain a binding's host follows (Go's `http.Client`) that left its first origin:
/// the defaults stay behind except those forwarded to this origin; the request's own headers
/// (its host's business) and `User-Agent` go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_default_headers_gets_only_forwarded_ones() {
    let srv = server().await;
    let (http, https) = (url(&srv, "http"), url(&srv, "https"));
    let client = with_defaults(&srv, |c| {
        c.redirect
            .forward_headers
            .push(wirecore::config::ForwardHeaders {
                origin: https.clone(),
                headers: vec!["x-team".into()],
            });
    });
    for (base, team) in [(&http, None), (&https, Some("core"))] {
        let mut req = wirecore::Request::new(Method::GET, &format!("{base}/echo")).unwrap();
        *req.default_headers_mut() = false;
        req.headers_mut()
            .insert("x-request", "kept".parse().unwrap());
        let doc: Value = client.execute(req).await.unwrap().json().await.unwrap();
        let h = &doc["headers"];
        assert!(h.get("authorization").is_none(), "{base}: {h}");
        assert_eq!(h.get("x-team").and_then(Value::as_str), team, "{base}: {h}");
        assert_eq!(h["x-request"], "kept");
        assert_eq!(h["user-agent"], "redirect-test/1");
    }
}

/// `RequestOptions::redirect` and `max_redirects`: follow (hops from the request, else the
/// config), manual (the 3xx as it is) and error (`too_many_redirects`, connection kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_redirect_policy() {
    use wirecore::RedirectPolicy;
    let srv = server().await;
    let base = url(&srv, "http");
    let chain = format!("{base}/redirect/3");
    let client = client_with(&srv, |c| c.redirect.max = 2);

    let r = client.get(&chain).send().await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TooManyRedirects);
    let r = client.get(&chain).max_redirects(3).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(&chain)
        .redirect(RedirectPolicy::Follow)
        .max_redirects(0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);

    let r = client
        .get(&chain)
        .redirect(RedirectPolicy::Manual)
        .max_redirects(5)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(header(&r, "location").as_deref(), Some("/redirect/2"));
    r.bytes().await.unwrap();

    let e = client
        .get(&chain)
        .redirect(RedirectPolicy::Error)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyRedirects);
    assert!(
        e.to_string().contains("redirect policy is \"error\""),
        "{e}"
    );
    // The refused 302's small body was read, so its connection went back to the pool.
    let r = client
        .get(&format!("{base}/bytes/3"))
        .redirect(RedirectPolicy::Error)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.reused());

    // The config's max 0 (every 3xx returned) yields to a request that asks to follow.
    let off = client_with(&srv, |c| c.redirect.max = 0);
    assert_eq!(off.get(&chain).send().await.unwrap().status(), 302);
    let r = off.get(&chain).max_redirects(3).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(off.stats().redirects_followed, 3);

    let before = srv.counters().requests;
    let e = client
        .get(&chain)
        .max_redirects(1_001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.to_string().contains("max_redirects must be 0 to 1000"),
        "{e}"
    );
    assert_eq!(srv.counters().requests, before, "no I/O for a bad option");
}

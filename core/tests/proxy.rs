//! Proxies against real proxies on loopback (the test server's `TestProxy` and `TestSocks`):
//! absolute-form HTTP/1.1, `CONNECT` tunnels with TLS and h2 inside, proxy auth, `NO_PROXY`,
//! SOCKS5 (`socks5://` and `socks5h://`, with and without RFC 1929 auth), and the proxy
//! environment variables (read in a child process, so no test races on the process
//! environment).

mod support;

use support::*;
use wirecore::ErrorKind;
use wirecore_testserver::{TestProxy, TestSocks};

fn proxied(srv: &TestServer, f: impl FnOnce(&mut wirecore::Config)) -> wirecore::Client {
    client_with(srv, |c| {
        c.proxy.from_env = false;
        f(c);
    })
}

async fn header_doc(r: wirecore::Response) -> serde_json::Value {
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_goes_through_the_proxy_in_absolute_form_with_auth_kept_from_the_origin() {
    let srv = server().await;
    let proxy = TestProxy::start(Some("alice:s3cret")).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(proxy.url(Some("alice:s3cret")));
    });
    let r = c.get(&srv.url("/headers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), http::Version::HTTP_11);
    let doc = header_doc(r).await;
    let h = &doc["headers"];
    assert_eq!(h["via"], "1.1 wirecore-test-proxy", "{doc}");
    assert!(
        h.get("proxy-authorization").is_none(),
        "leaked to the origin: {doc}"
    );
    assert_eq!(proxy.counters().forwarded, 1);
    assert_eq!(proxy.counters().rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_tunnels_through_connect_and_negotiates_h2_inside() {
    let srv = server().await;
    let proxy = TestProxy::start(Some("bob:pw")).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.https = Some(proxy.url(Some("bob:pw")));
    });
    for _ in 0..3 {
        let r = c.get(&srv.tls_url("/headers")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.version(),
            http::Version::HTTP_2,
            "ALPN h2 inside the tunnel"
        );
        let doc = header_doc(r).await;
        assert!(doc["headers"].get("proxy-authorization").is_none(), "{doc}");
    }
    // One tunnel, reused: the pooled h2 connection is the tunnelled one.
    assert_eq!(proxy.counters().tunnels, 1);
    // The HTTPS proxy is not used for http:// URLs.
    c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(proxy.counters().forwarded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_auth_required_is_a_clear_connect_error() {
    let srv = server().await;
    let proxy = TestProxy::start(Some("alice:right")).await.unwrap();
    for userinfo in [None, Some("alice:wrong")] {
        let c = proxied(&srv, |c| {
            // Retries stay on (the default): a 407 is definitive and not retried.
            c.proxy.https = Some(proxy.url(userinfo));
        });
        let e = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        assert!(e.to_string().contains("407"), "{e}");
        assert!(e.to_string().contains(&proxy.addr().to_string()), "{e}");
    }
    // Over plain HTTP the proxy's 407 is the response, as with any HTTP client.
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(proxy.url(None));
    });
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.status(), 407);
    assert_eq!(proxy.counters().rejected, 3);
    assert_eq!(srv.counters().requests, 0, "nothing reached the origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_entries_go_direct() {
    let srv = server().await;
    let proxy = TestProxy::start(None).await.unwrap();
    let port = srv.addr().port();
    for entry in ["127.0.0.1", "*", &format!("127.0.0.1:{port}")] {
        let c = proxied(&srv, |c| {
            c.proxy.http = Some(proxy.url(None));
            c.proxy.no_proxy = vec![entry.to_owned()];
        });
        let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{entry}");
    }
    assert_eq!(proxy.counters().forwarded, 0);
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(proxy.url(None));
        c.proxy.no_proxy = vec![format!("127.0.0.1:{}", port.wrapping_add(1))];
    });
    c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(
        proxy.counters().forwarded,
        1,
        "another port is not bypassed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_proxy_is_a_connect_error_naming_it() {
    let srv = server().await;
    let (_refusing, port) = refused_port();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(format!("http://127.0.0.1:{port}"));
    });
    let e = c.get(&srv.url("/bytes/1")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("proxy http://127.0.0.1:{port}")),
        "{e}"
    );
}

#[test]
fn bad_proxy_config_is_refused_before_any_io() {
    for (json, field) in [
        (r#"{"proxy":{"http":"socks4://h:1"}}"#, "proxy.http"),
        (r#"{"proxy":{"https":"socks5://:pw@h:1"}}"#, "proxy.https"),
        (r#"{"proxy":{"https":"http://h:1/path"}}"#, "proxy.https"),
        (r#"{"proxy":{"form_env":false}}"#, "form_env"),
    ] {
        let e = wirecore::Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_tunnels_http_and_https_with_h2_inside_and_the_client_resolves() {
    let srv = server().await;
    let socks = TestSocks::start(None).await.unwrap();
    let url = socks.url("socks5", None);
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(url.clone());
        c.proxy.https = Some(url.clone());
    });
    let r = c.get(&srv.url("/headers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc = header_doc(r).await;
    assert!(doc["headers"].get("via").is_none(), "not forwarded: {doc}");
    for _ in 0..3 {
        let r = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), http::Version::HTTP_2, "ALPN h2 inside");
    }
    let log = srv.requests();
    assert_eq!(
        log[0].path, "/headers",
        "origin form, not absolute: {log:?}"
    );
    let got = socks.counters();
    assert_eq!(got.tunnels, 2, "one per origin, reused: {got:?}");
    assert_eq!(got.targets.len(), 2, "{got:?}");
    assert_eq!(got.targets[0], format!("ip:{}", srv.addr()));
    let tls_port = srv.tls_addr().port();
    assert!(
        got.targets[1] == format!("ip:127.0.0.1:{tls_port}")
            || got.targets[1] == format!("ip:[::1]:{tls_port}"),
        "the client resolved localhost: {got:?}"
    );
    // A SOCKS5 tunnel carries whatever the origin speaks: h2c with prior knowledge too.
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(url.clone());
        c.http2.prior_knowledge = true;
    });
    let r = c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(socks.counters().tunnels, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_tries_the_next_address_when_the_proxy_cannot_reach_one() {
    let srv = server().await;
    let socks = TestSocks::start(None).await.unwrap();
    // Nothing listens on 127.0.0.2 at the server's port: the proxy answers "refused".
    let ips = ["127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap()];
    srv.dns().set("two.test", &ips, 30);
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5", None));
        c.dns.nameservers = vec![srv.dns().addr().to_string()];
        c.retry.max_attempts = 1;
    });
    let url = srv.url("/bytes/1").replace("127.0.0.1", "two.test");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let port = srv.addr().port();
    let got = socks.counters();
    assert_eq!(
        got.targets,
        vec![
            format!("ip:127.0.0.2:{port}"),
            format!("ip:127.0.0.1:{port}")
        ]
    );
    assert_eq!((got.failed, got.tunnels), (1, 1), "{got:?}");
}

/// RFC 1928 has no reply for "the name did not resolve": proxies answer 0x04 (host
/// unreachable, as this test proxy and Tor do) or 0x01 (general failure), the codes they also
/// send for an address they could not reach or any other failure. So a `socks5h` name the proxy
/// could not resolve stays `connect` (not `dns`), with the proxy's reply in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_socks5h_proxy_cannot_resolve_is_a_connect_error_naming_its_reply() {
    let srv = server().await;
    let socks = TestSocks::start(None).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5h", None));
    });
    let url = srv
        .url("/bytes/3")
        .replace("127.0.0.1", "unresolvable.wirecore.test");
    let e = c.get(&url).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(
        format!("{e:#}").contains("host unreachable (reply 4)"),
        "{e:#}"
    );
    assert!(socks.counters().failed >= 1);
    assert_eq!(srv.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5h_leaves_the_name_to_the_proxy() {
    let srv = server().await;
    // A name nothing resolves here: only the proxy (its fixed upstream) can reach it.
    let socks = TestSocks::start_to(None, Some(srv.addr())).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5h", None));
    });
    let url = srv
        .url("/bytes/3")
        .replace("127.0.0.1", "unresolvable.wirecore.test");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 3);
    let port = srv.addr().port();
    assert_eq!(
        socks.counters().targets,
        vec![format!("name:unresolvable.wirecore.test:{port}")]
    );
    // The same name through socks5:// is resolved by the client, and fails there.
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5", None));
    });
    let e = c.get(&url).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Dns, "{e}");
    assert_eq!(socks.counters().targets.len(), 1, "never asked the proxy");
    // TLS and h2 through a name the proxy resolves.
    let socks = TestSocks::start(None).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.https = Some(socks.url("socks5h", None));
    });
    let r = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(
        socks.counters().targets,
        vec![format!("name:localhost:{}", srv.tls_addr().port())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_user_and_password_and_clear_refusals() {
    let srv = server().await;
    let socks = TestSocks::start(Some("carol:p@ss")).await.unwrap();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5", Some("carol:p%40ss")));
        c.proxy.https = Some(socks.url("socks5h", Some("carol:p%40ss")));
    });
    assert_eq!(
        c.get(&srv.url("/bytes/1")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(&srv.tls_url("/bytes/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(socks.counters().tunnels, 2);
    for (userinfo, says) in [
        (
            Some("carol:wrong"),
            "refused the user name and password in the proxy URL",
        ),
        (
            None,
            "accepts none of the offered authentication methods: give user:password",
        ),
    ] {
        // Retries stay on (the default): a refusal of the credentials is not retried.
        let c = proxied(&srv, |c| {
            c.proxy.https = Some(socks.url("socks5", userinfo));
        });
        let before = socks.counters().rejected;
        let e = c.get(&srv.tls_url("/bytes/1")).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("socks5://{}", socks.addr())),
            "{e}"
        );
        assert_eq!(socks.counters().rejected, before + 1, "tried once");
    }
    assert_eq!(srv.counters().requests, 2, "only the authenticated ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_failures_are_connect_errors_naming_the_proxy() {
    let srv = server().await;
    let socks = TestSocks::start(None).await.unwrap();
    let (_refusing, closed) = refused_port();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(socks.url("socks5", None));
        c.retry.max_attempts = 1;
    });
    // The proxy cannot reach the target: its reply code is in the message.
    let e = c
        .get(&format!("http://127.0.0.1:{closed}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("connection refused (reply 5)")
            && msg.contains(&format!("127.0.0.1:{closed}")),
        "{msg}"
    );
    assert_eq!(socks.counters().failed, 1);
    // No proxy listening.
    let (_refusing_proxy, gone) = refused_port();
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(format!("socks5h://127.0.0.1:{gone}"));
        c.retry.max_attempts = 1;
    });
    let e = c.get(&srv.url("/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(
        e.to_string().contains(&format!(
            "cannot connect to proxy socks5h://127.0.0.1:{gone}"
        )),
        "{e}"
    );
    // An HTTP server is not a SOCKS5 proxy.
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(format!("socks5://{}", srv.addr()));
        c.retry.max_attempts = 1;
    });
    let e = c.get(&srv.url("/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("SOCKS5"), "{e}");
    // A proxy that never answers the handshake: the connect timeout covers it.
    let c = proxied(&srv, |c| {
        c.proxy.http = Some(format!("socks5://{}", srv.silent_addr()));
        c.timeouts.connect_ms = 200;
        c.retry.max_attempts = 1;
    });
    let e = c.get(&srv.url("/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimeoutConnect, "{e}");
}

/// Run by `environment_variables_are_honoured_and_can_be_switched_off` in a child process
/// whose environment it sets; asserts the status named by `WIRECORE_PROXY_CHILD_STATUS`.
const ENV_HOST: &str = "wirecore-proxy-env.test";

#[test]
#[ignore = "run in a child process by environment_variables_are_honoured_and_can_be_switched_off"]
fn env_child() {
    let url = std::env::var("WIRECORE_PROXY_CHILD_URL").expect("run by the parent test");
    let from_env = std::env::var("WIRECORE_PROXY_CHILD_FROM_ENV").as_deref() == Ok("1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = wirecore::Config::default();
        cfg.proxy.from_env = from_env;
        // A name that is not loopback (a proxy from the environment skips loopback), reached
        // directly through this override or through the proxy's fixed upstream.
        cfg.dns
            .overrides
            .insert(ENV_HOST.to_owned(), "127.0.0.1".to_owned());
        let c = wirecore::Client::from_config(cfg).unwrap();
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_are_honoured_and_can_be_switched_off() {
    let srv = server().await;
    let proxy = TestProxy::start_to(None, Some(srv.addr())).await.unwrap();
    let named = srv.url("/bytes/1").replace("127.0.0.1", ENV_HOST);
    let run = |url: &str, vars: Vec<(&'static str, String)>, from_env: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["env_child", "--exact", "--ignored", "--test-threads=1"]);
        for k in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("WIRECORE_PROXY_CHILD_URL", url);
        cmd.env(
            "WIRECORE_PROXY_CHILD_FROM_ENV",
            if from_env { "1" } else { "0" },
        );
        cmd.envs(vars);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let url = proxy.url(None);
    let run = |u: &str, v, e| tokio::task::block_in_place(|| run(u, v, e));
    run(&named, vec![("HTTP_PROXY", url.clone())], true);
    assert_eq!(proxy.counters().forwarded, 1, "HTTP_PROXY honoured");
    run(&named, vec![("http_proxy", url.clone())], true);
    assert_eq!(proxy.counters().forwarded, 2, "http_proxy honoured");
    run(
        &named,
        vec![("HTTP_PROXY", url.clone()), ("no_proxy", ".test".into())],
        true,
    );
    run(&named, vec![("HTTP_PROXY", url.clone())], false);
    assert_eq!(
        proxy.counters().forwarded,
        2,
        "NO_PROXY and from_env: false go direct"
    );
    // Loopback never goes through a proxy from the environment (as Go's net/http).
    for u in [
        srv.url("/bytes/1"),
        srv.url("/bytes/1").replace("127.0.0.1", "localhost"),
    ] {
        run(&u, vec![("HTTP_PROXY", url.clone())], true);
    }
    assert_eq!(proxy.counters().forwarded, 2, "loopback goes direct");
    // ALL_PROXY (here a SOCKS5 proxy) serves schemes without their own variable.
    let socks = TestSocks::start_to(None, Some(srv.addr())).await.unwrap();
    run(
        &named,
        vec![("ALL_PROXY", socks.url("socks5h", None))],
        true,
    );
    run(
        &named,
        vec![
            ("all_proxy", socks.url("socks5", None)),
            ("HTTP_PROXY", url.clone()),
        ],
        true,
    );
    assert_eq!(socks.counters().tunnels, 1, "ALL_PROXY honoured");
    assert_eq!(
        proxy.counters().forwarded,
        3,
        "HTTP_PROXY wins over ALL_PROXY"
    );
}

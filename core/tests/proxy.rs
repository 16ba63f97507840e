//! HTTP proxies against a real forwarding proxy on loopback (the test server's `TestProxy`):
//! absolute-form HTTP/1.1, `CONNECT` tunnels with TLS and h2 inside, proxy auth, `NO_PROXY`,
//! and the proxy environment variables (read in a child process, so no test races on the
//! process environment).

mod support;

use support::*;
use wirecore::ErrorKind;
use wirecore_testserver::TestProxy;

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
    let port = free_port();
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
        (r#"{"proxy":{"http":"socks5://h:1"}}"#, "proxy.http"),
        (r#"{"proxy":{"https":"http://h:1/path"}}"#, "proxy.https"),
        (r#"{"proxy":{"form_env":false}}"#, "form_env"),
    ] {
        let e = wirecore::Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(field), "{e}");
    }
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
}

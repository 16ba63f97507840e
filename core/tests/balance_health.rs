//! Passive outlier ejection, active health checks and the panic threshold of load-balanced
//! services, against several test servers; states are read from the client's stats.

#![allow(
    clippy::many_single_char_names,
    reason = "c, i, n, r, s read well in short test bodies"
)]

mod support;

use std::time::Duration;

use support::*;
use wirecore::config::{EndpointConfig, ServiceConfig, Strategy};
use wirecore::{Client, Config};

fn service(srvs: &[TestServer], f: impl FnOnce(&mut ServiceConfig)) -> Client {
    let mut svc = ServiceConfig {
        endpoints: srvs
            .iter()
            .map(|s| EndpointConfig {
                url: s.url(""),
                weight: 1,
            })
            .collect(),
        strategy: Strategy::RoundRobin,
        ..ServiceConfig::default()
    };
    f(&mut svc);
    let mut c = Config::default();
    c.services.insert("svc".into(), svc);
    Client::from_config(c).expect("client")
}

fn state(c: &Client, srv: &TestServer) -> String {
    c.stats().services["svc"].endpoints[&srv.url("")]
        .state
        .clone()
}

/// Requests for `path` the server received (health checks go to another path).
fn hits(srv: &TestServer, path: &str) -> usize {
    srv.requests().iter().filter(|r| r.path == path).count()
}

async fn get(c: &Client, path: &str) -> u16 {
    let r = c.get(&format!("http://svc{path}")).send().await.unwrap();
    let s = r.status().as_u16();
    r.bytes().await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_5xx_is_ejected_and_returns_after_the_ejection_time() {
    let srvs = plain_servers(3).await;
    srvs[0].script("/json", vec![Reply::status(503); 3]);
    let c = service(&srvs, |s| {
        s.outlier.consecutive_5xx = 3;
        s.outlier.base_ejection_ms = 2_000;
    });
    // Retries take every 503 to another endpoint: no request fails meanwhile.
    for _ in 0..30 {
        assert_eq!(get(&c, "/json").await, 200);
    }
    assert_eq!(
        hits(&srvs[0], "/json"),
        3,
        "the ejected endpoint kept getting requests"
    );
    let st = &c.stats().services["svc"];
    let ep = &st.endpoints[&srvs[0].url("")];
    assert_eq!((ep.ejections, ep.failures), (1, 3), "{st:?}");
    wait_until("the ejection ends", || state(&c, &srvs[0]) == "healthy").await;
    for _ in 0..6 {
        assert_eq!(get(&c, "/json").await, 200);
    }
    assert!(hits(&srvs[0], "/json") > 3, "the endpoint never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_success_rate_ejects_an_endpoint() {
    let srvs = plain_servers(3).await;
    let mut replies = Vec::new();
    for _ in 0..200 {
        replies.push(Reply::status(500));
        replies.push(Reply::status(200));
    }
    srvs[0].script("/json", replies);
    let c = service(&srvs, |s| {
        s.outlier.consecutive_5xx = 0;
        s.outlier.interval_ms = 300;
        s.outlier.success_rate_min_requests = 10;
        s.outlier.success_rate_min_endpoints = 3;
        s.outlier.success_rate_stdev_factor_percent = 100;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state(&c, &srvs[0]) != "ejected" {
        assert!(tokio::time::Instant::now() < deadline, "never ejected");
        let r = c.get("http://svc/json").send().await.unwrap();
        r.bytes().await.unwrap();
    }
    let st = &c.stats().services["svc"].endpoints;
    assert_eq!(st[&srvs[1].url("")].state, "healthy");
    assert_eq!(st[&srvs[2].url("")].state, "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_an_endpoint_down_and_up_and_stop_on_close() {
    let srvs = plain_servers(3).await;
    srvs[0].script("/status/200", vec![Reply::status(503); 1000]);
    let c = service(&srvs, |s| {
        let h = &mut s.health_check;
        h.enabled = true;
        h.path = "/status/200".into();
        h.interval_ms = 50;
        h.unhealthy_threshold = 2;
        h.healthy_threshold = 2;
    });
    wait_until("the failing endpoint is unhealthy", || {
        state(&c, &srvs[0]) == "unhealthy"
    })
    .await;
    for _ in 0..10 {
        assert_eq!(get(&c, "/json").await, 200);
    }
    assert_eq!(hits(&srvs[0], "/json"), 0);
    // Its checks pass again once the script is gone.
    srvs[0].reset();
    wait_until("the endpoint is healthy again", || {
        state(&c, &srvs[0]) == "healthy"
    })
    .await;
    for _ in 0..6 {
        assert_eq!(get(&c, "/json").await, 200);
    }
    assert!(hits(&srvs[0], "/json") > 0);
    let ep = &c.stats().services["svc"].endpoints[&srvs[0].url("")];
    assert!(ep.health_check_failures >= 2 && ep.health_checks > ep.health_check_failures);

    c.close(Duration::from_secs(1)).await;
    let seen = hits(&srvs[1], "/status/200");
    // Time passing is the behaviour: ten intervals without a check.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hits(&srvs[1], "/status/200") <= seen + 1, "checks went on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_panic_threshold_requests_use_every_endpoint() {
    for (panic, spread) in [(50, true), (0, false)] {
        let srvs = plain_servers(3).await;
        for s in &srvs[..2] {
            s.script("/status/200", vec![Reply::status(503); 1000]);
        }
        let c = service(&srvs, |s| {
            let h = &mut s.health_check;
            h.enabled = true;
            h.path = "/status/200".into();
            h.interval_ms = 50;
            h.unhealthy_threshold = 1;
            s.panic_threshold_percent = panic;
        });
        wait_until("two endpoints are unhealthy", || {
            state(&c, &srvs[0]) == "unhealthy" && state(&c, &srvs[1]) == "unhealthy"
        })
        .await;
        for _ in 0..30 {
            assert_eq!(get(&c, "/json").await, 200);
        }
        let got: Vec<usize> = srvs.iter().map(|s| hits(s, "/json")).collect();
        if spread {
            assert!(got.iter().all(|&n| n >= 5), "panic {panic}: {got:?}");
            assert!(c.stats().services["svc"].panic_picks >= 30);
        } else {
            assert_eq!(got, [0, 0, 30], "panic {panic}");
        }
    }
}

//! The engine's `tracing` events through the bridge's log queue (what every binding's logger
//! drains): nothing while off, then records with their fields once enabled, and nothing again
//! once turned off. One test: the collector is process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{Value, json};
use wirecore::{Client, Config, ErrorKind};
use wirecore_bridge::log::{LogRecord, enable, logs, parse_level};
use wirecore_testserver::{Options, Reply, TestServer};

fn drain() -> Vec<LogRecord> {
    logs().queue().take(usize::MAX)
}

/// The first record of `event` whose fields include every one of `want`'s.
fn find<'a>(got: &'a [LogRecord], event: &str, want: &Value) -> Option<&'a LogRecord> {
    got.iter().find(|r| {
        r.fields.get("event") == Some(&json!(event))
            && want
                .as_object()
                .is_some_and(|w| w.iter().all(|(k, v)| r.fields.get(k) == Some(v)))
    })
}

fn refused() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_events_reach_the_queue_only_while_enabled() {
    let srv = TestServer::start(Options {
        tls: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let origin = format!("http://{}", srv.addr());
    let mut cfg = Config::default();
    cfg.retry.max_attempts = 3;
    cfg.retry.backoff_base_ms = 1;
    cfg.retry.backoff_max_ms = 5;
    let c = Client::from_config(cfg).unwrap();

    // Off by default: a request leaves nothing.
    c.get(&srv.url("/bytes/1")).send().await.unwrap();
    assert!(drain().is_empty());
    assert!(parse_level("loud").unwrap_err().contains("log level"));

    let wakes = Arc::new(AtomicUsize::new(0));
    let counted = wakes.clone();
    enable(
        parse_level("debug").unwrap(),
        Some(Arc::new(move || {
            counted.fetch_add(1, Relaxed);
        })),
    )
    .unwrap();
    c.close_idle_connections();
    srv.script("/s/log", vec![Reply::status(503), Reply::status(200)]);
    let r = c.get(&srv.url("/s/log")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let r = c.get(&srv.url("/redirect/1")).send().await.unwrap();
    r.bytes().await.unwrap();
    let down = refused();
    let e = c.get(&format!("{down}/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    let mut cfg = Config::default();
    cfg.retry.enabled = false;
    cfg.breaker.enabled = true;
    cfg.breaker.consecutive_failures = 1;
    let breaking = Client::from_config(cfg).unwrap();
    breaking.get(&format!("{down}/")).send().await.unwrap_err();
    c.close_idle_connections();

    let mut got = Vec::new();
    for _ in 0..500 {
        got.extend(drain());
        if find(&got, "connection_evicted", &json!({ "origin": origin })).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let show: Vec<String> = got
        .iter()
        .map(|r| format!("{} {:?}", r.message, r.fields))
        .collect();
    let opened = find(
        &got,
        "connection_opened",
        &json!({ "origin": origin, "protocol": "h1" }),
    )
    .unwrap_or_else(|| panic!("no connection_opened in {show:#?}"));
    assert_eq!(
        (opened.level, opened.target),
        ("debug", "wirecore::pool::connect")
    );
    assert!(opened.time_ms > 1_700_000_000_000);
    let retry = json!({ "origin": origin, "attempt": 1, "reason": "status", "error_code": "status", "status": 503 });
    let r = find(&got, "retry", &retry).unwrap_or_else(|| panic!("no retry in {show:#?}"));
    assert_eq!(r.level, "info");
    assert!(
        r.fields["delay_ms"].as_u64().is_some_and(|d| d <= 5),
        "{:?}",
        r.fields
    );
    for attempt in [1, 2] {
        let want = json!({ "origin": down, "attempt": attempt, "reason": "unsent", "error_code": "connect" });
        assert!(
            find(&got, "retry", &want).is_some(),
            "retry {attempt}: {show:#?}"
        );
    }
    let want = json!({ "origin": down, "error_code": "connect" });
    assert!(find(&got, "connect_failed", &want).is_some(), "{show:#?}");
    let want = json!({ "origin": down, "from": "closed", "to": "open" });
    assert!(find(&got, "breaker_state", &want).is_some(), "{show:#?}");
    let want = json!({ "status": 302, "hop": 1 });
    assert!(find(&got, "redirect", &want).is_some(), "{show:#?}");
    let want = json!({ "origin": origin, "reason": "idle" });
    assert!(
        find(&got, "connection_evicted", &want).is_some(),
        "{show:#?}"
    );
    assert!(wakes.load(Relaxed) >= 1, "the host was woken");

    // Off again: nothing more is queued.
    enable(0, None).unwrap();
    drain();
    c.get(&srv.url("/bytes/1")).send().await.unwrap();
    c.close_idle_connections();
    assert!(drain().is_empty());
    assert_eq!(logs().dropped(), 0);
}

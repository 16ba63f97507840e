//! Dead letters against the test server and a real redis-server: the callback receives exactly
//! the requests that failed after every retry (not those a retry fixed), the Redis stream is
//! readable with XRANGE, and neither a slow callback nor a dead Redis holds a request up.

#![expect(
    clippy::many_single_char_names,
    reason = "c, e, p, r, s read well in short test bodies"
)]

mod support;

use std::sync::{Arc, Condvar, Mutex};

use support::*;
use wirecore::{Client, Config, DeadLetter};
use wirecore_testserver::Action;

fn retrying(c: &mut Config) {
    c.retry.max_attempts = 3;
    c.retry.backoff_base_ms = 1;
    c.retry.backoff_max_ms = 5;
}

fn collecting(srv: &TestServer) -> (Client, Arc<Mutex<Vec<DeadLetter>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let c = client_with(srv, retrying);
    let sink = got.clone();
    c.on_dead_letter(move |l| sink.lock().unwrap().push(l.clone()));
    (c, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_gets_exactly_the_requests_that_failed_after_retries() {
    let srv = server().await;
    let (c, got) = collecting(&srv);
    // Fixed by a retry: no letter.
    srv.script("/s/flaky", vec![Reply::status(503), Reply::status(200)]);
    let r = c.get(&srv.url("/s/flaky")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A status the policy retries, still there after 3 attempts.
    let r = c.get(&srv.url("/status/503")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    // A status it does not retry: an answer, not a failure.
    let r = c.get(&srv.url("/status/404")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // A POST cut off (not retried: not idempotent), with a body and credentials.
    srv.script(
        "/s/post",
        vec![Reply {
            action: Some(Action::Reset),
            ..Reply::default()
        }],
    );
    let e = c
        .post(&srv.url("/s/post"))
        .header("authorization", "Bearer secret")
        .header("x-trace", "t1")
        .body("payload")
        .send()
        .await
        .unwrap_err();
    // Nobody listening on this port: connect errors on every attempt.
    let (_refusing, port) = refused_port();
    let refused = format!("http://127.0.0.1:{port}/x");
    let e2 = c.get(&refused).send().await.unwrap_err();
    // Refused before any I/O: not a dead letter.
    assert!(c.get("ftp://x/").send().await.is_err());
    wait_until("three letters delivered", || {
        c.stats().dead_letter.delivered >= 3
    })
    .await;
    let letters = got.lock().unwrap().clone();
    assert_eq!(letters.len(), 3, "{letters:#?}");
    let by_url = |u: &str| letters.iter().find(|l| l.url == u).unwrap().clone();
    let s = by_url(&srv.url("/status/503"));
    assert_eq!(
        (
            s.method.as_str(),
            s.error_code.as_str(),
            s.status,
            s.attempts
        ),
        ("GET", "status", Some(503), 3)
    );
    let p = by_url(&srv.url("/s/post"));
    assert_eq!(p.method, "POST");
    assert_eq!(p.error_code, e.kind().code());
    assert_eq!(p.attempts, 1);
    assert_eq!(p.body.as_deref(), Some(&b"payload"[..]));
    assert!(
        p.headers.contains(&("x-trace".into(), "t1".into())),
        "{p:?}"
    );
    assert!(
        !p.headers.iter().any(|(k, _)| k == "authorization"),
        "credentials are left out: {p:?}"
    );
    let r = by_url(&refused);
    assert_eq!((r.error_code.as_str(), r.attempts), (e2.kind().code(), 3));
    assert!(r.time_ms > 1_700_000_000_000, "{r:?}");
    let d = c.stats().dead_letter;
    assert_eq!((d.delivered, d.dropped), (3, 0), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_callback_never_holds_a_request_and_a_full_queue_drops() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.retry.enabled = false;
        c.dead_letter.queue = 1;
    });
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    // The callback blocks until the test opens the gate.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let g = gate.clone();
    let entered_tx = Mutex::new(entered_tx);
    c.on_dead_letter(move |_| {
        let _ = entered_tx.lock().unwrap().send(());
        let (open, cv) = &*g;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    });
    let (_refusing, port) = refused_port();
    let url = format!("http://127.0.0.1:{port}/x");
    c.get(&url).send().await.unwrap_err();
    // The first letter is in the callback, which blocks; later requests still return.
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    for _ in 0..3 {
        c.get(&url).send().await.unwrap_err();
    }
    let d = c.stats().dead_letter;
    assert_eq!(d.dropped, 2, "one queued, two dropped: {d:?}");
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    wait_until("the queued letter delivered", || {
        c.stats().dead_letter.delivered == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_stream_is_readable_with_xrange() {
    let srv = server().await;
    let redis = start_redis();
    let c = client_with(&srv, |c| {
        retrying(c);
        c.dead_letter.redis.url = redis.url();
        c.dead_letter.redis.stream = "wc-test:dead".to_owned();
        c.dead_letter.redis.timeout_ms = 2_000;
    });
    let r = c
        .put(&srv.url("/status/503"))
        .header("cookie", "session=1")
        .body("body-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "PUT is idempotent: retried, then given up");
    c.get(&srv.url("/status/200")).send().await.unwrap();
    wait_until("the letter is in the stream", || {
        c.stats().dead_letter.streamed == 1
    })
    .await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg("wc-test:dead")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let field = |name: &str| {
        let v = &entries[0].1.iter().find(|(k, _)| k == name).unwrap().1;
        String::from_utf8(v.clone()).unwrap()
    };
    assert_eq!(field("method"), "PUT");
    assert_eq!(field("url"), srv.url("/status/503"));
    assert_eq!(field("body"), "body-1");
    assert_eq!(field("error_code"), "status");
    assert_eq!(field("status"), "503");
    assert_eq!(field("attempts"), "3");
    assert!(field("time_ms").parse::<u64>().unwrap() > 1_700_000_000_000);
    let headers: Vec<(String, String)> = serde_json::from_str(&field("headers")).unwrap();
    assert!(!headers.iter().any(|(k, _)| k == "cookie"), "{headers:?}");
    // Redis gone: letters are dropped and counted, requests go on.
    drop(redis);
    for _ in 0..2 {
        let r = c.get(&srv.url("/status/503")).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    wait_until("both letters dropped", || {
        c.stats().dead_letter.dropped == 2
    })
    .await;
    let d = c.stats().dead_letter;
    assert!(d.redis_errors >= 1, "{d:?}");
    assert_eq!(d.streamed, 1, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_streams_what_is_queued_then_releases_the_redis_connection() {
    let srv = server().await;
    let redis = start_redis();
    let c = client_with(&srv, |c| {
        retrying(c);
        c.dead_letter.redis.url = redis.url();
        c.dead_letter.redis.stream = "wc-test:dead-close".to_owned();
        c.dead_letter.redis.timeout_ms = 2_000;
    });
    let r = c.get(&srv.url("/status/503")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    wait_until("the letter is in the stream", || {
        c.stats().dead_letter.streamed == 1
    })
    .await;
    assert_eq!(
        redis.connected_clients(),
        2,
        "the stream's and this probe's"
    );
    // A letter still queued when the close begins goes out before the connection closes.
    let r = c.get(&srv.url("/status/503")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    c.close(std::time::Duration::from_secs(5)).await;
    let port = redis.port;
    wait_until("the closed client's stream connection is closed", || {
        Redis::clients_on(port) == 1
    })
    .await;
    let d = c.stats().dead_letter;
    assert_eq!((d.streamed, d.dropped), (2, 0), "{d:?}");
    drop(c);
}

/// An `XRANGE` entry: its id and its field-value pairs.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

#[test]
fn dead_letter_settings_are_checked_naming_the_field() {
    for (json, field) in [
        (
            r#"{"dead_letter": {"redis": {"url": "http://x"}}}"#,
            "dead_letter.redis.url",
        ),
        (
            r#"{"dead_letter": {"redis": {"stream": ""}}}"#,
            "dead_letter.redis.stream",
        ),
        (r#"{"dead_letter": {"queue": 0}}"#, "dead_letter.queue"),
        (
            r#"{"dead_letter": {"max_body_bytes": 16777217}}"#,
            "dead_letter.max_body_bytes",
        ),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert!(e.to_string().contains(field), "{json}: {e}");
    }
}

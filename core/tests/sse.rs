//! Server-Sent Events over real responses: events across reconnections with `Last-Event-ID`,
//! the server's `retry:` honoured, a broken connection resumed, 204 and the reconnection bound
//! ending the stream, a non-`GET` never reconnected, a bad reconnection answer failing it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::*;
use wirecore::sse::{Event, EventStream, Options};
use wirecore::{ErrorKind, Method};

/// A reconnection delay no test may wait for: the server's `retry:` must be what is used.
fn slow_default() -> Options {
    let mut o = Options::default();
    o.retry = Duration::from_hours(1);
    o
}

/// Every event until the end (bounded: 60 s, 100 events).
async fn collect(mut s: EventStream) -> (Vec<Event>, Option<wirecore::Error>) {
    let mut out = Vec::new();
    let run = async {
        while out.len() < 100 {
            match s.next().await {
                Ok(Some(e)) => out.push(e),
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
        panic!("more than 100 events");
    };
    let err = tokio::time::timeout(Duration::from_mins(1), run)
        .await
        .expect("the stream never ended (was retry: honoured?)");
    (out, err)
}

fn n_of(e: &Event) -> u64 {
    let v: Value = serde_json::from_str(&e.data).unwrap();
    v["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_with_last_event_id_after_the_servers_retry() {
    let srv = server().await;
    let client = client(&srv);
    for cut in [0, 1] {
        srv.reset();
        let url = srv.url(&format!("/sse?events=2&total=5&retry=10&cut={cut}"));
        let resp = client.get(&url).send().await.unwrap();
        let stream = resp.events().options(slow_default());
        assert!(stream.reconnects());
        let (events, err) = collect(stream).await;
        assert!(err.is_none(), "cut={cut}: {err:?}");
        let ns: Vec<u64> = events.iter().map(n_of).collect();
        assert_eq!(ns, [0, 1, 2, 3, 4], "cut={cut}");
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4"]);
        // Each reconnection sent the last id seen.
        let resumed: Vec<Value> = events
            .iter()
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["last_event_id"].clone())
            .collect();
        assert_eq!(
            resumed,
            [Value::Null, Value::Null, "1".into(), "1".into(), "3".into()]
        );
        // Three connections with events, then the 204 that ends the stream.
        assert_eq!(srv.counters().requests, 4, "cut={cut}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnections_without_events_are_bounded() {
    let srv = server().await;
    let client = client(&srv);
    let resp = client
        .get(&srv.url("/sse?events=0&retry=5"))
        .send()
        .await
        .unwrap();
    let mut o = slow_default();
    o.max_reconnects = 2;
    let (events, err) = collect(resp.events().options(o)).await;
    assert!(events.is_empty() && err.is_none(), "{events:?} {err:?}");
    assert_eq!(srv.counters().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_stream_is_never_reconnected() {
    let srv = server().await;
    let client = client(&srv);
    let resp = client
        .request(Method::POST, &srv.url("/sse?events=2&retry=5"))
        .body("q")
        .send()
        .await
        .unwrap();
    let stream = resp.events();
    assert!(!stream.reconnects());
    let (events, err) = collect(stream).await;
    assert_eq!((events.len(), err.is_none()), (2, true));
    assert_eq!(srv.counters().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnection_answered_otherwise_fails_the_stream() {
    let srv = server().await;
    let client = client(&srv);
    let mut sse = Reply {
        body: Some("retry: 5\nid: 9\ndata: a\n\n".into()),
        headers: BTreeMap::from([("content-type".into(), "text/event-stream".into())]),
        ..Reply::default()
    };
    sse.status = 200;
    srv.script("/s/events", vec![sse, Reply::status(500)]);
    let resp = client.get(&srv.url("/s/events")).send().await.unwrap();
    let (events, err) = collect(resp.events().options(slow_default())).await;
    assert_eq!(events.len(), 1);
    let e = err.expect("an error");
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains("status 500"), "{e}");
    let seen = srv.requests();
    let last = seen.last().unwrap();
    assert_eq!(
        last.headers.get("last-event-id").map(String::as_str),
        Some("9")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_fails_with_decode() {
    let srv = server().await;
    let client = client(&srv);
    let resp = client
        .request(Method::POST, &srv.url("/sse?events=3"))
        .send()
        .await
        .unwrap();
    let mut o = Options::default();
    o.max_event_bytes = 8;
    let (events, err) = collect(resp.events().options(o)).await;
    assert!(events.is_empty());
    assert_eq!(err.unwrap().kind(), ErrorKind::Decode);
}

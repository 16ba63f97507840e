//! OpenTelemetry against the test server's OTLP/HTTP receiver (`POST /v1/traces`,
//! `/v1/metrics`): one client span per request with the HTTP client semantic conventions'
//! attributes, its `traceparent` on the wire under the caller's parent, `error.type` on a
//! failure, `http.request.resend_count` on retries, and the `http.client.request.duration`
//! histogram. Off, the caller's `traceparent` is sent unchanged and nothing is exported.

mod support;

use serde_json::Value;
use support::*;
use wirecore::{Client, Config, ErrorKind};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced(srv: &TestServer) -> Client {
    client_with(srv, |c| {
        c.otel.enabled = true;
        c.otel.endpoint = srv.url("");
        c.otel.service_name = "otel-test".into();
        // Exports go on flush or close only, so the server counts nothing else meanwhile.
        c.otel.export_interval_ms = 600_000;
        c.retry.backoff_base_ms = 1;
        c.retry.backoff_max_ms = 2;
    })
}

/// Every span the receiver got, over every export.
fn spans(srv: &TestServer) -> Vec<Value> {
    exports(srv, "/v1/traces")
        .iter()
        .flat_map(|b| {
            assert_eq!(
                attr(&b["resourceSpans"][0]["resource"], "service.name"),
                Value::from("otel-test")
            );
            b["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn exports(srv: &TestServer, path: &str) -> Vec<Value> {
    srv.otlp()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == path)
        .map(|e| e["body"].clone())
        .collect()
}

/// An attribute's value (`stringValue` or `intValue`, the latter a string as OTLP JSON has
/// it), or null when the attribute is absent.
fn attr(item: &Value, key: &str) -> Value {
    item["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map_or(Value::Null, |kv| {
            let v = &kv["value"];
            if v["stringValue"].is_string() {
                v["stringValue"].clone()
            } else {
                v["intValue"].clone()
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_follows_the_conventions_under_the_callers_traceparent() {
    let srv = server().await;
    let c = traced(&srv);
    let url = srv.url("/echo?x=1&Signature=secret");
    let r = c
        .get(&url)
        .trace_context(TP, "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    let sent = echo["headers"]["traceparent"].as_str().unwrap().to_owned();
    assert_eq!(echo["headers"]["tracestate"], "congo=t61rcWkgMzE");
    // Same trace, this client's own span id, sampled.
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"));
    assert_ne!(parts[2], PARENT);
    c.flush_telemetry().await;
    let s = spans(&srv);
    assert_eq!(s.len(), 1, "one span per request: {s:?}");
    let s = &s[0];
    assert_eq!(s["traceId"], TRACE);
    assert_eq!(s["spanId"], parts[2]);
    assert_eq!(s["parentSpanId"], PARENT);
    assert_eq!(s["traceState"], "congo=t61rcWkgMzE");
    assert_eq!(s["name"], "GET");
    assert_eq!(s["kind"], 3);
    assert!(s.get("status").is_none(), "{s}");
    let port = srv.addr().port().to_string();
    assert_eq!(attr(s, "http.request.method"), "GET");
    assert_eq!(attr(s, "server.address"), "127.0.0.1");
    assert_eq!(attr(s, "server.port"), Value::from(port.as_str()));
    assert_eq!(
        attr(s, "url.full"),
        Value::from(srv.url("/echo?x=1&Signature=REDACTED"))
    );
    assert_eq!(attr(s, "http.response.status_code"), "200");
    assert_eq!(attr(s, "network.protocol.version"), "1.1");
    assert_eq!(attr(s, "error.type"), Value::Null);
    assert_eq!(attr(s, "http.request.resend_count"), Value::Null);
    let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 1_600_000_000_000_000_000 && end >= start, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_an_error_span_typed_by_the_error_code() {
    let srv = server().await;
    let c = traced(&srv);
    let (_refusing, port) = refused_port();
    let e = c
        .get(&format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    c.flush_telemetry().await;
    let s = spans(&srv);
    assert_eq!(s.len(), 1, "{s:?}");
    let s = &s[0];
    assert_eq!(attr(s, "error.type"), "connect");
    assert_eq!(s["status"]["code"], 2);
    assert_eq!(attr(s, "http.response.status_code"), Value::Null);
    assert_eq!(attr(s, "server.port"), Value::from(port.to_string()));
    // No parent: a new trace.
    assert!(s.get("parentSpanId").is_none(), "{s}");
    let trace = s["traceId"].as_str().unwrap();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, "0".repeat(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_one_span_with_the_resend_count() {
    let srv = server().await;
    let c = traced(&srv);
    srv.script(
        "/s/flaky",
        vec![Reply::status(503), Reply::status(503), Reply::status(200)],
    );
    let r = c.get(&srv.url("/s/flaky")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(srv.counters().requests, 3);
    let r = c.get(&srv.url("/status/404")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // close() exports what is left.
    c.close(std::time::Duration::from_secs(10)).await;
    let s = spans(&srv);
    assert_eq!(s.len(), 2, "one span per logical request: {s:?}");
    let flaky = s
        .iter()
        .find(|s| attr(s, "url.full") == srv.url("/s/flaky").as_str());
    let flaky = flaky.expect("the retried request's span");
    assert_eq!(attr(flaky, "http.request.resend_count"), "2");
    assert_eq!(attr(flaky, "http.response.status_code"), "200");
    assert!(flaky.get("status").is_none());
    let nf = s
        .iter()
        .find(|s| attr(s, "url.full") == srv.url("/status/404").as_str());
    let nf = nf.expect("the 404's span");
    assert_eq!(attr(nf, "error.type"), "404");
    assert_eq!(nf["status"]["code"], 2);
    assert_eq!(attr(nf, "http.request.resend_count"), Value::Null);
    // Each try carried the one span's context: the server saw one traceparent three times.
    let sent: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.path == "/s/flaky")
        .map(|r| r.headers["traceparent"].clone())
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|t| t.contains(flaky["spanId"].as_str().unwrap())),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_histogram_is_exported_with_the_convention_attributes() {
    let srv = server().await;
    let c = traced(&srv);
    for _ in 0..3 {
        c.get(&srv.url("/bytes/10"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    c.get(&srv.url("/status/500")).send().await.unwrap();
    c.flush_telemetry().await;
    let m = exports(&srv, "/v1/metrics");
    let last = m.last().expect("a metrics export");
    let metric = &last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(metric["name"], "http.client.request.duration");
    assert_eq!(metric["unit"], "s");
    assert_eq!(metric["histogram"]["aggregationTemporality"], 2);
    let points = metric["histogram"]["dataPoints"].as_array().unwrap();
    let ok = points
        .iter()
        .find(|p| attr(p, "http.response.status_code") == "200")
        .expect("the 200 series");
    assert_eq!(ok["count"], "3");
    assert_eq!(attr(ok, "http.request.method"), "GET");
    assert_eq!(attr(ok, "server.address"), "127.0.0.1");
    assert_eq!(attr(ok, "url.scheme"), "http");
    assert_eq!(attr(ok, "network.protocol.version"), "1.1");
    assert_eq!(attr(ok, "error.type"), Value::Null);
    assert_eq!(ok["explicitBounds"].as_array().unwrap().len(), 14);
    let buckets: u64 = ok["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(buckets, 3);
    let err = points
        .iter()
        .find(|p| attr(p, "http.response.status_code") == "500")
        .expect("the 500 series");
    assert_eq!(attr(err, "error.type"), "500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_the_callers_traceparent_goes_out_unchanged_and_nothing_is_exported() {
    let srv = server().await;
    let c = client_with(&srv, |c| c.otel.endpoint = srv.url(""));
    let r = c
        .get(&srv.url("/echo"))
        .trace_context(TP, "")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["traceparent"], TP);
    assert!(echo["headers"].get("tracestate").is_none());
    // Without the option, nothing is added.
    let r = c.get(&srv.url("/echo")).send().await.unwrap();
    let echo: Value = r.json().await.unwrap();
    assert!(echo["headers"].get("traceparent").is_none(), "{echo}");
    c.flush_telemetry().await;
    c.close(std::time::Duration::from_secs(5)).await;
    assert_eq!(srv.otlp(), Value::Array(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_parent_is_propagated_without_a_span() {
    let srv = server().await;
    let c = traced(&srv);
    let unsampled = TP.replace("-01", "-00");
    let r = c
        .get(&srv.url("/echo"))
        .trace_context(&unsampled, "")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["traceparent"], unsampled.as_str());
    c.flush_telemetry().await;
    assert!(spans(&srv).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_header_set_by_the_caller_is_the_parent() {
    let srv = server().await;
    let c = traced(&srv);
    let r = c
        .get(&srv.url("/echo"))
        .header("traceparent", TP)
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    let sent = echo["headers"]["traceparent"].as_str().unwrap().to_owned();
    assert!(
        sent.starts_with(&format!("00-{TRACE}-")) && !sent.contains(PARENT),
        "{sent}"
    );
    c.flush_telemetry().await;
    let s = spans(&srv);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["parentSpanId"], PARENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_traceparent_is_refused_before_any_io() {
    let srv = server().await;
    let c = traced(&srv);
    for (tp, ts) in [("00-xyz", ""), (TP, "Bad Key=1")] {
        let e = c
            .get(&srv.url("/echo"))
            .trace_context(tp, ts)
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    }
    assert_eq!(srv.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_no_time_left_still_exports_the_last_spans() {
    let srv = server().await;
    let c = traced(&srv);
    for _ in 0..5 {
        c.get(&srv.url("/bytes/10"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    // A deadline already spent: the export still gets its bounded time before close returns.
    c.close(std::time::Duration::ZERO).await;
    assert_eq!(spans(&srv).len(), 5);
    let s = c.stats().otel;
    assert_eq!((s.exported, s.dropped), (5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_a_collector_does_not_take_are_counted_dropped() {
    let srv = server().await;
    // Nobody listens at the endpoint: every export is refused.
    let (_refusing, port) = refused_port();
    let c = client_with(&srv, |c| {
        c.otel.enabled = true;
        c.otel.endpoint = format!("http://127.0.0.1:{port}");
        c.otel.export_interval_ms = 600_000;
    });
    for _ in 0..3 {
        c.get(&srv.url("/status/204")).send().await.unwrap();
    }
    assert_eq!(c.stats().otel, wirecore::metrics::OtelStats::default());
    c.flush_telemetry().await;
    let s = c.stats().otel;
    assert_eq!((s.exported, s.dropped), (0, 3));
    assert_eq!(c.telemetry_dropped(), 3);
    assert!(
        c.prometheus()
            .contains("wirecore_otel_spans_total{result=\"dropped\"} 3"),
        "{}",
        c.prometheus()
    );
    // The collector back: the next spans go out and count as exported.
    let srv_client = traced(&srv);
    srv_client
        .get(&srv.url("/status/204"))
        .send()
        .await
        .unwrap();
    srv_client.flush_telemetry().await;
    assert_eq!(srv_client.stats().otel.exported, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_beyond_a_full_queue_are_counted_dropped() {
    use tokio::io::AsyncReadExt as _;
    let srv = server().await;
    // A collector that takes the connection and the export and never answers: the export task
    // waits on it (up to its 10 s timeout) while the queue of 2 fills.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let c = client_with(&srv, |c| {
        c.otel.enabled = true;
        c.otel.endpoint = endpoint;
        c.otel.export_interval_ms = 600_000;
        c.otel.max_queue = 2;
        c.otel.metrics = false;
    });
    c.get(&srv.url("/status/204")).send().await.unwrap();
    let flushing = tokio::spawn({
        let c = c.clone();
        async move { c.flush_telemetry().await }
    });
    let (mut conn, _) = collector.accept().await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        conn.read(&mut buf).await.unwrap() > 0,
        "the export's request"
    );
    for _ in 0..5 {
        c.get(&srv.url("/status/204")).send().await.unwrap();
    }
    // Two wait in the queue, three found it full.
    assert_eq!(c.stats().otel.dropped, 3);
    flushing.abort();
}

#[test]
fn otel_config_is_checked_naming_the_field() {
    for (json, field) in [
        (r#"{"otel":{"endpoint":"ftp://x"}}"#, "otel.endpoint"),
        (r#"{"otel":{"endpoint":"http://x/?q"}}"#, "otel.endpoint"),
        (
            r#"{"otel":{"export_interval_ms":0}}"#,
            "otel.export_interval_ms",
        ),
        (r#"{"otel":{"max_queue":0}}"#, "otel.max_queue"),
        (
            r#"{"otel":{"headers":{"bad key":"v"}}}"#,
            "otel.headers.bad key",
        ),
        (r#"{"otel":{"service_name":""}}"#, "otel.service_name"),
        (r#"{"otel":{"sample":1}}"#, "otel"),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert!(e.to_string().contains(field), "{json}: {e}");
    }
    let c = Config::from_json(r#"{"otel":{"enabled":true,"endpoint":"http://127.0.0.1:4318"}}"#)
        .unwrap();
    assert!(c.otel.enabled && c.otel.metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_callers_current_opentelemetry_context_is_the_parent() {
    use opentelemetry::context::FutureExt as _;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    let srv = server().await;
    let c = traced(&srv);
    let sc = SpanContext::new(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(PARENT).unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("rojo", "1")]).unwrap(),
    );
    let cx = opentelemetry::Context::current().with_remote_span_context(sc);
    let r = c
        .get(&srv.url("/echo"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    let sent = echo["headers"]["traceparent"].as_str().unwrap().to_owned();
    assert!(sent.starts_with(&format!("00-{TRACE}-")), "{sent}");
    assert_eq!(echo["headers"]["tracestate"], "rojo=1");
    c.flush_telemetry().await;
    let s = spans(&srv);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["parentSpanId"], PARENT);
    // An explicit option wins over the current context.
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = c
        .get(&srv.url("/echo"))
        .trace_context(other, "")
        .send()
        .with_context(cx)
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert!(
        echo["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-")
    );
}

/// The cost of tracing per request, side by side in one process: sequential keep-alive GETs of
/// 10 bytes over loopback, rounds alternating off / on without an endpoint (spans made and
/// `traceparent` sent, nothing exported) / on with the OTLP export. A benchmark, not a test:
/// `cargo test --release -p wirecore --test otel -- --ignored --nocapture tracing_cost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand in release"]
async fn tracing_cost_per_request() {
    const N: u32 = 2_000;
    let srv = server().await;
    let clients = [
        ("off", client(&srv)),
        (
            "on, no export",
            client_with(&srv, |c| c.otel.enabled = true),
        ),
        (
            "on, OTLP export",
            client_with(&srv, |c| {
                c.otel.enabled = true;
                c.otel.endpoint = srv.url("");
                c.otel.export_interval_ms = 1_000;
                c.otel.max_queue = 100_000;
            }),
        ),
    ];
    let url = srv.url("/bytes/10");
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    for round in 0..11 {
        for (i, (_, c)) in clients.iter().enumerate() {
            let t = tokio::time::Instant::now();
            for _ in 0..N {
                c.get(&url).send().await.unwrap().bytes().await.unwrap();
            }
            // The first round warms connections and caches up.
            if round > 0 {
                per[i].push(t.elapsed().as_nanos() as f64 / f64::from(N));
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut per[0].clone());
    for (i, (name, c)) in clients.iter().enumerate() {
        let m = median(&mut per[i]);
        println!(
            "{name:16} {m:>9.0} ns/request  {:.3}x off  (dropped spans: {})",
            m / base,
            c.telemetry_dropped()
        );
    }
}

/// A closed client still held (not yet collected in a GC'd binding) ends its exporter task and
/// the exporter's own client at close, not when it is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_exporter_before_the_client_is_dropped() {
    let srv = server().await;
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    srv.wait_for(std::time::Duration::from_secs(5), |k| {
        k.connections_active == 0
    })
    .await;
    let base = alive();
    let c = traced(&srv);
    c.get(&srv.url("/bytes/10"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    c.close(std::time::Duration::from_secs(5)).await;
    assert_eq!(spans(&srv).len(), 1);
    srv.wait_for(std::time::Duration::from_secs(5), |k| {
        k.connections_active == 0
    })
    .await;
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive() > base && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alive(), base, "tasks alive after close, the client held");
    let s = c.stats().otel;
    assert_eq!((s.exported, s.dropped), (1, 0));
    let e = c.get(&srv.url("/bytes/10")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
}

/// A client whose spans go to a callback only (no collector), collected in `got`.
fn with_callback(
    srv: &TestServer,
    queue: u64,
) -> (
    Client,
    std::sync::Arc<std::sync::Mutex<Vec<wirecore::SpanRecord>>>,
) {
    let c = client_with(srv, |c| {
        c.otel.enabled = true;
        c.otel.callback_queue = queue;
    });
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    c.on_span(move |s| sink.lock().unwrap().push(s.clone()))
        .unwrap();
    (c, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_span_callback_gets_the_record_under_the_callers_traceparent() {
    use wirecore::SpanValue::{Int, String as Str};
    let srv = server().await;
    let (c, got) = with_callback(&srv, 16);
    let r = c
        .get(&srv.url("/echo?Signature=secret"))
        .trace_context(TP, "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    let sent = echo["headers"]["traceparent"].as_str().unwrap().to_owned();
    c.flush_telemetry().await;
    let spans = got.lock().unwrap().clone();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let s = &spans[0];
    assert_eq!(sent, format!("00-{TRACE}-{}-01", s.span_id));
    assert_eq!(s.trace_id, TRACE);
    assert_eq!(s.parent_span_id.as_deref(), Some(PARENT));
    assert_eq!(s.trace_state.as_deref(), Some("congo=t61rcWkgMzE"));
    assert_eq!(
        (s.name.as_str(), s.kind, s.status),
        ("GET", "client", "unset")
    );
    assert!(
        s.start_unix_nanos > 1_600_000_000_000_000_000 && s.end_unix_nanos >= s.start_unix_nanos
    );
    let attrs = &s.attributes;
    assert_eq!(attrs["http.request.method"], Str("GET".into()));
    assert_eq!(attrs["server.address"], Str("127.0.0.1".into()));
    assert_eq!(attrs["server.port"], Int(srv.addr().port().into()));
    assert_eq!(attrs["http.response.status_code"], Int(200));
    assert_eq!(attrs["url.full"], Str(srv.url("/echo?Signature=REDACTED")));
    assert!(!attrs.contains_key("error.type"), "{attrs:?}");
    // The JSON every other binding reads.
    let json: Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(json["parent_span_id"], PARENT);
    assert_eq!(json["attributes"]["http.response.status_code"], 200);
    assert_eq!(json["start_unix_nanos"], s.start_unix_nanos);
    assert_eq!(
        c.stats().otel,
        wirecore::metrics::OtelStats {
            exported: 1,
            dropped: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_an_error_span_at_the_callback() {
    let srv = server().await;
    let (c, got) = with_callback(&srv, 16);
    let (_refusing, port) = refused_port();
    let url = format!("http://127.0.0.1:{port}/x");
    assert_eq!(
        c.get(&url).send().await.unwrap_err().kind(),
        ErrorKind::Connect
    );
    c.get(&srv.url("/status/503")).send().await.unwrap();
    c.flush_telemetry().await;
    let spans = got.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let j: Value = serde_json::from_str(&spans[0].to_json()).unwrap();
    assert_eq!(j["status"], "error");
    assert_ne!(j["status_message"], "");
    assert_eq!(j["attributes"]["error.type"], "connect");
    assert_eq!(j["attributes"]["server.port"], port);
    assert_eq!(j["parent_span_id"], Value::Null);
    let j: Value = serde_json::from_str(&spans[1].to_json()).unwrap();
    assert_eq!(
        (j["status"].as_str(), j["status_message"].as_str()),
        (Some("error"), Some(""))
    );
    assert_eq!(j["attributes"]["error.type"], "503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_callback_drops_spans_beyond_its_queue_and_close_delivers_the_rest() {
    use std::sync::mpsc;
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.otel.enabled = true;
        c.otel.callback_queue = 2;
    });
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    c.on_span(move |s| {
        let _ = entered_tx.send(());
        // The first span holds the callback until the test releases it; a panic is caught.
        let _ = released.lock().unwrap().recv();
        assert_ne!(s.attributes.len(), 0);
        sink.lock().unwrap().push(s.span_id.clone());
    })
    .unwrap();
    c.get(&srv.url("/status/204")).send().await.unwrap();
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    // The callback is stuck in the first span: two wait in the queue, three find it full, and
    // every request still completes.
    for _ in 0..5 {
        c.get(&srv.url("/status/204")).send().await.unwrap();
    }
    assert_eq!(c.stats().otel.dropped, 3);
    drop(release);
    c.close(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        got.lock().unwrap().len(),
        3,
        "close delivered the queued spans"
    );
    assert_eq!(
        c.stats().otel,
        wirecore::metrics::OtelStats {
            exported: 3,
            dropped: 3
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_callback_counts_the_span_dropped_and_keeps_delivering() {
    let srv = server().await;
    let c = client_with(&srv, |c| c.otel.enabled = true);
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = n.clone();
    c.on_span(move |_| {
        assert!(
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0,
            "first span"
        );
    })
    .unwrap();
    for _ in 0..3 {
        c.get(&srv.url("/status/204")).send().await.unwrap();
    }
    c.flush_telemetry().await;
    assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(
        c.stats().otel,
        wirecore::metrics::OtelStats {
            exported: 2,
            dropped: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_callback_needs_otel_enabled() {
    let srv = server().await;
    let c = client_with(&srv, |_| {});
    let e = c.on_span(|_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("otel.enabled"), "{e}");
    let e = Client::builder().on_span(|_| {}).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let got = std::sync::Arc::new(std::sync::Mutex::new(0));
    let sink = got.clone();
    let mut cfg = Config::default();
    cfg.otel.enabled = true;
    let c = Client::builder()
        .config(cfg)
        .on_span(move |_| *sink.lock().unwrap() += 1)
        .build()
        .unwrap();
    c.get(&srv.url("/status/204")).send().await.unwrap();
    c.flush_telemetry().await;
    assert_eq!(*got.lock().unwrap(), 1);
}

/// A minimal application `TracerProvider` (what `opentelemetry_sdk` would be), recording the
/// spans it ends.
mod app {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use opentelemetry::trace::{
        self, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
        TraceState,
    };
    use opentelemetry::{Context, InstrumentationScope, KeyValue};

    #[derive(Debug)]
    pub struct Ended {
        pub name: String,
        pub kind: Option<SpanKind>,
        pub scope: String,
        pub parent: Option<SpanContext>,
        pub context: SpanContext,
        pub attributes: Vec<KeyValue>,
        pub status: Status,
        pub start: Option<SystemTime>,
        pub end: SystemTime,
    }

    #[derive(Clone, Default)]
    pub struct Provider(pub Arc<Mutex<Vec<Ended>>>);

    pub struct Tracer(Arc<Mutex<Vec<Ended>>>, String);

    pub struct Span {
        ended: Arc<Mutex<Vec<Ended>>>,
        data: Option<Ended>,
    }

    static IDS: AtomicU64 = AtomicU64::new(0xabc0);

    impl trace::TracerProvider for Provider {
        type Tracer = Tracer;
        fn tracer_with_scope(&self, scope: InstrumentationScope) -> Tracer {
            Tracer(self.0.clone(), scope.name().to_owned())
        }
    }

    impl trace::Tracer for Tracer {
        type Span = Span;
        fn build_with_context(&self, b: trace::SpanBuilder, cx: &Context) -> Span {
            let p = cx.span().span_context().clone();
            let parent = p.is_valid().then_some(p);
            let trace_id = parent
                .as_ref()
                .map_or(TraceId::from(0x1234_u128), SpanContext::trace_id);
            let id = SpanId::from(IDS.fetch_add(1, Ordering::Relaxed));
            Span {
                ended: self.0.clone(),
                data: Some(Ended {
                    name: b.name.into_owned(),
                    kind: b.span_kind,
                    scope: self.1.clone(),
                    context: SpanContext::new(
                        trace_id,
                        id,
                        TraceFlags::SAMPLED,
                        false,
                        TraceState::NONE,
                    ),
                    parent,
                    attributes: Vec::new(),
                    status: Status::Unset,
                    start: b.start_time,
                    end: SystemTime::UNIX_EPOCH,
                }),
            }
        }
    }

    impl trace::Span for Span {
        fn add_event_with_timestamp<T>(&mut self, _: T, _: SystemTime, _: Vec<KeyValue>)
        where
            T: Into<std::borrow::Cow<'static, str>>,
        {
        }
        fn span_context(&self) -> &SpanContext {
            &self.data.as_ref().unwrap().context
        }
        fn is_recording(&self) -> bool {
            self.data.is_some()
        }
        fn set_attribute(&mut self, a: KeyValue) {
            self.data.as_mut().unwrap().attributes.push(a);
        }
        fn set_status(&mut self, s: Status) {
            self.data.as_mut().unwrap().status = s;
        }
        fn update_name<T>(&mut self, _: T)
        where
            T: Into<std::borrow::Cow<'static, str>>,
        {
        }
        fn add_link(&mut self, _: SpanContext, _: Vec<KeyValue>) {}
        fn end_with_timestamp(&mut self, at: SystemTime) {
            if let Some(mut d) = self.data.take() {
                d.end = at;
                self.ended.lock().unwrap().push(d);
            }
        }
    }

    impl Ended {
        pub fn attr(&self, key: &str) -> Option<String> {
            self.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_tracer_provider_gets_the_span_whose_ids_go_on_the_wire() {
    use opentelemetry::trace::{SpanKind, Status};
    let srv = server().await;
    let provider = app::Provider::default();
    let mut cfg = support::config(&srv);
    cfg.otel.enabled = true;
    let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = records.clone();
    let c = Client::builder()
        .config(cfg)
        .tracer_provider(&provider)
        .on_span(move |s| sink.lock().unwrap().push(s.clone()))
        .build()
        .unwrap();
    let r = c
        .get(&srv.url("/echo"))
        .trace_context(TP, "")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    let (_refusing, port) = refused_port();
    let e = c
        .get(&format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    c.flush_telemetry().await;
    let ended = provider.0.lock().unwrap();
    assert_eq!(ended.len(), 2, "{ended:?}");
    let (ok, failed) = (&ended[0], &ended[1]);
    assert_eq!(
        (ok.name.as_str(), ok.kind.clone(), ok.scope.as_str()),
        ("GET", Some(SpanKind::Client), "wirecore")
    );
    let parent = ok.parent.as_ref().expect("the caller's parent");
    assert_eq!(
        (
            parent.trace_id().to_string(),
            parent.span_id().to_string(),
            parent.is_remote()
        ),
        (TRACE.to_owned(), PARENT.to_owned(), true)
    );
    // The app's span is the one on the wire and in the engine's own record.
    let sent = format!("00-{TRACE}-{}-01", ok.context.span_id());
    assert_eq!(echo["headers"]["traceparent"], sent.as_str());
    let recs = records.lock().unwrap();
    assert_eq!(recs[0].span_id, ok.context.span_id().to_string());
    assert_eq!(recs[1].span_id, failed.context.span_id().to_string());
    assert_eq!(ok.attr("http.request.method").as_deref(), Some("GET"));
    assert_eq!(ok.attr("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(ok.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(ok.status, Status::Unset);
    assert!(ok.start.unwrap() <= ok.end, "{ok:?}");
    assert!(failed.parent.is_none(), "{failed:?}");
    assert_eq!(failed.attr("error.type").as_deref(), Some("connect"));
    assert!(matches!(failed.status, Status::Error { .. }), "{failed:?}");
    drop((ended, recs));
    // With tracing off there is no span to hand over.
    let e = support::client_with(&srv, |_| {})
        .set_tracer_provider(&provider)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

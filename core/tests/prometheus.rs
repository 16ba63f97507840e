//! The Prometheus text of a known set of requests, compared with core/tests/golden/prometheus.txt.
//! A renamed metric, a changed label or TYPE line fails here; dashboards depend on them.
//! `WIRECORE_BLESS=1 cargo test -p wirecore --test prometheus` rewrites the golden file.

mod support;

use std::collections::BTreeMap;

use support::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/prometheus.txt");

/// Replaces what differs from run to run: the ports in origins (then sorts each family's samples,
/// whose order follows the ports) and the measured durations.
fn normalise(text: &str, server: &str, closed: &str) -> String {
    let mut out = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.replace(server, "SERVER").replace(closed, "CLOSED");
        if line.starts_with('#') {
            samples.sort();
            out.append(&mut samples);
            out.push(line);
            continue;
        }
        // Which bucket a response falls in depends on its time; the +Inf bucket and the count do not.
        let timed = (line.starts_with("wirecore_request_duration_seconds_bucket{")
            && !line.contains("le=\"+Inf\""))
            || line.starts_with("wirecore_request_duration_seconds_sum{")
            || line.starts_with("wirecore_endpoint_ewma_seconds{");
        match line.rsplit_once(' ') {
            Some((series, _)) if timed => samples.push(format!("{series} <timed>")),
            _ => samples.push(line),
        }
    }
    samples.sort();
    out.append(&mut samples);
    out.join("\n") + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_matches_the_golden_file() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.retry.enabled = false;
        cfg.cache.enabled = true;
        let svc = wirecore::config::ServiceConfig {
            endpoints: vec![wirecore::config::EndpointConfig {
                url: srv.url(""),
                weight: 1,
            }],
            ..Default::default()
        };
        cfg.services.insert("svc".into(), svc);
    });
    for path in [
        "/cache/golden?cache_control=max-age=60",
        "/cache/golden?cache_control=max-age=60",
        "/bytes/100",
        "/bytes/100",
        "/status/404",
        "/status/503",
        "/redirect/1",
        "/gzip",
    ] {
        let r = c.get(&srv.url(path)).send().await.unwrap();
        r.bytes().await.unwrap();
    }
    let r = c.get("http://svc/status/503").send().await.unwrap();
    r.bytes().await.unwrap();
    let r = c.post(&srv.url("/upload")).body("hello").send().await;
    r.unwrap().bytes().await.unwrap();
    let (_refusing, port) = refused_port();
    let closed = format!("127.0.0.1:{port}");
    let e = c
        .get(&format!("http://{closed}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), wirecore::ErrorKind::Connect, "{e}");

    let have = normalise(&c.prometheus(), &srv.addr().to_string(), &closed);
    if std::env::var_os("WIRECORE_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, &have).unwrap();
    }
    let want = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    if have != want {
        let diff: Vec<String> = want
            .lines()
            .zip(have.lines())
            .filter(|(w, h)| w != h)
            .map(|(w, h)| format!("- {w}\n+ {h}"))
            .take(10)
            .collect();
        panic!(
            "the Prometheus text differs from {GOLDEN} ({} vs {} lines); if the change is \
             intended, rerun with WIRECORE_BLESS=1 and commit:\n{}\n--- full text:\n{have}",
            want.lines().count(),
            have.lines().count(),
            diff.join("\n")
        );
    }
}

/// One sample of the text: metric name, labels, value.
fn samples(text: &str, name: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (metric, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (metric.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_a_histogram_per_origin_and_status_class() {
    let servers = plain_servers(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let mut cfg = wirecore::Config::default();
    cfg.retry.enabled = false;
    cfg.metrics.latency_buckets_ms = vec![1.0, 25.0, 1_000.0, 60_000.0];
    let c = wirecore::Client::from_config(cfg).unwrap();
    for (srv, path, n) in [
        (a, "/delay/30", 3),
        (a, "/status/503", 2),
        (a, "/status/404", 1),
        (b, "/bytes/10", 2),
    ] {
        for _ in 0..n {
            c.get(&srv.url(path))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
    }
    let (_refusing, port) = refused_port();
    let closed = format!("http://127.0.0.1:{port}/");
    c.get(&closed).send().await.unwrap_err();

    let text = c.prometheus();
    assert!(
        text.contains("# TYPE wirecore_request_duration_seconds histogram\n"),
        "{text}"
    );
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    for (metric, mut labels, v) in samples(&text, "wirecore_request_duration_seconds") {
        let le = labels.remove("le");
        let key = (
            labels.remove("origin").unwrap(),
            labels.remove("status_class").unwrap(),
        );
        assert!(labels.is_empty(), "{metric}: extra labels {labels:?}");
        let s = series.entry(key).or_default();
        match (metric.as_str(), le) {
            ("wirecore_request_duration_seconds_bucket", Some(le)) => {
                s.buckets.push((le, v as u64));
            }
            ("wirecore_request_duration_seconds_sum", None) => s.sum = v,
            ("wirecore_request_duration_seconds_count", None) => s.count = v as u64,
            other => panic!("unexpected sample {other:?}"),
        }
    }
    let origin = |srv: &wirecore_testserver::TestServer| format!("http://{}", srv.addr());
    // In the BTreeMap's order: the two servers' ports decide which origin sorts first.
    let mut want = vec![
        ((origin(a), "2xx"), 3),
        ((origin(a), "4xx"), 1),
        ((origin(a), "5xx"), 2),
        ((origin(b), "2xx"), 2),
    ];
    want.sort();
    let have: Vec<((String, &str), u64)> = series
        .iter()
        .map(|((o, c), s)| ((o.clone(), c.as_str()), s.count))
        .collect();
    assert_eq!(have, want, "{text}");
    let stats = c.stats();
    let responses: u64 = stats.responses_by_status_class.values().sum();
    assert_eq!(series.values().map(|s| s.count).sum::<u64>(), responses);
    assert_eq!(
        stats.requests_total,
        responses + 1,
        "the refused connect is no response"
    );
    for ((o, class), s) in &series {
        let les: Vec<&str> = s.buckets.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(les, ["0.001", "0.025", "1", "60", "+Inf"], "{o} {class}");
        assert!(
            s.buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{o} {class}: {:?}",
            s.buckets
        );
        assert_eq!(
            s.buckets.last().unwrap().1,
            s.count,
            "{o} {class}: +Inf is the count"
        );
        assert!(
            s.sum > 0.0 && s.sum < 60.0 * s.count as f64,
            "{o} {class}: sum {}",
            s.sum
        );
    }
    // Each /delay/30 answer takes at least 30 ms: above the 25 ms bucket, and in the sum.
    let slow = &series[&(origin(a), "2xx".to_owned())];
    assert_eq!(slow.buckets[1].1, 0, "{:?}", slow.buckets);
    assert!(slow.sum >= 0.09, "sum {}", slow.sum);
}

#[derive(Debug, Default)]
struct Series {
    buckets: Vec<(String, u64)>,
    sum: f64,
    count: u64,
}

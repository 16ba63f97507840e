//! The Prometheus text of a known set of requests, compared with core/tests/golden/prometheus.txt.
//! A renamed metric, a changed label or TYPE line fails here; dashboards depend on them.
//! `WIRECORE_BLESS=1 cargo test -p wirecore --test prometheus` rewrites the golden file.

mod support;

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
        let timed = line.starts_with("wirecore_request_duration_seconds{")
            || line.starts_with("wirecore_request_duration_seconds_sum ")
            || line.starts_with("wirecore_endpoint_ewma_seconds{");
        match line.rsplit_once(' ') {
            Some((series, _)) if timed => samples.push(format!("{series} <duration>")),
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
    let closed = format!("127.0.0.1:{}", free_port());
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

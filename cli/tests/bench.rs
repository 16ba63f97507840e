//! `wirecore bench` against `wirecore serve` and nginx on loopback: the JSON report's counts
//! add up, `--rate` holds its rate, Ctrl-C prints a partial report, bad arguments fail early.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{BIN, Serve, TempDir, bench, free_port, sum, wait_exit};

/// Every count of a report agrees with the others.
fn assert_adds_up(r: &Value, requests: u64) {
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(n("requests"), requests, "{r}");
    assert_eq!(n("responses") + n("errors"), n("requests"));
    assert_eq!(sum(&r["status"]), n("responses"));
    assert_eq!(sum(&r["error_codes"]), n("errors"));
    assert_eq!(sum(&r["versions"]), n("responses"));
    let hist: u64 = r["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(hist, n("responses"));
    let l = &r["latency_ms"];
    let ms = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("latency_ms.{k}"));
    let order = ["min", "p50", "p90", "p95", "p99", "p99_9", "max"];
    for w in order.windows(2) {
        assert!(ms(w[0]) <= ms(w[1]), "{} > {}: {l}", w[0], w[1]);
    }
    assert!(ms("min") > 0.0);
    assert!(r["req_per_s"].as_f64().unwrap() > 0.0);
    let c = &r["connections"];
    assert!(c["opened"].as_u64().unwrap() >= 1);
    assert!(c["opened"].as_u64().unwrap() + c["reused"].as_u64().unwrap() >= n("requests"));
    let timeline: f64 = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["req_per_s"].as_f64().unwrap())
        .sum();
    assert!(timeline > 0.0);
}

#[test]
fn json_report_counts_add_up_against_serve() {
    let srv = Serve::start(&[]);
    let plot = TempDir::new("plot");
    let svg = plot.path().join("out.svg");
    let (status, r, _) = bench(&[
        "-n",
        "300",
        "-c",
        "8",
        "--plot",
        svg.to_str().unwrap(),
        &format!("{}/json", srv.url),
        &format!("{}/status/503", srv.url),
    ]);
    assert!(status.success());
    assert_adds_up(&r, 300);
    assert_eq!(r["status"]["200"], 150);
    assert_eq!(r["status"]["503"], 150);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["interrupted"], false);
    assert!(r["bytes"]["body"].as_u64().unwrap() >= 150 * 100);
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg"));
    for label in [
        "latency (ms)",
        "responses",
        "time (s)",
        "requests / s",
        "p99",
    ] {
        assert!(svg.contains(label), "plot lacks {label}");
    }
}

#[test]
fn errors_are_counted_by_code() {
    // Nothing listens on this port: every request fails to connect.
    let url = format!("http://127.0.0.1:{}/", free_port());
    let (status, r, _) = bench(&["-n", "20", "-c", "2", &url]);
    assert!(status.success());
    assert_adds_up_errors(&r, 20);
    assert_eq!(r["error_codes"]["connect"], 20, "{r}");
}

fn assert_adds_up_errors(r: &Value, n: u64) {
    assert_eq!(r["requests"], n);
    assert_eq!(r["responses"], 0);
    assert_eq!(r["errors"], n);
    assert_eq!(sum(&r["error_codes"]), n);
}

#[test]
fn h2_over_tls_and_h2c_against_serve() {
    let tls = Serve::start(&["--tls"]);
    let ca = tls.info["ca"].as_str().unwrap().to_owned();
    let (status, r, _) = bench(&[
        "-n",
        "100",
        "-c",
        "10",
        "--h2",
        "--cacert",
        &ca,
        &format!("{}/json", tls.url),
    ]);
    assert!(status.success());
    assert_adds_up(&r, 100);
    assert_eq!(r["versions"]["HTTP/2"], 100, "{r}");
    assert_eq!(r["connections"]["opened"], 1, "one h2 connection: {r}");

    let plain = Serve::start(&[]);
    let (_, r, _) = bench(&[
        "-n",
        "50",
        "-c",
        "5",
        "--h2c",
        &format!("{}/json", plain.url),
    ]);
    assert_adds_up(&r, 50);
    assert_eq!(r["versions"]["HTTP/2"], 50, "{r}");
    let (_, r, _) = bench(&[
        "-n",
        "50",
        "-c",
        "5",
        "--h1",
        &format!("{}/json", tls.url),
        "-k",
    ]);
    assert_eq!(r["versions"]["HTTP/1.1"], 50, "{r}");
}

#[test]
fn a_config_service_spreads_load_over_its_endpoints() {
    let (a, b) = (Serve::start(&[]), Serve::start(&[]));
    let dir = TempDir::new("svc");
    let cfg = dir.path().join("wirecore.json");
    let doc = serde_json::json!({"services": {"api": {
        "strategy": "round_robin",
        "endpoints": [{"url": a.url}, {"url": b.url}],
    }}});
    std::fs::write(&cfg, doc.to_string()).unwrap();
    let (status, r, _) = bench(&[
        "-n",
        "100",
        "-c",
        "4",
        "--config",
        cfg.to_str().unwrap(),
        "http://api/json",
    ]);
    assert!(status.success());
    assert_adds_up(&r, 100);
    assert_eq!(r["status"]["200"], 100, "{r}");
    for srv in [&a, &b] {
        let (_, _, body) = support::raw_get(&srv.addr(), "/metrics", &[]);
        let text = String::from_utf8_lossy(&body).into_owned();
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("wirecore_serve_requests_total "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        // Round robin: half each, plus this /metrics request.
        assert_eq!(n, 51, "{text}");
    }
}

#[test]
fn open_loop_rate_holds_within_five_percent() {
    let srv = Serve::start(&[]);
    let (status, r, _) = bench(&[
        "--rate",
        "200",
        "-d",
        "3s",
        "-c",
        "32",
        &format!("{}/json", srv.url),
    ]);
    assert!(status.success());
    let n = r["requests"].as_u64().unwrap();
    assert_adds_up(&r, n);
    let rate = r["req_per_s"].as_f64().unwrap();
    assert!((rate - 200.0).abs() <= 10.0, "achieved {rate} req/s: {r}");
    assert!((570..=600).contains(&n), "{n} requests in 3 s at 200/s");
    assert_eq!(r["rate"], 200.0);
    assert_eq!(
        r["cancelled"], 0,
        "an open loop measures every request it started"
    );
}

#[test]
fn open_loop_latency_counts_the_wait_for_a_free_worker() {
    // 40 requests due within 0.4 s, one worker, 50 ms each: they finish over about 2 s, so
    // the last waited about 1.6 s past its scheduled start. Measured from the actual send
    // (coordinated omission), every latency would be about 50 ms.
    let srv = Serve::start(&[]);
    let (status, r, _) = bench(&[
        "--rate",
        "100",
        "-d",
        "400ms",
        "-c",
        "1",
        &format!("{}/delay/50", srv.url),
    ]);
    assert!(status.success());
    assert_adds_up(&r, 40);
    let p99 = r["latency_ms"]["p99"].as_f64().unwrap();
    assert!(p99 > 1_000.0, "p99 {p99} ms: the queueing delay is missing");
}

#[test]
fn ctrl_c_prints_a_partial_report() {
    let srv = Serve::start(&[]);
    let mut child = Command::new(BIN)
        .args(["bench", "-d", "60s", "-c", "4", "--json"])
        .arg(format!("{}/delay/20", srv.url))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line (after one second) shows the run is under way.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("done"), "{line}");
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["interrupted"], true);
    let n = r["requests"].as_u64().unwrap();
    assert!(n > 0);
    assert_adds_up(&r, n);
    assert!(r["duration_s"].as_f64().unwrap() < 30.0);
}

/// The names of a running process's threads (Linux `/proc`).
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn the_engine_runs_on_the_bench_threads_alone() {
    if !std::path::Path::new("/proc/self/task").is_dir() {
        return; // no /proc to read thread names from
    }
    let srv = Serve::start(&[]);
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--threads",
            "1",
            "-d",
            "60s",
            "-c",
            "4",
            "--no-progress",
        ])
        .arg(format!("{}/delay/20", srv.url))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The client is built before the first request; once the server has answered a few, every
    // thread the engine will ever use for them is running.
    let mut names = Vec::new();
    for polls in 1..=500 {
        std::thread::sleep(Duration::from_millis(20));
        names = thread_names(child.id());
        let (_, _, body) = support::raw_get(&srv.addr(), "/metrics", &[]);
        let served: u64 = String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("wirecore_serve_requests_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // Less this test's own /metrics requests.
        if served.saturating_sub(polls) >= 8 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        names.iter().any(|n| n == "wirecore-bench"),
        "no bench runtime thread in {names:?}"
    );
    // With `--threads 1` the engine's connection tasks run on the bench's runtime: a second
    // runtime (the engine's own `wirecore-rt`) would hand every request between threads.
    assert!(
        !names.iter().any(|n| n.starts_with("wirecore-rt")),
        "the engine started its own runtime: {names:?}"
    );
}

#[test]
fn bad_arguments_fail_before_any_request_with_one_line() {
    for (args, want) in [
        (
            vec!["-H", "no-colon", "http://127.0.0.1:9/"],
            "expected NAME: VALUE",
        ),
        (vec!["--h2", "http://127.0.0.1:9/"], "use --h2c"),
        (vec!["not a url"], "URL"),
        (
            vec!["--body-file", "/nonexistent/x", "http://127.0.0.1:9/"],
            "--body-file",
        ),
        (
            vec!["--config", "/nonexistent/x.json", "http://127.0.0.1:9/"],
            "--config",
        ),
    ] {
        let out = Command::new(BIN).arg("bench").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("wirecore: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
    let dir = TempDir::new("cfg");
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"pool":{"max_conections":4}}"#).unwrap();
    let out = Command::new(BIN)
        .args([
            "bench",
            "--config",
            cfg.to_str().unwrap(),
            "http://127.0.0.1:9/",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_conections"), "{err}");
    for sub in ["bench", "serve"] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Examples:"),
            "{sub}: {text}"
        );
    }
}

#[test]
fn bench_against_nginx_over_h1_and_h2() {
    let nginx = wirecore_testserver::TestNginx::start().expect("nginx");
    let (status, r, _) = bench(&["-n", "400", "-c", "8", "--h1", &nginx.url("/1k")]);
    assert!(status.success());
    assert_adds_up(&r, 400);
    assert_eq!(r["status"]["200"], 400);
    assert_eq!(r["bytes"]["body"], 400 * 1024);
    assert_eq!(r["versions"]["HTTP/1.1"], 400);
    assert!(r["connections"]["opened"].as_u64().unwrap() <= 8, "{r}");

    let (status, r, _) = bench(&[
        "-n",
        "400",
        "-c",
        "8",
        "--h2",
        "--cacert",
        &nginx.ca_path().display().to_string(),
        &nginx.tls_url("/1k"),
    ]);
    assert!(status.success());
    assert_adds_up(&r, 400);
    assert_eq!(r["versions"]["HTTP/2"], 400, "{r}");
    assert_eq!(r["connections"]["opened"], 1);
}

//! Replays every `tests/scenarios/*.json` through the Rust API (format: tests/scenarios/README.md).

mod support;

use std::io::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Map, Value, json};
use support::*;
use wirecore::{Client, Config, HeaderMap, RequestBody};
use wirecore_testserver::DnsMode;

// Every key a scenario file may use, per object; any other key fails the file.
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "config",
    "script",
    "dns",
    "steps",
    "stats",
    "server",
    "skip",
];
const STEP_KEYS: &[&str] = &["request", "outcome", "concurrency", "dns", "wait_ms"];
const REQUEST_KEYS: &[&str] = &[
    "method",
    "url",
    "headers",
    "body",
    "timeout_ms",
    "priority",
    "redirect",
    "max_redirects",
    "cache",
    "balance_key",
    "traceparent",
    "tracestate",
];
const OUTCOME_KEYS: &[&str] = &[
    "status",
    "error",
    "body",
    "body_contains",
    "body_len",
    "json",
    "json_absent",
    "headers",
    "absent_headers",
    "version",
    "reused",
    "cache_status",
    "any_of",
];
const SCRIPT_KEYS: &[&str] = &["path", "replies"];
const DNS_KEYS: &[&str] = &["name", "ips", "ttl", "fail", "remove", "negative_ttl"];
const RANGE_KEYS: &[&str] = &["min", "max"];
const LANGUAGES: &[&str] = &["rust", "python", "node", "go", "c"];

fn substitute(text: &str, info: &Value) -> String {
    let mut out = text.to_owned();
    for key in [
        "http",
        "http2",
        "http3",
        "https",
        "bad_tls",
        "mtls",
        "control",
        "ca",
        "client_cert",
        "client_key",
        "dns",
        "blackhole",
        "silent",
        "torture",
    ] {
        if let Some(v) = info[key].as_str() {
            out = out.replace(&format!("{{{key}}}"), v);
        }
    }
    let port = info["http"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .unwrap_or_default();
    out.replace("{http_port}", port)
}

/// Fails when `obj` (an object, if given) has a key outside `allowed`.
fn keys(obj: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj {
        Value::Null => Ok(()),
        Value::Object(m) => match m.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown key {what}.{k}")),
            None => Ok(()),
        },
        _ => Err(format!("{what} must be an object")),
    }
}

fn each<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], String> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        _ => Err(format!("{what} must be a list")),
    }
}

/// Checks every key of the file before anything runs.
fn validate(sc: &Value) -> Result<(), String> {
    keys(sc, TOP_KEYS, "scenario")?;
    keys(&sc["skip"], LANGUAGES, "skip")?;
    for s in each(&sc["script"], "script")? {
        keys(s, SCRIPT_KEYS, "script[]")?;
    }
    for d in each(&sc["dns"], "dns")? {
        keys(d, DNS_KEYS, "dns[]")?;
    }
    if let Some(server) = sc["server"].as_object() {
        for (k, v) in server {
            if v.is_object() {
                keys(v, RANGE_KEYS, &format!("server.{k}"))?;
            }
        }
    }
    let steps = each(&sc["steps"], "steps")?;
    if steps.is_empty() {
        return Err("no steps".into());
    }
    for (i, st) in steps.iter().enumerate() {
        keys(st, STEP_KEYS, &format!("steps[{i}]"))?;
        for d in each(&st["dns"], "dns")? {
            keys(d, DNS_KEYS, &format!("steps[{i}].dns[]"))?;
        }
        if st["request"].is_null() != st["outcome"].is_null() {
            return Err(format!("steps[{i}]: request and outcome go together"));
        }
        keys(&st["request"], REQUEST_KEYS, &format!("steps[{i}].request"))?;
        let out = &st["outcome"];
        keys(out, OUTCOME_KEYS, &format!("steps[{i}].outcome"))?;
        for alt in each(&out["any_of"], "any_of")? {
            keys(
                alt,
                &OUTCOME_KEYS[..OUTCOME_KEYS.len() - 1],
                &format!("steps[{i}].outcome.any_of[]"),
            )?;
        }
    }
    Ok(())
}

fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        _ => want == have,
    }
}

/// An object whose keys are all `min`/`max`: a range for a number.
fn is_range(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| RANGE_KEYS.contains(&k.as_str())))
}

fn in_range(range: &Value, got: f64) -> bool {
    range["min"].as_f64().is_none_or(|m| got >= m) && range["max"].as_f64().is_none_or(|m| got <= m)
}

/// The `stats` outcome: every key given must exist; leaves compare exactly or by range.
fn check_stats(want: &Value, have: &Value, path: &str) -> Result<(), String> {
    if is_range(want) {
        let got = have
            .as_f64()
            .ok_or(format!("stats {path}: {have} is not a number"))?;
        return if in_range(want, got) {
            Ok(())
        } else {
            Err(format!("stats {path}: {got} not in {want}"))
        };
    }
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, v) in w {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let hv = h.get(k).ok_or(format!("stats {p}: no such field"))?;
                check_stats(v, hv, &p)?;
            }
            Ok(())
        }
        (Value::Number(w), Value::Number(h)) if w.as_f64() == h.as_f64() => Ok(()),
        _ if want == have => Ok(()),
        _ => Err(format!("stats {path}: want {want}, got {have}")),
    }
}

/// Whether the dotted path `a.b.c` names a key of the JSON document.
fn has_path(doc: &Value, dotted: &str) -> bool {
    let mut cur = doc;
    for key in dotted.split('.') {
        match cur.get(key) {
            Some(v) if cur.is_object() => cur = v,
            _ => return false,
        }
    }
    true
}

fn version_str(v: wirecore::Version) -> &'static str {
    match v {
        wirecore::Version::HTTP_2 => "HTTP/2.0",
        wirecore::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

struct Got {
    status: u16,
    version: &'static str,
    reused: bool,
    cache_status: &'static str,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn send(client: &Client, req: &Value) -> Result<Got, wirecore::Error> {
    let method = wirecore::parse_method(req["method"].as_str().unwrap_or("GET"))?;
    let url = req["url"].as_str().unwrap_or_default();
    let mut r = wirecore::Request::new(method, url)?;
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            let (n, v) = wirecore::parse_header(k, v.as_str().unwrap_or_default())?;
            r.headers_mut().append(n, v);
        }
    }
    if let Some(b) = req["body"].as_str() {
        *r.body_mut() = RequestBody::from(b.to_owned());
    }
    if let Some(t) = req["timeout_ms"].as_u64() {
        r.options_mut().timeout = Some(Duration::from_millis(t));
    }
    if let Some(p) = req["priority"].as_str() {
        r.options_mut().priority = Some(wirecore::Priority::parse(p)?);
    }
    if let Some(p) = req["redirect"].as_str() {
        r.options_mut().redirect = Some(wirecore::RedirectPolicy::parse(p)?);
    }
    if let Some(n) = req["max_redirects"].as_u64() {
        r.options_mut().max_redirects = Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(m) = req["cache"].as_str() {
        r.options_mut().cache = wirecore::CacheMode::parse(m)?;
    }
    if let Some(k) = req["balance_key"].as_str() {
        r.options_mut().balance_key = Some(k.to_owned());
    }
    if let Some(t) = req["traceparent"].as_str() {
        r.options_mut().traceparent = Some(t.to_owned());
    }
    if let Some(t) = req["tracestate"].as_str() {
        r.options_mut().tracestate = Some(t.to_owned());
    }
    let resp = client.execute(r).await?;
    let status = resp.status().as_u16();
    let version = version_str(resp.version());
    let reused = resp.reused();
    let cache_status = resp
        .cache_status()
        .map_or("none", wirecore::CacheStatus::as_str);
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Got {
        status,
        version,
        reused,
        cache_status,
        headers,
        body,
    })
}

fn check(out: &Value, got: &Result<Got, wirecore::Error>) -> Result<(), String> {
    if let Some(alts) = out["any_of"].as_array() {
        let mut why = Vec::new();
        for alt in alts {
            match check(alt, got) {
                Ok(()) => return Ok(()),
                Err(e) => why.push(e),
            }
        }
        return Err(format!("no outcome of any_of matched: {}", why.join("; ")));
    }
    let g = match (got, out["error"].as_str()) {
        (Err(e), Some(code)) => {
            return if e.code() == code {
                Ok(())
            } else {
                Err(format!("want error {code}, got {} ({e})", e.code()))
            };
        }
        (Err(e), None) => return Err(format!("unexpected error {}: {e}", e.code())),
        (Ok(g), Some(code)) => return Err(format!("want error {code}, got status {}", g.status)),
        (Ok(g), None) => g,
    };
    if let Some(s) = out["status"].as_u64()
        && u64::from(g.status) != s
    {
        return Err(format!("want status {s}, got {}", g.status));
    }
    if let Some(v) = out["version"].as_str()
        && v != g.version
    {
        return Err(format!("want version {v}, got {}", g.version));
    }
    if let Some(r) = out["reused"].as_bool()
        && r != g.reused
    {
        return Err(format!("want reused={r}, got {}", g.reused));
    }
    if let Some(c) = out["cache_status"].as_str()
        && c != g.cache_status
    {
        return Err(format!("want cache_status {c}, got {}", g.cache_status));
    }
    let text = String::from_utf8_lossy(&g.body);
    if let Some(b) = out["body"].as_str()
        && b != text
    {
        return Err(format!("want body {b:?}, got {text:?}"));
    }
    if let Some(b) = out["body_contains"].as_str()
        && !text.contains(b)
    {
        return Err(format!("body lacks {b:?}: {text:.200}"));
    }
    if let Some(n) = out["body_len"].as_u64()
        && n != g.body.len() as u64
    {
        return Err(format!("want body_len {n}, got {}", g.body.len()));
    }
    if !out["json"].is_null() {
        let have: Value =
            serde_json::from_slice(&g.body).map_err(|e| format!("body is not JSON: {e}"))?;
        if !subset(&out["json"], &have) {
            return Err(format!("JSON {have} does not contain {}", out["json"]));
        }
    }
    if let Some(paths) = out["json_absent"].as_array() {
        let have: Value =
            serde_json::from_slice(&g.body).map_err(|e| format!("body is not JSON: {e}"))?;
        for p in paths.iter().filter_map(Value::as_str) {
            if has_path(&have, p) {
                return Err(format!("{p} should be absent: {text:.300}"));
            }
        }
    }
    if let Some(h) = out["headers"].as_object() {
        for (k, v) in h {
            let got = g.headers.get(k.as_str()).and_then(|x| x.to_str().ok());
            if got != v.as_str() {
                return Err(format!("header {k}: want {v}, got {got:?}"));
            }
        }
    }
    if let Some(a) = out["absent_headers"].as_array() {
        for k in a.iter().filter_map(Value::as_str) {
            if g.headers.contains_key(k) {
                return Err(format!("header {k} should be absent"));
            }
        }
    }
    Ok(())
}

/// Applies `dns` entries (the control API's `POST /_control/dns` bodies) to the responder.
fn set_dns(srv: &TestServer, entries: &Value) -> Result<(), String> {
    for d in each(entries, "dns")? {
        if let Some(t) = d["negative_ttl"].as_u64() {
            srv.dns()
                .set_negative_ttl(u32::try_from(t).map_err(|e| e.to_string())?);
        }
        let Some(name) = d["name"].as_str() else {
            continue;
        };
        if d["remove"].as_bool() == Some(true) {
            srv.dns().remove(name);
        } else if !d["fail"].is_null() {
            let mode: DnsMode =
                serde_json::from_value(d["fail"].clone()).map_err(|e| format!("dns.fail: {e}"))?;
            srv.dns().fail(name, mode);
        } else {
            let ips: Vec<IpAddr> =
                serde_json::from_value(d["ips"].clone()).map_err(|e| format!("dns.ips: {e}"))?;
            let ttl = d["ttl"].as_u64().unwrap_or(30);
            srv.dns()
                .set(name, &ips, u32::try_from(ttl).map_err(|e| e.to_string())?);
        }
    }
    Ok(())
}

enum Ran {
    Passed,
    Skipped(String),
}

async fn run_file(srv: &TestServer, path: &std::path::Path) -> Result<Ran, String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_owned();
    let raw = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let sc: Value = serde_json::from_str(&substitute(&raw, &srv.info()))
        .map_err(|e| format!("not JSON: {e}"))?;
    if sc["name"].as_str() != Some(name.as_str()) {
        return Err("\"name\" must equal the file name".into());
    }
    validate(&sc)?;
    if let Some(reason) = sc["skip"].get("rust") {
        return Ok(Ran::Skipped(reason.as_str().unwrap_or("?").to_owned()));
    }
    srv.reset();
    for s in each(&sc["script"], "script")? {
        let replies =
            serde_json::from_value(s["replies"].clone()).map_err(|e| format!("script: {e}"))?;
        srv.script(s["path"].as_str().unwrap_or("/"), replies);
    }
    set_dns(srv, &sc["dns"])?;
    let mut cfg_json = sc["config"].clone();
    if cfg_json.is_null() {
        cfg_json = json!({});
    }
    if cfg_json.get("tls").is_none() {
        cfg_json["tls"] = json!({ "ca_files": [srv.info()["ca"].clone()] });
    }
    let cfg = Config::from_value(cfg_json).map_err(|e| format!("config: {e}"))?;
    let client = Client::from_config(cfg).map_err(|e| format!("client: {e}"))?;
    let result = run_steps(srv, &client, &sc).await;
    client.close(Duration::from_secs(2)).await;
    drop(client);
    result?;
    if let Some(want) = sc["server"].as_object() {
        check_server(srv, want).await?;
    }
    Ok(Ran::Passed)
}

async fn run_steps(srv: &TestServer, client: &Client, sc: &Value) -> Result<(), String> {
    for (i, step) in each(&sc["steps"], "steps")?.iter().enumerate() {
        set_dns(srv, &step["dns"])?;
        if let Some(ms) = step["wait_ms"].as_u64() {
            // Time passing is the behaviour under test here (a TTL, a breaker's open time).
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if step["request"].is_null() {
            continue;
        }
        let n = step["concurrency"].as_u64().unwrap_or(1);
        let runs = (0..n).map(|_| send(client, &step["request"]));
        for got in futures_util::future::join_all(runs).await {
            check(&step["outcome"], &got).map_err(|e| format!("step {i}: {e}"))?;
        }
    }
    if !sc["stats"].is_null() {
        let have = serde_json::to_value(client.stats()).map_err(|e| e.to_string())?;
        check_stats(&sc["stats"], &have, "")?;
    }
    Ok(())
}

async fn check_server(srv: &TestServer, want: &Map<String, Value>) -> Result<(), String> {
    let matches = |have: &Value| -> Result<(), String> {
        for (k, v) in want {
            let got = have[k]
                .as_u64()
                .ok_or(format!("unknown server counter {k}"))?;
            let ok = if v.is_object() {
                in_range(v, got as f64)
            } else {
                v.as_u64() == Some(got)
            };
            if !ok {
                return Err(format!("server counter {k}: want {v}, got {got}"));
            }
        }
        Ok(())
    };
    // Closes and cancellations reach the server after the client sees them: poll briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let have = serde_json::to_value(srv.counters()).map_err(|e| e.to_string())?;
        match matches(&have) {
            Ok(()) => return Ok(()),
            Err(e) if e.starts_with("unknown") || tokio::time::Instant::now() >= deadline => {
                return Err(e);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes() {
    let srv = server().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 80,
        "expected at least 80 scenarios, found {}",
        files.len()
    );
    let (mut passed, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    for f in &files {
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        match run_file(&srv, f).await {
            Ok(Ran::Passed) => passed += 1,
            Ok(Ran::Skipped(why)) => skipped.push(format!("{name}: {why}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    // Straight to stderr, past the test harness's capture: the summary shows on every run.
    let _ = writeln!(
        std::io::stderr(),
        "scenarios (rust): {passed} passed, {} skipped ({}), {} failed",
        skipped.len(),
        skipped.join("; "),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

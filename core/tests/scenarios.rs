//! Replays every `tests/scenarios/*.json` through the Rust API (format: tests/scenarios/README.md).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use wirecore::{Client, Config, Method, RequestBody};

fn substitute(text: &str, info: &Value) -> String {
    let mut out = text.to_owned();
    for key in [
        "http",
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
    ] {
        if let Some(v) = info[key].as_str() {
            out = out.replace(&format!("{{{key}}}"), v);
        }
    }
    out
}

fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        _ => want == have,
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

async fn run_step(client: &Client, step: &Value, name: &str, i: usize) -> Result<(), String> {
    let req = &step["request"];
    let out = &step["outcome"];
    let method = wirecore::parse_method(req["method"].as_str().unwrap_or("GET"))
        .map_err(|e| e.to_string())?;
    let url = req["url"].as_str().ok_or("request.url missing")?;
    let result = async {
        let mut r = wirecore::Request::new(method.clone(), url)?;
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
            *r.timeout_mut() = Some(Duration::from_millis(t));
        }
        let resp = client.execute(r).await?;
        let status = resp.status().as_u16();
        let version = version_str(resp.version());
        let reused = resp.reused();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        Ok::<_, wirecore::Error>((status, version, reused, headers, body))
    }
    .await;
    let ctx = format!("{name} step {i}");
    match (result, out["error"].as_str()) {
        (Err(e), Some(code)) => {
            if e.code() != code {
                return Err(format!("{ctx}: want error {code}, got {e}"));
            }
        }
        (Err(e), None) => return Err(format!("{ctx}: unexpected error {e}")),
        (Ok((status, ..)), Some(code)) => {
            return Err(format!("{ctx}: want error {code}, got status {status}"));
        }
        (Ok((status, version, reused, headers, body)), None) => {
            if let Some(s) = out["status"].as_u64()
                && u64::from(status) != s
            {
                return Err(format!("{ctx}: want status {s}, got {status}"));
            }
            if let Some(v) = out["version"].as_str()
                && v != version
            {
                return Err(format!("{ctx}: want version {v}, got {version}"));
            }
            if let Some(r) = out["reused"].as_bool()
                && r != reused
            {
                return Err(format!("{ctx}: want reused={r}, got {reused}"));
            }
            let text = String::from_utf8_lossy(&body);
            if let Some(b) = out["body"].as_str()
                && b != text
            {
                return Err(format!("{ctx}: want body {b:?}, got {text:?}"));
            }
            if let Some(b) = out["body_contains"].as_str()
                && !text.contains(b)
            {
                return Err(format!("{ctx}: body lacks {b:?}: {text:.200}"));
            }
            if let Some(n) = out["body_len"].as_u64()
                && n != body.len() as u64
            {
                return Err(format!("{ctx}: want body_len {n}, got {}", body.len()));
            }
            if !out["json"].is_null() {
                let have: Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("{ctx}: body is not JSON: {e}"))?;
                if !subset(&out["json"], &have) {
                    return Err(format!(
                        "{ctx}: JSON {have} does not contain {}",
                        out["json"]
                    ));
                }
            }
            if let Some(paths) = out["json_absent"].as_array() {
                let have: Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("{ctx}: body is not JSON: {e}"))?;
                for p in paths.iter().filter_map(Value::as_str) {
                    if has_path(&have, p) {
                        return Err(format!("{ctx}: {p} should be absent: {text:.300}"));
                    }
                }
            }
            if let Some(h) = out["headers"].as_object() {
                for (k, v) in h {
                    let got = headers.get(k.as_str()).and_then(|x| x.to_str().ok());
                    if got != v.as_str() {
                        return Err(format!("{ctx}: header {k}: want {v}, got {got:?}"));
                    }
                }
            }
            if let Some(a) = out["absent_headers"].as_array() {
                for k in a.iter().filter_map(Value::as_str) {
                    if headers.contains_key(k) {
                        return Err(format!("{ctx}: header {k} should be absent"));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn run_file(srv: &TestServer, path: &std::path::Path) -> Result<(), String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_owned();
    let raw = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let sc: Value =
        serde_json::from_str(&substitute(&raw, &srv.info())).map_err(|e| format!("{name}: {e}"))?;
    if sc["name"].as_str() != Some(name.as_str()) {
        return Err(format!("{name}: \"name\" must equal the file name"));
    }
    if sc["skip"]["rust"].is_string() {
        return Ok(());
    }
    srv.reset();
    if let Some(scripts) = sc["script"].as_array() {
        for s in scripts {
            let replies = serde_json::from_value(s["replies"].clone())
                .map_err(|e| format!("{name}: script: {e}"))?;
            srv.script(s["path"].as_str().unwrap_or("/"), replies);
        }
    }
    let mut cfg_json = sc["config"].clone();
    if cfg_json.is_null() {
        cfg_json = json!({});
    }
    if cfg_json.get("tls").is_none() {
        cfg_json["tls"] = json!({ "ca_files": [srv.info()["ca"].clone()] });
    }
    let cfg = Config::from_value(cfg_json).map_err(|e| format!("{name}: config: {e}"))?;
    let client = Client::from_config(cfg).map_err(|e| format!("{name}: client: {e}"))?;
    let steps = sc["steps"].as_array().ok_or(format!("{name}: no steps"))?;
    for (i, step) in steps.iter().enumerate() {
        let n = step["concurrency"].as_u64().unwrap_or(1);
        let runs = (0..n).map(|_| run_step(&client, step, &name, i));
        for r in futures_util::future::join_all(runs).await {
            r?;
        }
    }
    client.close(Duration::from_secs(2)).await;
    drop(client);
    if let Some(want) = sc["server"].as_object() {
        // Connection closes reach the server asynchronously: wait until it has seen them all.
        srv.wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
            .await;
        let have = serde_json::to_value(srv.counters()).map_err(|e| e.to_string())?;
        for (k, v) in want {
            let got = have[k]
                .as_u64()
                .ok_or(format!("{name}: unknown counter {k}"))?;
            let ok = match v {
                Value::Object(r) => {
                    r.get("min")
                        .and_then(Value::as_u64)
                        .is_none_or(|m| got >= m)
                        && r.get("max")
                            .and_then(Value::as_u64)
                            .is_none_or(|m| got <= m)
                }
                _ => v.as_u64() == Some(got),
            };
            if !ok {
                return Err(format!("{name}: server counter {k}: want {v}, got {got}"));
            }
        }
    }
    let _ = Method::GET;
    Ok(())
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
        files.len() >= 20,
        "expected at least 20 scenarios, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_file(&srv, f).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

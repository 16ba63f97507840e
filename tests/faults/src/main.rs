//! The fault matrix (`make test-faults`): starts the test server and toxiproxy, then for each
//! fault (a toxic on the proxy in front of the test server) sends the same request from Rust
//! and from each binding's fetcher, checks every language gives the expected outcome, and
//! writes the matrix as a Markdown table.
//!
//! ```text
//! wirecore-faults --toxiproxy PATH --out FILE [--fetcher NAME=COMMAND]...
//! ```
//!
//! A fetcher reads lines `METHOD URL CONFIG_JSON`, sends each on a fresh client and prints
//! `status CODE BODY_LEN` or `error CODE` (python/tests/fault_fetch.py,
//! node/test/fault-fetch.mjs, bindings/go/examples/faultfetch, bindings/c/examples/fault_fetch.c).

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Value, json};
use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

/// One row of the matrix.
struct Fault {
    name: &'static str,
    /// What the proxy does, for the table.
    what: &'static str,
    /// Toxics to add (toxiproxy's JSON); `None` disables the proxy instead.
    toxics: Option<Vec<Value>>,
    method: &'static str,
    path: &'static str,
    config: Value,
    /// `status N LEN` or `error CODE`, as the fetchers print.
    want: String,
}

fn toxic(kind: &str, stream: &str, attributes: &Value) -> Value {
    json!({"name": format!("{kind}_{stream}"), "type": kind, "stream": stream, "toxicity": 1.0,
           "attributes": attributes})
}

#[expect(
    clippy::too_many_lines,
    reason = "one entry per fault: the matrix reads best whole"
)]
fn faults() -> Vec<Fault> {
    let fast_retry = json!({"retry": {"backoff_base_ms": 1, "backoff_max_ms": 1}});
    vec![
        Fault {
            name: "none",
            what: "no toxic: the proxy passes bytes through",
            toxics: Some(vec![]),
            method: "GET",
            path: "/bytes/65536",
            config: json!({}),
            want: "status 200 65536".into(),
        },
        Fault {
            name: "latency_jitter",
            what: "latency 100 ms ± 50 ms each way",
            toxics: Some(vec![
                toxic(
                    "latency",
                    "downstream",
                    &json!({"latency": 100, "jitter": 50}),
                ),
                toxic(
                    "latency",
                    "upstream",
                    &json!({"latency": 100, "jitter": 50}),
                ),
            ]),
            method: "GET",
            path: "/bytes/1024",
            config: json!({}),
            want: "status 200 1024".into(),
        },
        Fault {
            name: "latency_over_total_timeout",
            what: "latency 2 s downstream, total timeout 300 ms",
            toxics: Some(vec![toxic(
                "latency",
                "downstream",
                &json!({"latency": 2000}),
            )]),
            method: "GET",
            path: "/bytes/1024",
            config: json!({"timeouts": {"total_ms": 300}}),
            want: "error timeout.total".into(),
        },
        Fault {
            name: "bandwidth",
            what: "bandwidth 512 KB/s downstream, 256 KiB body",
            toxics: Some(vec![toxic(
                "bandwidth",
                "downstream",
                &json!({"rate": 512}),
            )]),
            method: "GET",
            path: "/bytes/262144",
            config: json!({}),
            want: "status 200 262144".into(),
        },
        Fault {
            name: "slicer",
            what: "slicer: segments of about 8 bytes, 50 µs apart, both ways",
            toxics: Some(vec![
                toxic(
                    "slicer",
                    "downstream",
                    &json!({"average_size": 8, "size_variation": 4, "delay": 50}),
                ),
                toxic(
                    "slicer",
                    "upstream",
                    &json!({"average_size": 8, "size_variation": 4, "delay": 50}),
                ),
            ]),
            method: "POST",
            path: "/echo",
            config: json!({}),
            want: "status 200 *".into(),
        },
        Fault {
            name: "slicer_h2",
            what: "the same slicer, HTTP/2 with prior knowledge (frames split across segments)",
            toxics: Some(vec![toxic(
                "slicer",
                "downstream",
                &json!({"average_size": 8, "size_variation": 4, "delay": 50}),
            )]),
            method: "GET",
            path: "/bytes/20000",
            config: json!({"http2": {"prior_knowledge": true}}),
            want: "status 200 20000".into(),
        },
        Fault {
            name: "reset_peer",
            what: "reset_peer: TCP RST as soon as the request arrives",
            toxics: Some(vec![toxic(
                "reset_peer",
                "upstream",
                &json!({"timeout": 0}),
            )]),
            method: "GET",
            path: "/bytes/1024",
            config: fast_retry.clone(),
            want: "error io".into(),
        },
        Fault {
            name: "timeout_read_idle",
            what: "timeout 0: data dropped, connection kept open; read-idle timeout 300 ms",
            toxics: Some(vec![toxic("timeout", "downstream", &json!({"timeout": 0}))]),
            method: "GET",
            path: "/bytes/1024",
            config: json!({"timeouts": {"read_idle_ms": 300}, "retry": {"max_attempts": 1}}),
            want: "error timeout.read".into(),
        },
        Fault {
            name: "timeout_closes",
            what: "timeout 200 ms: data dropped, then the connection closed",
            toxics: Some(vec![toxic(
                "timeout",
                "downstream",
                &json!({"timeout": 200}),
            )]),
            method: "GET",
            path: "/bytes/1024",
            config: fast_retry.clone(),
            want: "error io".into(),
        },
        Fault {
            name: "limit_data",
            what: "limit_data: connection closed after 4096 bytes of a 64 KiB response",
            toxics: Some(vec![toxic(
                "limit_data",
                "downstream",
                &json!({"bytes": 4096}),
            )]),
            method: "GET",
            path: "/bytes/65536",
            config: fast_retry.clone(),
            want: "error io".into(),
        },
        Fault {
            name: "limit_data_upstream",
            what: "limit_data: connection closed after 20 bytes of the request",
            toxics: Some(vec![toxic("limit_data", "upstream", &json!({"bytes": 20}))]),
            method: "POST",
            path: "/echo",
            config: json!({}),
            want: "error io".into(),
        },
        Fault {
            name: "proxy_down",
            what: "proxy disabled: connection refused (a POST is retried: it was never sent)",
            toxics: None,
            method: "POST",
            path: "/echo",
            config: fast_retry,
            want: "error connect".into(),
        },
    ]
}

/// A fetcher process of one language.
struct Fetcher {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Fetcher {
    fn spawn(name: &str, cmd: &str) -> Result<Fetcher, String> {
        let mut parts = cmd.split_whitespace();
        let prog = parts.next().ok_or(format!("{name}: empty command"))?;
        let mut child = Command::new(prog)
            .args(parts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: cannot start {cmd}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout: ChildStdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Fetcher {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        })
    }

    fn fetch(&mut self, job: &str) -> String {
        if writeln!(self.stdin, "{job}")
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return "fetcher exited".into();
        }
        self.lines
            .recv_timeout(Duration::from_mins(1))
            .unwrap_or_else(|_| "no answer within 60 s".into())
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fetch_rust(method: &str, url: &str, config: &Value) -> String {
    let client = match Config::from_value(config.clone()).and_then(Client::from_config) {
        Ok(c) => c,
        Err(e) => return format!("error {}", e.code()),
    };
    let Ok(method) = wirecore::parse_method(method) else {
        return "error invalid_request".into();
    };
    let mut req = client.request(method.clone(), url);
    if method == wirecore::Method::POST {
        req = req.body("fault");
    }
    let out = match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.bytes().await {
                Ok(b) => format!("status {status} {}", b.len()),
                Err(e) => format!("error {}", e.code()),
            }
        }
        Err(e) => format!("error {}", e.code()),
    };
    client.close(Duration::from_secs(1)).await;
    out
}

fn matches(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => want == got,
    }
}

/// Toxiproxy's HTTP API.
struct Toxiproxy {
    api: String,
    client: Client,
    process: Child,
}

impl Toxiproxy {
    async fn start(bin: &str) -> Result<Toxiproxy, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let process = Command::new(bin)
            .args(["-host", "127.0.0.1", "-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let client = Client::builder()
            .build()
            .map_err(|e| format!("client: {e}"))?;
        let tp = Toxiproxy {
            api: format!("http://127.0.0.1:{port}"),
            client,
            process,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tp.call("GET", "/version", None).await.is_ok() {
                return Ok(tp);
            }
            if Instant::now() > deadline {
                return Err("toxiproxy did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let m = wirecore::parse_method(method).map_err(|e| e.to_string())?;
        let mut req = self.client.request(m, &format!("{}{path}", self.api));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "toxiproxy {method} {path}: {status} {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct Args {
    toxiproxy: String,
    out: String,
    fetchers: Vec<(String, String)>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        toxiproxy: String::new(),
        out: String::new(),
        fetchers: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--toxiproxy" => a.toxiproxy = v,
            "--out" => a.out = v,
            "--fetcher" => {
                let (n, c) = v.split_once('=').ok_or("--fetcher NAME=COMMAND")?;
                a.fetchers.push((n.to_owned(), c.to_owned()));
            }
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.toxiproxy.is_empty() || a.out.is_empty() {
        return Err(
            "usage: wirecore-faults --toxiproxy PATH --out FILE [--fetcher NAME=COMMAND]...".into(),
        );
    }
    Ok(a)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wirecore-faults: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let args = args()?;
    let srv = TestServer::start(Options {
        tls: false,
        ..Options::default()
    })
    .await
    .map_err(|e| format!("test server: {e}"))?;
    let tp = Toxiproxy::start(&args.toxiproxy).await?;
    let proxy = tp
        .call(
            "POST",
            "/proxies",
            Some(&json!({"name": "http", "listen": "127.0.0.1:0",
                         "upstream": srv.addr().to_string(), "enabled": true})),
        )
        .await?;
    let listen = proxy["listen"]
        .as_str()
        .ok_or("toxiproxy did not say where it listens")?
        .to_owned();
    let mut fetchers = Vec::new();
    for (name, cmd) in &args.fetchers {
        fetchers.push(Fetcher::spawn(name, cmd)?);
    }
    let mut langs = vec!["rust".to_owned()];
    langs.extend(fetchers.iter().map(|f| f.name.clone()));
    let mut table = format!(
        "# Fault matrix\n\nGenerated by `make test-faults` (tests/faults): each fault is a toxiproxy v2.12.0 \
         toxic in front of the test server; every language sends the same request on a fresh \
         client and must give the expected outcome (`status CODE BODY_LEN` or `error CODE`).\n\n\
         | fault | what the proxy does | request | expected | {} |\n|---|---|---|---|{}\n",
        langs.join(" | "),
        "---|".repeat(langs.len())
    );
    let mut all_ok = true;
    for f in faults() {
        tp.call("POST", "/reset", None).await?;
        match &f.toxics {
            Some(toxics) => {
                for t in toxics {
                    tp.call("POST", "/proxies/http/toxics", Some(t)).await?;
                }
            }
            None => {
                tp.call("POST", "/proxies/http", Some(&json!({"enabled": false})))
                    .await?;
            }
        }
        let url = format!("http://{listen}{}", f.path);
        let job = format!("{} {url} {}", f.method, f.config);
        let mut cells = vec![fetch_rust(f.method, &url, &f.config).await];
        for fe in &mut fetchers {
            cells.push(fe.fetch(&job));
        }
        let row: Vec<String> = cells
            .iter()
            .map(|got| {
                if matches(&f.want, got) {
                    format!("✓ `{got}`")
                } else {
                    all_ok = false;
                    format!("✗ `{got}`")
                }
            })
            .collect();
        for (lang, got) in langs.iter().zip(&cells) {
            let mark = if matches(&f.want, got) {
                "ok  "
            } else {
                "FAIL"
            };
            eprintln!("{mark} {:<28} {lang:<7} {got}", f.name);
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} {} | `{}` | {} |",
            f.name,
            f.what,
            f.method,
            f.path,
            f.want,
            row.join(" | ")
        );
    }
    tp.call("POST", "/reset", None).await?;
    std::fs::write(&args.out, table).map_err(|e| format!("{}: {e}", args.out))?;
    eprintln!("wrote {}", args.out);
    Ok(all_ok)
}

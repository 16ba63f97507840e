//! The Rust side of the WAN benchmark (bench/wan/wan.py starts it, with toxiproxy adding 50 ms
//! each way in front of the test server's TLS port).
//!
//! ```text
//! wan latency URL N CA_PEM    200 sequential, then 200 concurrent GETs per client
//! wan bulk URL CA_PEM         one HTTP/2 download per client
//! ```
//!
//! Prints `latency CLIENT MODE MS,MS,...` and `bulk CLIENT BYTES SECONDS` lines. Each mode runs
//! on a fresh client, so the first requests include the handshakes, as a new service's would.

use std::time::Duration;

use tokio::time::Instant;

use tokio::task::JoinSet;

#[derive(Clone)]
enum Peer {
    Wirecore(wirecore::Client),
    Reqwest(reqwest::Client),
}

impl Peer {
    async fn get(&self, url: &str) -> Result<usize, String> {
        match self {
            Peer::Wirecore(c) => {
                let mut r = c.get(url).send().await.map_err(|e| e.to_string())?;
                if r.status() != 200 {
                    return Err(format!("status {}", r.status()));
                }
                let mut n = 0;
                while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
                    n += chunk.len();
                }
                Ok(n)
            }
            Peer::Reqwest(c) => {
                let mut r = c.get(url).send().await.map_err(|e| e.to_string())?;
                if r.status() != 200 {
                    return Err(format!("status {}", r.status()));
                }
                let mut n = 0;
                while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
                    n += chunk.len();
                }
                Ok(n)
            }
        }
    }
}

fn wirecore(ca: &str, config: serde_json::Value) -> Result<Peer, String> {
    let config = wirecore::Config::from_value(config).map_err(|e| e.to_string())?;
    wirecore::Client::builder()
        .config(config)
        .add_root_certificate_pem(ca)
        .build()
        .map(Peer::Wirecore)
        .map_err(|e| format!("wirecore: {e}"))
}

fn reqwest_with(
    ca: &str,
    tweak: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<Peer, String> {
    let ca = reqwest::Certificate::from_pem(ca.as_bytes()).map_err(|e| e.to_string())?;
    tweak(
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .no_proxy(),
    )
    .build()
    .map(Peer::Reqwest)
    .map_err(|e| format!("reqwest: {e}"))
}

/// The clients of the latency runs, built fresh for each mode.
fn latency_peer(name: &str, ca: &str) -> Result<Peer, String> {
    match name {
        // Baseline (a): HTTP/1.1 with no idle pool, so every request is TCP + TLS + GET.
        "new-connection" => reqwest_with(ca, |b| b.http1_only().pool_max_idle_per_host(0)),
        "reqwest" => reqwest_with(ca, |b| b),
        "wirecore" => wirecore(ca, serde_json::json!({})),
        _ => Err(format!("unknown client {name}")),
    }
}

fn print_ms(client: &str, mode: &str, ms: &[f64]) {
    let list: Vec<String> = ms.iter().map(|m| format!("{m:.2}")).collect();
    println!("latency {client} {mode} {}", list.join(","));
}

async fn latency(url: &str, n: usize, ca: &str) -> Result<(), String> {
    for name in ["new-connection", "reqwest", "wirecore"] {
        let peer = latency_peer(name, ca)?;
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            peer.get(url).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        print_ms(name, "sequential", &ms);
        drop(peer);

        let peer = latency_peer(name, ca)?;
        let start = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..n {
            let (peer, url) = (peer.clone(), url.to_owned());
            set.spawn(async move {
                peer.get(&url).await?;
                Ok::<_, String>(start.elapsed().as_secs_f64() * 1e3)
            });
        }
        let mut ms = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            ms.push(r.map_err(|e| e.to_string())??);
        }
        print_ms(name, "concurrent", &ms);
    }
    Ok(())
}

async fn bulk(url: &str, ca: &str) -> Result<(), String> {
    let small = 65_535;
    // A 64 KiB window moves 640 KB/s over 100 ms: longer than the default 30 s total timeout.
    let long = serde_json::json!({"total_ms": 600_000});
    let peers = [
        (
            "wirecore",
            wirecore(ca, serde_json::json!({"timeouts": long}))?,
        ),
        (
            "wirecore-64KiB-window",
            wirecore(
                ca,
                serde_json::json!({"timeouts": long,
                                   "http2": {"initial_stream_window_bytes": small,
                                             "initial_connection_window_bytes": small}}),
            )?,
        ),
        (
            "reqwest-64KiB-window",
            reqwest_with(ca, |b| {
                b.http2_initial_stream_window_size(small)
                    .http2_initial_connection_window_size(small)
            })?,
        ),
    ];
    for (name, peer) in peers {
        let t = Instant::now();
        let n = peer.get(url).await?;
        println!("bulk {name} {n} {:.3}", t.elapsed().as_secs_f64());
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = async {
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["latency", url, n, ca] => {
                let ca = std::fs::read_to_string(ca).map_err(|e| format!("{ca}: {e}"))?;
                latency(url, n.parse().map_err(|_| "N: a number")?, &ca).await
            }
            ["bulk", url, ca] => {
                let ca = std::fs::read_to_string(ca).map_err(|e| format!("{ca}: {e}"))?;
                bulk(url, &ca).await
            }
            _ => Err("usage: wan latency URL N CA_PEM | wan bulk URL CA_PEM".into()),
        }
    };
    match tokio::time::timeout(Duration::from_mins(10), run).await {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("wan: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("wan: over 600 s");
            std::process::ExitCode::FAILURE
        }
    }
}

//! The Rust worker of the soak (bench/soak/soak.py).
//!
//! ```text
//! soak-worker SECONDS (BASE_URL CONFIG_JSON)...
//! ```
//!
//! Until SECONDS pass it builds a client from the next pair, sends 40 mixed requests 4 at a time
//! through it and closes it. Prints `err START_MS END_MS CODE` per failed request and
//! `tick NOW_MS OK ERR GAUGE` about once a second (GAUGE: tokio tasks alive).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use wirecore::{Client, Config, Method};

const PATHS: [&str; 4] = ["/bytes/1024", "/bytes/65536", "/echo", "/json"];

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    err: AtomicU64,
}

async fn one(client: &Client, base: &str, i: usize, counts: &Counts) {
    let path = PATHS[i % PATHS.len()];
    let start = now_ms();
    let req = if path == "/echo" {
        client
            .request(Method::POST, &format!("{base}{path}"))
            .body(vec![b'x'; 4096])
    } else {
        client.request(Method::GET, &format!("{base}{path}"))
    };
    let code = match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.bytes().await {
                Ok(_) if status == 200 => None,
                Ok(_) => Some(format!("status_{status}")),
                Err(e) => Some(e.code().to_owned()),
            }
        }
        Err(e) => Some(e.code().to_owned()),
    };
    match code {
        None => counts.ok.fetch_add(1, Ordering::Relaxed),
        Some(code) => {
            println!("err {start} {} {code}", now_ms());
            counts.err.fetch_add(1, Ordering::Relaxed)
        }
    };
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = args.first().and_then(|s| s.parse::<f64>().ok());
    let (Some(seconds), true) = (seconds, args.len() >= 3 && args.len() % 2 == 1) else {
        eprintln!("usage: soak-worker SECONDS (BASE_URL CONFIG_JSON)...");
        return std::process::ExitCode::from(2);
    };
    let kinds: Vec<(String, Config)> = match args[1..]
        .chunks(2)
        .map(|p| Config::from_json(&p[1]).map(|c| (p[0].clone(), c)))
        .collect()
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("soak-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let counts = Arc::new(Counts::default());
    let ticker = {
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let tasks = tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks();
                println!(
                    "tick {} {} {} {tasks}",
                    now_ms(),
                    counts.ok.load(Ordering::Relaxed),
                    counts.err.load(Ordering::Relaxed)
                );
            }
        })
    };
    let mut n = 0;
    while Instant::now() < deadline {
        let (base, config) = &kinds[n % kinds.len()];
        let client = match Client::from_config(config.clone()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("soak-worker: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let (client, base, counts) = (client.clone(), base.clone(), Arc::clone(&counts));
                tokio::spawn(async move {
                    for i in n + 10 * t..n + 10 * t + 10 {
                        one(&client, &base, i, &counts).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        client.close(Duration::from_secs(5)).await;
        n += 1;
    }
    ticker.abort();
    std::process::ExitCode::SUCCESS
}

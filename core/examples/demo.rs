//! `make demo`: starts the test server, sends a mixed burst (h1, h2, gzip, a slow one, a failing
//! one) through one client, and prints the stats snapshot and Prometheus text.
#![expect(clippy::print_stdout, reason = "a demo prints")]

use std::time::Duration;

use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let srv = TestServer::start(Options::default()).await?;
    let mut cfg = Config::default();
    cfg.tls.extra_ca_pem.push(srv.ca_pem().to_owned());
    cfg.timeouts.total_ms = 2_000;
    let client = Client::from_config(cfg)?;

    let mut jobs = Vec::new();
    for i in 0..40 {
        let c = client.clone();
        let url = match i % 4 {
            0 => srv.url("/bytes/1024"),
            1 => srv.tls_url("/json"),
            2 => srv.url("/gzip?size=20000"),
            _ => srv.tls_url("/bytes/4096"),
        };
        jobs.push(tokio::spawn(async move {
            let r = c.get(&url).send().await?;
            let v = r.version();
            let n = r.bytes().await?.len();
            Ok::<_, wirecore::Error>((v, n))
        }));
    }
    let slow = client.get(&srv.url("/delay/300")).send();
    let failing = client
        .get(&srv.url("/delay/5000"))
        .timeout(Duration::from_millis(200))
        .send();
    let (slow, failing) = tokio::join!(slow, failing);
    let mut ok = 0;
    for j in jobs {
        if j.await?.is_ok() {
            ok += 1;
        }
    }
    println!("burst: {ok}/40 ok");
    println!("slow:    {}", slow?.status());
    match failing {
        Ok(r) => println!("failing: unexpectedly {}", r.status()),
        Err(e) => println!("failing: {} [{}]", e, e.code()),
    }
    println!(
        "\n== stats ==\n{}",
        serde_json_pretty(&client.stats().to_json())
    );
    println!("\n== diagnostics ==\n{}", client.diagnostics());
    println!("== prometheus ==\n{}", client.prometheus());
    client.close(Duration::from_secs(1)).await;
    Ok(())
}

fn serde_json_pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

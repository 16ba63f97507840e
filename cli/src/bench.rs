//! `wirecore bench`: arguments, checked before any I/O; the run (load.rs), live progress
//! (progress.rs), the report (report.rs) and the plot (plot.rs).

mod load;
mod plot;
mod progress;
mod report;
mod series;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use wirecore::{Client, Config, HeaderMap, Request, Version};

use crate::units::parse_duration;
use load::{Limit, Plan, Target};
use report::Report;

const EXAMPLES: &str = "\
Examples:
  wirecore bench -c 64 -d 10s http://127.0.0.1:8080/
      closed loop: 64 requests in flight for 10 seconds
  wirecore bench -n 10000 -c 16 --h2 --cacert ca.pem https://localhost:8443/json
      10,000 requests over HTTP/2 (TLS, ALPN), trusting a private CA
  wirecore bench --rate 500 -d 30s -c 200 --json http://127.0.0.1:8080/ > after.json
      open loop: 500 requests/s whatever the latency; latencies from each scheduled start
  wirecore bench -m POST -H 'content-type: application/json' --body '{\"a\":1}' http://127.0.0.1:8080/echo
  wirecore bench --plot out.svg http://a:8080/ http://b:8080/
      two URLs taken in turn; an SVG plot of latency and throughput
  wirecore bench --config wirecore.json http://api/users
      engine config from a file (pool, retries, breakers, ...); `api` may be one of its
      load-balanced `services`
  wirecore bench --compare before.json after.json
      ratios of two --json reports

Ctrl-C stops the run and prints the report of what finished (exit status 130).";

/// Load-test URLs through the wirecore engine.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[expect(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
pub struct BenchArgs {
    /// URLs to load; several are taken in turn.
    #[arg(value_name = "URL", required_unless_present = "compare")]
    urls: Vec<String>,

    /// Send this many requests (instead of running for a duration).
    #[arg(short = 'n', long = "requests", value_name = "N", conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Run this long: 10s, 500ms, 2m [default: 10s].
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Requests in flight at once (with --rate: at most).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,

    /// Open loop: start this many requests per second whatever the latency; latencies count
    /// from each request's scheduled start (no coordinated omission).
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    rate: Option<f64>,

    /// HTTP/1.1 only.
    #[arg(long, conflicts_with_all = ["h2", "h2c"])]
    h1: bool,

    /// HTTP/2 over TLS (offered in ALPN; https:// URLs).
    #[arg(long, conflicts_with = "h2c")]
    h2: bool,

    /// HTTP/2 over cleartext with prior knowledge (http:// URLs).
    #[arg(long)]
    h2c: bool,

    /// Request method.
    #[arg(short = 'm', long, value_name = "METHOD", default_value = "GET")]
    method: String,

    /// Request header, repeatable: -H 'accept: application/json'.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Request body text.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    body: Option<String>,

    /// Request body from a file (read once).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,

    /// Engine config, a wirecore JSON config file (pool, timeouts, retries, breakers, services);
    /// laid over the bench's pool sizing.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Accept any server certificate (self-signed test servers only).
    #[arg(short = 'k', long)]
    insecure: bool,

    /// Trust this CA certificate (PEM file); repeatable.
    #[arg(long, value_name = "FILE")]
    cacert: Vec<PathBuf>,

    /// Warm up first, unmeasured: a duration (2s) or a request count (500).
    #[arg(long, value_name = "DURATION|N", value_parser = parse_warmup)]
    warmup: Option<Limit>,

    /// Per-request timeout (overrides the config's timeouts.total_ms).
    #[arg(short = 't', long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Write an SVG plot: latency histogram, latency and req/s over time.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Compare two --json reports (before, after) and exit.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"], conflicts_with = "urls")]
    compare: Option<Vec<PathBuf>>,

    /// No live progress on stderr.
    #[arg(long)]
    no_progress: bool,

    /// Runtime worker threads [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 10_000_000.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: give requests per second, e.g. --rate 1000"
        )),
    }
}

fn parse_warmup(s: &str) -> Result<Limit, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Limit::Requests(n));
    }
    parse_duration(s).map(Limit::Duration)
}

/// Runs the subcommand; `Err` is a one-line message for the user.
pub fn main(args: &BenchArgs) -> Result<ExitCode, String> {
    if let Some(files) = &args.compare {
        let read = |p: &PathBuf| -> Result<Report, String> {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("--compare {}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "--compare {}: not a `wirecore bench --json` report: {e}",
                    p.display()
                )
            })
        };
        let (a, b) = (read(&files[0])?, read(&files[1])?);
        print!("{}", report::compare(&a, &b));
        return Ok(ExitCode::SUCCESS);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(usize::from(n));
    }
    let rt = rt
        .enable_all()
        .thread_name("wirecore-bench")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The client is built inside the bench's runtime, so the engine (its connection tasks, its
    // timers) runs on these threads: built outside, it took the engine's own runtime (one
    // thread per core), and every request crossed threads twice whatever `--threads` said.
    let setup = {
        let _in_runtime = rt.enter();
        prepare(args)?
    };
    rt.block_on(run(args, setup))
}

/// What `prepare` checked and built, before any I/O.
struct Setup {
    plan: Arc<Plan>,
    report: Report,
}

fn prepare(args: &BenchArgs) -> Result<Setup, String> {
    let method =
        wirecore::parse_method(&args.method).map_err(|e| format!("-m {}: {e}", args.method))?;
    for url in &args.urls {
        let uri = wirecore::parse_url(url)
            .map_err(|e| format!("{e} (give a full URL such as http://127.0.0.1:8080/)"))?;
        let https = uri.scheme_str() == Some("https");
        if args.h2 && !https {
            return Err(format!(
                "--h2 is HTTP/2 over TLS, but {url} is http://: use --h2c for cleartext HTTP/2"
            ));
        }
        if args.h2c && https {
            return Err(format!(
                "--h2c is cleartext HTTP/2, but {url} is https://: use --h2 for HTTP/2 over TLS"
            ));
        }
    }
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| {
            format!("-H {h:?}: expected NAME: VALUE, e.g. -H 'accept: application/json'")
        })?;
        let (name, value) = wirecore::parse_header(name.trim(), value.trim())
            .map_err(|e| format!("-H {h:?}: {e}"))?;
        headers.append(name, value);
    }
    let body = match (&args.body, &args.body_file) {
        (Some(text), _) => Some(Bytes::from(text.clone())),
        (None, Some(path)) => {
            Some(Bytes::from(std::fs::read(path).map_err(|e| {
                format!("--body-file {}: {e}", path.display())
            })?))
        }
        (None, None) => None,
    };
    let mut cfg = bench_defaults(args.concurrency, args.urls.len());
    if let Some(path) = &args.config {
        let named = |e: &dyn std::fmt::Display| format!("--config {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| named(&e))?;
        // Checked on its own first, so errors name the file's keys; then laid over the
        // bench's pool sizing, so only what the file sets changes.
        Config::from_json(&text).map_err(|e| named(&e))?;
        let theirs: serde_json::Value = serde_json::from_str(&text).map_err(|e| named(&e))?;
        let mut ours = serde_json::to_value(&cfg).map_err(|e| named(&e))?;
        overlay(&mut ours, theirs);
        cfg = Config::from_value(ours).map_err(|e| named(&e))?;
    }
    if args.h1 {
        cfg.http2.enabled = false;
        cfg.http2.prior_knowledge = false;
    }
    if args.h2 {
        cfg.http2.enabled = true;
    }
    if args.h2c {
        cfg.http2.prior_knowledge = true;
    }
    if args.insecure {
        cfg.tls.danger_accept_invalid_certs = true;
    }
    for ca in &args.cacert {
        let pem =
            std::fs::read_to_string(ca).map_err(|e| format!("--cacert {}: {e}", ca.display()))?;
        cfg.tls.extra_ca_pem.push(pem);
    }
    if let Some(t) = args.timeout {
        cfg.timeouts.total_ms = t.as_millis().try_into().unwrap_or(u64::MAX).max(1);
    }
    if let Some(plot) = &args.plot {
        let parent = plot.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|p| !p.is_dir()) {
            return Err(format!(
                "--plot {}: its directory does not exist",
                plot.display()
            ));
        }
    }
    let client = Client::from_config(cfg).map_err(|e| format!("engine config: {e}"))?;
    let limit = match (args.requests, args.duration) {
        (Some(n), _) => Limit::Requests(n),
        (None, Some(d)) => Limit::Duration(d),
        (None, None) => Limit::Duration(Duration::from_secs(10)),
    };
    let targets = args
        .urls
        .iter()
        .map(|url| Target {
            method: method.clone(),
            url: url.clone(),
            uri: Request::new(method.clone(), url)
                .ok()
                .map(|r| r.uri().clone()),
            headers: headers.clone(),
            body: body.clone(),
        })
        .collect();
    let report = Report {
        urls: args.urls.clone(),
        method: method.to_string(),
        protocol: match (args.h1, args.h2, args.h2c) {
            (true, _, _) => "h1",
            (_, true, _) => "h2",
            (_, _, true) => "h2c",
            _ => "auto",
        }
        .to_owned(),
        concurrency: u64::from(args.concurrency),
        rate: args.rate,
        limit: match limit {
            Limit::Requests(n) => format!("{n} requests"),
            Limit::Duration(d) => format!("{:.3}s", d.as_secs_f64()),
        },
        ..Report::default()
    };
    Ok(Setup {
        plan: Arc::new(Plan {
            client,
            targets,
            concurrency: args.concurrency as usize,
            limit,
            rate: args.rate,
        }),
        report,
    })
}

/// The engine's defaults, with room for every worker's connection (HTTP/1.1 needs one each).
fn bench_defaults(concurrency: u32, urls: usize) -> Config {
    let mut cfg = Config::default();
    let c = concurrency as usize;
    cfg.pool.max_connections_per_host = c.max(cfg.pool.max_connections_per_host);
    cfg.pool.max_idle_per_host = c.max(cfg.pool.max_idle_per_host);
    cfg.pool.max_connections = (c * urls.max(1)).max(cfg.pool.max_connections);
    cfg
}

/// Lays `top` over `base`: objects merge key by key, anything else replaces.
fn overlay(base: &mut serde_json::Value, top: serde_json::Value) {
    match (base, top) {
        (serde_json::Value::Object(b), serde_json::Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

async fn run(args: &BenchArgs, setup: Setup) -> Result<ExitCode, String> {
    let Setup { plan, mut report } = setup;
    let progress_on = !args.no_progress;
    if let Some(w) = args.warmup {
        if progress_on {
            eprintln!("wirecore bench: warming up ({})", describe(w));
        }
        load::warm_up(&plan, w).await;
    }
    let before = plan.client.stats();
    let run = load::start(&plan);
    let shared = run.shared.clone();
    let sigint = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.interrupted.store(true, Relaxed);
                shared.stop();
            }
        })
    };
    let progress = progress_on.then(|| {
        progress::Progress::start(shared.clone(), plan.limit, std::io::stderr().is_terminal())
    });
    let (wall, rec) = run.finish().await;
    sigint.abort();
    if let Some(p) = progress {
        p.finish();
    }
    let after = plan.client.stats();
    report.interrupted = shared.interrupted.load(Relaxed);
    report.cancelled = shared.cancelled.load(Relaxed);
    report.measure(&rec, wall.as_secs_f64());
    report.connections.opened = after.pool.connects.saturating_sub(before.pool.connects);
    report.connections.reused = after.pool.reuses.saturating_sub(before.pool.reuses);
    report.bytes.received = after.bytes_received.saturating_sub(before.bytes_received);
    report.bytes.sent = after.bytes_sent.saturating_sub(before.bytes_sent);
    plan.client.close(Duration::from_secs(1)).await;

    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.text(Some(&rec.hist)));
    }
    let wanted = if args.h2 || args.h2c {
        Some(Version::HTTP_2)
    } else if args.h1 {
        Some(Version::HTTP_11)
    } else {
        None
    };
    if let Some(v) = wanted {
        let name = load::version_name(v);
        let other: u64 = report
            .versions
            .iter()
            .filter(|(k, _)| k.as_str() != name)
            .map(|(_, n)| n)
            .sum();
        if other > 0 {
            eprintln!(
                "wirecore bench: warning: {other} responses were not {name}: the server did not agree to it"
            );
        }
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::svg(&report))
            .map_err(|e| format!("--plot {}: {e}", path.display()))?;
        if !args.json {
            println!("\nPlot written to {}", path.display());
        }
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(l: Limit) -> String {
    match l {
        Limit::Requests(n) => format!("{n} requests"),
        Limit::Duration(d) => format!("{:.1}s", d.as_secs_f64()),
    }
}

//! Core benchmark: wirecore's `Client` vs reqwest vs hyper-util's legacy client, GET of 1 KiB
//! over HTTP/1.1 (plain) and HTTP/2 (TLS, ALPN), at several concurrencies, on one loopback test
//! server in a child process. Peers run interleaved, one at a time, in this process; results
//! are ratios measured in the same run. `bash bench/run-core.sh` builds and runs it.

mod ceiling;
mod load;
mod peers;
mod report;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::Version;

use crate::load::Sample;
use crate::peers::{Kind, Peer, Target};
use crate::report::{Cell, Proto, Report};

const USAGE: &str = "\
usage: wirecore-bench-core [options]
  --out PATH              write the markdown report here (always printed to stdout)
  --date TEXT             date shown in the report (default: none)
  --concurrency LIST      in-flight requests per cell (default: 1,16,64,256)
  --protocols LIST        h1,h2 (default: both)
  --warmup-secs S         warm-up per client per cell (default: 1)
  --warmup-requests N     warm up with N requests instead, however long they take (for
                          instruction counts under valgrind, where a timed warm-up's count varies)
  --warmup-concurrency N  warm up with N requests in flight (default: the cell's); 1 makes
                          hyper-util's pool open one HTTP/2 connection, as wirecore does
  --round-secs S          time limit of one measured round (default: 1)
  --rounds N              measured rounds per client per cell, interleaved (default: 3)
  --max-requests N        measured requests per client per cell, over all rounds (default: 20000)
  --server-threads N      test server worker threads (default: 1)
  --server-cpus LIST      run the server under `taskset -c LIST`
  --client-threads N      client runtime worker threads (default: CPUs this process may use)
  --clients LIST          wirecore,reqwest,hyper (default: all)
  --wirecore-config JSON  wirecore's config (default: {}, every default)
  --no-ceiling            skip wrk / h2load
  --serve                 (internal) be the test server";

#[derive(Debug)]
struct Args {
    out: Option<String>,
    date: Option<String>,
    concurrency: Vec<usize>,
    protocols: Vec<Proto>,
    warmup: Duration,
    warmup_requests: Option<u64>,
    warmup_concurrency: Option<usize>,
    round: Duration,
    rounds: u32,
    max_requests: u64,
    server_threads: usize,
    server_cpus: Option<String>,
    client_threads: usize,
    clients: Vec<Kind>,
    wirecore_config: wirecore::Config,
    wirecore_config_json: String,
    ceiling: bool,
    serve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        out: None,
        date: None,
        concurrency: vec![1, 16, 64, 256],
        protocols: vec![Proto::H1, Proto::H2],
        warmup: Duration::from_secs(1),
        warmup_requests: None,
        warmup_concurrency: None,
        round: Duration::from_secs(1),
        rounds: 3,
        max_requests: 20_000,
        server_threads: 1,
        server_cpus: None,
        client_threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        clients: Kind::ALL.to_vec(),
        wirecore_config: wirecore::Config::default(),
        wirecore_config_json: "{}".into(),
        ceiling: true,
        serve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        let secs = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{v}: not a positive number of seconds"))
        };
        match flag.as_str() {
            "--out" => a.out = Some(value()?),
            "--date" => a.date = Some(value()?),
            "--concurrency" => {
                a.concurrency = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().map_err(|e| format!("{s}: {e}")))
                    .collect::<Result<_, _>>()?;
                if a.concurrency.contains(&0) {
                    return Err("--concurrency: 0 is not a concurrency".into());
                }
            }
            "--protocols" => {
                a.protocols = value()?
                    .split(',')
                    .map(|s| match s.trim() {
                        "h1" => Ok(Proto::H1),
                        "h2" => Ok(Proto::H2),
                        o => Err(format!("--protocols: unknown {o:?} (h1, h2)")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--warmup-secs" => a.warmup = secs(value()?)?,
            "--warmup-requests" => a.warmup_requests = Some(num(value()?)?),
            "--warmup-concurrency" => {
                a.warmup_concurrency = Some(num(value()?)?.max(1) as usize);
            }
            "--round-secs" => a.round = secs(value()?)?,
            "--rounds" => a.rounds = u32::try_from(num(value()?)?.max(1)).unwrap_or(u32::MAX),
            "--max-requests" => a.max_requests = num(value()?)?.max(1),
            "--server-threads" => a.server_threads = num(value()?)?.max(1) as usize,
            "--server-cpus" => a.server_cpus = Some(value()?),
            "--client-threads" => a.client_threads = num(value()?)?.max(1) as usize,
            "--clients" => {
                a.clients = value()?
                    .split(',')
                    .map(|s| match s.trim() {
                        "wirecore" => Ok(Kind::Wirecore),
                        "reqwest" => Ok(Kind::Reqwest),
                        "hyper" => Ok(Kind::Hyper),
                        o => Err(format!(
                            "--clients: unknown {o:?} (wirecore, reqwest, hyper)"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--wirecore-config" => {
                let json = value()?;
                a.wirecore_config = wirecore::Config::from_json(&json)
                    .map_err(|e| format!("--wirecore-config: {e}"))?;
                a.wirecore_config_json = json;
            }
            "--no-ceiling" => a.ceiling = false,
            "--serve" => a.serve = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("wirecore-bench-core: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let res = if args.serve {
        server::serve(args.server_threads)
    } else {
        run(&args)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirecore-bench-core: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    peers::install_default_provider();
    let server = server::Server::spawn(args.server_threads, args.server_cpus.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut report = Report::new(
        args.date.clone(),
        std::env::args().collect::<Vec<_>>().join(" "),
        args.client_threads,
        args.server_threads,
        args.server_cpus.clone(),
        args.wirecore_config_json.clone(),
    );
    report.harness_us = harness_cost(&rt);
    report.future_bytes = future_sizes(&rt, &server.ca_pem)?;
    for &proto in &args.protocols {
        let (base, version) = match proto {
            Proto::H1 => (&server.http, Version::HTTP_11),
            Proto::H2 => (&server.https, Version::HTTP_2),
        };
        let url = format!("{base}/bytes/1024");
        let target = Arc::new(Target {
            uri: url.parse().map_err(|e| format!("{url}: {e}"))?,
            url,
            version,
            body_len: 1024,
        });
        for &c in &args.concurrency {
            eprintln!("bench: {} C={c}", proto.name());
            bench_cell(&rt, &server, args, &target, proto, c, &mut report)?;
        }
    }
    report.peak_rss_kib = load::rss_kib();
    drop(rt);
    drop(server);
    let text = report.markdown();
    print!("{text}");
    if let Some(out) = &args.out {
        if let Some(dir) = std::path::Path::new(out).parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(out, &text).map_err(|e| format!("{out}: {e}"))?;
        eprintln!("bench: wrote {out}");
    }
    Ok(())
}

/// Measures every client at one protocol and concurrency, then the ceiling tool.
fn bench_cell(
    rt: &tokio::runtime::Runtime,
    server: &server::Server,
    args: &Args,
    target: &Arc<Target>,
    proto: Proto,
    c: usize,
    report: &mut Report,
) -> Result<(), String> {
    let per_round = args.max_requests.div_ceil(u64::from(args.rounds));
    let mut cells = Vec::new();
    {
        let _enter = rt.enter();
        for &kind in &args.clients {
            cells.push((
                Peer::new(kind, &server.ca_pem, &args.wirecore_config)?,
                Cell::new(proto, c, kind),
            ));
        }
    }
    // Warm-up: connections, TLS sessions, DNS caches, allocator; its connects are counted.
    for (peer, cell) in &mut cells {
        let before = server.counters()?.connections_accepted;
        let (max, dur) = match args.warmup_requests {
            Some(n) => (n, Duration::from_hours(24)),
            None => (u64::MAX, args.warmup),
        };
        let wc = args.warmup_concurrency.unwrap_or(c);
        let s = rt.block_on(load::drive(peer, target, wc, max, dur));
        cell.note_warmup(&s);
        cell.conns += server.counters()?.connections_accepted - before;
    }
    for round in 0..args.rounds as usize {
        // Rotate who goes first, so drift in the machine's load spreads evenly.
        for i in 0..cells.len() {
            let n = cells.len();
            let (peer, cell) = &mut cells[(i + round) % n];
            let before = server.counters()?.connections_accepted;
            let s = rt.block_on(load::drive(peer, target, c, per_round, args.round));
            cell.conns += server.counters()?.connections_accepted - before;
            cell.rss_kib = cell.rss_kib.max(load::rss_kib());
            cell.measured.add(&s);
        }
    }
    for (peer, mut cell) in cells {
        if let Peer::Wirecore(client) = &peer {
            let p = client.stats().pool;
            let e = &p.evictions;
            cell.pool_note = Some(format!(
                "connects {}, reuses {}, evicted idle {} / lifetime {} / error {} / closed by peer {}, \
                 h2 sessions open {}",
                p.connects, p.reuses, e.idle, e.lifetime, e.error, e.closed_by_peer, p.h2_sessions
            ));
        }
        drop(peer);
        report.cells.push(cell);
    }
    // Let dropped pools close their connections before the next cell.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    if !args.ceiling {
        return Ok(());
    }
    let url = &target.url;
    let r = match proto {
        Proto::H1 if ceiling::available("wrk") => Some(ceiling::wrk(
            url,
            c,
            args.round.as_secs().max(1) * u64::from(args.rounds),
        )),
        Proto::H2 if ceiling::available("h2load") => {
            Some(ceiling::h2load(url, c, args.max_requests))
        }
        _ => None,
    };
    match r {
        Some(Ok(x)) => report.ceilings.push((proto, c, x)),
        Some(Err(e)) => eprintln!("bench: ceiling {} C={c}: {e}", proto.name()),
        None => {}
    }
    Ok(())
}

/// CPU-µs per request of the harness alone (no I/O), at 64 in flight.
fn harness_cost(rt: &tokio::runtime::Runtime) -> f64 {
    let target = Arc::new(Target {
        url: String::new(),
        uri: http::Uri::from_static("http://127.0.0.1/"),
        version: Version::HTTP_11,
        body_len: 1024,
    });
    let s: Sample = rt.block_on(load::drive(
        &Peer::Null,
        &target,
        64,
        200_000,
        Duration::from_secs(5),
    ));
    s.cpu_us_per_req()
}

/// Bytes of the future each client's `send()` returns (moved, and partly copied, per request).
fn future_sizes(rt: &tokio::runtime::Runtime, ca_pem: &str) -> Result<Vec<(Kind, usize)>, String> {
    let _enter = rt.enter();
    let url = "http://127.0.0.1:9/";
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let size = match Peer::new(kind, ca_pem, &wirecore::Config::default())? {
            Peer::Wirecore(c) => std::mem::size_of_val(&c.get(url).send()),
            Peer::Reqwest(c) => std::mem::size_of_val(&c.get(url).send()),
            Peer::Hyper(c) => {
                let req = http::Request::get(url)
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .map_err(|e| e.to_string())?;
                std::mem::size_of_val(&c.request(req))
            }
            Peer::Null => 0,
        };
        out.push((kind, size));
    }
    Ok(out)
}

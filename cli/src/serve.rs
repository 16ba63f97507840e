//! `wirecore serve`: the test server's code as a standalone server ([`Site`]): arguments,
//! startup line, and the drain on SIGTERM/SIGINT.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use wirecore_testserver::{Site, SiteOptions, SiteTls};

use crate::units::parse_duration;

const EXAMPLES: &str = "\
Examples:
  wirecore serve --dir ./public
      files on http://127.0.0.1:8080 (HTTP/1.1 and h2c), plus the test endpoints
  wirecore serve --listen 0.0.0.0:8443 --tls --dir ./public
      TLS with a generated certificate (its CA is printed); HTTP/2 by ALPN
  wirecore serve --tls-cert cert.pem --tls-key key.pem --cache-control 'public, max-age=300'
  wirecore serve --listen 127.0.0.1:0 --no-endpoints --dir ./site
      any free port, files only

Endpoints (unless --no-endpoints): /json, /bytes/N, /status/N, /delay/MS, /stream, /sse,
/drip, /echo, /headers, /upload, /redirect/N, /etag, /gzip, /br, /zstd, /reset, /hang, ...
(tests/server/README.md). Always: /healthz (503 while draining) and /metrics (Prometheus).

Prints one JSON line on stdout when ready: {\"url\",\"addr\",\"tls\",\"ca\",\"h2c\",...}.
SIGTERM or SIGINT: stop accepting, let in-flight requests finish (up to --drain-timeout),
then exit; a second signal exits at once.";

/// Serve static files and the test endpoints over HTTP/1.1 and HTTP/2.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// TLS with a generated certificate (localhost, 127.0.0.1, ::1 and the listen address).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: bool,

    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve files from this directory (before the endpoints).
    #[arg(short, long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Index file for directory paths; repeatable.
    #[arg(long, value_name = "NAME", default_value = "index.html")]
    index: Vec<String>,

    /// Cache-Control of file responses ("" for none).
    #[arg(long, value_name = "VALUE", default_value = "no-cache")]
    cache_control: String,

    /// Do not compress responses (zstd, br, gzip by Accept-Encoding otherwise).
    #[arg(long)]
    no_compress: bool,

    /// Serve only files, /healthz and /metrics.
    #[arg(long)]
    no_endpoints: bool,

    /// Time to receive a request's headers (and the TLS handshake).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,

    /// Time to receive a request body (then 408).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    read_timeout: Duration,

    /// Time a response write may stay blocked on a client that does not read.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    write_timeout: Duration,

    /// Close connections without a request for this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Largest request head in bytes (431 beyond it); at least 8192.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(8192..=16_777_216))]
    max_header_bytes: u32,

    /// HTTP/2 streams per connection.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_streams: u32,

    /// On SIGTERM/SIGINT, wait this long for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,

    /// Shell command run when a drain starts (e.g. deregister from a load balancer).
    #[arg(long, value_name = "COMMAND")]
    on_shutdown: Option<String>,

    /// Runtime worker threads [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// Runs the subcommand; `Err` is a one-line message for the user.
pub fn main(args: ServeArgs) -> Result<ExitCode, String> {
    if let Some(dir) = &args.dir
        && !dir.is_dir()
    {
        return Err(format!(
            "--dir {}: not a directory (give the folder to serve)",
            dir.display()
        ));
    }
    for (flag, path) in [("--tls-cert", &args.tls_cert), ("--tls-key", &args.tls_key)] {
        if let Some(p) = path
            && !p.is_file()
        {
            return Err(format!("{flag} {}: no such file", p.display()));
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(SiteTls::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ if args.tls => Some(SiteTls::Generate),
        _ => None,
    };
    let opts = SiteOptions {
        listen: args.listen,
        tls,
        dir: args.dir.clone(),
        index: args.index.clone(),
        cache_control: (!args.cache_control.is_empty()).then(|| args.cache_control.clone()),
        compress: !args.no_compress,
        endpoints: !args.no_endpoints,
        header_read_timeout: nonzero(args.header_timeout),
        read_timeout: nonzero(args.read_timeout),
        write_timeout: nonzero(args.write_timeout),
        idle_timeout: nonzero(args.idle_timeout),
        max_header_bytes: args.max_header_bytes as usize,
        max_concurrent_streams: Some(args.max_streams),
        ..SiteOptions::default()
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(usize::from(n));
    }
    let rt = rt
        .enable_all()
        .thread_name("wirecore-serve")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(run(opts, args.drain_timeout, args.on_shutdown))
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

async fn run(
    opts: SiteOptions,
    drain: Duration,
    on_shutdown: Option<String>,
) -> Result<ExitCode, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let site = Site::start(opts).await.map_err(|e| e.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", site.info());
        let _ = out.flush();
    }
    eprintln!(
        "wirecore serve: listening on {}{} (HTTP/1.1 and HTTP/2); Ctrl-C to stop",
        site.url(),
        site.ca_path()
            .map_or(String::new(), |p| format!(", trust CA {}", p.display()))
    );
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    eprintln!(
        "wirecore serve: {which}: draining (up to {:.1}s)",
        drain.as_secs_f64()
    );
    if let Some(cmd) = on_shutdown {
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .status()
        })
        .await;
        match status {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => eprintln!("wirecore serve: --on-shutdown exited with {s}"),
            Ok(Err(e)) => eprintln!("wirecore serve: --on-shutdown: {e}"),
            Err(e) => eprintln!("wirecore serve: --on-shutdown: {e}"),
        }
    }
    let drained = tokio::select! {
        d = site.shutdown(drain) => d,
        _ = term.recv() => return Ok(ExitCode::from(1)),
        _ = int.recv() => return Ok(ExitCode::from(1)),
    };
    eprintln!(
        "wirecore serve: drained in {:.2}s: {} requests were in flight, {} cut off, {} connections left",
        drained.took.as_secs_f64(),
        drained.in_flight_at_start,
        drained.in_flight_at_end,
        drained.connections_left
    );
    Ok(if drained.in_flight_at_end == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

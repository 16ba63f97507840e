//! `wirecore-testserver`: starts a [`TestServer`] and prints its addresses as one JSON line.
//!
//! Runs until SIGTERM/SIGINT (graceful) or, with `--exit-on-stdin-eof`, until stdin closes,
//! so a test process that dies takes the server with it.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;

use wirecore_testserver::{Options, TestServer};

const USAGE: &str = "\
usage: wirecore-testserver [options]
  --max-concurrent-streams N   HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default: unlimited)
  --no-tls                     no TLS or bad-TLS port
  --no-h1-keep-alive           close HTTP/1.1 connections after each response
  --h2-window BYTES            HTTP/2 stream and connection window (default: 4194304)
  --no-request-log             do not log requests (for benchmarks)
  --request-log-capacity N     requests kept in the log (default: 10000)
  --threads N                  runtime worker threads (default: one per core)
  --exit-on-stdin-eof          exit when stdin reaches end of file
Prints one JSON line: {\"http\",\"https\",\"bad_tls\",\"control\",\"ca\",\"dns\",\"blackhole\",\"silent\"}.";

struct Args {
    opts: Options,
    threads: Option<usize>,
    exit_on_stdin_eof: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        opts: Options {
            proxies: true,
            ..Options::default()
        },
        threads: None,
        exit_on_stdin_eof: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .and_then(|v| v.parse::<u64>().map_err(|e| format!("{name} {v}: {e}")))
        };
        match flag.as_str() {
            "--max-concurrent-streams" => {
                let n = value(&flag)?;
                args.opts.max_concurrent_streams =
                    Some(u32::try_from(n).map_err(|e| e.to_string())?);
            }
            "--h2-window" => {
                args.opts.h2_window = u32::try_from(value(&flag)?).map_err(|e| e.to_string())?;
            }
            "--request-log-capacity" => {
                args.opts.request_log_capacity =
                    usize::try_from(value(&flag)?).map_err(|e| e.to_string())?;
            }
            "--threads" => {
                args.threads = Some(usize::try_from(value(&flag)?).map_err(|e| e.to_string())?);
            }
            "--no-tls" => args.opts.tls = false,
            "--no-h1-keep-alive" => args.opts.h1_keep_alive = false,
            "--no-request-log" => args.opts.request_log_capacity = 0,
            "--exit-on-stdin-eof" => args.exit_on_stdin_eof = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("wirecore-testserver: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().thread_name("testserver").build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wirecore-testserver: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirecore-testserver: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let server = TestServer::start(args.opts).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.info())?;
        out.flush()?;
    }
    let stdin_eof = async {
        if !args.exit_on_stdin_eof {
            return std::future::pending().await;
        }
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
        // A plain thread: tokio's stdin would keep a blocking-pool thread busy anyway.
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
        let _ = eof_rx.await;
    };
    tokio::select! {
        _ = term.recv() => server.shutdown().await,
        _ = int.recv() => server.shutdown().await,
        () = stdin_eof => {}
    }
    Ok(())
}

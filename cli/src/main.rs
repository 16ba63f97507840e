//! `wirecore`: `bench` drives load through the engine (the same config as every binding);
//! `serve` runs the test server's code as a standalone h1/h2 server with static files.
#![forbid(unsafe_code)]
#![expect(clippy::print_stdout, reason = "a command prints its report")]

mod bench;
mod serve;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// HTTP load generator and server built on the wirecore engine.
#[derive(Debug, Parser)]
#[command(
    name = "wirecore",
    version,
    about,
    after_help = "Examples:\n  \
        wirecore serve --listen 127.0.0.1:8080 --dir ./public\n  \
        wirecore bench -c 64 -d 10s http://127.0.0.1:8080/index.html\n  \
        wirecore bench --rate 2000 -d 30s --json http://127.0.0.1:8080/json > after.json\n  \
        wirecore bench --compare before.json after.json\n\n\
        Run `wirecore help bench` or `wirecore help serve` for every option."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send load to one or more URLs through the engine and report latency and throughput.
    Bench(Box<bench::BenchArgs>),
    /// Serve files and the test endpoints over HTTP/1.1 and HTTP/2 (TLS or h2c).
    Serve(Box<serve::ServeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::main(&args),
        Command::Serve(args) => serve::main(*args),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("wirecore: {msg}");
            ExitCode::from(2)
        }
    }
}

//! The markdown report: per-client figures, wirecore/peer ratios, the wrk/h2load ceiling and
//! the facts of the machine the run was on.

use std::fmt::Write as _;

use crate::ceiling::Ceiling;
use crate::load::Sample;
use crate::peers::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1 (plain)",
            Proto::H2 => "HTTP/2 (TLS, ALPN)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Proto::H1 => "h1",
            Proto::H2 => "h2",
        }
    }
}

/// One client at one protocol and concurrency.
#[derive(Debug)]
pub struct Cell {
    pub proto: Proto,
    pub c: usize,
    pub kind: Kind,
    pub measured: Sample,
    pub warmup_ok: u64,
    pub warmup_errors: u64,
    /// Connections the server accepted from this client during the cell (warm-up included).
    pub conns: u64,
    /// Largest resident set of the whole process seen right after this client's rounds.
    pub rss_kib: u64,
    /// wirecore's own pool counters at the end of the cell.
    pub pool_note: Option<String>,
}

impl Cell {
    pub fn new(proto: Proto, c: usize, kind: Kind) -> Self {
        Self {
            proto,
            c,
            kind,
            measured: Sample::empty(),
            warmup_ok: 0,
            warmup_errors: 0,
            conns: 0,
            rss_kib: 0,
            pool_note: None,
        }
    }

    pub fn note_warmup(&mut self, s: &Sample) {
        self.warmup_ok += s.ok;
        self.warmup_errors += s.errors;
        if self.measured.first_error.is_none() {
            self.measured.first_error.clone_from(&s.first_error);
        }
    }
}

#[derive(Debug)]
pub struct Report {
    date: Option<String>,
    command: String,
    client_threads: usize,
    server_threads: usize,
    server_cpus: Option<String>,
    wirecore_config: String,
    pub harness_us: f64,
    pub future_bytes: Vec<(Kind, usize)>,
    pub peak_rss_kib: u64,
    pub cells: Vec<Cell>,
    pub ceilings: Vec<(Proto, usize, Ceiling)>,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

fn machine() -> (String, String, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned());
    let load = std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    (cpu, kernel, load)
}

impl Report {
    pub fn new(
        date: Option<String>,
        command: String,
        client_threads: usize,
        server_threads: usize,
        server_cpus: Option<String>,
        wirecore_config: String,
    ) -> Self {
        Self {
            date,
            command,
            client_threads,
            server_threads,
            server_cpus,
            wirecore_config,
            harness_us: 0.0,
            future_bytes: Vec::new(),
            peak_rss_kib: 0,
            cells: Vec::new(),
            ceilings: Vec::new(),
        }
    }

    fn cell(&self, proto: Proto, c: usize, kind: Kind) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|x| x.proto == proto && x.c == c && x.kind == kind)
    }

    fn ceiling(&self, proto: Proto, c: usize) -> Option<&Ceiling> {
        self.ceilings
            .iter()
            .find(|(p, n, _)| *p == proto && *n == c)
            .map(|(_, _, x)| x)
    }

    fn keys(&self) -> Vec<(Proto, usize)> {
        let mut keys: Vec<(Proto, usize)> = Vec::new();
        for x in &self.cells {
            if !keys.contains(&(x.proto, x.c)) {
                keys.push((x.proto, x.c));
            }
        }
        keys
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let (cpu, kernel, load) = machine();
        let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let _ = writeln!(
            o,
            "# Core benchmark{}\n",
            self.date
                .as_deref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "GET `/bytes/1024` from the wirecore test server (this binary in `--serve` mode, a separate process, \
             {} worker thread(s){}), closed loop with C requests in flight on one shared client. \
             Peers run one at a time in one process, interleaved: a warm-up per client, then \
             rounds in rotating order. CPU is getrusage(RUSAGE_SELF) user+sys of the client \
             process over the measured rounds, divided by the requests completed. Compare ratios \
             within this run only.\n",
            self.server_threads,
            self.server_cpus
                .as_deref()
                .map(|c| format!(", pinned to CPU {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "- command: `{}` (via `make bench` → `bash bench/run-core.sh`)",
            self.command
        );
        let _ = writeln!(
            o,
            "- machine: {} CPUs usable by the client process (`nproc`: {}), {cpu}, Linux {kernel}, load average at the end {load}",
            nproc,
            std::fs::read_to_string("/sys/devices/system/cpu/online")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "- client runtime: tokio multi-thread, {} worker thread(s); wirecore uses the caller's runtime",
            self.client_threads
        );
        let _ = writeln!(
            o,
            "- clients: wirecore {} (config `{}` + the test CA), reqwest 0.13 (rustls/ring, http2, defaults + CA), \
             hyper-util 0.1 legacy `Client` over hyper-rustls 0.27 (ring, ALPN h2/http1.1, nodelay)",
            env!("CARGO_PKG_VERSION"),
            self.wirecore_config
        );
        let _ = writeln!(
            o,
            "- harness alone (no I/O): {:.2} CPU-µs per request, included in every client's figure",
            self.harness_us
        );
        let sizes: Vec<String> = self
            .future_bytes
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let _ = writeln!(
            o,
            "- size in bytes of the future `send()` returns: {}",
            sizes.join(", ")
        );
        let _ = writeln!(
            o,
            "- peak RSS of the client process: {:.1} MiB\n",
            self.peak_rss_kib as f64 / 1024.0
        );
        self.ratios(&mut o);
        self.figures(&mut o);
        self.tail(&mut o);
        o
    }

    fn ratios(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "## Ratios wirecore / peer (rps: higher is better; CPU and p99: lower is better)\n"
        );
        let _ = writeln!(
            o,
            "| proto | C | rps ÷ reqwest | CPU ÷ reqwest | p99 ÷ reqwest | rps ÷ hyper | CPU ÷ hyper | p99 ÷ hyper | rps ÷ ceiling |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (p, c) in self.keys() {
            let Some(w) = self.cell(p, c, Kind::Wirecore) else {
                continue;
            };
            let w = &w.measured;
            let mut row = format!("| {} | {c} |", p.short());
            for k in [Kind::Reqwest, Kind::Hyper] {
                match self.cell(p, c, k) {
                    Some(x) => {
                        let x = &x.measured;
                        let _ = write!(
                            row,
                            " {} | {} | {} |",
                            ratio(w.rps(), x.rps()),
                            ratio(w.cpu_us_per_req(), x.cpu_us_per_req()),
                            ratio(w.p99_us() as f64, x.p99_us() as f64)
                        );
                    }
                    None => row.push_str(" — | — | — |"),
                }
            }
            match self.ceiling(p, c) {
                Some(x) => {
                    let _ = write!(row, " {} ({}) |", ratio(w.rps(), x.rps), x.tool);
                }
                None => row.push_str(" — |"),
            }
            let _ = writeln!(o, "{row}");
        }
    }

    fn figures(&self, o: &mut String) {
        let _ = writeln!(o, "\n## Figures\n");
        let _ = writeln!(
            o,
            "| proto | C | client | req/s | p50 µs | p99 µs | CPU-µs/req | conns opened | RSS MiB | requests | errors |"
        );
        let _ = writeln!(o, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (p, c) in self.keys() {
            for k in Kind::ALL {
                let Some(x) = self.cell(p, c, k) else {
                    continue;
                };
                let m = &x.measured;
                let _ = writeln!(
                    o,
                    "| {} | {c} | {} | {:.0} | {} | {} | {:.1} | {} | {:.1} | {} | {} |",
                    p.short(),
                    k.name(),
                    m.rps(),
                    m.p50_us(),
                    m.p99_us(),
                    m.cpu_us_per_req(),
                    x.conns,
                    x.rss_kib as f64 / 1024.0,
                    m.ok,
                    m.errors + x.warmup_errors,
                );
            }
            if let Some(x) = self.ceiling(p, c) {
                let _ = writeln!(
                    o,
                    "| {} | {c} | {} (ceiling) | {:.0} | — | {} | {:.1} | — | — | {} | 0 |",
                    p.short(),
                    x.tool,
                    x.rps,
                    x.p99_us.map_or_else(|| "—".into(), |v| v.to_string()),
                    x.cpu_us_per_req,
                    x.requests,
                );
            }
        }
    }

    fn tail(&self, o: &mut String) {
        let errors: Vec<String> = self
            .cells
            .iter()
            .filter_map(|x| {
                x.measured
                    .first_error
                    .as_ref()
                    .map(|e| format!("- {} C={} {}: {e}", x.proto.short(), x.c, x.kind.name()))
            })
            .collect();
        let pool: Vec<String> = self
            .cells
            .iter()
            .filter_map(|x| {
                x.pool_note
                    .as_ref()
                    .map(|n| format!("- {} C={}: {n}", x.proto.short(), x.c))
            })
            .collect();
        if !pool.is_empty() {
            let _ = writeln!(
                o,
                "\n## wirecore pool counters per cell (`client.stats().pool`)\n\n{}",
                pool.join("\n")
            );
        }
        if !errors.is_empty() {
            let _ = writeln!(o, "\n## First error per client\n\n{}", errors.join("\n"));
        }
        if !self.ceilings.is_empty() {
            let _ = writeln!(o, "\n## Ceiling commands\n");
            for (p, c, x) in &self.ceilings {
                let _ = writeln!(o, "- {} C={c}: `{}`", p.short(), x.command);
            }
        }
        let _ = writeln!(
            o,
            "\nNotes: conns opened counts the server's accepted connections while that client ran \
             (warm-up included); RSS is the whole client process (all clients of the cell alive), \
             sampled after each round. wrk/h2load CPU is getrusage(RUSAGE_CHILDREN) around the \
             tool; h2load runs C streams on one connection and reports no p99."
        );
    }
}

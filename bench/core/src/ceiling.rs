//! wrk (HTTP/1.1) and h2load (HTTP/2) against the same server: the ceiling a client could
//! reach. Their CPU is `RUSAGE_CHILDREN` around the run (the server child is never reaped
//! before the end, so it is not in it).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::cpu_time;

/// What a load tool reported.
#[derive(Clone, Debug)]
pub struct Ceiling {
    pub tool: &'static str,
    pub requests: u64,
    pub rps: f64,
    pub p99_us: Option<u64>,
    pub cpu_us_per_req: f64,
    pub command: String,
}

pub fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `wrk -t1 -cC -dS --latency URL`.
pub fn wrk(url: &str, c: usize, secs: u64) -> Result<Ceiling, String> {
    let args = vec![
        "-t1".to_owned(),
        format!("-c{c}"),
        format!("-d{secs}s"),
        "--latency".to_owned(),
        url.to_owned(),
    ];
    let (out, cpu) = run("wrk", &args, Duration::from_secs(secs + 20))?;
    // "  123456 requests in 3.00s, 130.00MB read" and "Requests/sec:  41152.00"
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| format!("wrk output: {out}"))?;
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("wrk output: {out}"))?;
    let p99_us = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| duration_us(v.trim()));
    if out.contains("Non-2xx") || out.contains("Socket errors") {
        return Err(format!("wrk saw errors: {out}"));
    }
    Ok(Ceiling {
        tool: "wrk",
        requests,
        rps,
        p99_us,
        cpu_us_per_req: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
        command: format!("wrk {}", args.join(" ")),
    })
}

/// `h2load -t1 -c1 -mC -nN URL`: C streams on one connection, as the clients share one.
pub fn h2load(url: &str, c: usize, n: u64) -> Result<Ceiling, String> {
    let args = vec![
        "-t1".to_owned(),
        "-c1".to_owned(),
        format!("-m{c}"),
        format!("-n{n}"),
        url.to_owned(),
    ];
    let (out, cpu) = run("h2load", &args, Duration::from_mins(1))?;
    // "finished in 1.23s, 16260.16 req/s, 17.98MB/s"
    // "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, ..."
    let rps = out
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1)?.strip_suffix(" req/s")?.parse().ok())
        .ok_or_else(|| format!("h2load output: {out}"))?;
    let succeeded = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with(" succeeded"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| format!("h2load output: {out}"))?;
    if succeeded != n || !out.contains("h2") {
        return Err(format!("h2load: {succeeded}/{n} succeeded: {out}"));
    }
    Ok(Ceiling {
        tool: "h2load",
        requests: n,
        rps,
        p99_us: None,
        cpu_us_per_req: cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
        command: format!("h2load {}", args.join(" ")),
    })
}

fn run(tool: &str, args: &[String], limit: Duration) -> Result<(String, Duration), String> {
    let cpu0 = cpu_time(libc::RUSAGE_CHILDREN);
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    let waited = std::time::Duration::from_millis(50);
    let mut spent = Duration::ZERO;
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if spent >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{tool} ran longer than {limit:?}"));
        }
        std::thread::sleep(waited);
        spent += waited;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let cpu = cpu_time(libc::RUSAGE_CHILDREN).saturating_sub(cpu0);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{tool} failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((text, cpu))
}

/// "1.23ms" / "456.00us" / "1.02s" in microseconds.
fn duration_us(s: &str) -> Option<u64> {
    let (num, mult) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| (v * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::duration_us;

    #[test]
    fn wrk_durations_convert_to_microseconds() {
        assert_eq!(duration_us("456.00us"), Some(456));
        assert_eq!(duration_us("1.23ms"), Some(1230));
        assert_eq!(duration_us("1.02s"), Some(1_020_000));
        assert_eq!(duration_us("12"), None);
    }
}

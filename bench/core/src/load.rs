//! Closed-loop load: C tasks each send the next request as soon as the last one's body is
//! read, until a request count or a deadline is reached. CPU comes from getrusage(2), which
//! covers every thread of this process (the server runs in another).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::peers::{Peer, Target};

/// What one segment (or several, merged) measured.
#[derive(Clone, Debug)]
pub struct Sample {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub wall: Duration,
    pub cpu: Duration,
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
}

pub fn histogram() -> Histogram<u64> {
    #[expect(clippy::expect_used, reason = "constant, valid bounds")]
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

impl Sample {
    pub fn empty() -> Self {
        Self {
            ok: 0,
            errors: 0,
            first_error: None,
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
            hist: histogram(),
        }
    }

    pub fn add(&mut self, o: &Sample) {
        self.ok += o.ok;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        self.wall += o.wall;
        self.cpu += o.cpu;
        let _ = self.hist.add(&o.hist);
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn cpu_us_per_req(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / (self.ok.max(1) as f64)
    }

    pub fn p50_us(&self) -> u64 {
        self.hist.value_at_quantile(0.50)
    }

    pub fn p99_us(&self) -> u64 {
        self.hist.value_at_quantile(0.99)
    }
}

/// Runs `c` loops of `peer.get(target)` until `max` requests were started or `dur` passed.
pub async fn drive(peer: &Peer, target: &Arc<Target>, c: usize, max: u64, dur: Duration) -> Sample {
    let issued = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(histogram()));
    let cpu0 = cpu_time(libc::RUSAGE_SELF);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::with_capacity(c);
    for _ in 0..c {
        let (peer, target, issued, hist) =
            (peer.clone(), target.clone(), issued.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
            while issued.fetch_add(1, Relaxed) < max {
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let res = peer.get(&target).await;
                let us = t0.elapsed().as_micros() as u64;
                match res {
                    Ok((n, v)) if n == target.body_len && v == target.version => {
                        ok += 1;
                        let _ = hist
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .record(us.max(1));
                    }
                    Ok((n, v)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("got {n} bytes over {v:?}"));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let mut s = Sample::empty();
    for t in tasks {
        match t.await {
            Ok((ok, errors, first)) => {
                s.ok += ok;
                s.errors += errors;
                if s.first_error.is_none() {
                    s.first_error = first;
                }
            }
            Err(e) => {
                s.errors += 1;
                s.first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    s.wall = start.elapsed();
    s.cpu = cpu_time(libc::RUSAGE_SELF).saturating_sub(cpu0);
    s.hist = std::mem::replace(
        &mut *hist.lock().unwrap_or_else(PoisonError::into_inner),
        histogram(),
    );
    s
}

/// User + system CPU time of this process (`RUSAGE_SELF`) or of its reaped children
/// (`RUSAGE_CHILDREN`).
#[expect(unsafe_code, reason = "getrusage(2) has no wrapper in std")]
pub fn cpu_time(who: libc::c_int) -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is writable memory of the size getrusage expects; it is read only after
    // getrusage returned success, which means it filled the struct.
    let ok = unsafe { libc::getrusage(who, ru.as_mut_ptr()) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Resident set size of this process now, in KiB (0 when /proc is unreadable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

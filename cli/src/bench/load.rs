//! The load loop: C workers share one engine client. Closed loop: each sends its next request
//! when the last one's body is read. Open loop (`--rate`): request i is due at start + i/rate;
//! a worker takes the next index when free, so a request that waits for a worker counts its
//! wait in its latency (coordinated omission corrected, as wrk2 does).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::Instant;
use wirecore::{Client, HeaderMap, Method, Request, Uri, Version};

use super::series::Series;

/// One URL with everything sent to it.
#[derive(Debug)]
pub struct Target {
    pub method: Method,
    pub url: String,
    /// `url` parsed once (sent with `Request::from_uri`); `None` when it does not parse, so
    /// every request reports the URL's error as it always did.
    pub uri: Option<Uri>,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

/// When the measured run ends.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Requests(u64),
    Duration(Duration),
}

/// What to run.
#[derive(Debug)]
pub struct Plan {
    pub client: Client,
    pub targets: Vec<Target>,
    pub concurrency: usize,
    pub limit: Limit,
    pub rate: Option<f64>,
}

/// Everything one shard of workers measured.
#[derive(Debug)]
pub struct Recorder {
    /// Latency in microseconds, to the end of the body.
    pub hist: Histogram<u64>,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    /// One message per error code, for the report.
    pub error_samples: BTreeMap<String, String>,
    pub versions: BTreeMap<String, u64>,
    pub body_bytes: u64,
    pub series: Series,
}

/// Latencies from 1 µs to one hour, three significant figures.
pub fn histogram() -> Histogram<u64> {
    #[expect(clippy::expect_used, reason = "constant, valid bounds")]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

impl Recorder {
    fn new() -> Self {
        Self {
            hist: histogram(),
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
            versions: BTreeMap::new(),
            body_bytes: 0,
            series: Series::default(),
        }
    }

    /// Folds `o` into this one.
    pub fn merge(&mut self, o: &Recorder) {
        let _ = self.hist.add(&o.hist);
        for (k, v) in &o.status {
            *self.status.entry(*k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.error_samples {
            self.error_samples
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, v) in &o.versions {
            *self.versions.entry(k.clone()).or_default() += v;
        }
        self.body_bytes += o.body_bytes;
        self.series.merge(&o.series);
    }
}

/// State the workers, the progress display and the signal handler share.
#[derive(Debug)]
pub struct Shared {
    pub start: Instant,
    /// Request indexes handed out.
    issued: AtomicU64,
    /// Requests finished (responses and errors).
    pub done: AtomicU64,
    pub errors: AtomicU64,
    /// Requests in flight when the run was stopped (dropped, not counted).
    pub cancelled: AtomicU64,
    pub interrupted: AtomicBool,
    stop: watch::Sender<bool>,
    /// Workers record into `shards[worker % len]`: few locks, little contention.
    pub shards: Vec<Mutex<Recorder>>,
}

impl Shared {
    /// Stops issuing and cancels requests in flight.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A run in progress.
#[derive(Debug)]
pub struct Run {
    pub shared: Arc<Shared>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the workers (and, for a duration, the timer that stops them).
pub fn start(plan: &Arc<Plan>) -> Run {
    let shards = std::thread::available_parallelism().map_or(4, |n| n.get() * 4);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        cancelled: AtomicU64::new(0),
        interrupted: AtomicBool::new(false),
        stop: watch::Sender::new(false),
        shards: (0..shards.min(plan.concurrency))
            .map(|_| Mutex::new(Recorder::new()))
            .collect(),
    });
    // A closed loop stops at the deadline, cancelling what is in flight. An open loop only
    // stops scheduling there: every request it started is measured (a late one is the point).
    if let Limit::Duration(d) = plan.limit
        && plan.rate.is_none()
    {
        let sh = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(sh.start + d).await;
            sh.stop();
        });
    }
    let workers = (0..plan.concurrency)
        .map(|id| tokio::spawn(worker(id, plan.clone(), shared.clone())))
        .collect();
    Run { shared, workers }
}

impl Run {
    /// Waits for every worker; returns the wall time of the run and the merged record.
    pub async fn finish(self) -> (Duration, Recorder) {
        for w in self.workers {
            let _ = w.await;
        }
        let wall = self.shared.start.elapsed();
        let mut all = Recorder::new();
        for s in &self.shared.shards {
            all.merge(&lock(s));
        }
        (wall, all)
    }
}

async fn worker(id: usize, plan: Arc<Plan>, sh: Arc<Shared>) {
    let shard = &sh.shards[id % sh.shards.len()];
    let mut stop = sh.stop.subscribe();
    // One wait for the stop, polled beside every request (a fresh one per request registered
    // and unregistered a waiter on the channel each time).
    let stopped = stop.wait_for(|s| *s);
    tokio::pin!(stopped);
    let end = match plan.limit {
        Limit::Duration(d) => Some(sh.start + d),
        Limit::Requests(_) => None,
    };
    loop {
        if *sh.stop.borrow() {
            return;
        }
        let i = sh.issued.fetch_add(1, Relaxed);
        if let Limit::Requests(n) = plan.limit
            && i >= n
        {
            return;
        }
        let due = match plan.rate {
            Some(rate) => sh.start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        if end.is_some_and(|end| due >= end) {
            return;
        }
        if plan.rate.is_some() && due > Instant::now() {
            tokio::select! {
                biased;
                _ = &mut stopped => return,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        let target = &plan.targets[(i % plan.targets.len() as u64) as usize];
        let outcome = tokio::select! {
            biased;
            r = send(&plan.client, target) => r,
            _ = &mut stopped => {
                sh.cancelled.fetch_add(1, Relaxed);
                return;
            }
        };
        let now = Instant::now();
        let us = now.saturating_duration_since(due).as_micros() as u64;
        let at = now.saturating_duration_since(sh.start);
        let mut r = lock(shard);
        match outcome {
            Ok((status, version, bytes)) => {
                let _ = r.hist.record(us.max(1));
                *r.status.entry(status).or_default() += 1;
                let name = version_name(version);
                match r.versions.get_mut(name) {
                    Some(n) => *n += 1,
                    None => {
                        r.versions.insert(name.to_owned(), 1);
                    }
                }
                r.body_bytes += bytes;
                r.series.record(at, Some(us));
            }
            Err(e) => {
                sh.errors.fetch_add(1, Relaxed);
                let code = e.code().to_owned();
                r.error_samples
                    .entry(code.clone())
                    .or_insert_with(|| e.to_string());
                *r.errors.entry(code).or_default() += 1;
                r.series.record(at, None);
            }
        }
        drop(r);
        sh.done.fetch_add(1, Relaxed);
    }
}

/// One request, its body read to the end (counted, not kept).
async fn send(client: &Client, t: &Target) -> Result<(u16, Version, u64), wirecore::Error> {
    let mut req = match &t.uri {
        Some(uri) => Request::from_uri(t.method.clone(), uri.clone())?,
        None => Request::new(t.method.clone(), &t.url)?,
    };
    req.headers_mut().clone_from(&t.headers);
    if let Some(body) = &t.body {
        *req.body_mut() = body.clone().into();
    }
    let mut resp = client.execute(req).await?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let mut n = 0;
    while let Some(chunk) = resp.chunk().await? {
        n += chunk.len() as u64;
    }
    Ok((status, version, n))
}

pub fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "other",
    }
}

/// Closed-loop warm-up with the same client: fills the pool, discards the measurements.
pub async fn warm_up(plan: &Arc<Plan>, limit: Limit) {
    let warm = Arc::new(Plan {
        client: plan.client.clone(),
        targets: plan
            .targets
            .iter()
            .map(|t| Target {
                method: t.method.clone(),
                url: t.url.clone(),
                uri: t.uri.clone(),
                headers: t.headers.clone(),
                body: t.body.clone(),
            })
            .collect(),
        concurrency: plan.concurrency,
        limit,
        rate: None,
    });
    let _ = start(&warm).finish().await;
}

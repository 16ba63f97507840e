//! Live progress on stderr: an indicatif bar on a terminal (elapsed, ETA, req/s, errors,
//! p99 of the last second), plain lines once a second otherwise.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::load::{Limit, Shared, lock};
use super::series::Bucket;
use crate::units::fmt_us;

/// A running display; [`Progress::finish`] removes the bar before the report prints.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts showing `shared`'s progress: a bar when `tty`, plain lines otherwise.
    pub fn start(shared: Arc<Shared>, limit: Limit, tty: bool) -> Self {
        let bar = tty.then(|| {
            let len = match limit {
                Limit::Requests(n) => n,
                Limit::Duration(d) => d.as_millis() as u64,
            };
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% ETA {eta:<4} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        let task = tokio::spawn(tick(shared, limit, bar.clone()));
        Self { bar, task }
    }

    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn tick(shared: Arc<Shared>, limit: Limit, bar: Option<ProgressBar>) {
    let every = if bar.is_some() {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    };
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(every).await;
        let now = Instant::now();
        let done = shared.done.load(Relaxed);
        let rps = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-6);
        last = (now, done);
        let errors = shared.errors.load(Relaxed);
        let p99 = recent_p99(&shared).map_or_else(|| "—".to_owned(), fmt_us);
        let elapsed = shared.start.elapsed();
        let msg = format!("{done} done, {rps:.0} req/s, {errors} errors, p99 {p99}");
        match &bar {
            Some(bar) => {
                let pos = match limit {
                    Limit::Requests(_) => done,
                    Limit::Duration(_) => elapsed.as_millis() as u64,
                };
                bar.set_position(pos);
                bar.set_message(msg);
            }
            None => eprintln!("[{:>6.1}s] {msg}", elapsed.as_secs_f64()),
        }
    }
}

/// p99 of the responses that finished in the last second, over every shard.
fn recent_p99(shared: &Shared) -> Option<f64> {
    let at = shared.start.elapsed();
    let mut sum = Bucket::default();
    for shard in &shared.shards {
        let r = lock(shard);
        let width = r.series.width.as_nanos().max(1);
        let to = (at.as_nanos() / width) as usize;
        let from = (at.saturating_sub(Duration::from_secs(1)).as_nanos() / width) as usize;
        for b in r.series.buckets.iter().take(to + 1).skip(from) {
            sum.add(b);
        }
    }
    sum.quantile_us(0.99)
}

//! Submission and close accounting: every operation a binding starts runs through
//! [`Tracker::spawn`], which counts it until its outcome reached the binding's sink.
//!
//! A client's close waits for its requests (including a body read along with the head) and
//! for streamed-body reads in flight, up to its deadline, while the core's own close refuses
//! new requests and closes the pool. The core counts a request only until its head arrives,
//! so without these counts a close would return while bodies are still being read.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use futures_util::future::{AbortRegistration, Abortable};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wirecore::{Error, ErrorKind};

use crate::requests::Requests;

/// What an operation is, for close accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request, up to its response and any body read with it. Refused (`closed`) once the
    /// client closes; waited for by close; cancelled when a close that drops the rest gives up.
    Request,
    /// A read of a streamed body: waited for by close, never refused or dropped.
    Read,
    /// Anything else (close itself, upload writes): not counted.
    Other,
}

/// One client's operations in flight; see the module docs.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Requests, and whether a close has begun (host threads block on it).
    requests: Requests,
    reads: AtomicUsize,
    /// Cancelled when a close that drops the rest gives up waiting.
    dropped: CancellationToken,
    /// Wakes an async close when both counts reach zero.
    idle: Notify,
}

/// One counted operation; dropping it (after the sink ran) uncounts it.
#[derive(Debug)]
pub struct Busy {
    tracker: Arc<Tracker>,
    kind: Kind,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let t = &self.tracker;
        match self.kind {
            Kind::Request => {
                if t.requests.exit() {
                    t.idle.notify_waiters();
                }
            }
            Kind::Read => {
                // Only a closing client has waiters (a close sets `closing` before it counts).
                if t.reads.fetch_sub(1, SeqCst) == 1 && t.requests.is_closing() {
                    t.idle.notify_waiters();
                }
            }
            Kind::Other => {}
        }
    }
}

fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "the request was cancelled")
}

impl Tracker {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Counts one operation of `kind` until the returned guard drops (for work a binding runs
    /// itself, such as a blocking body read on the caller's thread).
    pub fn enter(self: &Arc<Self>, kind: Kind) -> Busy {
        match kind {
            Kind::Request => self.requests.enter(),
            Kind::Read => {
                self.reads.fetch_add(1, SeqCst);
            }
            Kind::Other => {}
        }
        Busy {
            tracker: self.clone(),
            kind,
        }
    }

    /// Requests and body reads in flight.
    pub fn counts(&self) -> (usize, usize) {
        (self.requests.count(), self.reads.load(SeqCst))
    }

    /// Whether a close has begun.
    pub fn is_closing(&self) -> bool {
        self.requests.is_closing()
    }

    /// Refuses requests from now on (a binding calls it when its close is called, before the
    /// close itself runs on the engine).
    pub fn begin_close(&self) {
        self.requests.begin_close();
    }

    /// Runs `work` on the engine runtime (through [`crate::submit`]: one wake-up of the engine
    /// per batch of submissions) as one operation of `kind` and passes its outcome to
    /// `sink` exactly once, on an engine thread: the result, `internal` if it panicked,
    /// `cancelled` if `abort` (or a dropping close) stopped it, `closed` if the client was
    /// closing already (requests only). The operation counts until `sink` returned.
    pub fn spawn<T, W, S>(
        self: &Arc<Self>,
        kind: Kind,
        abort: Option<AbortRegistration>,
        work: W,
        sink: S,
    ) where
        T: Send + 'static,
        W: Future<Output = Result<T, Error>> + Send + 'static,
        S: FnOnce(Result<T, Error>) + Send + 'static,
    {
        // Boxed first: each wrapper below (the task's block, `run`, `catch_panic`, `Abortable`,
        // the select) keeps its own room for the future it wraps, and the task cell is moved
        // three times on its way into the runtime. Unboxed, the C binding's 2.1 KB request
        // future made a 12.9 KB task, copied three times by the submitting (host) thread and
        // three more at its first poll: 77 KB of memmove per request.
        let work = Box::pin(work);
        let busy = self.enter(kind);
        let refused = kind == Kind::Request && self.is_closing();
        let dropped = (kind == Kind::Request).then(|| self.dropped.clone());
        crate::submit::submit(async move {
            let r = if refused {
                Err(Error::new(ErrorKind::Closed, "the client is closed"))
            } else {
                run(work, abort, dropped).await
            };
            sink(r);
            drop(busy);
        });
    }

    /// Closes the client: refuses new requests, waits up to `deadline` for requests and body
    /// reads in flight (and for the core's own close), then, when `drop_rest`, cancels the
    /// requests still running (their sinks get `cancelled`).
    pub async fn close(&self, client: &wirecore::Client, deadline: Duration, drop_rest: bool) {
        self.begin_close();
        let until = Instant::now().checked_add(deadline);
        tokio::join!(client.close(deadline), self.idle_until(until));
        if drop_rest {
            self.dropped.cancel();
        }
    }

    /// Waits until no request or body read is in flight, or `until` passes.
    async fn idle_until(&self, until: Option<Instant>) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.counts() == (0, 0) {
                return;
            }
            match until {
                Some(at) => {
                    if tokio::time::timeout_at(at, notified).await.is_err() {
                        return;
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Blocks the calling thread until every request's sink ran. Call it after a close that
    /// dropped the rest (before, a request may run for as long as its timeouts allow).
    pub fn wait_requests(&self) {
        self.requests.wait();
    }
}

async fn run<T, W>(
    work: W,
    abort: Option<AbortRegistration>,
    dropped: Option<CancellationToken>,
) -> Result<T, Error>
where
    W: Future<Output = Result<T, Error>>,
{
    let work = wirecore::runtime::catch_panic(work);
    let work = async move {
        match abort {
            Some(reg) => Abortable::new(work, reg)
                .await
                .unwrap_or_else(|_| Err(cancelled())),
            None => work.await,
        }
    };
    match dropped {
        Some(token) => tokio::select! {
            biased;
            () = token.cancelled() => Err(Error::new(
                ErrorKind::Cancelled,
                "the client was closed before the request finished",
            )),
            r = work => r,
        },
        None => work.await,
    }
}

/// Runs `work` on the engine runtime outside any client (no counting), passing its outcome
/// (`internal` if it panicked) to `sink` exactly once.
pub fn spawn<T, W, S>(work: W, sink: S)
where
    T: Send + 'static,
    W: Future<Output = Result<T, Error>> + Send + 'static,
    S: FnOnce(Result<T, Error>) + Send + 'static,
{
    let work = Box::pin(work); // see Tracker::spawn
    crate::submit::submit(async move {
        sink(wirecore::runtime::catch_panic(work).await);
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wirecore::{Error, ErrorKind};

    use super::{Kind, Tracker};

    #[test]
    fn a_panicking_task_delivers_internal_exactly_once() {
        let t = Tracker::new();
        let (tx, rx) = std::sync::mpsc::channel();
        t.spawn(
            Kind::Request,
            None,
            async { panic!("boom") },
            move |r: Result<u8, Error>| {
                tx.send(r).expect("the test waits");
            },
        );
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("one delivery");
        assert_eq!(r.expect_err("a panic").kind(), ErrorKind::Internal);
        // The sink is gone: no second delivery can follow.
        assert!(rx.recv_timeout(Duration::from_secs(30)).is_err());
        t.begin_close();
        t.wait_requests();
        assert_eq!(t.counts(), (0, 0));
    }
}

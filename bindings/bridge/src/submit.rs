//! Submissions from host threads to the engine runtime, in batches.
//!
//! A task spawned from a thread outside the runtime wakes a parked engine worker every time
//! (tokio's remote schedule: an eventfd write on the spawning thread). Profiled on a Python
//! `AsyncClient` at C=64, that write was the largest single item of the host thread's time per
//! request. So host threads queue their tasks here instead: the submission that finds the
//! queue empty spawns one task, which spawns everything queued by then from inside the runtime
//! (a worker's own queue: no system call on the host thread), and the rest of the batch rides
//! along.
//!
//! A host thread about to submit many (a Python completer resuming a batch of tasks, a JS
//! completion batch) can also [`hold`] the wake-up until it is done: one wake-up for the whole
//! burst. A submission from another thread meanwhile wakes the engine itself, so a hold never
//! delays another thread's work.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Runtime;

use crate::batch::Batch;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One process's queue of tasks for its engine runtime.
struct Queue {
    jobs: Batch<Job>,
    /// A holding thread found the queue empty and put off the wake-up: whoever sees it next
    /// (another thread's submission, or the hold's end) wakes the engine.
    owed: AtomicBool,
    rt: Arc<Runtime>,
}

thread_local! {
    /// Nesting depth of [`hold`] on this thread.
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// The queue this thread owes a wake-up to.
    static OWES: RefCell<Option<Arc<Queue>>> = const { RefCell::new(None) };
    static CACHED: RefCell<Option<(u64, Arc<Queue>)>> = const { RefCell::new(None) };
}

/// This process's queue (a forked child gets its own, on its own runtime).
fn queue() -> Arc<Queue> {
    let g = crate::fork::generation();
    // The per-thread cache is gone while this thread's locals are destroyed: look it up then.
    CACHED
        .try_with(|slot| {
            let mut slot = slot.borrow_mut();
            match &*slot {
                Some((at, q)) if *at == g => q.clone(),
                _ => {
                    let q = shared_queue(g);
                    *slot = Some((g, q.clone()));
                    q
                }
            }
        })
        .unwrap_or_else(|_| shared_queue(g))
}

fn shared_queue(g: u64) -> Arc<Queue> {
    static ALL: Mutex<Option<(u64, Arc<Queue>)>> = Mutex::new(None);
    let mut all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
    match &*all {
        Some((at, q)) if *at == g => q.clone(),
        _ => {
            let q = Arc::new(Queue {
                jobs: Batch::default(),
                owed: AtomicBool::new(false),
                rt: crate::fork::runtime(),
            });
            *all = Some((g, q.clone()));
            q
        }
    }
}

/// Runs `job` as a task on the engine runtime, through the queue; see the module docs.
pub fn submit(job: impl Future<Output = ()> + Send + 'static) {
    let q = queue();
    let held = HELD.try_with(Cell::get).unwrap_or(0) > 0;
    if held {
        // Before the push: a submission from another thread that finds this one queued sees
        // the debt and pays it.
        q.owed.store(true, SeqCst);
    }
    let first = q.jobs.push(Box::pin(job));
    if held {
        // HELD was readable, so OWES is too (both are const-initialised, dropped together).
        let _ = OWES.try_with(|o| {
            let mut o = o.borrow_mut();
            if o.is_none() {
                *o = Some(q.clone());
            }
        });
    } else if first || q.owed.swap(false, SeqCst) {
        wake(&q);
    }
}

/// Spawns the task that moves every queued job into the runtime.
fn wake(q: &Arc<Queue>) {
    let drain = Drain {
        q: q.clone(),
        ran: false,
    };
    q.rt.spawn(async move {
        let mut drain = drain;
        drain.run();
    });
}

struct Drain {
    q: Arc<Queue>,
    ran: bool,
}

impl Drain {
    fn run(&mut self) {
        self.ran = true;
        for job in self.q.jobs.take(usize::MAX) {
            tokio::spawn(job);
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if !self.ran {
            // Dropped unpolled (the runtime shut down): drop what it would have spawned, so the
            // queue is empty and the next submission starts a batch (and a wake-up) again.
            drop(self.q.jobs.take(usize::MAX));
        }
    }
}

/// Puts off this thread's engine wake-ups until the returned guard (the outermost, when
/// nested) drops; see the module docs.
#[must_use = "the hold ends when the guard drops"]
pub fn hold() -> Hold {
    HELD.set(HELD.get() + 1);
    Hold {
        _not_send: PhantomData,
    }
}

/// See [`hold`].
#[derive(Debug)]
pub struct Hold {
    _not_send: PhantomData<*const ()>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        // A hold kept in a thread-local (Node's, between `hold` and `release`) drops while the
        // thread's locals are destroyed, at exit: these may be gone then. The debt stays on
        // the queue (`owed`), and the next submission from any thread pays it.
        let Ok(n) = HELD.try_with(|h| {
            let n = h.get().saturating_sub(1);
            h.set(n);
            n
        }) else {
            return;
        };
        if n == 0
            && let Ok(Some(q)) = OWES.try_with(RefCell::take)
            && q.owed.swap(false, SeqCst)
        {
            wake(&q);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn every_job_runs_once_held_or_not_from_many_threads() {
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let _hold = (i % 3 == 0).then(super::hold);
                        let tx = tx.clone();
                        super::submit(async move {
                            tx.send((t, i)).expect("the test waits");
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        let mut got = Vec::new();
        for _ in 0..2000 {
            got.push(
                rx.recv_timeout(Duration::from_secs(30))
                    .expect("every job runs"),
            );
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 2000);
    }

    #[test]
    fn a_hold_dropped_with_the_thread_s_locals_does_not_panic() {
        thread_local! {
            static KEPT: std::cell::RefCell<Option<super::Hold>> =
                const { std::cell::RefCell::new(None) };
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            KEPT.with_borrow_mut(|k| *k = Some(super::hold()));
            super::submit(async move {
                tx.send(()).expect("the test waits");
            });
        })
        .join()
        .expect("the thread exits without a panic in its locals' destructors");
        // Its debt is paid by the next submission from another thread.
        super::submit(async {});
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the held job ran after its thread was gone");
    }

    #[test]
    fn a_held_submission_starts_when_the_hold_ends() {
        let (tx, rx) = mpsc::channel();
        let hold = super::hold();
        let inner = super::hold();
        super::submit(async move {
            tx.send(()).expect("the test waits");
        });
        drop(inner);
        drop(hold);
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the held job ran after the hold");
    }
}

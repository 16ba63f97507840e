//! Completing asyncio futures from engine threads, without the exit-time crash.
//!
//! Engine threads never touch a future directly: they queue the outcome and, once per batch,
//! wake the loop, which runs `Completer::drain` on its own thread and builds the Python objects
//! there. The wake-up is a byte on a socket the loop watches (no GIL on engine threads at all),
//! or `call_soon_threadsafe` for loops without `add_reader`. Entering the interpreter from an
//! engine thread is counted, and the `atexit` hook [`shutdown`] sets a closing flag, then waits
//! (GIL released) until no such thread is inside, so none attaches to an interpreter that is
//! finalizing (TOOLCHAIN pitfall 1).

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use wirecore_bridge::{AbortHandle, Batch, BodySlot, INTERRUPTED, Kind, Tracker};

use crate::response::{Outcome, into_py_result};

static CLOSING: AtomicBool = AtomicBool::new(false);
static ATTACHING: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` attached to the interpreter unless it is shutting down.
pub(crate) fn with_python<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    // Count first, then check: `shutdown` sets the flag, then waits for the count.
    ATTACHING.fetch_add(1, SeqCst);
    let r = if CLOSING.load(SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    ATTACHING.fetch_sub(1, SeqCst);
    r
}

/// Called from `atexit`: no engine thread enters Python after this returns.
#[pyfunction]
#[pyo3(name = "_shutdown")]
pub(crate) fn shutdown(py: Python<'_>) {
    CLOSING.store(true, SeqCst);
    py.detach(|| {
        // At most 2 s: a thread stuck inside Python must not hang the exit.
        for _ in 0..2000 {
            if ATTACHING.load(SeqCst) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Called in a forked child: threads counted in the parent do not exist here.
#[pyfunction]
#[pyo3(name = "_after_fork")]
pub(crate) fn after_fork() {
    ATTACHING.store(0, SeqCst);
}

struct Done {
    fut: Py<PyAny>,
    outcome: Outcome,
}

/// How an engine thread tells the loop that outcomes are queued.
enum Wake {
    /// A byte on a socket the loop watches with `add_reader`: the engine thread never
    /// takes the GIL (it would wait out the loop thread's switch interval, stalling the
    /// runtime worker meanwhile).
    Socket { tx: UnixStream, rx: UnixStream },
    /// `loop.call_soon_threadsafe(drain)`, for loops without `add_reader`.
    CallSoon(Py<PyAny>),
}

struct Queue {
    items: Batch<Done>,
    wake: Wake,
}

/// One event loop's completion queue. Create it on the loop's thread.
///
/// `Completer()` wakes through a socket: register `fileno()` with `loop.add_reader(fd,
/// completer.drain)`. `Completer(loop)` wakes through `loop.call_soon_threadsafe`.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Completer {
    q: Arc<Queue>,
}

#[pymethods]
impl Completer {
    #[new]
    #[pyo3(signature = (event_loop=None))]
    fn new(event_loop: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let wake = if let Some(l) = event_loop {
            Wake::CallSoon(l.getattr("call_soon_threadsafe")?.unbind())
        } else {
            let (tx, rx) = UnixStream::pair()?;
            tx.set_nonblocking(true)?;
            rx.set_nonblocking(true)?;
            Wake::Socket { tx, rx }
        };
        Ok(Self {
            q: Arc::new(Queue {
                items: Batch::default(),
                wake,
            }),
        })
    }

    /// The socket to watch for readability, or -1 for a `call_soon_threadsafe` completer.
    fn fileno(&self) -> i32 {
        match &self.q.wake {
            Wake::Socket { rx, .. } => rx.as_raw_fd(),
            Wake::CallSoon(_) => -1,
        }
    }

    /// Sets the result or exception of every queued future that is not done yet.
    ///
    /// Every future is settled even if one fails; the first failure is raised afterwards
    /// (the loop reports it to its exception handler).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        if let Wake::Socket { rx, .. } = &self.q.wake {
            // Consume wake-ups before taking: a push that finds the queue empty after the take
            // writes a byte this drain has not read, so the loop wakes again.
            let mut buf = [0u8; 256];
            while matches!((&*rx).read(&mut buf), Ok(n) if n > 0) {}
        }
        let items = self.q.items.take(usize::MAX);
        let mut first_err = None;
        for d in items {
            if let Err(e) = settle(py, d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn settle(py: Python<'_>, d: Done) -> PyResult<()> {
    let fut = d.fut.bind(py);
    // A cancelled future is done already; its outcome is dropped here.
    if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match into_py_result(py, d.outcome) {
        Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

impl Completer {
    pub(crate) fn handle(&self) -> CompleteHandle {
        CompleteHandle { q: self.q.clone() }
    }
}

/// Sendable half of a [`Completer`], moved into the engine task.
pub(crate) struct CompleteHandle {
    q: Arc<Queue>,
}

impl CompleteHandle {
    /// Queues the outcome for `fut` and wakes the loop if no drain is pending.
    pub(crate) fn complete(&self, fut: Py<PyAny>, outcome: Outcome) {
        if !self.q.items.push(Done { fut, outcome }) {
            return;
        }
        let sent = match &self.q.wake {
            // A full socket already holds a wake-up; a closed one means nobody listens.
            Wake::Socket { tx, .. } => {
                let _ = (&*tx).write(&[1]);
                return;
            }
            Wake::CallSoon(call_soon) => with_python(|py| -> PyResult<()> {
                let obj = Py::new(py, Completer { q: self.q.clone() })?;
                let drain = obj.bind(py).getattr("drain")?;
                call_soon.call1(py, (drain,))?;
                Ok(())
            }),
        };
        if !matches!(sent, Some(Ok(()))) {
            // The loop is closed or the interpreter is exiting: nobody awaits these any more.
            drop(self.q.items.take(usize::MAX));
        }
    }
}

/// For work no client counts (upload waits, test hooks).
pub(crate) static UNTRACKED: LazyLock<Arc<Tracker>> = LazyLock::new(Tracker::new);

/// Spawns `work` on the engine runtime as one operation of `kind` on `tracker`; its outcome
/// (an `internal` error if it panics) completes `fut` on the completer's loop.
pub(crate) fn spawn_on<F>(
    completer: &Completer,
    fut: Py<PyAny>,
    tracker: &Arc<Tracker>,
    kind: Kind,
    work: F,
) -> Pending
where
    F: Future<Output = Result<Outcome, wirecore::Error>> + Send + 'static,
{
    let done = completer.handle();
    let (abort, reg) = AbortHandle::new_pair();
    tracker.spawn(kind, Some(reg), work, move |r| {
        done.complete(fut, r.unwrap_or_else(Outcome::Error));
    });
    Pending {
        abort,
        stream: None,
    }
}

/// [`spawn_on`] for work no client counts.
pub(crate) fn spawn_completing<F>(completer: &Completer, fut: Py<PyAny>, work: F) -> Pending
where
    F: Future<Output = Outcome> + Send + 'static,
{
    spawn_on(completer, fut, &UNTRACKED, Kind::Other, async move {
        Ok(work.await)
    })
}

/// Panics inside an engine task, for the tests of `catch_panic`: blocking (no arguments) or
/// completing `fut` on the completer's loop. Either way the caller gets `InternalError`.
#[pyfunction]
#[pyo3(name = "_panic_in_engine", signature = (completer=None, fut=None))]
pub(crate) fn panic_in_engine(
    py: Python<'_>,
    completer: Option<&Completer>,
    fut: Option<Py<PyAny>>,
) -> PyResult<Option<Pending>> {
    let boom = async {
        #[expect(clippy::manual_assert, reason = "the point of this test hook")]
        if std::hint::black_box(true) {
            panic!("a test panic");
        }
        Outcome::Unit
    };
    match (completer, fut) {
        (Some(c), Some(f)) => Ok(Some(spawn_completing(c, f, boom))),
        _ => crate::client::wait(py, boom).map(|_| None),
    }
}

/// Engine work in flight; `cancel()` drops the engine future, which cancels the request.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Pending {
    abort: AbortHandle,
    /// For a body read: the body, left failed (incomplete) when the read is cancelled.
    pub(crate) stream: Option<Arc<BodySlot>>,
}

#[pymethods]
impl Pending {
    fn cancel(&self) {
        self.abort.abort();
        if let Some(s) = &self.stream {
            s.fail(wirecore::ErrorKind::Cancelled, INTERRUPTED);
        }
    }
}

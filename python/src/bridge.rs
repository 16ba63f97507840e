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
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pyo3::{PyTraverseError, PyVisit};
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

/// Who waits for an outcome: an asyncio future, or a [`Call`] a task awaits directly.
enum Target {
    Future(Py<PyAny>),
    Call(Py<Call>),
}

struct Done {
    target: Target,
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
    /// The loop [`Call`]s report (`get_loop`) and schedule late callbacks on.
    event_loop: Option<Py<PyAny>>,
}

/// One event loop's completion queue. Create it on the loop's thread.
///
/// `Completer()` and `Completer(loop, socket=True)` wake through a socket: register `fileno()`
/// with `loop.add_reader(fd, completer.drain)`. `Completer(loop)` wakes through
/// `loop.call_soon_threadsafe`. [`Call`]s need the loop given.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Completer {
    q: Arc<Queue>,
}

#[pymethods]
impl Completer {
    #[new]
    #[pyo3(signature = (event_loop=None, socket=false))]
    fn new(event_loop: Option<&Bound<'_, PyAny>>, socket: bool) -> PyResult<Self> {
        let wake = match event_loop {
            Some(l) if !socket => Wake::CallSoon(l.getattr("call_soon_threadsafe")?.unbind()),
            _ => {
                let (tx, rx) = UnixStream::pair()?;
                tx.set_nonblocking(true)?;
                rx.set_nonblocking(true)?;
                Wake::Socket { tx, rx }
            }
        };
        Ok(Self {
            q: Arc::new(Queue {
                items: Batch::default(),
                wake,
                event_loop: event_loop.map(|l| l.clone().unbind()),
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

    /// Sets the result or exception of every queued future or call that is not done yet, then
    /// runs the callbacks of the calls (the awaiting tasks' wake-ups) right here: one pass of
    /// the loop resumes every task of the batch, with no `call_soon` handle per result.
    ///
    /// Every outcome is settled and every callback run even if one fails; the first failure is
    /// raised afterwards (the loop reports it to its exception handler).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        if let Wake::Socket { rx, .. } = &self.q.wake {
            // Consume wake-ups before taking: a push that finds the queue empty after the take
            // writes a byte this drain has not read, so the loop wakes again.
            let mut buf = [0u8; 256];
            while matches!((&*rx).read(&mut buf), Ok(n) if n > 0) {}
        }
        let items = self.q.items.take(usize::MAX);
        // The tasks resumed below submit their next requests: one engine wake-up for them all.
        let _hold = wirecore_bridge::submit::hold();
        let mut first_err = None;
        let mut wake = Vec::with_capacity(items.len());
        for d in items {
            let r = match d.target {
                Target::Future(fut) => settle(py, &fut, d.outcome),
                Target::Call(call) => {
                    // A cancelled call is done already; its outcome is dropped here.
                    if call.get().is_pending() {
                        let value = into_py_result(py, d.outcome);
                        Call::finish(py, &call, Phase::Done(value), &mut wake);
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        for (call, cb, ctx) in wake {
            if let Err(e) = run_callback(py, &call, cb, ctx) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn settle(py: Python<'_>, fut: &Py<PyAny>, outcome: Outcome) -> PyResult<()> {
    let fut = fut.bind(py);
    // A cancelled future is done already; its outcome is dropped here.
    if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match into_py_result(py, outcome) {
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
    /// Queues the outcome for `target` and wakes the loop if no drain is pending.
    fn complete(&self, target: Target, outcome: Outcome) {
        if !self.q.items.push(Done { target, outcome }) {
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
        done.complete(Target::Future(fut), r.unwrap_or_else(Outcome::Error));
    });
    Pending {
        abort,
        stream: None,
    }
}

/// Spawns `work` like [`spawn_on`], returning the [`Call`] its outcome completes: the task that
/// awaits the call is resumed by the completer's drain itself (no asyncio future, no
/// `call_soon` handle, no separate `Pending`).
pub(crate) fn spawn_call<F>(
    py: Python<'_>,
    completer: &Completer,
    tracker: &Arc<Tracker>,
    kind: Kind,
    stream: Option<Arc<BodySlot>>,
    work: F,
) -> PyResult<Py<Call>>
where
    F: Future<Output = Result<Outcome, wirecore::Error>> + Send + 'static,
{
    let Some(event_loop) = &completer.q.event_loop else {
        return Err(PyRuntimeError::new_err(
            "this completer was made without its event loop",
        ));
    };
    let (abort, reg) = AbortHandle::new_pair();
    let call = Py::new(
        py,
        Call {
            state: Mutex::new(CallState {
                phase: Phase::Pending,
                first: None,
                more: Vec::new(),
                blocking: false,
            }),
            event_loop: event_loop.clone_ref(py),
            abort,
            stream,
        },
    )?;
    let done = completer.handle();
    let target = call.clone_ref(py);
    tracker.spawn(kind, Some(reg), work, move |r| {
        done.complete(Target::Call(target), r.unwrap_or_else(Outcome::Error));
    });
    Ok(call)
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

/// Where a [`Call`] stands.
enum Phase {
    Pending,
    Done(PyResult<Py<PyAny>>),
    /// Cancelled, with the message `cancel(msg)` gave.
    Cancelled(Option<Py<PyAny>>),
}

/// A done-callback and the context to run it in (`add_done_callback(fn, context=ctx)`).
type Callback = (Py<PyAny>, Option<Py<PyAny>>);

/// A settled call's callback, due to run: the call, the callback, its context.
type Wakeup = (Py<Call>, Py<PyAny>, Option<Py<PyAny>>);

struct CallState {
    phase: Phase,
    /// The first callback (an awaiting task's wake-up; there is rarely another).
    first: Option<Callback>,
    more: Vec<Callback>,
    /// asyncio's `_asyncio_future_blocking`: set while a task waits on this call.
    blocking: bool,
}

/// Engine work in flight that a task awaits directly: `await call` gives the outcome (or
/// raises its error). It speaks asyncio's future protocol (`_asyncio_future_blocking`,
/// `add_done_callback`, `get_loop`, `result`, `cancel`), so a `Task` waits on it as on a
/// future, and the completer's drain runs the task's wake-up itself. `cancel()` drops the
/// engine future, which cancels the request.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Call {
    state: Mutex<CallState>,
    event_loop: Py<PyAny>,
    abort: AbortHandle,
    /// For a body read: the body, left failed (incomplete) when the read is cancelled.
    stream: Option<Arc<BodySlot>>,
}

static CANCELLED_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static INVALID_STATE_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn asyncio_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || Ok(py.import("asyncio")?.getattr(name)?.unbind()))
        .map(|c| c.bind(py))
}

impl Call {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_pending(&self) -> bool {
        matches!(self.lock().phase, Phase::Pending)
    }

    /// Settles a pending call and moves its callbacks into `wake`.
    fn finish(py: Python<'_>, call: &Py<Call>, phase: Phase, wake: &mut Vec<Wakeup>) {
        let mut s = call.get().lock();
        if !matches!(s.phase, Phase::Pending) {
            return;
        }
        s.phase = phase;
        for (cb, ctx) in s.first.take().into_iter().chain(s.more.drain(..)) {
            wake.push((call.clone_ref(py), cb, ctx));
        }
    }

    /// The outcome as `result()` gives it.
    fn outcome(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        // No Python code runs under the lock (it could come back here).
        let cancelled = match &self.lock().phase {
            Phase::Done(Ok(v)) => return Ok(v.clone_ref(py)),
            Phase::Done(Err(e)) => return Err(e.clone_ref(py)),
            Phase::Cancelled(msg) => Some(msg.as_ref().map(|m| m.clone_ref(py))),
            Phase::Pending => None,
        };
        match cancelled {
            Some(msg) => Err(cancelled_error(py, msg.as_ref())),
            None => Err(PyErr::from_value(
                asyncio_class(py, &INVALID_STATE_ERROR, "InvalidStateError")?
                    .call1(("Result is not set.",))?,
            )),
        }
    }
}

fn cancelled_error(py: Python<'_>, msg: Option<&Py<PyAny>>) -> PyErr {
    let made = asyncio_class(py, &CANCELLED_ERROR, "CancelledError").and_then(|cls| match msg {
        Some(m) => cls.call1((m,)),
        None => cls.call0(),
    });
    match made {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// Runs one callback of a settled call: in its context, as asyncio would.
fn run_callback(
    py: Python<'_>,
    call: &Py<Call>,
    cb: Py<PyAny>,
    ctx: Option<Py<PyAny>>,
) -> PyResult<()> {
    match ctx {
        Some(ctx) if !ctx.is_none(py) => {
            ctx.call_method1(py, intern!(py, "run"), (cb, call.clone_ref(py)))?;
        }
        _ => {
            cb.call1(py, (call.clone_ref(py),))?;
        }
    }
    Ok(())
}

/// Schedules a callback of a settled call on its loop (`loop.call_soon(cb, call, context=ctx)`).
fn schedule(
    py: Python<'_>,
    call: &Bound<'_, Call>,
    cb: Py<PyAny>,
    ctx: Option<Py<PyAny>>,
) -> PyResult<()> {
    let kw = PyDict::new(py);
    if let Some(ctx) = ctx {
        kw.set_item(intern!(py, "context"), ctx)?;
    }
    call.get()
        .event_loop
        .bind(py)
        .call_method(intern!(py, "call_soon"), (cb, call), Some(&kw))?;
    Ok(())
}

#[pymethods]
impl Call {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Yields itself to the awaiting task while pending; then returns the outcome (as
    /// `StopIteration`'s value) or raises its error.
    fn __next__(slf: Bound<'_, Self>) -> PyResult<Option<Bound<'_, Self>>> {
        let py = slf.py();
        {
            let mut s = slf.get().lock();
            if matches!(s.phase, Phase::Pending) {
                s.blocking = true;
                drop(s);
                return Ok(Some(slf));
            }
        }
        let v = slf.get().outcome(py)?;
        Err(PyStopIteration::new_err((v,)))
    }

    #[getter(_asyncio_future_blocking)]
    fn get_blocking(&self) -> bool {
        self.lock().blocking
    }

    #[setter(_asyncio_future_blocking)]
    fn set_blocking(&self, value: bool) {
        self.lock().blocking = value;
    }

    fn get_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_loop.clone_ref(py)
    }

    fn done(&self) -> bool {
        !self.is_pending()
    }

    fn cancelled(&self) -> bool {
        matches!(self.lock().phase, Phase::Cancelled(_))
    }

    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.outcome(py)
    }

    /// The error the call failed with, `None` if it succeeded.
    fn exception(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.outcome(py) {
            Ok(_) => Ok(None),
            Err(e) if e.is_instance(py, asyncio_class(py, &CANCELLED_ERROR, "CancelledError")?) => {
                Err(e)
            }
            Err(e)
                if e.is_instance(
                    py,
                    asyncio_class(py, &INVALID_STATE_ERROR, "InvalidStateError")?,
                ) =>
            {
                Err(e)
            }
            Err(e) => Ok(Some(e.into_value(py).into_any())),
        }
    }

    #[pyo3(signature = (callback, *, context=None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        {
            let mut s = slf.get().lock();
            if matches!(s.phase, Phase::Pending) {
                if s.first.is_none() {
                    s.first = Some((callback, context));
                } else {
                    s.more.push((callback, context));
                }
                return Ok(());
            }
        }
        schedule(slf.py(), slf, callback, context)
    }

    /// Removes every registration of `callback`; returns how many there were.
    fn remove_done_callback(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<usize> {
        let all: Vec<Callback> = {
            let mut s = self.lock();
            s.first.take().into_iter().chain(s.more.drain(..)).collect()
        };
        let before = all.len();
        let mut keep = Vec::with_capacity(before);
        let mut failed = None;
        for (cb, ctx) in all {
            match cb.bind(py).eq(callback) {
                Ok(true) => {}
                Ok(false) => keep.push((cb, ctx)),
                Err(e) => {
                    keep.push((cb, ctx));
                    failed.get_or_insert(e);
                }
            }
        }
        let removed = before - keep.len();
        let mut s = self.lock();
        // Callbacks added meanwhile (by `__eq__` code) go after the ones kept.
        let added: Vec<Callback> = s.first.take().into_iter().chain(s.more.drain(..)).collect();
        let mut it = keep.into_iter().chain(added);
        s.first = it.next();
        s.more = it.collect();
        drop(s);
        failed.map_or(Ok(removed), Err)
    }

    /// Cancels the engine work and settles the call as cancelled (its callbacks are scheduled
    /// on the loop); false when it was done already.
    #[pyo3(signature = (msg=None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        let py = slf.py();
        let this = slf.get();
        if !this.is_pending() {
            return Ok(false);
        }
        this.abort.abort();
        if let Some(s) = &this.stream {
            s.fail(wirecore::ErrorKind::Cancelled, INTERRUPTED);
        }
        let mut wake = Vec::new();
        Call::finish(py, &slf.clone().unbind(), Phase::Cancelled(msg), &mut wake);
        let mut first_err = None;
        for (_, cb, ctx) in wake {
            if let Err(e) = schedule(py, slf, cb, ctx) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(true), Err)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        // Never blocks the collector: the lock is only held briefly on the loop's thread.
        if let Ok(s) = self.state.try_lock() {
            for (cb, ctx) in s.first.iter().chain(s.more.iter()) {
                visit.call(cb)?;
                if let Some(ctx) = ctx {
                    visit.call(ctx)?;
                }
            }
            match &s.phase {
                Phase::Done(Ok(v)) => visit.call(v)?,
                Phase::Cancelled(Some(m)) => visit.call(m)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let mut s = self.lock();
        s.first = None;
        s.more.clear();
    }
}

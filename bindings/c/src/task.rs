//! Asynchronous delivery: `wirecore_task` (cancel an in-flight request), the C callback, and
//! `wirecore_queue` (completions the caller waits for in batches).
//!
//! Every submitted operation delivers exactly one completion, whether it succeeds, fails or
//! is cancelled; ownership of the response and error in it passes to the caller.

use std::ffi::c_void;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use wirecore::Error;
use wirecore_bridge::{AbortHandle, Batch, Kind};

use crate::client::wirecore_client;
use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle::{self, Magic};
use crate::request::{self, SendPtr, wirecore_request};
use crate::response::{self, wirecore_response};

/// Called once per submitted request, on a wirecore engine thread, with the `userdata` given
/// at submit. It must not block (no `wirecore_client_send`, no `wirecore_response_read`).
/// `response` (NULL on failure) and `error` (NULL on success) become the callee's to free.
pub type wirecore_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        code: wirecore_code,
        response: *mut wirecore_response,
        error: *mut wirecore_error,
    ),
>;

/// One finished operation, as returned by `wirecore_queue_wait`. `response` (NULL on failure,
/// and always NULL for body reads) and `error` (NULL on success) are owned by the caller.
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_completion {
    /// The `userdata` given when the operation was submitted.
    pub userdata: *mut c_void,
    /// `WIRECORE_OK` or the failure.
    pub code: wirecore_code,
    /// The response (request submissions only); free with `wirecore_response_free`.
    pub response: *mut wirecore_response,
    /// The error, or NULL; free with `wirecore_error_free`.
    pub error: *mut wirecore_error,
}

#[derive(Debug)]
struct Done(wirecore_completion);

// SAFETY: the pointers are owned boxes (response, error) and opaque userdata handed back to
// the caller, who documented it may cross threads.
unsafe impl Send for Done {}

impl Drop for Done {
    fn drop(&mut self) {
        // Never taken by the caller (queue freed first): free what it owns.
        // SAFETY: owned boxes from this crate or NULL.
        unsafe {
            drop(handle::take(self.0.response));
            drop(handle::take(self.0.error));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct QueueInner {
    batch: Batch<Done>,
    /// The pipe of `wirecore_queue_notify_fd`, and whether a `try_take` that found the queue
    /// empty asked for one byte on it.
    signal: OnceLock<(std::io::PipeReader, Mutex<std::io::PipeWriter>)>,
    armed: AtomicBool,
}

impl QueueInner {
    /// Writes the wake-up byte when a poller asked for it (at most one byte per arming, so the
    /// pipe never fills).
    fn signal(&self) {
        if self.armed.swap(false, Ordering::AcqRel)
            && let Some((_, w)) = self.signal.get()
        {
            let _ = w
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&[1]);
        }
    }

    /// Queues a completion; the poller's wake-up byte is written only when no thread blocked in
    /// `wirecore_queue_wait` takes it (that thread is woken instead: one hand-off, not two).
    fn push(&self, c: wirecore_completion) {
        if !self.batch.push_to_waiter(Done(c)) {
            self.signal();
        }
    }
}

/// A completion queue. Thread-safe: any thread may wait on it; submissions from any thread
/// may target it. Free with `wirecore_queue_free`.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_queue {
    magic: Magic,
    pub(crate) inner: Arc<QueueInner>,
}

tagged!(wirecore_queue, QUEUE);

/// A handle on an in-flight request: cancel it, then free it. Freeing does not cancel.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_task {
    magic: Magic,
    cancel: AbortHandle,
}

tagged!(wirecore_task, TASK);

pub(crate) enum Target {
    Callback(
        unsafe extern "C" fn(
            *mut c_void,
            wirecore_code,
            *mut wirecore_response,
            *mut wirecore_error,
        ),
        SendPtr,
    ),
    Queue(Arc<QueueInner>, SendPtr),
}

impl Target {
    fn deliver(self, code: wirecore_code, resp: *mut wirecore_response, err: *mut wirecore_error) {
        match self {
            Target::Callback(cb, ud) => {
                // SAFETY: the caller's function, called once as documented.
                unsafe { cb(ud.0, code, resp, err) };
            }
            Target::Queue(q, ud) => q.push(wirecore_completion {
                userdata: ud.0,
                code,
                response: resp,
                error: err,
            }),
        }
    }

    pub(crate) fn deliver_response(self, r: Result<Box<wirecore_response>, Error>) {
        match r {
            Ok(resp) => self.deliver(
                wirecore_code::WIRECORE_OK,
                Box::into_raw(resp),
                std::ptr::null_mut(),
            ),
            Err(e) => {
                let (code, err) = error::boxed(&e);
                self.deliver(code, std::ptr::null_mut(), err);
            }
        }
    }

    pub(crate) fn deliver_read(self, r: Result<(), Error>) {
        match r {
            Ok(()) => self.deliver(
                wirecore_code::WIRECORE_OK,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ),
            Err(e) => {
                let (code, err) = error::boxed(&e);
                self.deliver(code, std::ptr::null_mut(), err);
            }
        }
    }
}

/// Runs work on the engine outside any client; its outcome (`internal` if it panics) reaches
/// the deliverer exactly once.
pub(crate) use wirecore_bridge::spawn as spawn_once;

unsafe fn submit(
    client: *const wirecore_client,
    req: *mut wirecore_request,
    target: Option<Target>,
    task: *mut *mut wirecore_task,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    // SAFETY: NULL or a live request; consumed here whatever happens next.
    let request = unsafe { request::take(req) };
    // SAFETY: NULL or a live client (magic checked).
    let Some(c) = (unsafe { handle::get(client) }) else {
        return error::invalid(err, "wirecore_client_submit: invalid client handle");
    };
    let Some(request) = request else {
        return error::invalid(err, "wirecore_client_submit: invalid request handle");
    };
    let Some(target) = target else {
        return error::invalid(err, "wirecore_client_submit: no callback or queue");
    };
    // Only a request the caller can cancel pays for a cancel handle.
    let abort = (!task.is_null()).then(|| {
        let (cancel, reg) = AbortHandle::new_pair();
        let t = handle::give(wirecore_task {
            magic: Magic::TASK,
            cancel,
        });
        // SAFETY: checked non-NULL.
        unsafe { handle::put(task, t) };
        reg
    });
    // Counted until its completion is delivered: wirecore_client_close waits for that, and
    // cancels it when its deadline passes.
    let work = response::fetch(c.client.clone(), c.tracker.clone(), request);
    c.tracker.spawn(Kind::Request, abort, work, move |res| {
        target.deliver_response(res);
    });
    wirecore_code::WIRECORE_OK
}

/// Sends `req` (consumed, even on failure) on an engine thread and calls `callback` once with
/// the outcome (see `wirecore_callback`). When `task` is not NULL, `*task` receives a handle
/// to cancel the request; free it with `wirecore_task_free`.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` (the callback is then never called).
///
/// # Safety
/// Handles live or NULL; `task` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_submit(
    client: *const wirecore_client,
    req: *mut wirecore_request,
    callback: wirecore_callback,
    userdata: *mut c_void,
    task: *mut *mut wirecore_task,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let target = callback.map(|cb| Target::Callback(cb, SendPtr(userdata)));
        // SAFETY: forwarded contract.
        unsafe { submit(client, req, target, task, err) }
    })
}

/// Like `wirecore_client_submit`, but the outcome is posted to `queue` as a
/// `wirecore_completion` carrying `userdata`.
///
/// # Safety
/// Handles live or NULL; `task` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_submit_queue(
    client: *const wirecore_client,
    req: *mut wirecore_request,
    queue: *const wirecore_queue,
    userdata: *mut c_void,
    task: *mut *mut wirecore_task,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live queue (magic checked).
        let target = unsafe { handle::get(queue) }
            .map(|q| Target::Queue(q.inner.clone(), SendPtr(userdata)));
        // SAFETY: forwarded contract.
        unsafe { submit(client, req, target, task, err) }
    })
}

/// Cancels the request if it is still in flight: its completion then carries
/// `WIRECORE_CANCELLED` (HTTP/1 connection discarded, HTTP/2 stream reset). Harmless after
/// completion. Thread-safe.
///
/// # Safety
/// `task` is NULL or a live task.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_task_cancel(task: *const wirecore_task) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live task (magic checked).
        let Some(t) = (unsafe { handle::get(task) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        t.cancel.abort();
        wirecore_code::WIRECORE_OK
    })
}

/// Frees a task handle (does not cancel). NULL is ignored.
///
/// # Safety
/// `task` is NULL or a live task, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_task_free(task: *mut wirecore_task) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live task, freed once.
        drop(unsafe { handle::take(task) });
    });
}

/// A new, empty completion queue.
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_queue_new() -> *mut wirecore_queue {
    ffi_fn!(or = std::ptr::null_mut(), {
        handle::give(wirecore_queue {
            magic: Magic::QUEUE,
            inner: Arc::default(),
        })
    })
}

/// Moves up to `max` completions into `out`, waiting up to `timeout_ms` for the first one
/// (0: poll; negative: wait forever). Returns how many were written (0 on timeout), or -1
/// once the queue is closed and empty, or -2 for an invalid argument. The caller owns each
/// returned completion's response and error.
///
/// # Safety
/// `queue` is NULL or a live queue; `out` writable for `max` completions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_wait(
    queue: *const wirecore_queue,
    out: *mut wirecore_completion,
    max: usize,
    timeout_ms: i64,
) -> isize {
    ffi_fn!(or = -2, {
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return -2;
        };
        if out.is_null() || max == 0 {
            return -2;
        }
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let mut w = Writer { out, n: 0 };
        let n = q.inner.batch.wait_with(max, timeout, |d| w.write(d));
        // Completions pushed while this thread waited wrote no wake-up byte: whatever it left
        // behind (more than `max`) is the poller's again.
        if !q.inner.batch.is_empty() {
            q.inner.signal();
        }
        match n {
            Some(n) => isize::try_from(n).unwrap_or(isize::MAX),
            None => -1,
        }
    })
}

/// Closes the queue: waiters wake, and `wirecore_queue_wait` returns -1 once it is empty.
/// Completions still arrive (and can be drained) after close.
///
/// # Safety
/// `queue` is NULL or a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_close(queue: *const wirecore_queue) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live queue (magic checked).
        if let Some(q) = unsafe { handle::get(queue) } {
            q.inner.batch.close();
            q.inner.signal();
        }
    });
}

/// Wakes a thread blocked in `wirecore_queue_wait` on `queue`, which returns what is queued,
/// possibly 0; when none is blocked, the next `wirecore_queue_wait` returns at once (once). For
/// a program that waits both ways: the consumer that drained the pipe took a completion the
/// blocked thread waits for, and tells it to look again.
///
/// # Safety
/// `queue` is NULL or a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_kick(queue: *const wirecore_queue) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live queue (magic checked).
        if let Some(q) = unsafe { handle::get(queue) } {
            q.inner.batch.kick();
        }
    });
}

/// The read end of a pipe that receives one byte each time a completion (or close) arrives
/// after `wirecore_queue_try_take` found the queue empty, so an event loop (epoll, Go's
/// netpoller) can wait for completions without blocking a thread in wirecore. A completion
/// that a thread blocked in `wirecore_queue_wait` takes writes no byte (that thread is woken
/// instead), so a caller may wait both ways at once. The fd is owned
/// by the queue (closed by `wirecore_queue_free`): dup it to keep it; set it non-blocking if
/// needed; read and discard its bytes. Returns -1 for an invalid queue or when no pipe can be
/// made.
///
/// # Safety
/// `queue` is NULL or a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_notify_fd(queue: *const wirecore_queue) -> i32 {
    ffi_fn!(or = -1, {
        use std::os::fd::AsRawFd;
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return -1;
        };
        if q.inner.signal.get().is_none() {
            let Ok((r, w)) = std::io::pipe() else {
                return -1;
            };
            let _ = q.inner.signal.set((r, Mutex::new(w)));
        }
        q.inner.signal.get().map_or(-1, |(r, _)| r.as_raw_fd())
    })
}

/// Moves up to `max` completions into `out` without waiting. When it leaves the queue empty
/// (it found nothing and returns 0, or took the last completion) it arms the notify fd
/// (`wirecore_queue_notify_fd`): the next completion or close writes one byte to it, so a
/// poller that got fewer than `max` can wait on the fd at once (a byte may then be there for a
/// completion it already took: a wake-up that finds nothing). Returns -1 once the queue is
/// closed and empty, -2 for an invalid argument. The caller owns each returned completion's
/// response and error.
///
/// # Safety
/// `queue` is NULL or a live queue; `out` writable for `max` completions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_try_take(
    queue: *const wirecore_queue,
    out: *mut wirecore_completion,
    max: usize,
) -> isize {
    ffi_fn!(or = -2, {
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return -2;
        };
        if out.is_null() || max == 0 {
            return -2;
        }
        let inner = &q.inner;
        let mut w = Writer { out, n: 0 };
        // Armed under the queue's lock when the queue is left empty: a push after this sees it
        // and writes the byte.
        let armed = || inner.armed.store(true, Ordering::Release);
        match inner.batch.try_take_with(max, armed, |d| w.write(d)) {
            Some(n) => isize::try_from(n).unwrap_or(isize::MAX),
            None => -1,
        }
    })
}

/// Moves completions into the caller's array, one after the other.
struct Writer {
    out: *mut wirecore_completion,
    n: usize,
}

impl Writer {
    fn write(&mut self, done: Done) {
        let done = std::mem::ManuallyDrop::new(done);
        // SAFETY: the queue hands over at most `max` completions and the caller made `out`
        // writable for `max`; ownership moves to it.
        unsafe {
            self.out
                .add(self.n)
                .write(std::ptr::read(&raw const done.0));
        }
        self.n += 1;
    }
}

/// Frees the queue. Completions not yet taken (and ones arriving later) are freed by
/// wirecore; their userdata is not touched. NULL is ignored.
///
/// # Safety
/// `queue` is NULL or a live queue, not used afterwards (no thread may still wait on it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_queue_free(queue: *mut wirecore_queue) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live queue, freed once.
        drop(unsafe { handle::take(queue) });
    });
}

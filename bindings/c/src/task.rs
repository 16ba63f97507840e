//! Asynchronous delivery: `wirecore_task` (cancel an in-flight request), the C callback, and
//! `wirecore_queue` (completions the caller waits for in batches).
//!
//! Every submitted operation delivers exactly one completion, whether it succeeds, fails or
//! is cancelled; ownership of the response and error in it passes to the caller.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use wirecore::{Error, ErrorKind};

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

#[derive(Debug)]
pub(crate) struct QueueInner {
    /// Completions, closed flag, and how many threads wait on `ready`.
    state: Mutex<(VecDeque<Done>, bool, usize)>,
    ready: Condvar,
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
}

impl QueueInner {
    fn push(&self, c: wirecore_completion) {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.push_back(Done(c));
        // A waiter already awake drains this completion too: waking it again would be a
        // syscall per completion and would break batches into singles.
        let wake = g.2 > 0;
        drop(g);
        if wake {
            self.ready.notify_one();
        }
        self.signal();
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
    cancel: Arc<Notify>,
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

/// Spawns `work` on the engine and passes its outcome to `deliver` exactly once, even when
/// `work` panics (then as an `internal` error).
pub(crate) fn spawn_once<T: Send + 'static>(
    work: impl Future<Output = Result<T, Error>> + Send + 'static,
    deliver: impl FnOnce(Result<T, Error>) + Send + 'static,
) {
    crate::handle::runtime().spawn(async move {
        deliver(wirecore::runtime::catch_panic(work).await);
    });
}

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
    // Only a request the caller can cancel pays for a cancel signal.
    let cancel = (!task.is_null()).then(|| Arc::new(Notify::new()));
    if let Some(cancel) = &cancel {
        let t = handle::give(wirecore_task {
            magic: Magic::TASK,
            cancel: cancel.clone(),
        });
        // SAFETY: checked non-NULL.
        unsafe { handle::put(task, t) };
    }
    let client = c.client.clone();
    // Counted until its completion is delivered: wirecore_client_close waits for that.
    let pending = c.outstanding.enter();
    let mut closing = c.outstanding.closing();
    spawn_once(
        async move {
            let cancelled = async {
                match &cancel {
                    Some(cancel) => cancel.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancelled => Err(Error::new(ErrorKind::Cancelled, "the request was cancelled")),
                _ = closing.wait_for(|closed| *closed) => Err(Error::new(
                    ErrorKind::Cancelled,
                    "the client was closed before the request finished",
                )),
                r = response::fetch(client, request) => r,
            }
        },
        move |res| {
            target.deliver_response(res);
            drop(pending);
        },
    );
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
        t.cancel.notify_one();
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
            inner: Arc::new(QueueInner {
                state: Mutex::new((VecDeque::new(), false, 0)),
                ready: Condvar::new(),
                signal: OnceLock::new(),
                armed: AtomicBool::new(false),
            }),
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
#[expect(
    clippy::disallowed_types,
    reason = "a C thread waiting on a condvar has no tokio clock"
)]
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
        let q = &q.inner;
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| std::time::Instant::now() + Duration::from_millis(ms));
        let mut g = q.state.lock().unwrap_or_else(PoisonError::into_inner);
        while g.0.is_empty() {
            if g.1 {
                return -1;
            }
            g.2 += 1;
            match deadline {
                None => g = q.ready.wait(g).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        g.2 -= 1;
                        return 0;
                    }
                    g = q
                        .ready
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            g.2 -= 1;
        }
        let n = g.0.len().min(max);
        for (i, done) in g.0.drain(..n).enumerate() {
            let done = std::mem::ManuallyDrop::new(done);
            // SAFETY: `out` is writable for `max > i` completions; ownership moves to it.
            unsafe {
                out.add(i).write(std::ptr::read(&raw const done.0));
            }
        }
        isize::try_from(n).unwrap_or(isize::MAX)
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
            q.inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1 = true;
            q.inner.ready.notify_all();
            q.inner.signal();
        }
    });
}

/// The read end of a pipe that receives one byte each time a completion (or close) arrives
/// after `wirecore_queue_try_take` found the queue empty, so an event loop (epoll, Go's
/// netpoller) can wait for completions without blocking a thread in wirecore. The fd is owned
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

/// Moves up to `max` completions into `out` without waiting. When the queue is empty it
/// returns 0 and arms the notify fd (`wirecore_queue_notify_fd`): the next completion or close
/// writes one byte to it. Returns -1 once the queue is closed and empty, -2 for an invalid
/// argument. The caller owns each returned completion's response and error.
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
        let mut g = q.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0.is_empty() {
            if g.1 {
                return -1;
            }
            // Armed under the lock: a push after this sees it and writes the byte.
            q.inner.armed.store(true, Ordering::Release);
            return 0;
        }
        // SAFETY: `out` is writable for `max` completions.
        unsafe { drain_into(&mut g.0, out, max) }
    })
}

/// Moves up to `max` completions from `queue` into `out`; ownership moves to `out`.
///
/// # Safety
/// `out` is writable for `max` completions.
unsafe fn drain_into(
    queue: &mut VecDeque<Done>,
    out: *mut wirecore_completion,
    max: usize,
) -> isize {
    let n = queue.len().min(max);
    for (i, done) in queue.drain(..n).enumerate() {
        let done = std::mem::ManuallyDrop::new(done);
        // SAFETY: `out` is writable for `max > i` completions; ownership moves to it.
        unsafe {
            out.add(i).write(std::ptr::read(&raw const done.0));
        }
    }
    isize::try_from(n).unwrap_or(isize::MAX)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wirecore::{Error, ErrorKind};

    #[test]
    fn a_panicking_task_delivers_internal_exactly_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        super::spawn_once(async { panic!("boom") }, move |r: Result<u8, Error>| {
            tx.send(r).expect("the test waits");
        });
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("one delivery");
        assert_eq!(r.expect_err("a panic").kind(), ErrorKind::Internal);
        // The deliverer is gone: no second delivery can follow.
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
    }
}

//! `wirecore_sse`: a response's Server-Sent Events, parsed by the engine (`wirecore::sse`);
//! a `GET`'s event stream reconnects with `Last-Event-ID` after the server's `retry:`.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, PoisonError};

use wirecore::Error;
use wirecore::sse::Event;
use wirecore_bridge::{EventSlot, Kind, Tracker};

use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle::{self, Magic};
use crate::response::wirecore_response;
use crate::task::{Target, wirecore_queue};

/// The events of one response. Created by `wirecore_response_events`; free with
/// `wirecore_sse_free` (which closes the stream). One read at a time.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
pub struct wirecore_sse {
    magic: Magic,
    slot: Arc<EventSlot>,
    tracker: Arc<Tracker>,
    /// What a queued read fetched, until `wirecore_sse_take` takes it.
    fetched: Arc<Mutex<Option<Fetched>>>,
    /// The event last handed out (its strings, NUL-terminated, live until the next read).
    current: [Vec<u8>; 3],
}

tagged!(wirecore_sse, SSE);

/// What one read found: an event, the end, or the failure.
type Fetched = Result<Option<Event>, Error>;

impl std::fmt::Debug for wirecore_sse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("wirecore_sse").finish_non_exhaustive()
    }
}

/// One event. The strings are NUL-terminated UTF-8 (their lengths exclude the NUL), owned by
/// the `wirecore_sse` and valid until its next read or its free. At the end of the stream
/// `event` is NULL.
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_sse_event {
    /// The `event:` field; "message" when none was given.
    pub event: *const c_char,
    pub event_len: usize,
    /// The `data:` lines joined with "\n".
    pub data: *const c_char,
    pub data_len: usize,
    /// The last event ID ("" when none).
    pub id: *const c_char,
    pub id_len: usize,
    /// A `retry:` given with this event, in milliseconds; -1 when none.
    pub retry_ms: i64,
}

impl wirecore_sse {
    /// Fills `out` with `ev` (or the end).
    fn hand_out(&mut self, ev: Option<Event>, out: &mut wirecore_sse_event) {
        let Some(ev) = ev else {
            *out = wirecore_sse_event {
                event: std::ptr::null(),
                event_len: 0,
                data: std::ptr::null(),
                data_len: 0,
                id: std::ptr::null(),
                id_len: 0,
                retry_ms: -1,
            };
            return;
        };
        let lens = [ev.event.len(), ev.data.len(), ev.id.len()];
        for (buf, s) in self.current.iter_mut().zip([ev.event, ev.data, ev.id]) {
            *buf = s.into_bytes();
            buf.push(0);
        }
        let [e, d, i] = &self.current;
        *out = wirecore_sse_event {
            event: e.as_ptr().cast(),
            event_len: lens[0],
            data: d.as_ptr().cast(),
            data_len: lens[1],
            id: i.as_ptr().cast(),
            id_len: lens[2],
            retry_ms: ev
                .retry
                .map_or(-1, |r| i64::try_from(r).unwrap_or(i64::MAX)),
        };
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the rest of `resp`'s body as Server-Sent Events; on success `*out` owns a new
/// `wirecore_sse` (the response stays valid, its body is no longer readable).
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` while a body read is in flight; the body's failure;
/// `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `resp` is a live response; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_events(
    resp: *mut wirecore_response,
    out: *mut *mut wirecore_sse,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live response (magic checked).
        let Some(r) = (unsafe { handle::get(resp) }) else {
            return error::invalid(err, "wirecore_response_events: invalid response handle");
        };
        if out.is_null() {
            return error::invalid(err, "wirecore_response_events: out is NULL");
        }
        let (slot, tracker) = match r.events() {
            Ok(v) => v,
            Err(e) => return error::fail(err, &e),
        };
        let sse = wirecore_sse {
            magic: Magic::SSE,
            slot,
            tracker,
            fetched: Arc::default(),
            current: Default::default(),
        };
        // SAFETY: checked non-NULL.
        unsafe { out.write(handle::give(sse)) };
        wirecore_code::WIRECORE_OK
    })
}

/// The next event, blocking the calling thread until it arrives (reconnections included);
/// at the end `ev->event` is NULL. Never call it from a wirecore callback.
///
/// # Errors
/// The stream's failure (`WIRECORE_IO` when no reconnection is left, `WIRECORE_DECODE` for an
/// oversized event, `WIRECORE_PROTOCOL` for a reconnection answered with something else);
/// `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `sse` is a live stream; `ev` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_sse_next(
    sse: *mut wirecore_sse,
    ev: *mut wirecore_sse_event,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live stream (magic checked).
        let Some(s) = (unsafe { handle::get_mut(sse) }) else {
            return error::invalid(err, "wirecore_sse_next: invalid handle");
        };
        // SAFETY: NULL or writable.
        let Some(out) = (unsafe { ev.as_mut() }) else {
            return error::invalid(err, "wirecore_sse_next: ev is NULL");
        };
        let _busy = s.tracker.enter(Kind::Read);
        let slot = s.slot.clone();
        match crate::handle::runtime().block_on(async move { slot.next().await }) {
            Ok(e) => {
                s.hand_out(e, out);
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Fetches the next event on an engine thread and posts a completion to `queue` with
/// `userdata` (`response` NULL); then `wirecore_sse_take` hands it out. One read at a time.
///
/// # Safety
/// `sse` is a live stream; `queue` a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_sse_next_queue(
    sse: *mut wirecore_sse,
    queue: *const wirecore_queue,
    userdata: *mut c_void,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live stream (magic checked).
        let Some(s) = (unsafe { handle::get(sse) }) else {
            return error::invalid(err, "wirecore_sse_next_queue: invalid handle");
        };
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return error::invalid(err, "wirecore_sse_next_queue: invalid queue handle");
        };
        let target = Target::Queue(q.inner.clone(), crate::request::SendPtr(userdata));
        let slot = s.slot.clone();
        let fetched = s.fetched.clone();
        s.tracker.spawn(
            Kind::Read,
            None,
            async move { Ok(slot.next().await) },
            move |r: Result<Fetched, Error>| {
                let r = r.and_then(|r| r);
                let status = match &r {
                    Ok(_) => Ok(()),
                    Err(e) => Err(Error::new(e.kind(), e.full_message())),
                };
                *lock(&fetched) = Some(r);
                target.deliver_read(status);
            },
        );
        wirecore_code::WIRECORE_OK
    })
}

/// Hands out what the last `wirecore_sse_next_queue` fetched (as `wirecore_sse_next` does).
///
/// # Errors
/// The fetched failure; `WIRECORE_INVALID_REQUEST` when nothing was fetched.
///
/// # Safety
/// `sse` is a live stream; `ev` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_sse_take(
    sse: *mut wirecore_sse,
    ev: *mut wirecore_sse_event,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live stream (magic checked).
        let Some(s) = (unsafe { handle::get_mut(sse) }) else {
            return error::invalid(err, "wirecore_sse_take: invalid handle");
        };
        // SAFETY: NULL or writable.
        let Some(out) = (unsafe { ev.as_mut() }) else {
            return error::invalid(err, "wirecore_sse_take: ev is NULL");
        };
        let fetched = lock(&s.fetched).take();
        match fetched {
            Some(Ok(e)) => {
                s.hand_out(e, out);
                wirecore_code::WIRECORE_OK
            }
            Some(Err(e)) => error::fail(err, &e),
            None => error::fail(
                err,
                &Error::new(
                    wirecore::ErrorKind::InvalidRequest,
                    "wirecore_sse_take: no event was fetched (call wirecore_sse_next_queue first)",
                ),
            ),
        }
    })
}

/// Closes the stream (a read in flight ends with `WIRECORE_CANCELLED`) and frees it. NULL is
/// ignored.
///
/// # Safety
/// `sse` is NULL or a live stream, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_sse_free(sse: *mut wirecore_sse) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live stream, freed once.
        if let Some(s) = unsafe { handle::take(sse) } {
            s.slot.close();
        }
    });
}

//! Dead letters and finished spans for a C callback: the engine queues them
//! (`wirecore_bridge::Letters`, `Spans`) and the caller's own thread takes them with
//! `wirecore_client_poll_dead_letters` / `wirecore_client_poll_spans`, so the callback never
//! runs on an engine thread.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use wirecore_bridge::HostQueue;

use crate::client::wirecore_client;
use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle;

/// A request that failed after every retry the policy allowed. Every pointer is valid only
/// during the callback it is passed to.
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_dead_letter {
    /// `GET`, `POST` ... (NUL-terminated).
    pub method: *const c_char,
    /// The URL, without userinfo (NUL-terminated).
    pub url: *const c_char,
    /// The request's headers as a JSON array of `[name, value]`, without Authorization,
    /// Proxy-Authorization and Cookie (NUL-terminated).
    pub headers_json: *const c_char,
    /// The body when it was buffered and at most `dead_letter.max_body_bytes`; else NULL.
    pub body: *const u8,
    /// The body's length (0 without one).
    pub body_len: usize,
    /// The error's code (`connect`, `timeout.total` ...), or `status` (NUL-terminated).
    pub error_code: *const c_char,
    /// The error's message, or the status line (NUL-terminated).
    pub message: *const c_char,
    /// The last answer's status, or 0.
    pub status: u16,
    /// Attempts sent.
    pub attempts: u32,
    /// When it failed, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Called with each dead letter on the thread that polls; must not keep `letter`'s pointers.
pub type wirecore_dead_letter_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, letter: *const wirecore_dead_letter)>;

/// A finished client span (the core's `SpanRecord`). Every pointer is valid only during the
/// callback it is passed to.
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_span {
    /// The trace id, 32 lowercase hex digits (NUL-terminated).
    pub trace_id: *const c_char,
    /// The span's id, 16 lowercase hex digits (NUL-terminated).
    pub span_id: *const c_char,
    /// The caller's span id (the `traceparent` option), or NULL.
    pub parent_span_id: *const c_char,
    /// The method (`GET`), or `HTTP` for one the conventions do not know (NUL-terminated).
    pub name: *const c_char,
    /// `unset`, or `error` for a failure or a 4xx/5xx answer (NUL-terminated).
    pub status: *const c_char,
    /// The error's message when `status` is `error`, else empty (NUL-terminated).
    pub status_message: *const c_char,
    /// When the request started, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// When it ended, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// The semantic-convention attributes as a JSON object (`{"http.request.method":"GET",
    /// "server.port":8080, ...}`; NUL-terminated).
    pub attributes_json: *const c_char,
    /// The whole record as a JSON object, every field above plus `kind` and `trace_state`
    /// (NUL-terminated): what the Go and Kotlin bindings read.
    pub json: *const c_char,
}

/// Called with each finished span on the thread that polls; must not keep `span`'s pointers.
pub type wirecore_span_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, span: *const wirecore_span)>;

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Takes up to 64 records from `q` (waiting up to `timeout_ms` for the first) and hands each to
/// `each` on this thread; writes how many to `n`. `WIRECORE_CLOSED` once closed and empty.
///
/// # Safety
/// `n` NULL or writable.
unsafe fn poll<T>(
    q: &HostQueue<T>,
    timeout_ms: u64,
    n: *mut usize,
    mut each: impl FnMut(&T),
) -> wirecore_code {
    let mut got = Vec::new();
    let taken = q
        .queue()
        .wait_with(64, Some(Duration::from_millis(timeout_ms)), |x| got.push(x));
    for x in &got {
        each(x);
    }
    // SAFETY: NULL or writable per the caller's contract.
    unsafe { handle::put(n, got.len()) };
    if taken.is_none() {
        wirecore_code::WIRECORE_CLOSED
    } else {
        wirecore_code::WIRECORE_OK
    }
}

/// Starts keeping `client`'s dead letters for `wirecore_client_poll_dead_letters` (in a queue of
/// `dead_letter.queue`; more are dropped, counted in the stats). Calling it again does nothing.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_listen_dead_letters(
    client: *const wirecore_client,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        c.letters.get_or_init(|| {
            let l = wirecore_bridge::Letters::new(&c.client);
            // The C thread blocks in `wirecore_client_poll_dead_letters`: nothing to wake.
            l.listen(&c.client, || {});
            l
        });
        wirecore_code::WIRECORE_OK
    })
}

/// Waits up to `timeout_ms` for dead letters, then calls `cb(userdata, letter)` for each (at
/// most 64) on this thread; `*n` (when not NULL) receives how many. Returns `WIRECORE_OK` (with
/// 0 letters on timeout), `WIRECORE_CLOSED` once the client is closed and none are left.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for a NULL client or callback, or a client that never called
/// `wirecore_client_listen_dead_letters`.
///
/// # Safety
/// `client` is NULL or a live client; `cb` NULL or callable with `userdata`; `n` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_poll_dead_letters(
    client: *const wirecore_client,
    timeout_ms: u64,
    cb: wirecore_dead_letter_cb,
    userdata: *mut c_void,
    n: *mut usize,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        let (Some(cb), Some(letters)) = (cb, c.letters.get()) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        // SAFETY: `n` NULL or writable per the contract.
        unsafe {
            poll(letters, timeout_ms, n, |l| {
                let (method, url, code, message) = (
                    c_string(&l.method),
                    c_string(&l.url),
                    c_string(&l.error_code),
                    c_string(&l.message),
                );
                let headers = c_string(&serde_json::to_string(&l.headers).unwrap_or_default());
                let letter = wirecore_dead_letter {
                    method: method.as_ptr(),
                    url: url.as_ptr(),
                    headers_json: headers.as_ptr(),
                    body: l.body.as_ref().map_or(std::ptr::null(), |b| b.as_ptr()),
                    body_len: l.body.as_ref().map_or(0, bytes::Bytes::len),
                    error_code: code.as_ptr(),
                    message: message.as_ptr(),
                    status: l.status.unwrap_or(0),
                    attempts: l.attempts,
                    time_ms: l.time_ms,
                };
                // SAFETY: the caller's callback, with its own userdata; `letter` and the
                // strings it points to live until it returns.
                cb(userdata, &raw const letter);
            })
        }
    })
}

/// Starts handing `client`'s finished spans to `wirecore_client_poll_spans` (in a queue of
/// `otel.callback_queue`; more are dropped, counted in the stats' `otel.dropped`). Calling it
/// again does nothing.
///
/// # Errors
/// `WIRECORE_INVALID_CONFIG` while `otel.enabled` is false; `WIRECORE_INVALID_ARGUMENT` for
/// an invalid handle.
///
/// # Safety
/// `client` is NULL or a live client; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_listen_spans(
    client: *const wirecore_client,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return error::invalid(err, "wirecore_client_listen_spans: invalid client");
        };
        if !c.client.config().otel.enabled {
            return error::fail(
                err,
                &wirecore::Error::new(
                    wirecore::ErrorKind::InvalidConfig,
                    "invalid config: otel.enabled: must be true for a span callback",
                ),
            );
        }
        c.spans.get_or_init(|| {
            let q = wirecore_bridge::Spans::new(&c.client);
            // The C thread blocks in `wirecore_client_poll_spans`: nothing to wake. With
            // tracing on (checked above) listening cannot fail.
            let _ = q.listen(&c.client, || {});
            q
        });
        wirecore_code::WIRECORE_OK
    })
}

/// Waits up to `timeout_ms` for finished spans, then calls `cb(userdata, span)` for each (at
/// most 64) on this thread; `*n` (when not NULL) receives how many. Returns `WIRECORE_OK` (with
/// 0 spans on timeout), `WIRECORE_CLOSED` once the client is closed and none are left (a closed
/// client hands over every span queued before `wirecore_client_close` returned).
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for a NULL client or callback, or a client whose
/// `wirecore_client_listen_spans` did not succeed.
///
/// # Safety
/// `client` is NULL or a live client; `cb` NULL or callable with `userdata`; `n` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_poll_spans(
    client: *const wirecore_client,
    timeout_ms: u64,
    cb: wirecore_span_cb,
    userdata: *mut c_void,
    n: *mut usize,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        let (Some(cb), Some(spans)) = (cb, c.spans.get()) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        // SAFETY: `n` NULL or writable per the contract.
        unsafe {
            poll(spans, timeout_ms, n, |s| {
                let strings = [
                    s.trace_id.as_str(),
                    s.span_id.as_str(),
                    s.name.as_str(),
                    s.status,
                    s.status_message.as_str(),
                ]
                .map(c_string);
                let parent = s.parent_span_id.as_deref().map(c_string);
                let attrs = c_string(&serde_json::to_string(&s.attributes).unwrap_or_default());
                let json = c_string(&s.to_json());
                let span = wirecore_span {
                    trace_id: strings[0].as_ptr(),
                    span_id: strings[1].as_ptr(),
                    parent_span_id: parent.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                    name: strings[2].as_ptr(),
                    status: strings[3].as_ptr(),
                    status_message: strings[4].as_ptr(),
                    start_unix_nanos: s.start_unix_nanos,
                    end_unix_nanos: s.end_unix_nanos,
                    attributes_json: attrs.as_ptr(),
                    json: json.as_ptr(),
                };
                // SAFETY: the caller's callback, with its own userdata; `span` and the strings
                // it points to live until it returns.
                cb(userdata, &raw const span);
            })
        }
    })
}

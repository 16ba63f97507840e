//! Dead letters for a C callback: the engine queues them (`wirecore_bridge::Letters`) and the
//! caller's own thread takes them with `wirecore_client_poll_dead_letters`, so the callback
//! never runs on an engine thread.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use crate::client::wirecore_client;
use crate::error::wirecore_code;
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

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
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
        let mut got = Vec::new();
        let taken = letters
            .queue()
            .wait_with(64, Some(Duration::from_millis(timeout_ms)), |l| got.push(l));
        for l in &got {
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
            // SAFETY: the caller's callback, with its own userdata; `letter` and the strings
            // it points to live until it returns.
            unsafe { cb(userdata, &raw const letter) };
        }
        // SAFETY: NULL or writable per the contract.
        unsafe { handle::put(n, got.len()) };
        if taken.is_none() {
            wirecore_code::WIRECORE_CLOSED
        } else {
            wirecore_code::WIRECORE_OK
        }
    })
}

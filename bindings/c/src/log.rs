//! Engine log records for C: `wirecore_log_enable` starts queueing them (process-wide, in the
//! bridge's bounded queue) and the caller's own thread takes them with `wirecore_log_poll`, so
//! the callback never runs on an engine thread.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle;

/// One engine event. Every pointer is valid only during the callback it is passed to.
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_log_record {
    /// `error`, `warn`, `info`, `debug` or `trace` (NUL-terminated).
    pub level: *const c_char,
    /// Where it happened, `wirecore::pool::connect` (NUL-terminated).
    pub target: *const c_char,
    /// What happened, in words (NUL-terminated).
    pub message: *const c_char,
    /// Its fields as a JSON object: `event` (`connection_opened`, `retry` ...), `origin`,
    /// `attempt`, `error_code` ... (NUL-terminated).
    pub fields_json: *const c_char,
    /// When, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Called with each record on the thread that polls; must not keep `record`'s pointers.
pub type wirecore_log_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, record: *const wirecore_log_record)>;

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Keeps the engine's events up to `level` (`"error"`, `"warn"`, `"info"`, `"debug"`,
/// `"trace"`; `"off"` stops) for `wirecore_log_poll`, for every client of the process. Off by
/// default. At most 4096 records wait; more are dropped.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for NULL or an unknown level.
///
/// # Safety
/// `level` is NULL or a NUL-terminated string; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_log_enable(
    level: *const c_char,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a NUL-terminated string per the contract.
        let Some(name) = (unsafe { handle::cstr(level) }) else {
            return error::invalid(err, "level must be a UTF-8 string");
        };
        let level = match wirecore_bridge::log::parse_level(name) {
            Ok(l) => l,
            Err(why) => return error::invalid(err, &why),
        };
        match wirecore_bridge::log::enable(level, None) {
            Ok(()) => wirecore_code::WIRECORE_OK,
            Err(why) => error::invalid(err, &why),
        }
    })
}

/// Waits up to `timeout_ms` for log records, then calls `cb(userdata, record)` for each (at
/// most 256) on this thread; `*n` (when not NULL) receives how many. Returns `WIRECORE_OK`
/// (with 0 records on timeout).
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for a NULL callback.
///
/// # Safety
/// `cb` NULL or callable with `userdata`; `n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_log_poll(
    timeout_ms: u64,
    cb: wirecore_log_cb,
    userdata: *mut c_void,
    n: *mut usize,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let Some(cb) = cb else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        let mut got = Vec::new();
        wirecore_bridge::log::logs().queue().wait_with(
            256,
            Some(Duration::from_millis(timeout_ms)),
            |r| got.push(r),
        );
        for r in &got {
            let (level, target, message, fields) = (
                c_string(r.level),
                c_string(r.target),
                c_string(&r.message),
                c_string(&r.fields_json()),
            );
            let record = wirecore_log_record {
                level: level.as_ptr(),
                target: target.as_ptr(),
                message: message.as_ptr(),
                fields_json: fields.as_ptr(),
                time_ms: r.time_ms,
            };
            // SAFETY: the caller's callback, with its own userdata; `record` and the strings
            // it points to live until it returns.
            unsafe { cb(userdata, &raw const record) };
        }
        // SAFETY: NULL or writable per the contract.
        unsafe { handle::put(n, got.len()) };
        wirecore_code::WIRECORE_OK
    })
}

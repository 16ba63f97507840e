//! `wirecore_request`: a request being built (method, URL, headers, body), and
//! `wirecore_body_writer` for a body streamed from the caller.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use wirecore::{Error, ErrorKind, RequestBody};

use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle::{self, Magic};
use crate::task::{Target, wirecore_queue};

/// A request under construction. Created by `wirecore_request_new`; consumed by
/// `wirecore_client_send` / `wirecore_client_submit*` (even when they fail), or freed with
/// `wirecore_request_free`. Not thread-safe: build it on one thread.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_request {
    magic: Magic,
    pub(crate) req: wirecore::Request,
}

tagged!(wirecore_request, REQUEST);

/// The writing end of a streamed request body. Free with `wirecore_body_writer_close`.
/// Thread-safe to hand to another thread (one writer at a time).
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_body_writer {
    magic: Magic,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

tagged!(wirecore_body_writer, WRITER);

fn utf8<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a str, String> {
    // SAFETY: callers pass `len` readable bytes at `p` (documented on each export).
    let b =
        unsafe { handle::bytes(p.cast::<u8>(), len) }.ok_or_else(|| format!("{what} is NULL"))?;
    std::str::from_utf8(b).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// Starts a request. `method` and `url` are `len`-byte UTF-8 strings (no NUL needed).
/// On success `*out` owns a new request.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` (method), `WIRECORE_INVALID_URL`, `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointers are NULL or valid for the given lengths; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_new(
    method: *const c_char,
    method_len: usize,
    url: *const c_char,
    url_len: usize,
    out: *mut *mut wirecore_request,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        if out.is_null() {
            return error::invalid(err, "wirecore_request_new: out is NULL");
        }
        let m = match utf8(method, method_len, "method") {
            Ok(m) => m,
            Err(e) => return error::invalid(err, &e),
        };
        let u = match utf8(url, url_len, "url") {
            Ok(u) => u,
            Err(e) => return error::invalid(err, &e),
        };
        let req = wirecore::parse_method(m).and_then(|m| wirecore::Request::new(m, u));
        match req {
            Ok(req) => {
                let h = handle::give(wirecore_request {
                    magic: Magic::REQUEST,
                    req,
                });
                // SAFETY: checked non-NULL above.
                unsafe { handle::put(out, h) };
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Appends a header (repeated names are kept). Name and value are byte strings of the given
/// lengths; the value may be any visible ASCII or obs-text.
///
/// # Errors
/// `WIRECORE_INVALID_HEADER` naming the header; `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `req` is a live request; pointers valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_add_header(
    req: *mut wirecore_request,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(err, "wirecore_request_add_header: invalid request handle");
        };
        let n = match utf8(name, name_len, "header name") {
            Ok(n) => n,
            Err(e) => return error::fail(err, &Error::new(ErrorKind::InvalidHeader, e)),
        };
        let v = match utf8(value, value_len, "header value") {
            Ok(v) => v,
            Err(e) => {
                return error::fail(
                    err,
                    &Error::new(ErrorKind::InvalidHeader, format!("header {n:?}: {e}")),
                );
            }
        };
        match wirecore::parse_header(n, v) {
            Ok((n, v)) => {
                r.req.headers_mut().append(n, v);
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Sets `Authorization: Basic base64(user:password)` (HTTP Basic, RFC 7617), replacing any
/// `Authorization` header added before; encoded by the core (`wirecore::basic_auth`), as Rust's
/// `RequestBuilder::basic_auth`. `user` and `password` are UTF-8 byte strings of the given
/// lengths; `password` NULL (with `password_len` 0) is an empty one. Like any `Authorization`,
/// it is dropped on a redirect to another origin.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for an invalid handle, NULL with a length, or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; `user` valid for `user_len` bytes; `password` NULL or valid for
/// `password_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_basic_auth(
    req: *mut wirecore_request,
    user: *const c_char,
    user_len: usize,
    password: *const c_char,
    password_len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(
                err,
                "wirecore_request_set_basic_auth: invalid request handle",
            );
        };
        let u = match utf8(user, user_len, "user") {
            Ok(u) => u,
            Err(e) => return error::invalid(err, &format!("wirecore_request_set_basic_auth: {e}")),
        };
        let p = if password.is_null() && password_len == 0 {
            None
        } else {
            match utf8(password, password_len, "password") {
                Ok(p) => Some(p),
                Err(e) => {
                    return error::invalid(err, &format!("wirecore_request_set_basic_auth: {e}"));
                }
            }
        };
        match wirecore::basic_auth(u, p) {
            Ok(v) => {
                r.req.headers_mut().insert(http::header::AUTHORIZATION, v);
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Sets the body to a copy of `len` bytes at `data` (replayable for redirects and retries).
///
/// # Safety
/// `req` is a live request; `data` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_body(
    req: *mut wirecore_request,
    data: *const u8,
    len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(err, "wirecore_request_set_body: invalid request handle");
        };
        // SAFETY: per the contract.
        let Some(b) = (unsafe { handle::bytes(data, len) }) else {
            return error::invalid(err, "wirecore_request_set_body: data is NULL");
        };
        *r.req.body_mut() = RequestBody::from(Bytes::copy_from_slice(b));
        wirecore_code::WIRECORE_OK
    })
}

/// Changes the request's options through `f`, keeping the change only when the core's
/// `RequestOptions::validate` accepts it (its message names the option).
///
/// # Safety
/// `req` NULL or a live request; `err` as every export.
unsafe fn set_option(
    req: *mut wirecore_request,
    func: &str,
    err: *mut *mut wirecore_error,
    f: impl FnOnce(&mut wirecore::RequestOptions),
) -> wirecore_code {
    // SAFETY: NULL or a live request (magic checked).
    let Some(r) = (unsafe { handle::get_mut(req) }) else {
        return error::invalid(err, &format!("{func}: invalid request handle"));
    };
    let mut o = r.req.options().clone();
    f(&mut o);
    match o.validate() {
        Ok(()) => {
            *r.req.options_mut() = o;
            wirecore_code::WIRECORE_OK
        }
        Err(e) => error::fail(err, &e),
    }
}

/// Milliseconds to an override: 0 keeps the config's.
fn ms_option(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Sets a total timeout for this request, overriding `timeouts.total_ms`. 0 clears it (the
/// config's applies): no request has a zero timeout in any language (`RequestOptions`), and C's
/// `uint64_t` has no other "unset". The phase setters below read 0 the same way.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` above one year (`MAX_DURATION_MS`); `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_timeout_ms(
    req: *mut wirecore_request,
    ms: u64,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_timeout_ms", err, |o| {
                o.timeout = ms_option(ms);
            })
        }
    })
}

/// Declares the request safe (`true`) or unsafe (`false`) to repeat, for retries and hedging.
/// Without this call the method and an `Idempotency-Key` header decide (GET, HEAD, PUT, DELETE,
/// OPTIONS and TRACE are; POST and PATCH are not).
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_idempotent(
    req: *mut wirecore_request,
    idempotent: bool,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        r.req.options_mut().idempotent = Some(idempotent);
        wirecore_code::WIRECORE_OK
    })
}

/// Sets the key `rate_limit.scope = "key"` counts this request under (a tenant, a user); the
/// bytes are copied. `key` NULL (with `len` 0) clears it: the request then counts under its
/// origin.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for an empty key; `WIRECORE_INVALID_ARGUMENT` for an invalid
/// handle, NULL with a length, or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; `key` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_rate_limit_key(
    req: *mut wirecore_request,
    key: *const c_char,
    len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(
                err,
                "wirecore_request_set_rate_limit_key: invalid request handle",
            );
        };
        if key.is_null() && len == 0 {
            r.req.options_mut().rate_limit_key = None;
            return wirecore_code::WIRECORE_OK;
        }
        let k = match utf8(key, len, "rate limit key") {
            Ok(k) => k.to_owned(),
            Err(e) => return error::invalid(err, &e),
        };
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_rate_limit_key", err, |o| {
                o.rate_limit_key = Some(k);
            })
        }
    })
}

/// Sets what a redirect (301, 302, 303, 307, 308) does to this request. `policy` is `len` bytes
/// of UTF-8: `"follow"` (follow `Location`, up to `max_redirects` hops, then
/// `WIRECORE_TOO_MANY_REDIRECTS`), `"manual"` (the 3xx is the response) or `"error"` (fail with
/// `WIRECORE_TOO_MANY_REDIRECTS`); NULL with `len` 0 keeps the default, follow. `max_redirects`
/// overrides `redirect.max` (0 returns the 3xx as it is; at most 1000); a negative value keeps
/// the config's.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for another policy name or `max_redirects` over 1000;
/// `WIRECORE_INVALID_ARGUMENT` for an invalid handle, NULL with a length, or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; `policy` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_redirect(
    req: *mut wirecore_request,
    policy: *const c_char,
    len: usize,
    max_redirects: i64,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let policy = if policy.is_null() && len == 0 {
            None
        } else {
            let name = match utf8(policy, len, "redirect policy") {
                Ok(s) => s,
                Err(e) => return error::invalid(err, &e),
            };
            match wirecore::RedirectPolicy::parse(name) {
                Ok(p) => Some(p),
                Err(e) => return error::fail(err, &e),
            }
        };
        let max = if max_redirects < 0 {
            None
        } else {
            match wirecore::RequestOptions::checked_max_redirects(max_redirects) {
                Ok(n) => Some(n),
                Err(e) => return error::fail(err, &e),
            }
        };
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_redirect", err, |o| {
                o.redirect = policy;
                o.max_redirects = max;
            })
        }
    })
}

/// Sets the key a `consistent_hash` service (`services` in the config) places this request by
/// (a user, a session, a shard), ahead of the service's `hash.header` or `hash.cookie`; the
/// bytes are copied. `key` NULL (with `len` 0) clears it.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for an empty key or one over 1024 bytes; `WIRECORE_INVALID_ARGUMENT`
/// for an invalid handle, NULL with a length, or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; `key` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_balance_key(
    req: *mut wirecore_request,
    key: *const c_char,
    len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(
                err,
                "wirecore_request_set_balance_key: invalid request handle",
            );
        };
        if key.is_null() && len == 0 {
            r.req.options_mut().balance_key = None;
            return wirecore_code::WIRECORE_OK;
        }
        let k = match utf8(key, len, "balance key") {
            Ok(k) => k.to_owned(),
            Err(e) => return error::invalid(err, &e),
        };
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_balance_key", err, |o| {
                o.balance_key = Some(k);
            })
        }
    })
}

/// Sets the caller's W3C trace context: `traceparent` (`00-<trace id>-<span id>-<flags>`) is the
/// parent of this request's span when the config's `otel.enabled`, and is sent unchanged when
/// not; `tracestate` (NULL with `state_len` 0 for none) goes with it. The bytes are copied.
/// `traceparent` NULL (with `parent_len` 0) clears both.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for a value that breaks the W3C rules; `WIRECORE_INVALID_ARGUMENT`
/// for an invalid handle, NULL with a length, or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; each string NULL or valid for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_trace_context(
    req: *mut wirecore_request,
    traceparent: *const c_char,
    parent_len: usize,
    tracestate: *const c_char,
    state_len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let func = "wirecore_request_set_trace_context";
        let (tp, ts) = if traceparent.is_null() && parent_len == 0 {
            (None, None)
        } else {
            let tp = match utf8(traceparent, parent_len, "traceparent") {
                Ok(t) => t.to_owned(),
                Err(e) => return error::invalid(err, &e),
            };
            let ts = if tracestate.is_null() && state_len == 0 {
                None
            } else {
                match utf8(tracestate, state_len, "tracestate") {
                    Ok(t) => Some(t.to_owned()),
                    Err(e) => return error::invalid(err, &e),
                }
            };
            (Some(tp), ts)
        };
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, func, err, |o| {
                o.traceparent = tp;
                o.tracestate = ts;
            })
        }
    })
}

/// Overrides `timeouts.connect_ms` for connections this request opens (`WIRECORE_TIMEOUT_CONNECT`
/// when it fires). 0 keeps the config's.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` above one year (`MAX_DURATION_MS`); `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_connect_timeout_ms(
    req: *mut wirecore_request,
    ms: u64,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_connect_timeout_ms", err, |o| {
                o.connect_timeout = ms_option(ms);
            })
        }
    })
}

/// Overrides `timeouts.read_idle_ms`, the longest silence while waiting for response bytes
/// (`WIRECORE_TIMEOUT_READ` when it fires). 0 keeps the config's.
///
/// # Errors
/// As `wirecore_request_set_connect_timeout_ms`.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_read_timeout_ms(
    req: *mut wirecore_request,
    ms: u64,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_read_timeout_ms", err, |o| {
                o.read_timeout = ms_option(ms);
            })
        }
    })
}

/// Overrides `timeouts.pool_acquire_ms`, the longest wait for a pooled connection
/// (`WIRECORE_TIMEOUT_POOL` when it fires). 0 keeps the config's.
///
/// # Errors
/// As `wirecore_request_set_connect_timeout_ms`.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_pool_timeout_ms(
    req: *mut wirecore_request,
    ms: u64,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_pool_timeout_ms", err, |o| {
                o.pool_timeout = ms_option(ms);
            })
        }
    })
}

/// Sets the RFC 9218 priority: `urgency` 0 (most urgent) to 7 (least; 3 is the default), and
/// `incremental`. It is sent as the `Priority` header (`u=1`, `u=1, i`), replacing any
/// `Priority` header the caller added (before or after this call), and orders this request
/// among those waiting for a connection to its origin. Without this call a caller's own
/// `Priority` header goes out unchanged and its `u=` orders the queue. The same rule holds in
/// every language.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for an urgency over 7; `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_priority(
    req: *mut wirecore_request,
    urgency: u8,
    incremental: bool,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: as this function's contract.
        unsafe {
            set_option(req, "wirecore_request_set_priority", err, |o| {
                o.priority = Some(wirecore::Priority {
                    urgency,
                    incremental,
                });
            })
        }
    })
}

/// Parses a priority in the forms every language accepts: an urgency `"0"` to `"7"`, a word
/// (`highest` 0, `high` 1, `normal` 3, `low` 5, `lowest` 7; any case) or an RFC 9218 value
/// (`"u=1, i"`). `s` is `len` bytes of UTF-8. On success writes `*urgency` and `*incremental`
/// (for `wirecore_request_set_priority`).
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` naming the value and the accepted forms; `WIRECORE_INVALID_ARGUMENT`
/// for NULL pointers or invalid UTF-8.
///
/// # Safety
/// `s` valid for `len` bytes; `urgency` and `incremental` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_priority_parse(
    s: *const c_char,
    len: usize,
    urgency: *mut u8,
    incremental: *mut bool,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        if urgency.is_null() || incremental.is_null() {
            return error::invalid(err, "wirecore_priority_parse: an out pointer is NULL");
        }
        let s = match utf8(s, len, "priority") {
            Ok(s) => s,
            Err(e) => return error::invalid(err, &e),
        };
        match wirecore::Priority::parse(s) {
            Ok(p) => {
                // SAFETY: both checked non-NULL above; writable per the contract.
                unsafe {
                    urgency.write(p.urgency);
                    incremental.write(p.incremental);
                }
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Sets how this request uses the client's response cache, as fetch's `cache` option: `mode`
/// is `len` bytes of UTF-8, one of `default`, `no-store`, `reload`, `no-cache`, `force-cache`,
/// `only-if-cached` (any case; the meanings are those of every language, see the C README).
/// `only-if-cached` without a stored response answers `504` without asking the server.
///
/// # Errors
/// `WIRECORE_INVALID_REQUEST` for another word, naming the accepted ones;
/// `WIRECORE_INVALID_ARGUMENT` for an invalid handle, NULL or invalid UTF-8.
///
/// # Safety
/// `req` is a live request; `mode` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_cache_mode(
    req: *mut wirecore_request,
    mode: *const c_char,
    len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return error::invalid(
                err,
                "wirecore_request_set_cache_mode: invalid request handle",
            );
        };
        let m = match utf8(mode, len, "cache mode") {
            Ok(m) => m,
            Err(e) => return error::invalid(err, &e),
        };
        match wirecore::CacheMode::parse(m) {
            Ok(m) => {
                r.req.options_mut().cache = m;
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Whether the client's `default_headers` go out with this request (default true;
/// `User-Agent` always does). A caller that follows redirects itself turns them off for every
/// hop after its redirect chain left the first request's origin, as the engine does when it
/// follows redirects.
///
/// # Safety
/// `req` is a live request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_set_default_headers(
    req: *mut wirecore_request,
    send: bool,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        *r.req.default_headers_mut() = send;
        wirecore_code::WIRECORE_OK
    })
}

/// Makes the body a stream the caller writes after submitting the request. On success `*out`
/// owns a writer: write chunks with `wirecore_body_writer_write`, then call
/// `wirecore_body_writer_close` exactly once. A streamed body is never replayed.
///
/// # Safety
/// `req` is a live request; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_body_stream(
    req: *mut wirecore_request,
    out: *mut *mut wirecore_body_writer,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live request (magic checked).
        let Some(r) = (unsafe { handle::get_mut(req) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        if out.is_null() {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        }
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        *r.req.body_mut() = RequestBody::wrap_stream(stream);
        let w = handle::give(wirecore_body_writer {
            magic: Magic::WRITER,
            tx,
        });
        // SAFETY: checked non-NULL above.
        unsafe { handle::put(out, w) };
        wirecore_code::WIRECORE_OK
    })
}

/// Copies `len` bytes into the body stream. Blocks the calling thread while 8 chunks are
/// queued and unsent (back-pressure); never call it from a wirecore callback.
///
/// # Errors
/// `WIRECORE_IO` when the request no longer reads its body (it failed or was cancelled).
///
/// # Safety
/// `w` is a live writer; `data` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_body_writer_write(
    w: *mut wirecore_body_writer,
    data: *const u8,
    len: usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live writer (magic checked).
        let Some(w) = (unsafe { handle::get(w) }) else {
            return error::invalid(err, "wirecore_body_writer_write: invalid writer handle");
        };
        // SAFETY: per the contract.
        let Some(b) = (unsafe { handle::bytes(data, len) }) else {
            return error::invalid(err, "wirecore_body_writer_write: data is NULL");
        };
        if b.is_empty() {
            return wirecore_code::WIRECORE_OK;
        }
        match w.tx.blocking_send(Ok(Bytes::copy_from_slice(b))) {
            Ok(()) => wirecore_code::WIRECORE_OK,
            Err(_) => error::fail(
                err,
                &Error::new(ErrorKind::Io, "the request no longer reads its body"),
            ),
        }
    })
}

/// Ends the body and frees the writer. With `abort` true the body fails instead (the request
/// then fails with `WIRECORE_IO`). Never blocks.
///
/// # Safety
/// `w` is NULL or a live writer, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_body_writer_close(w: *mut wirecore_body_writer, abort: bool) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live writer, freed once.
        if let Some(w) = unsafe { handle::take(w) }
            && abort
        {
            let e = || std::io::Error::other("the caller aborted the request body");
            if let Err(mpsc::error::TrySendError::Full(_)) = w.tx.try_send(Err(e())) {
                let tx = w.tx.clone();
                crate::handle::runtime().spawn(async move {
                    let _ = tx.send(Err(e())).await;
                });
            }
        }
    });
}

/// Copies `len` bytes into the body stream without blocking, and posts a completion (with
/// `userdata`, `response` NULL) to `queue` once the chunk is accepted: `WIRECORE_OK`, or
/// `WIRECORE_IO` when the request no longer reads its body. Write the next chunk only after
/// that completion (one queued write at a time).
///
/// # Safety
/// `w` is a live writer; `data` valid for `len` bytes; `queue` a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_body_writer_write_queue(
    w: *mut wirecore_body_writer,
    data: *const u8,
    len: usize,
    queue: *const wirecore_queue,
    userdata: *mut c_void,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live writer (magic checked).
        let Some(w) = (unsafe { handle::get(w) }) else {
            return error::invalid(
                err,
                "wirecore_body_writer_write_queue: invalid writer handle",
            );
        };
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return error::invalid(
                err,
                "wirecore_body_writer_write_queue: invalid queue handle",
            );
        };
        // SAFETY: per the contract.
        let Some(b) = (unsafe { handle::bytes(data, len) }) else {
            return error::invalid(err, "wirecore_body_writer_write_queue: data is NULL");
        };
        let target = Target::Queue(q.inner.clone(), SendPtr(userdata));
        let gone = || Error::new(ErrorKind::Io, "the request no longer reads its body");
        if b.is_empty() {
            target.deliver_read(Ok(()));
            return wirecore_code::WIRECORE_OK;
        }
        match w.tx.try_send(Ok(Bytes::copy_from_slice(b))) {
            Ok(()) => target.deliver_read(Ok(())),
            Err(mpsc::error::TrySendError::Closed(_)) => target.deliver_read(Err(gone())),
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                let tx = w.tx.clone();
                crate::task::spawn_once(
                    async move { tx.send(chunk).await.map_err(|_| gone()) },
                    move |r| target.deliver_read(r),
                );
            }
        }
        wirecore_code::WIRECORE_OK
    })
}

/// Frees a request that was not sent. NULL is ignored.
///
/// # Safety
/// `req` is NULL or a live request, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_request_free(req: *mut wirecore_request) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live request, freed once.
        drop(unsafe { handle::take(req) });
    });
}

/// Takes the request out of its handle (consuming the handle).
///
/// # Safety
/// `req` is NULL or a live request.
pub(crate) unsafe fn take(req: *mut wirecore_request) -> Option<wirecore::Request> {
    // SAFETY: per the contract.
    unsafe { handle::take(req) }.map(|b| b.req)
}

/// A raw pointer that may cross threads (userdata the caller promised to handle).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendPtr(pub(crate) *mut c_void);

// SAFETY: userdata is opaque to wirecore; the header documents that it is handed back on an
// engine thread, so the caller is responsible for what it points to.
unsafe impl Send for SendPtr {}

//! `wirecore_client`: a client built from the core's JSON config, the blocking `send`, `close`,
//! and the stats snapshot (JSON and Prometheus text).

use std::ffi::{CString, c_char};
use std::sync::Arc;
use std::time::Duration;

use wirecore::{Config, Error, ErrorKind};
use wirecore_bridge::{Kind, Tracker};

use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle::{self, Magic};
use crate::request::{self, wirecore_request};
use crate::response::{self, wirecore_response};

/// A client: a connection pool, a DNS cache and counters. Thread-safe: share one handle
/// between threads. Free with `wirecore_client_free`.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_client {
    magic: Magic,
    pub(crate) client: wirecore::Client,
    /// Requests and body reads in flight, so `wirecore_client_close` waits for them.
    pub(crate) tracker: Arc<Tracker>,
    /// Dead letters kept for `wirecore_client_poll_dead_letters`, once asked for.
    pub(crate) letters: std::sync::OnceLock<Arc<wirecore_bridge::Letters>>,
    /// Finished spans kept for `wirecore_client_poll_spans`, once asked for.
    pub(crate) spans: std::sync::OnceLock<Arc<wirecore_bridge::Spans>>,
}

tagged!(wirecore_client, CLIENT);

/// Builds a client from `config_json`, the core's config as JSON (`{"pool":{"max_idle_per_host":8}}`);
/// NULL or `""` means every default. On success `*out` owns the client.
///
/// # Errors
/// `WIRECORE_INVALID_CONFIG` naming the first bad field; `WIRECORE_INVALID_ARGUMENT`.
///
/// # Safety
/// `config_json` is NULL or NUL-terminated; `out` writable; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_new(
    config_json: *const c_char,
    out: *mut *mut wirecore_client,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        if out.is_null() {
            return error::invalid(err, "wirecore_client_new: out is NULL");
        }
        let json = if config_json.is_null() {
            ""
        } else {
            // SAFETY: non-NULL and NUL-terminated per the contract.
            match unsafe { handle::cstr(config_json) } {
                Some(s) => s,
                None => return error::invalid(err, "wirecore_client_new: config is not UTF-8"),
            }
        };
        let cfg = if json.trim().is_empty() {
            Ok(Config::default())
        } else {
            Config::from_json(json)
        };
        match cfg.and_then(wirecore::Client::from_config) {
            Ok(client) => {
                let h = handle::give(wirecore_client {
                    magic: Magic::CLIENT,
                    client,
                    tracker: Tracker::new(),
                    letters: std::sync::OnceLock::new(),
                    spans: std::sync::OnceLock::new(),
                });
                // SAFETY: checked non-NULL.
                unsafe { handle::put(out, h) };
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Frees a client handle. Requests in flight finish; idle connections close once the last
/// in-flight request is done. NULL is ignored.
///
/// # Safety
/// `client` is NULL or a live client, not used afterwards by any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_free(client: *mut wirecore_client) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live client, freed once.
        drop(unsafe { handle::take(client) });
    });
}

/// Sends `req` (consumed, even on failure) and blocks the calling thread until the response
/// head arrives (small bodies arrive with it). On success `*out` owns the response. Never call
/// it from a wirecore callback (it would block an engine thread).
///
/// # Errors
/// Any status; `*err` (when not NULL) receives the error.
///
/// # Safety
/// Handles live or NULL; `out` writable; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_send(
    client: *const wirecore_client,
    req: *mut wirecore_request,
    out: *mut *mut wirecore_response,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live request; consumed here whatever happens next.
        let request = unsafe { request::take(req) };
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return error::invalid(err, "wirecore_client_send: invalid client handle");
        };
        let Some(request) = request else {
            return error::invalid(err, "wirecore_client_send: invalid request handle");
        };
        if out.is_null() {
            return error::invalid(err, "wirecore_client_send: out is NULL");
        }
        let work = response::fetch(c.client.clone(), c.tracker.clone(), request);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // The request runs on the engine; this thread only waits for its outcome.
        c.tracker.spawn(Kind::Request, None, work, move |r| {
            let _ = tx.send(r);
        });
        let res = rx.recv().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Internal,
                "the engine dropped the request",
            ))
        });
        match res {
            Ok(r) => {
                // SAFETY: checked non-NULL.
                unsafe { handle::put(out, Box::into_raw(r)) };
                wirecore_code::WIRECORE_OK
            }
            Err(e) => error::fail(err, &e),
        }
    })
}

/// Refuses new requests, waits (blocking the calling thread) until in-flight ones (and body
/// reads in flight) finish or `deadline_ms` passes, then cancels the requests still running
/// (their completion carries `WIRECORE_CANCELLED`), exports the OpenTelemetry spans still
/// queued (within what is left of the deadline, and at least 2 s) and closes idle connections.
/// Returns only after the callback (or
/// queue completion) of every request submitted on this client was delivered, so callback
/// state may be freed right after. Never call it from a wirecore callback. The handle must
/// still be freed.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_close(
    client: *const wirecore_client,
    deadline_ms: u64,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        let (client, tracker) = (c.client.clone(), c.tracker.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let d = Duration::from_millis(deadline_ms);
        wirecore_bridge::spawn(
            async move {
                tracker.close(&client, d, true).await;
                Ok(())
            },
            move |r: Result<(), Error>| {
                let _ = tx.send(r);
            },
        );
        let _ = rx.recv();
        c.tracker.wait_requests();
        if let Some(l) = c.letters.get() {
            l.queue().close();
        }
        if let Some(s) = c.spans.get() {
            s.queue().close();
        }
        wirecore_code::WIRECORE_OK
    })
}

/// Exports the finished OpenTelemetry spans and the `http.client.request.duration` metric to
/// `otel.endpoint` now, blocking the calling thread until the collector answered, the export
/// failed (the spans lost count in the stats' `otel.dropped`), or `deadline_ms` passed. Without
/// an endpoint it returns at once. `wirecore_client_close` does this too. Never call it from a
/// wirecore callback. Thread-safe.
///
/// # Errors
/// `WIRECORE_TIMEOUT_TOTAL` when `deadline_ms` passed first (the export goes on in the
/// background); `WIRECORE_INVALID_ARGUMENT` for an invalid handle.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_flush_telemetry(
    client: *const wirecore_client,
    deadline_ms: u64,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        let client = c.client.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let d = Duration::from_millis(deadline_ms);
        wirecore_bridge::spawn(
            async move {
                let done = tokio::time::timeout(d, client.flush_telemetry()).await;
                Ok(done.is_ok())
            },
            move |r: Result<bool, Error>| {
                let _ = tx.send(r);
            },
        );
        match rx.recv() {
            Ok(Ok(true)) => wirecore_code::WIRECORE_OK,
            Ok(Ok(false)) => wirecore_code::WIRECORE_TIMEOUT_TOTAL,
            _ => wirecore_code::WIRECORE_INTERNAL,
        }
    })
}

/// Closes the client's idle pooled connections now (HTTP/1 keep-alive connections and HTTP/2
/// sessions with no stream open); the next request opens a new one. Requests in flight and
/// their connections are untouched, and the client stays usable. Does not block. Thread-safe.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for an invalid handle.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_close_idle(
    client: *const wirecore_client,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        c.client.close_idle_connections();
        wirecore_code::WIRECORE_OK
    })
}

fn give_string(s: String, out: *mut *mut c_char, len: *mut usize) {
    let n = s.len();
    let c = CString::new(s).unwrap_or_default();
    // SAFETY: callers checked `out` non-NULL; `len` is NULL or writable.
    unsafe {
        handle::put(len, n);
        handle::put(out, c.into_raw());
    }
}

/// Hands `text(client)` to C as an owned NUL-terminated string (see `wirecore_client_stats_json`).
///
/// # Safety
/// `client` is NULL or a live client; `out` writable; `len` NULL or writable.
unsafe fn client_text(
    client: *const wirecore_client,
    out: *mut *mut c_char,
    len: *mut usize,
    text: impl FnOnce(&wirecore::Client) -> String,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        if out.is_null() {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        }
        give_string(text(&c.client), out, len);
        wirecore_code::WIRECORE_OK
    })
}

/// The stats snapshot as JSON (same field names in every language). On success `*out` owns a
/// NUL-terminated string to free with `wirecore_string_free`; `*len` (when not NULL) is its
/// length without the NUL.
///
/// # Safety
/// `client` is NULL or a live client; `out` writable; `len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_stats_json(
    client: *const wirecore_client,
    out: *mut *mut c_char,
    len: *mut usize,
) -> wirecore_code {
    // SAFETY: as this function's contract.
    unsafe { client_text(client, out, len, |c| c.stats().to_json()) }
}

/// The health report as JSON: `requests_total`, `error_rate`, latency percentiles,
/// `requests_per_second`, `compression_ratio`, `dns_hit_rate`, `connection_reuse_ratio` and
/// `origins` (each with `origin`, `protocol`, `health`, connection counts). Ownership as
/// `wirecore_client_stats_json`.
///
/// # Safety
/// `client` is NULL or a live client; `out` writable; `len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_diagnostics_json(
    client: *const wirecore_client,
    out: *mut *mut c_char,
    len: *mut usize,
) -> wirecore_code {
    // SAFETY: as this function's contract.
    unsafe {
        client_text(client, out, len, |c| {
            // Plain numbers and strings: serialising cannot fail.
            serde_json::to_string(&c.diagnostics()).unwrap_or_default()
        })
    }
}

/// The cookie jar's unexpired cookies as a JSON array (`[]` while `cookies.enabled` is false),
/// each `{"name", "value", "domain", "host_only", "path", "secure", "http_only", "same_site",
/// "expires_ms"}` (`same_site` and `expires_ms` may be null). Ownership as
/// `wirecore_client_stats_json`.
///
/// # Safety
/// `client` is NULL or a live client; `out` writable; `len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_cookies_json(
    client: *const wirecore_client,
    out: *mut *mut c_char,
    len: *mut usize,
) -> wirecore_code {
    // SAFETY: as this function's contract.
    unsafe { client_text(client, out, len, wirecore::Client::cookies_json) }
}

/// Empties the client's cookie jar. Thread-safe.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for an invalid handle.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_clear_cookies(
    client: *const wirecore_client,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        // SAFETY: NULL or a live client (magic checked).
        let Some(c) = (unsafe { handle::get(client) }) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        c.client.clear_cookies();
        wirecore_code::WIRECORE_OK
    })
}

/// The stats in Prometheus text format. Ownership as `wirecore_client_stats_json`.
///
/// # Safety
/// `client` is NULL or a live client; `out` writable; `len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_client_prometheus(
    client: *const wirecore_client,
    out: *mut *mut c_char,
    len: *mut usize,
) -> wirecore_code {
    // SAFETY: as this function's contract.
    unsafe { client_text(client, out, len, wirecore::Client::prometheus) }
}

/// Frees a string returned by wirecore (stats, Prometheus text). NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from wirecore, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_string_free(s: *mut c_char) {
    ffi_fn!(or = (), {
        if !s.is_null() {
            // SAFETY: from `CString::into_raw` in this crate, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

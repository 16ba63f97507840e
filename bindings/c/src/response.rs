//! `wirecore_response`: status, headers, timings, and the body (prefetched when small,
//! then read blocking or through a queue).

use std::ffi::{CString, c_char};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, Uri};
use wirecore::Error;
use wirecore_bridge::{Begin, BodySlot, Copied, Kind, Prefetch, Tracker};

use crate::error::{self, wirecore_code, wirecore_error};
use crate::handle::{self, Magic};
use crate::task::{Target, wirecore_queue};

/// Durations of the phases of a request, in microseconds (0 when the phase did not happen,
/// e.g. DNS/connect/TLS on a reused connection).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wirecore_timings {
    /// DNS resolution.
    pub dns_us: u64,
    /// TCP connect.
    pub connect_us: u64,
    /// TLS handshake.
    pub tls_us: u64,
    /// Send to first response byte.
    pub ttfb_us: u64,
    /// Send to response head.
    pub total_us: u64,
}

/// A response. Owned by the caller; free with `wirecore_response_free`. Getters may be called
/// from any thread; body reads from one thread at a time.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
pub struct wirecore_response {
    magic: Magic,
    status: u16,
    version: i32,
    /// Owned from the engine's response (no copy); iterated in received order.
    headers: HeaderMap,
    url: Uri,
    /// `url` as a C string, made on first ask (most bindings never ask).
    url_c: OnceLock<CString>,
    timings: wirecore_timings,
    reused: bool,
    cache: wirecore_cache_status,
    /// Small bodies (`wirecore::SMALL_BODY_BYTES`) arrive with the response, so a small
    /// response crosses the boundary once.
    body: Arc<BodySlot>,
    /// The client's, so a close waits for body reads in flight.
    tracker: Arc<Tracker>,
    /// The body `wirecore_response_body` returned; later calls return it again.
    whole: Option<Bytes>,
    packed: OnceLock<Vec<u8>>,
    tls: Option<Arc<wirecore::TlsInfo>>,
    /// `tls.server_name` as a C string, made on first ask.
    server_name_c: OnceLock<CString>,
}

tagged!(wirecore_response, RESPONSE);

impl wirecore_response {
    /// The rest of the body as events, and the tracker their reads count in.
    pub(crate) fn events(
        &self,
    ) -> Result<(Arc<wirecore_bridge::EventSlot>, Arc<Tracker>), wirecore::Error> {
        let slot = match &self.whole {
            Some(b) => wirecore_bridge::EventSlot::new(wirecore::sse::EventStream::from_bytes(b)),
            None => wirecore_bridge::EventSlot::from_body(&self.body)?,
        };
        Ok((slot, self.tracker.clone()))
    }
}

impl std::fmt::Debug for wirecore_response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("wirecore_response")
            .field("status", &self.status)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl wirecore_response {
    fn url_c(&self) -> &CString {
        self.url_c
            .get_or_init(|| CString::new(self.url.to_string()).unwrap_or_default())
    }
}

impl Drop for wirecore_response {
    fn drop(&mut self) {
        // Stops a queued read, which then completes with WIRECORE_CANCELLED.
        self.body.close("the response was freed");
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn version_num(v: wirecore::Version) -> i32 {
    match v {
        wirecore::Version::HTTP_09 => 9,
        wirecore::Version::HTTP_10 => 10,
        wirecore::Version::HTTP_2 => 20,
        wirecore::Version::HTTP_3 => 30,
        _ => 11,
    }
}

/// Sends `req` and reads a small body ahead. Runs on the engine runtime.
pub(crate) async fn fetch(
    client: wirecore::Client,
    tracker: Arc<Tracker>,
    req: wirecore::Request,
) -> Result<Box<wirecore_response>, Error> {
    let (head, body) = wirecore_bridge::fetch(client, req, Prefetch::Small).await?;
    let t = head.timings;
    Ok(Box::new(wirecore_response {
        magic: Magic::RESPONSE,
        status: head.status.as_u16(),
        version: version_num(head.version),
        headers: head.headers,
        url: head.url,
        url_c: OnceLock::new(),
        timings: wirecore_timings {
            dns_us: micros(t.dns),
            connect_us: micros(t.connect),
            tls_us: micros(t.tls),
            ttfb_us: micros(t.ttfb),
            total_us: micros(t.total),
        },
        reused: head.reused,
        cache: wirecore_cache_status::from(head.cache),
        body: BodySlot::new(body),
        tracker,
        whole: None,
        packed: OnceLock::new(),
        tls: head.tls,
        server_name_c: OnceLock::new(),
    }))
}

/// Borrows a response handle or returns `WIRECORE_INVALID_ARGUMENT` from the caller.
macro_rules! resp_or {
    ($p:expr, $fallback:expr) => {
        // SAFETY: NULL or a live response (magic checked).
        match unsafe { handle::get($p) } {
            Some(r) => r,
            None => return $fallback,
        }
    };
}

/// The status code (100–999), or 0 for an invalid handle.
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_status(resp: *const wirecore_response) -> u16 {
    ffi_fn!(or = 0, { resp_or!(resp, 0).status })
}

/// The HTTP version: 10, 11, 20 or 30 (HTTP/1.0 … HTTP/3); 0 for an invalid handle.
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_version(resp: *const wirecore_response) -> i32 {
    ffi_fn!(or = 0, { resp_or!(resp, 0).version })
}

/// Whether the request went over a reused (pooled) connection.
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_reused(resp: *const wirecore_response) -> bool {
    ffi_fn!(or = false, { resp_or!(resp, false).reused })
}

/// Where a response came from, when the client has a cache (`cache.enabled`): the same five
/// answers as every language's cache status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wirecore_cache_status {
    /// The cache took no part: none configured, a method or request it does not store, or
    /// cache mode `no-store`.
    WIRECORE_CACHE_NONE = 0,
    /// A fresh stored response; the server was not asked.
    WIRECORE_CACHE_HIT = 1,
    /// Nothing usable was stored: the server answered (or, for `only-if-cached`, a 504).
    WIRECORE_CACHE_MISS = 2,
    /// A stale stored response served without the server's confirmation.
    WIRECORE_CACHE_STALE = 3,
    /// A stale stored response the server confirmed (304).
    WIRECORE_CACHE_REVALIDATED = 4,
}

impl From<Option<wirecore::CacheStatus>> for wirecore_cache_status {
    fn from(s: Option<wirecore::CacheStatus>) -> Self {
        match s {
            None => Self::WIRECORE_CACHE_NONE,
            Some(wirecore::CacheStatus::Hit) => Self::WIRECORE_CACHE_HIT,
            Some(wirecore::CacheStatus::Miss) => Self::WIRECORE_CACHE_MISS,
            Some(wirecore::CacheStatus::Stale) => Self::WIRECORE_CACHE_STALE,
            Some(wirecore::CacheStatus::Revalidated) => Self::WIRECORE_CACHE_REVALIDATED,
        }
    }
}

/// Where the response came from (`WIRECORE_CACHE_NONE` for an invalid handle).
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_cache_status(
    resp: *const wirecore_response,
) -> wirecore_cache_status {
    ffi_fn!(or = wirecore_cache_status::WIRECORE_CACHE_NONE, {
        resp_or!(resp, wirecore_cache_status::WIRECORE_CACHE_NONE).cache
    })
}

/// The final URL (after redirects), NUL-terminated. Owned by the response.
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_url(resp: *const wirecore_response) -> *const c_char {
    ffi_fn!(or = c"".as_ptr(), {
        resp_or!(resp, c"".as_ptr()).url_c().as_ptr()
    })
}

/// Copies the phase timings into `*out`.
///
/// # Safety
/// `resp` is NULL or a live response; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_timings(
    resp: *const wirecore_response,
    out: *mut wirecore_timings,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let r = resp_or!(resp, wirecore_code::WIRECORE_INVALID_ARGUMENT);
        if out.is_null() {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        }
        // SAFETY: checked non-NULL.
        unsafe { handle::put(out, r.timings) };
        wirecore_code::WIRECORE_OK
    })
}

/// The head of a response in one call, for bindings that cross the boundary once per response.
/// Every pointer is owned by the response and valid until `wirecore_response_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wirecore_response_head {
    /// The status code.
    pub status: u16,
    /// 10, 11, 20 or 30 (see `wirecore_response_version`).
    pub version: i32,
    /// Whether a pooled connection was reused.
    pub reused: bool,
    /// Every header field as `name NUL value NUL`, in received order (names lower-case;
    /// values never contain NUL, CR or LF). Not NUL-terminated as a whole.
    pub headers: *const u8,
    /// The length of `headers` in bytes.
    pub headers_len: usize,
    /// The number of header fields in `headers`.
    pub header_count: usize,
    /// The final URL, NUL-terminated.
    pub url: *const c_char,
    /// Phase timings.
    pub timings: wirecore_timings,
}

/// Fills `*out` with the status, version, headers, URL and timings of `resp`.
///
/// # Safety
/// `resp` is NULL or a live response; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_get_head(
    resp: *const wirecore_response,
    out: *mut wirecore_response_head,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let r = resp_or!(resp, wirecore_code::WIRECORE_INVALID_ARGUMENT);
        if out.is_null() {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        }
        let packed = r.packed.get_or_init(|| {
            let mut v = Vec::with_capacity(r.headers.len() * 32);
            for (n, val) in &r.headers {
                v.extend_from_slice(n.as_str().as_bytes());
                v.push(0);
                v.extend_from_slice(val.as_bytes());
                v.push(0);
            }
            v
        });
        let head = wirecore_response_head {
            status: r.status,
            version: r.version,
            reused: r.reused,
            headers: packed.as_ptr(),
            headers_len: packed.len(),
            header_count: r.headers.len(),
            url: r.url_c().as_ptr(),
            timings: r.timings,
        };
        // SAFETY: checked non-NULL.
        unsafe { handle::put(out, head) };
        wirecore_code::WIRECORE_OK
    })
}

/// The number of header fields (a repeated name counts once per value).
///
/// # Safety
/// `resp` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_header_count(resp: *const wirecore_response) -> usize {
    ffi_fn!(or = 0, { resp_or!(resp, 0).headers.len() })
}

/// Header field `index` (0-based, in received order; names lower-case). The bytes are owned
/// by the response and are not NUL-terminated.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for a bad handle or an index out of range.
///
/// # Safety
/// `resp` is NULL or a live response; out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_header_at(
    resp: *const wirecore_response,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let r = resp_or!(resp, wirecore_code::WIRECORE_INVALID_ARGUMENT);
        let Some((n, v)) = r.headers.iter().nth(index) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or writable.
        unsafe {
            handle::put(name, n.as_str().as_ptr().cast::<c_char>());
            handle::put(name_len, n.as_str().len());
            handle::put(value, v.as_bytes().as_ptr().cast::<c_char>());
            handle::put(value_len, v.as_bytes().len());
        }
        wirecore_code::WIRECORE_OK
    })
}

/// The first value of header `name` (case-insensitive); false when absent. The value is owned
/// by the response and is not NUL-terminated.
///
/// # Safety
/// `resp` is NULL or a live response; `name` valid for `name_len` bytes; outs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_header_get(
    resp: *const wirecore_response,
    name: *const c_char,
    name_len: usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> bool {
    ffi_fn!(or = false, {
        let r = resp_or!(resp, false);
        // SAFETY: per the contract.
        let Some(want) = (unsafe { handle::bytes(name.cast::<u8>(), name_len) }) else {
            return false;
        };
        let Some((_, v)) = r
            .headers
            .iter()
            .find(|(n, _)| n.as_str().as_bytes().eq_ignore_ascii_case(want))
        else {
            return false;
        };
        // SAFETY: NULL or writable.
        unsafe {
            handle::put(value, v.as_bytes().as_ptr().cast::<c_char>());
            handle::put(value_len, v.as_bytes().len());
        }
        true
    })
}

/// Reads up to `cap` body bytes into `buf`, blocking the calling thread until at least one
/// byte or the end arrives. `*n` is 0 only at the end of the body. Never call it from a
/// wirecore callback (it would block an engine thread).
///
/// # Errors
/// The body's error (`WIRECORE_IO`, `WIRECORE_DECODE`, `WIRECORE_BODY_TOO_LARGE`, timeouts).
///
/// # Safety
/// `resp` is a live response; `buf` writable for `cap` bytes; `n` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_read(
    resp: *mut wirecore_response,
    buf: *mut u8,
    cap: usize,
    n: *mut usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let r = resp_or!(
            resp,
            error::invalid(err, "wirecore_response_read: invalid response handle")
        );
        if n.is_null() || (buf.is_null() && cap > 0) {
            return error::invalid(err, "wirecore_response_read: buf or n is NULL");
        }
        // SAFETY: `buf` is writable for `cap` bytes per the contract.
        let out: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        if cap == 0 {
            // SAFETY: checked non-NULL.
            unsafe { handle::put(n, 0) };
            return wirecore_code::WIRECORE_OK;
        }
        loop {
            let k = match r.body.copy_into(out) {
                Copied::Bytes { n, .. } => n,
                Copied::End => 0,
                Copied::Failed(e) => return error::fail(err, &e),
                Copied::Busy => {
                    return error::invalid(
                        err,
                        "wirecore_response_read: a queued read is in flight",
                    );
                }
                Copied::Empty => {
                    if let Begin::Read(reader) = r.body.begin() {
                        let _busy = r.tracker.enter(Kind::Read);
                        // Its outcome is in the body now: the next turn reports it.
                        let _ = crate::handle::runtime().block_on(reader.fill());
                    }
                    continue;
                }
            };
            // SAFETY: checked non-NULL.
            unsafe { handle::put(n, k) };
            return wirecore_code::WIRECORE_OK;
        }
    })
}

/// Copies already-received body bytes into `buf` without blocking. `*n` is how many;
/// `*eof` is true when the body is complete and fully read. When both are 0/false, call
/// `wirecore_response_read_queue` to fetch more.
///
/// # Errors
/// The body's error, once the bytes before it are read.
///
/// # Safety
/// `resp` is a live response; `buf` writable for `cap` bytes; `n`, `eof` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_read_nowait(
    resp: *mut wirecore_response,
    buf: *mut u8,
    cap: usize,
    n: *mut usize,
    eof: *mut bool,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let r = resp_or!(
            resp,
            error::invalid(
                err,
                "wirecore_response_read_nowait: invalid response handle"
            )
        );
        if n.is_null() || eof.is_null() || (buf.is_null() && cap > 0) {
            return error::invalid(err, "wirecore_response_read_nowait: NULL argument");
        }
        // SAFETY: `buf` is writable for `cap` bytes per the contract.
        let out: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        let (k, done, failure) = match r.body.copy_into(out) {
            Copied::Bytes { n, end } => (n, end, None),
            Copied::Empty | Copied::Busy => (0, false, None),
            Copied::End => (0, true, None),
            Copied::Failed(e) => (0, false, Some(e)),
        };
        // SAFETY: checked non-NULL.
        unsafe {
            handle::put(n, k);
            handle::put(eof, done);
        }
        match failure {
            Some(e) => error::fail(err, &e),
            None => wirecore_code::WIRECORE_OK,
        }
    })
}

/// How many body bytes are already received and not yet read (`*len`), and whether the body
/// ends after them (`*eof`), without reading or blocking: a binding sizes one buffer for the
/// head and a small body and takes both in one call.
///
/// # Safety
/// `resp` is NULL or a live response; `len` and `eof` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_buffered(
    resp: *const wirecore_response,
    len: *mut usize,
    eof: *mut bool,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let r = resp_or!(resp, wirecore_code::WIRECORE_INVALID_ARGUMENT);
        let (buffered, end) = r.body.buffered();
        // SAFETY: NULL or writable.
        unsafe {
            handle::put(len, buffered);
            handle::put(eof, end);
        }
        wirecore_code::WIRECORE_OK
    })
}

/// Fetches the next body chunk on an engine thread and posts a completion to `queue` with
/// `userdata`, `response` NULL, and the status (`WIRECORE_OK`: bytes or the end are now
/// available to `wirecore_response_read_nowait`). One queued read at a time. Freeing the
/// response cancels the read (its completion then carries `WIRECORE_CANCELLED`).
///
/// # Safety
/// `resp` is a live response; `queue` a live queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_read_queue(
    resp: *mut wirecore_response,
    queue: *const wirecore_queue,
    userdata: *mut std::ffi::c_void,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        let r = resp_or!(
            resp,
            error::invalid(err, "wirecore_response_read_queue: invalid response handle")
        );
        // SAFETY: NULL or a live queue (magic checked).
        let Some(q) = (unsafe { handle::get(queue) }) else {
            return error::invalid(err, "wirecore_response_read_queue: invalid queue handle");
        };
        let target = Target::Queue(q.inner.clone(), crate::request::SendPtr(userdata));
        match r.body.begin() {
            Begin::Busy => error::invalid(err, "wirecore_response_read_queue: a read is in flight"),
            // Bytes, the end or the error are there already.
            Begin::Ready => {
                target.deliver_read(Ok(()));
                wirecore_code::WIRECORE_OK
            }
            Begin::Read(reader) => {
                r.tracker
                    .spawn(Kind::Read, None, reader.fill(), move |out| {
                        target.deliver_read(out);
                    });
                wirecore_code::WIRECORE_OK
            }
        }
    })
}

/// Reads the rest of the body (blocking) and points `*data`/`*len` at it. The bytes are owned
/// by the response and stay valid until it is freed. Bytes already read (by
/// `wirecore_response_read*`) before the first call are not included; a second call returns
/// the same bytes as the first.
///
/// # Errors
/// The body's error.
///
/// # Safety
/// `resp` is a live response; outs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_body(
    resp: *mut wirecore_response,
    data: *mut *const u8,
    len: *mut usize,
    err: *mut *mut wirecore_error,
) -> wirecore_code {
    ffi_fn!(err = err, {
        // SAFETY: NULL or a live response (magic checked).
        let Some(r) = (unsafe { handle::get_mut(resp) }) else {
            return error::invalid(err, "wirecore_response_body: invalid response handle");
        };
        if data.is_null() || len.is_null() {
            return error::invalid(err, "wirecore_response_body: data or len is NULL");
        }
        if let Some(whole) = &r.whole {
            // SAFETY: checked non-NULL.
            unsafe {
                handle::put(data, whole.as_ptr());
                handle::put(len, whole.len());
            }
            return wirecore_code::WIRECORE_OK;
        }
        if r.body.is_busy() {
            return error::invalid(err, "wirecore_response_body: a queued read is in flight");
        }
        let body = r.body.clone();
        let read = {
            let _busy = r.tracker.enter(Kind::Read);
            crate::handle::runtime().block_on(body.rest())
        };
        let whole: Bytes = match read {
            Ok(b) => b,
            Err(e) => return error::fail(err, &e),
        };
        let whole = r.whole.insert(whole);
        // SAFETY: checked non-NULL.
        unsafe {
            handle::put(data, whole.as_ptr());
            handle::put(len, whole.len());
        }
        wirecore_code::WIRECORE_OK
    })
}

/// What the TLS handshake of a response's connection agreed on (`wirecore_response_tls`).
/// Every pointer is owned by the response and valid until `wirecore_response_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wirecore_tls_info {
    /// The protocol version as its IANA number (`0x0303` TLS 1.2, `0x0304` TLS 1.3).
    pub version: u16,
    /// The cipher suite as its IANA number (`0x1301` `TLS_AES_128_GCM_SHA256`).
    pub cipher_suite: u16,
    /// The ALPN protocol agreed (`h2`, `http/1.1`), not NUL-terminated; NULL when none.
    pub alpn: *const u8,
    /// The length of `alpn` in bytes (0 when none).
    pub alpn_len: usize,
    /// The server name the certificate was checked against, NUL-terminated.
    pub server_name: *const c_char,
    /// How many certificates the server sent (`wirecore_response_tls_peer_cert`), leaf first.
    pub peer_cert_count: usize,
}

/// Fills `*out` with what the TLS handshake of the response's connection agreed on and
/// returns true; returns false (leaving `*out` alone) for a response over plain TCP or an
/// invalid handle. A reused connection reports its original handshake.
///
/// # Safety
/// `resp` is NULL or a live response; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_tls(
    resp: *const wirecore_response,
    out: *mut wirecore_tls_info,
) -> bool {
    ffi_fn!(or = false, {
        let r = resp_or!(resp, false);
        let Some(tls) = &r.tls else {
            return false;
        };
        if out.is_null() {
            return false;
        }
        let name = r
            .server_name_c
            .get_or_init(|| CString::new(tls.server_name.clone()).unwrap_or_default());
        let info = wirecore_tls_info {
            version: tls.version,
            cipher_suite: tls.cipher_suite,
            alpn: tls.alpn.as_ref().map_or(std::ptr::null(), Vec::as_ptr),
            alpn_len: tls.alpn.as_ref().map_or(0, Vec::len),
            server_name: name.as_ptr(),
            peer_cert_count: tls.peer_certificates.len(),
        };
        // SAFETY: checked non-NULL.
        unsafe { handle::put(out, info) };
        true
    })
}

/// Points `*der`/`*len` at the server's certificate `index` (0 is the leaf), DER-encoded,
/// owned by the response until `wirecore_response_free`.
///
/// # Errors
/// `WIRECORE_INVALID_ARGUMENT` for a bad handle, a plain-TCP response or an index out of range.
///
/// # Safety
/// `resp` is NULL or a live response; `der` and `len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_tls_peer_cert(
    resp: *const wirecore_response,
    index: usize,
    der: *mut *const u8,
    len: *mut usize,
) -> wirecore_code {
    ffi_fn!(err = std::ptr::null_mut(), {
        let r = resp_or!(resp, wirecore_code::WIRECORE_INVALID_ARGUMENT);
        let Some(cert) = r.tls.as_ref().and_then(|t| t.peer_certificates.get(index)) else {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        };
        if der.is_null() || len.is_null() {
            return wirecore_code::WIRECORE_INVALID_ARGUMENT;
        }
        // SAFETY: checked non-NULL.
        unsafe {
            handle::put(der, cert.as_ptr());
            handle::put(len, cert.len());
        }
        wirecore_code::WIRECORE_OK
    })
}

/// Frees a response (an unread body is discarded, closing its HTTP/1 connection). NULL is
/// ignored.
///
/// # Safety
/// `resp` is NULL or a live response, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_response_free(resp: *mut wirecore_response) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or a live response, freed once.
        drop(unsafe { handle::take(resp) });
    });
}

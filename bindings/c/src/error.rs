//! Status codes (one per core `ErrorKind`) and the `wirecore_error` out-parameter.

use std::ffi::{CString, c_char};
use std::sync::OnceLock;

use wirecore::{Error, ErrorKind};

use crate::handle::{self, Magic};

/// The status every fallible call returns. `WIRECORE_OK` is 0; each other value is one
/// stable core error code (`wirecore_code_str`), plus `WIRECORE_INVALID_ARGUMENT` for misuse
/// of the ABI itself (a NULL or stale handle, invalid UTF-8).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum wirecore_code {
    /// Success.
    WIRECORE_OK = 0,
    /// `invalid_config`
    WIRECORE_INVALID_CONFIG = 1,
    /// `invalid_url`
    WIRECORE_INVALID_URL = 2,
    /// `invalid_header`
    WIRECORE_INVALID_HEADER = 3,
    /// `invalid_request`
    WIRECORE_INVALID_REQUEST = 4,
    /// `dns`
    WIRECORE_DNS = 5,
    /// `connect`
    WIRECORE_CONNECT = 6,
    /// `tls`
    WIRECORE_TLS = 7,
    /// `io`
    WIRECORE_IO = 8,
    /// `protocol`
    WIRECORE_PROTOCOL = 9,
    /// `timeout.total`
    WIRECORE_TIMEOUT_TOTAL = 10,
    /// `timeout.connect`
    WIRECORE_TIMEOUT_CONNECT = 11,
    /// `timeout.tls`
    WIRECORE_TIMEOUT_TLS = 12,
    /// `timeout.read`
    WIRECORE_TIMEOUT_READ = 13,
    /// `timeout.pool`
    WIRECORE_TIMEOUT_POOL = 14,
    /// `decode`
    WIRECORE_DECODE = 15,
    /// `body_too_large`
    WIRECORE_BODY_TOO_LARGE = 16,
    /// `too_many_redirects`
    WIRECORE_TOO_MANY_REDIRECTS = 17,
    /// `closed`
    WIRECORE_CLOSED = 18,
    /// `cancelled`
    WIRECORE_CANCELLED = 19,
    /// `circuit_open`
    WIRECORE_CIRCUIT_OPEN = 20,
    /// `rate_limited`
    WIRECORE_RATE_LIMITED = 21,
    /// `overloaded`
    WIRECORE_OVERLOADED = 22,
    /// `internal` (a bug in wirecore, e.g. a caught panic)
    WIRECORE_INTERNAL = 23,
    /// `redirect_downgrade`: an https → http redirect while `redirect.allow_downgrade` is false.
    WIRECORE_REDIRECT_DOWNGRADE = 24,
    /// `invalid_argument`: misuse of the C ABI (NULL pointer, stale handle, invalid UTF-8).
    WIRECORE_INVALID_ARGUMENT = 100,
}

use wirecore_code as C;

/// The status for a core error kind. A kind added to the core lands on `WIRECORE_INTERNAL`
/// until mapped here; the unit test below fails for it.
pub(crate) fn code_of(kind: ErrorKind) -> wirecore_code {
    match kind {
        ErrorKind::InvalidConfig => C::WIRECORE_INVALID_CONFIG,
        ErrorKind::InvalidUrl => C::WIRECORE_INVALID_URL,
        ErrorKind::InvalidHeader => C::WIRECORE_INVALID_HEADER,
        ErrorKind::InvalidRequest => C::WIRECORE_INVALID_REQUEST,
        ErrorKind::Dns => C::WIRECORE_DNS,
        ErrorKind::Connect => C::WIRECORE_CONNECT,
        ErrorKind::Tls => C::WIRECORE_TLS,
        ErrorKind::Io => C::WIRECORE_IO,
        ErrorKind::Protocol => C::WIRECORE_PROTOCOL,
        ErrorKind::TimeoutTotal => C::WIRECORE_TIMEOUT_TOTAL,
        ErrorKind::TimeoutConnect => C::WIRECORE_TIMEOUT_CONNECT,
        ErrorKind::TimeoutTls => C::WIRECORE_TIMEOUT_TLS,
        ErrorKind::TimeoutRead => C::WIRECORE_TIMEOUT_READ,
        ErrorKind::TimeoutPool => C::WIRECORE_TIMEOUT_POOL,
        ErrorKind::Decode => C::WIRECORE_DECODE,
        ErrorKind::BodyTooLarge => C::WIRECORE_BODY_TOO_LARGE,
        ErrorKind::TooManyRedirects => C::WIRECORE_TOO_MANY_REDIRECTS,
        ErrorKind::Closed => C::WIRECORE_CLOSED,
        ErrorKind::Cancelled => C::WIRECORE_CANCELLED,
        ErrorKind::CircuitOpen => C::WIRECORE_CIRCUIT_OPEN,
        ErrorKind::RateLimited => C::WIRECORE_RATE_LIMITED,
        ErrorKind::Overloaded => C::WIRECORE_OVERLOADED,
        ErrorKind::RedirectDowngrade => C::WIRECORE_REDIRECT_DOWNGRADE,
        _ => C::WIRECORE_INTERNAL,
    }
}

const ALL_CODES: &[wirecore_code] = &[
    C::WIRECORE_OK,
    C::WIRECORE_INVALID_CONFIG,
    C::WIRECORE_INVALID_URL,
    C::WIRECORE_INVALID_HEADER,
    C::WIRECORE_INVALID_REQUEST,
    C::WIRECORE_DNS,
    C::WIRECORE_CONNECT,
    C::WIRECORE_TLS,
    C::WIRECORE_IO,
    C::WIRECORE_PROTOCOL,
    C::WIRECORE_TIMEOUT_TOTAL,
    C::WIRECORE_TIMEOUT_CONNECT,
    C::WIRECORE_TIMEOUT_TLS,
    C::WIRECORE_TIMEOUT_READ,
    C::WIRECORE_TIMEOUT_POOL,
    C::WIRECORE_DECODE,
    C::WIRECORE_BODY_TOO_LARGE,
    C::WIRECORE_TOO_MANY_REDIRECTS,
    C::WIRECORE_CLOSED,
    C::WIRECORE_CANCELLED,
    C::WIRECORE_CIRCUIT_OPEN,
    C::WIRECORE_RATE_LIMITED,
    C::WIRECORE_OVERLOADED,
    C::WIRECORE_INTERNAL,
    C::WIRECORE_REDIRECT_DOWNGRADE,
    C::WIRECORE_INVALID_ARGUMENT,
];

/// The stable code string of a status (`"ok"`, `"timeout.connect"`, `"invalid_argument"`).
pub(crate) fn str_of(code: wirecore_code) -> &'static str {
    match code {
        C::WIRECORE_OK => "ok",
        C::WIRECORE_INVALID_ARGUMENT => "invalid_argument",
        C::WIRECORE_INTERNAL => "internal",
        other => ErrorKind::ALL
            .iter()
            .find(|k| code_of(**k) == other)
            .map_or("internal", |k| k.code()),
    }
}

fn cstr_of(code: wirecore_code) -> *const c_char {
    static TABLE: OnceLock<Vec<(wirecore_code, CString)>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        ALL_CODES
            .iter()
            .map(|c| (*c, CString::new(str_of(*c)).unwrap_or_default()))
            .collect()
    });
    t.iter()
        .find(|(c, _)| *c == code)
        .map_or(c"internal".as_ptr(), |(_, s)| s.as_ptr())
}

/// An error: a status, its code string and a message. Free with `wirecore_error_free`.
///
/// `repr(C)` keeps `magic` at offset 0 of every handle; the C typedef is in cbindgen.toml.
/// cbindgen:ignore
#[repr(C)]
#[derive(Debug)]
pub struct wirecore_error {
    pub(crate) magic: Magic,
    code: wirecore_code,
    message: CString,
}

impl handle::Tagged for wirecore_error {
    const MAGIC: Magic = Magic::ERROR;
    fn magic(&self) -> Magic {
        self.magic
    }
    fn kill(&mut self) {
        self.magic = Magic::DEAD;
    }
}

impl wirecore_error {
    fn new(code: wirecore_code, message: &str) -> Self {
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        Self {
            magic: Magic::ERROR,
            code,
            message,
        }
    }
}

/// Stores `e` in `*err` (when `err` is not NULL) and returns its status.
pub(crate) fn fail(err: *mut *mut wirecore_error, e: &Error) -> wirecore_code {
    let code = code_of(e.kind());
    put(err, code, &e.full_message());
    code
}

/// A misuse of the ABI itself.
pub(crate) fn invalid(err: *mut *mut wirecore_error, message: &str) -> wirecore_code {
    put(err, C::WIRECORE_INVALID_ARGUMENT, message);
    C::WIRECORE_INVALID_ARGUMENT
}

pub(crate) fn boxed(e: &Error) -> (wirecore_code, *mut wirecore_error) {
    let code = code_of(e.kind());
    (
        code,
        Box::into_raw(Box::new(wirecore_error::new(code, &e.full_message()))),
    )
}

fn put(err: *mut *mut wirecore_error, code: wirecore_code, message: &str) {
    if !err.is_null() {
        // SAFETY: the caller passes NULL or a writable `wirecore_error *` slot.
        unsafe { *err = Box::into_raw(Box::new(wirecore_error::new(code, message))) };
    }
}

pub(crate) fn panicked(
    err: *mut *mut wirecore_error,
    p: &(dyn std::any::Any + Send),
) -> wirecore_code {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    put(
        err,
        C::WIRECORE_INTERNAL,
        &format!("wirecore panicked (a bug): {what}"),
    );
    C::WIRECORE_INTERNAL
}

/// The status of an error, or `WIRECORE_INVALID_ARGUMENT` for a NULL or stale handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_error_kind(err: *const wirecore_error) -> wirecore_code {
    ffi_fn!(or = C::WIRECORE_INTERNAL, {
        // SAFETY: NULL or a live error (checked by magic).
        match unsafe { handle::get(err) } {
            Some(e) => e.code,
            None => C::WIRECORE_INVALID_ARGUMENT,
        }
    })
}

/// The stable code string of an error (`"timeout.connect"`). Static storage: never free it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_error_code(err: *const wirecore_error) -> *const c_char {
    // SAFETY: same contract as `wirecore_error_kind`.
    let code = unsafe { wirecore_error_kind(err) };
    cstr_of(code)
}

/// The message (NUL-terminated UTF-8). Owned by the error: valid until `wirecore_error_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_error_message(err: *const wirecore_error) -> *const c_char {
    ffi_fn!(or = c"internal error".as_ptr(), {
        // SAFETY: NULL or a live error (checked by magic).
        match unsafe { handle::get(err) } {
            Some(e) => e.message.as_ptr(),
            None => c"invalid wirecore_error handle".as_ptr(),
        }
    })
}

/// Frees an error. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_error_free(err: *mut wirecore_error) {
    ffi_fn!(or = (), {
        // SAFETY: NULL or an error from wirecore, freed once.
        drop(unsafe { handle::take(err) });
    });
}

/// The stable code string of a status value (`"timeout.connect"`); `"internal"` for a value
/// that is not a `wirecore_code`. Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_code_str(code: i32) -> *const c_char {
    ffi_fn!(or = c"internal".as_ptr(), {
        ALL_CODES
            .iter()
            .find(|c| **c as i32 == code)
            .map_or(c"internal".as_ptr(), |c| cstr_of(*c))
    })
}

/// The status for a code string; `WIRECORE_INTERNAL` for an unknown string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_code_from_str(code: *const c_char) -> wirecore_code {
    ffi_fn!(or = C::WIRECORE_INTERNAL, {
        // SAFETY: NULL or a NUL-terminated string.
        let Some(s) = (unsafe { crate::handle::cstr(code) }) else {
            return C::WIRECORE_INTERNAL;
        };
        ALL_CODES
            .iter()
            .copied()
            .find(|c| str_of(*c) == s)
            .unwrap_or(C::WIRECORE_INTERNAL)
    })
}

/// Every core error code, one per line (`"invalid_config\ninvalid_url\n..."`), in the core's
/// order, so a binding can test that it maps each one. Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_error_codes() -> *const c_char {
    static LIST: OnceLock<CString> = OnceLock::new();
    ffi_fn!(or = c"".as_ptr(), {
        LIST.get_or_init(|| {
            let v: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
            CString::new(v.join("\n")).unwrap_or_default()
        })
        .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_kind_has_its_own_status() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            let c = code_of(*k);
            assert!(
                c != C::WIRECORE_INTERNAL || *k == ErrorKind::Internal,
                "{} is not mapped",
                k.code()
            );
            assert!(seen.insert(c), "{} shares a status", k.code());
            assert_eq!(str_of(c), k.code());
            assert!(ALL_CODES.contains(&c));
        }
    }
}

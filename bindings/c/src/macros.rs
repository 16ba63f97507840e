//! `ffi_fn!`: the one wrapper every exported function body goes through.
//!
//! A panic must never unwind into C. The body runs inside `catch_unwind`; a panic becomes
//! `WIRECORE_INTERNAL` plus an error naming it (status functions), or a documented fallback
//! value (getters).

/// `ffi_fn!(err = ERR_OUT, { body returning wirecore_code })` or
/// `ffi_fn!(or = FALLBACK, { body })`.
macro_rules! ffi_fn {
    (err = $err:expr, $body:block) => {{
        let err_out = $err;
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::error::wirecore_code { $body },
        )) {
            Ok(code) => code,
            Err(p) => $crate::error::panicked(err_out, &*p),
        }
    }};
    (or = $fallback:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $fallback,
        }
    }};
}

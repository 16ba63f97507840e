//! `ffi_fn!`: the one wrapper every exported function body goes through; `tagged!`: the
//! type tag of a handle.
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

/// `tagged!(handle_type, MAGIC_NAME)`: the handle's type tag lives in its `magic` field (at
/// offset 0, `repr(C)`), is `Magic::MAGIC_NAME` while alive and `Magic::DEAD` once freed.
macro_rules! tagged {
    ($handle:ty, $magic:ident) => {
        impl $crate::handle::Tagged for $handle {
            const MAGIC: $crate::handle::Magic = $crate::handle::Magic::$magic;
            fn magic(&self) -> $crate::handle::Magic {
                self.magic
            }
            fn kill(&mut self) {
                self.magic = $crate::handle::Magic::DEAD;
            }
        }
    };
}

//! The C ABI of wirecore: opaque handles, status codes, a blocking `send`, and `submit` with a
//! callback or a completion queue. `include/wirecore.h` is generated from this crate by cbindgen.
//!
//! Contract kept by every export: no panic unwinds into C (each body runs in `catch_unwind`),
//! pointers and UTF-8 are checked, and a fallible call returns a `wirecore_code` with an
//! optional `wirecore_error` out-parameter. Every allocation handed out has one free function.
// An FFI crate cannot exist without `unsafe`; every block carries a SAFETY comment, and this
// is the only crate of the workspace that allows it.
#![allow(unsafe_code)]
// The exported names are the C names (`wirecore_client`, `WIRECORE_OK`).
#![allow(non_camel_case_types)]

#[macro_use]
mod macros;
mod client;
mod dead_letter;
mod error;
mod handle;
mod log;
mod request;
mod response;
mod sse;
mod task;

use std::ffi::c_char;

pub use crate::client::wirecore_client;
pub use crate::dead_letter::{
    wirecore_dead_letter, wirecore_dead_letter_cb, wirecore_span, wirecore_span_cb,
};
pub use crate::error::{wirecore_code, wirecore_error};
pub use crate::log::{wirecore_log_cb, wirecore_log_record};
pub use crate::request::{wirecore_body_writer, wirecore_request};
pub use crate::response::{
    wirecore_response, wirecore_response_head, wirecore_timings, wirecore_tls_info,
};
pub use crate::sse::{wirecore_sse, wirecore_sse_event};
pub use crate::task::{wirecore_callback, wirecore_completion, wirecore_queue, wirecore_task};

/// The ABI version of this header. It changes whenever a signature, a struct layout or a
/// status value changes; compare it with `wirecore_abi_version()` at startup.
pub const WIRECORE_ABI_VERSION: u32 = 2;

/// The ABI version the linked library was built with (`WIRECORE_ABI_VERSION`).
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_abi_version() -> u32 {
    WIRECORE_ABI_VERSION
}

/// The library version (`"0.1.0"`), NUL-terminated. Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_version() -> *const c_char {
    const V: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    V.as_ptr()
}

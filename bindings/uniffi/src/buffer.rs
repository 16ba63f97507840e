//! Two FFI functions of the crate's own for the generated Kotlin (see
//! `src/bin/uniffi-bindgen.rs`): uniffi's `rustbuffer_alloc` and
//! `rust_future_complete_rust_buffer` return a `RustBuffer` by value, which JNA turns into a new
//! `Structure` built by reflection with two JNA `Memory` objects; these hand Kotlin the buffer's
//! parts instead, and it fills in a `RustBuffer` object of its own.

use std::ptr;

/// A `RustBuffer` of `size` zeroed bytes made by uniffi's own `RustBuffer::new_with_size`
/// (capacity and length both `size`), as its data pointer; null when `size` is not below
/// `i32::MAX` (uniffi's own bound) or the buffer did not come out exactly that size.
#[unsafe(no_mangle)]
pub extern "C" fn wirecore_kotlin_rustbuffer_alloc(size: u64) -> *mut u8 {
    if size >= i32::MAX as u64 {
        return ptr::null_mut();
    }
    std::panic::catch_unwind(|| {
        let buf = uniffi::RustBuffer::new_with_size(size);
        if buf.len() as u64 != size || buf.capacity() != buf.len() {
            buf.destroy();
            return ptr::null_mut();
        }
        buf.data_pointer().cast_mut()
    })
    .unwrap_or(ptr::null_mut())
}

/// uniffi's `rust_future_complete_rust_buffer` for this crate, writing the buffer to `out`
/// (24 bytes: capacity, length, data) instead of returning it.
///
/// # Safety
/// As uniffi's: `handle` is a live `RustBuffer` future of this crate not yet freed, `out_status`
/// a valid call status; and `out` is valid for a `RustBuffer`'s write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wirecore_kotlin_rust_future_complete_rust_buffer(
    handle: u64,
    out_status: &mut uniffi::RustCallStatus,
    out: *mut uniffi::RustBuffer,
) {
    // SAFETY: the caller's guarantees, passed on to uniffi's own function (which catches the
    // future's panic into `out_status`).
    let buf = unsafe {
        crate::ffi_wirecore_uniffi_rust_future_complete_rust_buffer(
            uniffi::Handle::from_raw_unchecked(handle),
            out_status,
        )
    };
    // SAFETY: `out` is valid for the write (the caller's guarantee).
    unsafe { out.write(buf) };
}

#[cfg(test)]
mod tests {
    use super::wirecore_kotlin_rustbuffer_alloc;

    /// The pointer is a `Vec<u8>` of capacity and length `size`, as uniffi's `rustbuffer_free`
    /// rebuilds it from the `RustBuffer` Kotlin fills in.
    #[test]
    #[expect(
        clippy::same_length_and_capacity,
        reason = "the buffer's length and capacity are both `size`, which is what this checks"
    )]
    fn a_buffer_is_the_size_asked_and_a_vec_again() {
        for size in [0_usize, 1, 4, 1024] {
            let data = wirecore_kotlin_rustbuffer_alloc(size as u64);
            assert!(!data.is_null());
            // SAFETY: uniffi made `data` from a zeroed Vec<u8> of this capacity and length.
            let v = unsafe { Vec::from_raw_parts(data, size, size) };
            assert_eq!(v, vec![0_u8; size]);
        }
        assert!(wirecore_kotlin_rustbuffer_alloc(u64::from(u32::MAX)).is_null());
    }
}

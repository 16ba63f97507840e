//! Handle validation and argument conversion shared by every export.
//!
//! Every handle starts life with a per-type magic number and is overwritten with `DEAD` just
//! before it is freed, so a handle of the wrong type, or one freed moments ago, is usually
//! reported as `WIRECORE_INVALID_ARGUMENT` instead of corrupting memory. This catches
//! mistakes; it cannot make use-after-free defined behaviour.

use std::ffi::{CStr, c_char};

/// A per-type tag stored in every handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Magic(u64);

impl Magic {
    pub(crate) const CLIENT: Magic = Magic(0x7763_636c_6965_6e74);
    pub(crate) const REQUEST: Magic = Magic(0x7763_7265_7175_6573);
    pub(crate) const RESPONSE: Magic = Magic(0x7763_7265_7370_6f6e);
    pub(crate) const ERROR: Magic = Magic(0x7763_6572_726f_7221);
    pub(crate) const TASK: Magic = Magic(0x7763_7461_736b_2121);
    pub(crate) const QUEUE: Magic = Magic(0x7763_7175_6575_6521);
    pub(crate) const WRITER: Magic = Magic(0x7763_7772_6974_6572);
    pub(crate) const SSE: Magic = Magic(0x7763_7373_6521_2121);
    pub(crate) const DEAD: Magic = Magic(0xdead_dead_dead_dead);
}

/// A type handed to C as an opaque pointer.
pub(crate) trait Tagged {
    const MAGIC: Magic;
    fn magic(&self) -> Magic;
    fn kill(&mut self);
}

/// Whether `p` is a live `T` by its magic, read through the raw pointer: a handle of another
/// type may be smaller than a `T`, so no `&T` may exist before the check (Miri: a reference
/// past the end of the allocation is undefined behaviour even when only the magic is read).
///
/// # Safety
/// `p` is NULL or points to a handle of this crate (every one starts with its magic).
unsafe fn is<T: Tagged>(p: *const T) -> bool {
    // SAFETY: per the contract, 8 readable bytes of magic at offset 0 (`repr(C)`).
    !p.is_null() && unsafe { p.cast::<Magic>().read() } == T::MAGIC
}

/// Borrows a handle: `None` when NULL or tagged for another type (or freed).
///
/// # Safety
/// `p` is NULL or points to memory that was a handle handed out by this crate.
pub(crate) unsafe fn get<'a, T: Tagged>(p: *const T) -> Option<&'a T> {
    // SAFETY: per the contract; the magic check rejects wrong and most stale pointers.
    unsafe { is(p).then(|| &*p) }
}

/// Mutably borrows a handle.
///
/// # Safety
/// As [`get`], and no other reference to it is live.
pub(crate) unsafe fn get_mut<'a, T: Tagged>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: per the contract.
    unsafe { is(p).then(|| &mut *p) }
}

/// Takes back ownership of a handle to free it; marks the memory dead first.
///
/// # Safety
/// `p` is NULL or a handle from `Box::into_raw` in this crate, not freed before.
pub(crate) unsafe fn take<T: Tagged>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: per the contract.
    if !unsafe { is(p) } {
        return None;
    }
    // SAFETY: a live `T` (checked above).
    let r = unsafe { &mut *p };
    debug_assert_eq!(r.magic(), T::MAGIC);
    r.kill();
    // SAFETY: allocated by `Box::into_raw` in this crate.
    Some(unsafe { Box::from_raw(p) })
}

/// Hands a value to C.
pub(crate) fn give<T: Tagged>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// A NUL-terminated UTF-8 string, or `None` (NULL or invalid UTF-8).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// `len` bytes at `p` (an empty slice when `len` is 0, whatever `p` is).
///
/// # Safety
/// When `len > 0`, `p` points to `len` readable bytes.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    Some(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `v` through an out-pointer when it is not NULL.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: per the contract.
        unsafe { out.write(v) };
    }
}

/// The engine runtime, cached per thread and rebuilt in a forked child.
pub(crate) use wirecore_bridge::fork::runtime;

#[cfg(test)]
mod tests {
    //! Plain tests that `make test-miri` also runs under Miri (no I/O, no runtime).
    use super::*;

    #[repr(C)]
    struct Small {
        magic: Magic,
    }

    #[repr(C)]
    struct Large {
        magic: Magic,
        payload: [u64; 8],
    }

    impl Tagged for Small {
        const MAGIC: Magic = Magic::QUEUE;
        fn magic(&self) -> Magic {
            self.magic
        }
        fn kill(&mut self) {
            self.magic = Magic::DEAD;
        }
    }

    impl Tagged for Large {
        const MAGIC: Magic = Magic::RESPONSE;
        fn magic(&self) -> Magic {
            self.magic
        }
        fn kill(&mut self) {
            self.magic = Magic::DEAD;
        }
    }

    #[test]
    fn a_handle_of_a_smaller_type_is_refused_without_reading_past_it() {
        let small = give(Small {
            magic: Magic::QUEUE,
        });
        // SAFETY: a live handle passed as another type, as a C caller may; then freed once.
        unsafe {
            assert!(get::<Large>(small.cast()).is_none());
            assert!(get_mut::<Large>(small.cast()).is_none());
            assert!(take::<Large>(small.cast()).is_none());
            assert!(get::<Small>(small).is_some());
            assert!(take::<Small>(small).is_some());
        }
    }

    #[test]
    fn handles_round_trip_and_null_is_refused() {
        let large = give(Large {
            magic: Magic::RESPONSE,
            payload: [7; 8],
        });
        // SAFETY: NULL, or the live handle just made, freed once.
        unsafe {
            assert!(get::<Large>(std::ptr::null()).is_none());
            assert!(take::<Large>(std::ptr::null_mut()).is_none());
            assert_eq!(get::<Large>(large).map(|l| l.payload[7]), Some(7));
            if let Some(l) = get_mut::<Large>(large) {
                l.payload[0] = 1;
            }
            let back = take::<Large>(large).map(|l| (l.payload[0], l.magic));
            assert_eq!(back, Some((1, Magic::DEAD)));
        }
    }

    #[test]
    fn strings_bytes_and_out_pointers() {
        // SAFETY: NULL or NUL-terminated strings; slices with their lengths; writable outs.
        unsafe {
            assert_eq!(cstr(std::ptr::null()), None);
            assert_eq!(cstr(c"héllo".as_ptr()), Some("héllo"));
            assert_eq!(cstr(c"\xff\xfe".as_ptr()), None);
            assert_eq!(bytes(std::ptr::null(), 0), Some(&[][..]));
            assert_eq!(bytes(std::ptr::null(), 3), None);
            assert_eq!(bytes(b"abc".as_ptr(), 2), Some(&b"ab"[..]));
            put(std::ptr::null_mut::<u32>(), 1);
            let mut out = 0u32;
            put(&raw mut out, 5);
            assert_eq!(out, 5);
        }
    }
}

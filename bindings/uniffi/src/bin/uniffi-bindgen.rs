//! uniffi's generator, pinned with the crate's uniffi version (`make kotlin-bindings`), plus
//! three fixes to the Kotlin it writes (applied after uniffi wrote the file, so `make lint-kotlin`,
//! which runs this same bin, checks it too).
//!
//! uniffi 0.32's Kotlin calls allocate a fresh `UniffiRustCallStatus` per FFI call: a JNA
//! `Structure` whose constructor allocates a JNA `Memory`, and its nested `RustBuffer.ByValue`
//! another one, each registered with JNA's cleaner and freed only after a GC. A request makes
//! some ten such calls (each method call clones the object's handle first), so this was the bulk
//! of the JNA `Memory` objects per request (issue 18, bench/results/2026-12-06-kotlin.md). The
//! fix reuses statuses: 64 slots, a thread taking the one of its id for the call and putting it
//! back after (an error's lifting frees its buffer through a nested call, which then gets a
//! fresh one). Rust writes the status only on failure, so it is reset before every call.
//!
//! The second: `RustBuffer.alloc` (every string, list, option or record argument) calls the
//! crate's own `wirecore_kotlin_rustbuffer_alloc`, which returns only the data pointer, instead
//! of uniffi's `rustbuffer_alloc`, whose by-value return JNA builds by reflection with two JNA
//! `Memory` objects; the `RustBuffer` objects Kotlin fills in come from a ring per thread.
//!
//! The third: an async call's `RustBuffer` result (a body, a chunk, an event) is completed
//! through the crate's own `wirecore_kotlin_rust_future_complete_rust_buffer`, which writes the
//! buffer to native memory of the thread's instead of returning it by value.

use std::path::{Path, PathBuf};

/// The generated helper this bin replaces, exactly as uniffi 0.32.2 writes it.
const FRESH_STATUS: &str = "\
private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    var status = UniffiRustCallStatus()
    val return_value = callback(status)
    uniffiCheckCallStatus(errorHandler, status)
    return return_value
}
";

/// Its replacement: a status from the calling thread's slot when there is one, a fresh one
/// otherwise. Slots rather than a `ThreadLocal`: the thread that frees objects the JVM collected
/// (`java.lang.ref.Cleaner`'s) erases its thread-locals after every action.
const REUSED_STATUS: &str = "\
// wirecore: call statuses are reused (see bindings/uniffi/src/bin/uniffi-bindgen.rs): uniffi's own
// helper allocated one per call, two JNA `Memory` objects. A thread takes the status in its slot
// (slot = thread id mod 64) for the call and puts it back after; a nested call, or a thread whose
// slot is empty because another holds it, gets a fresh one.
private val uniffiCallStatusSlots = java.util.concurrent.atomic.AtomicReferenceArray<UniffiRustCallStatus>(64)

private fun uniffiCallStatusSlot(): Int = (Thread.currentThread().id and 63L).toInt()

// Rust writes the status only when the call fails, so JNA's reflective write before and read
// after each call (auto-synch, off here) come down to zeroing the code in native memory before
// the call and reading the whole status only when the code is not zero after it.
private fun uniffiTakeCallStatus(slot: Int): UniffiRustCallStatus {
    val status = uniffiCallStatusSlots.getAndSet(slot, null)
        ?: UniffiRustCallStatus().also { it.setAutoSynch(false) }
    status.code = UNIFFI_CALL_SUCCESS
    status.pointer.setByte(0, UNIFFI_CALL_SUCCESS)
    return status
}

private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    val slot = uniffiCallStatusSlot()
    val status = uniffiTakeCallStatus(slot)
    try {
        val return_value = callback(status)
        if (status.pointer.getByte(0) != UNIFFI_CALL_SUCCESS) {
            status.read()
        }
        uniffiCheckCallStatus(errorHandler, status)
        return return_value
    } finally {
        uniffiCallStatusSlots.set(slot, status)
    }
}
";

/// uniffi's `RustBuffer.alloc`, exactly as 0.32.2 writes it: `rustbuffer_alloc` returns the
/// buffer by value, so JNA builds a `RustBuffer.ByValue` by reflection with two JNA `Memory`
/// objects (five such calls lower a `request`'s arguments).
const FRESH_ALLOC: &str = "\
        internal fun alloc(size: ULong = 0UL) = uniffiRustCall() { status ->
            // Note: need to convert the size to a `Long` value to make this work with JVM.
            UniffiLib.ffi_wirecore_uniffi_rustbuffer_alloc(size.toLong(), status)
        }.also {
            if(it.data == null) {
               throw RuntimeException(\"RustBuffer.alloc() returned null data pointer (size=${size})\")
           }
        }
";

/// Its replacement: the crate's own `wirecore_kotlin_rustbuffer_alloc` (src/buffer.rs) returns
/// only the data pointer of a buffer uniffi made; Kotlin fills it into a `RustBuffer` object
/// reused from a ring per thread (no `Memory`, no reflection).
const OWN_ALLOC: &str = "\
        // wirecore: the buffer's data pointer from the crate's own FFI function (see
        // bindings/uniffi/src/bin/uniffi-bindgen.rs), the RustBuffer filled in here.
        internal fun alloc(size: ULong = 0UL): RustBuffer.ByValue {
            val data = WirecoreKotlinLib.wirecore_kotlin_rustbuffer_alloc(size.toLong())
            if (data == 0L) {
                throw RuntimeException(\"RustBuffer.alloc() returned null data pointer (size=${size})\")
            }
            val buf = WirecoreKotlinLib.argumentBuffer()
            buf.capacity = size.toLong()
            buf.len = size.toLong()
            buf.data = Pointer(data)
            return buf
        }
";

/// Appended to the file: the JNA binding of the crate's own function.
const OWN_LIB: &str = "
// wirecore: the crate's own FFI function for the generated code above (see
// bindings/uniffi/src/bin/uniffi-bindgen.rs and bindings/uniffi/src/buffer.rs).
internal object WirecoreKotlinLib {
    init {
        Native.register(WirecoreKotlinLib::class.java, findLibraryName(componentName = \"wirecore\"))
    }

    external fun wirecore_kotlin_rustbuffer_alloc(`size`: Long): Long

    external fun wirecore_kotlin_rust_future_complete_rust_buffer(`handle`: Long, `status`: UniffiRustCallStatus, `out`: Pointer)

    private val completed = ThreadLocal.withInitial { com.sun.jna.Memory(24) }

    // uniffi's rust_future_complete_rust_buffer, the buffer's parts written to native memory of
    // the thread's and filled into a reused object: it is lifted and freed at once.
    fun completeRustBuffer(handle: Long, status: UniffiRustCallStatus): RustBuffer.ByValue {
        val out = completed.get()
        wirecore_kotlin_rust_future_complete_rust_buffer(handle, status, out)
        val buf = argumentBuffer()
        buf.capacity = out.getLong(0)
        buf.len = out.getLong(8)
        buf.data = out.getPointer(16)
        return buf
    }

    // A buffer made for an argument is passed to the FFI call it was lowered for before the
    // thread lowers more than that call's other arguments (and a completed one is lifted and
    // freed at once), and JNA copies a by-value argument out of the object's memory during the
    // call; so each thread cycles through 32 objects rather than allocating one (with its JNA
    // `Memory`) per buffer.
    private class Ring {
        val buffers = arrayOfNulls<RustBuffer.ByValue>(32)
        var next = 0
    }

    private val rings = ThreadLocal.withInitial { Ring() }

    fun argumentBuffer(): RustBuffer.ByValue {
        val ring = rings.get()
        val i = ring.next
        ring.next = (i + 1) and 31
        return ring.buffers[i] ?: RustBuffer.ByValue().also { ring.buffers[i] = it }
    }
}
";

/// Every async call's completion of a `RustBuffer` result, as uniffi 0.32.2 writes it, and its
/// replacement through the crate's own function (src/buffer.rs): no by-value return.
const FRESH_COMPLETE: &str =
    "UniffiLib.ffi_wirecore_uniffi_rust_future_complete_rust_buffer(future, continuation)";
const OWN_COMPLETE: &str = "WirecoreKotlinLib.completeRustBuffer(future, continuation)";

/// The value of `--out-dir` (or `-o`) among the generator's arguments.
fn out_dir() -> Option<PathBuf> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == "--out-dir" || a == "-o" {
            return args.next().map(PathBuf::from);
        }
        if let Some(d) = a.strip_prefix("--out-dir=") {
            return Some(PathBuf::from(d));
        }
    }
    None
}

fn kotlin_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            kotlin_files(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "kt") {
            found.push(path);
        }
    }
    Ok(())
}

/// Applies the fix to every generated Kotlin file; fails when uniffi's helper is not found
/// exactly once (a uniffi upgrade changed it: look again at whether the fix is still needed).
fn patch(dir: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    kotlin_files(dir, &mut files).map_err(|e| format!("{}: {e}", dir.display()))?;
    for file in files {
        let mut text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (what, fresh, own) in [
            ("uniffiRustCallWithError", FRESH_STATUS, REUSED_STATUS),
            ("RustBuffer.alloc", FRESH_ALLOC, OWN_ALLOC),
        ] {
            match text.matches(fresh).count() {
                1 => text = text.replacen(fresh, own, 1),
                n => {
                    return Err(format!(
                        "{}: uniffi's {what} found {n} times, expected once; \
                         see bindings/uniffi/src/bin/uniffi-bindgen.rs",
                        file.display()
                    ));
                }
            }
        }
        if !text.contains(FRESH_COMPLETE) {
            return Err(format!(
                "{}: uniffi's rust_future_complete_rust_buffer calls not found; \
                 see bindings/uniffi/src/bin/uniffi-bindgen.rs",
                file.display()
            ));
        }
        text = text.replace(FRESH_COMPLETE, OWN_COMPLETE);
        // Lowered buffers are reused (OWN_LIB): only sound while nothing keeps one past its
        // call, which callback interfaces would (their returns and errors, sync or async, all
        // go through uniffiTraitInterfaceCall*; uniffi defines two of those helpers always).
        if text.matches("uniffiTraitInterfaceCall").count() != 2 {
            return Err(format!(
                "{}: the interface has callback interfaces or foreign futures now; the reused \
                 argument buffers in bindings/uniffi/src/bin/uniffi-bindgen.rs are not safe then",
                file.display()
            ));
        }
        text.push_str(OWN_LIB);
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

fn main() {
    uniffi::uniffi_bindgen_main();
    if let Some(dir) = out_dir()
        && let Err(e) = patch(&dir)
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

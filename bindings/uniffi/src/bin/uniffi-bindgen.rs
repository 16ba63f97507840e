//! uniffi's generator, pinned with the crate's uniffi version (`make kotlin-bindings`), plus
//! one fix to the Kotlin it writes (applied after uniffi wrote the file, so `make lint-kotlin`,
//! which runs this same bin, checks it too).
//!
//! uniffi 0.32's Kotlin calls allocate a fresh `UniffiRustCallStatus` per FFI call: a JNA
//! `Structure` whose constructor allocates a JNA `Memory`, and its nested `RustBuffer.ByValue`
//! another one, each registered with JNA's cleaner and freed only after a GC. A request makes
//! some ten such calls (each method call clones the object's handle first), so this was the bulk
//! of the JNA `Memory` objects per request (issue 18, bench/results/2026-12-06-kotlin.md). The
//! fix keeps one status per thread and reuses it whenever that thread is not inside another
//! call with it (an error's lifting frees its buffer through a nested call, which then gets a
//! fresh one). Rust writes the status only on failure, so it is reset before every call.

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

/// Its replacement: the thread's status when free, a fresh one otherwise.
const REUSED_STATUS: &str = "\
// wirecore: one call status per thread, reused while no other call on the thread holds it (see
// bindings/uniffi/src/bin/uniffi-bindgen.rs); uniffi's own helper allocated two JNA `Memory`
// objects per call.
private val uniffiCallStatusCache = ThreadLocal<UniffiRustCallStatus>()

private fun uniffiTakeCallStatus(): UniffiRustCallStatus {
    val status = uniffiCallStatusCache.get() ?: return UniffiRustCallStatus()
    uniffiCallStatusCache.set(null)
    status.code = UNIFFI_CALL_SUCCESS
    status.error_buf.capacity = 0
    status.error_buf.len = 0
    status.error_buf.data = null
    return status
}

private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    val status = uniffiTakeCallStatus()
    try {
        val return_value = callback(status)
        uniffiCheckCallStatus(errorHandler, status)
        return return_value
    } finally {
        uniffiCallStatusCache.set(status)
    }
}
";

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
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        match text.matches(FRESH_STATUS).count() {
            1 => {
                let text = text.replacen(FRESH_STATUS, REUSED_STATUS, 1);
                std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            n => {
                return Err(format!(
                    "{}: uniffi's uniffiRustCallWithError found {n} times, expected once; \
                     see bindings/uniffi/src/bin/uniffi-bindgen.rs",
                    file.display()
                ));
            }
        }
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

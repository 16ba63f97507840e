//! Keeps each engine thread attached to the JVM once it has completed a Kotlin call.
//!
//! A `suspend fun` ends when its Rust future wakes uniffi's continuation callback: a JNA
//! callback that runs on the engine thread that finished the work. JNA attaches a thread the
//! JVM does not know for the callback and detaches it on return, so every request started and
//! ended a `java.lang.Thread` (JFR counted ~one `jdk.ThreadStart` per request; attach plus
//! detach took ~8 % of the process's CPU, and the short-lived threads' retired TLABs ran the
//! young GC every ~60 ms). Attached here once, as a daemon (it never holds the JVM's exit),
//! the thread is one JNA finds attached and leaves so; a thread-local detaches it when the
//! thread ends. Without a JVM in the process (the crate's Rust tests) nothing happens.

use std::cell::OnceCell;
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::OnceLock;

const JNI_OK: i32 = 0;
const JNI_VERSION_1_2: i32 = 0x0001_0002;

/// `JavaVM`: a pointer to the JNI invocation table.
type JavaVm = *mut *const InvokeInterface;

/// The head of JNI's `JNIInvokeInterface_` (jni.h), in its order.
#[repr(C)]
struct InvokeInterface {
    reserved0: *mut c_void,
    reserved1: *mut c_void,
    reserved2: *mut c_void,
    destroy_java_vm: unsafe extern "system" fn(JavaVm) -> i32,
    attach_current_thread: unsafe extern "system" fn(JavaVm, *mut *mut c_void, *mut c_void) -> i32,
    detach_current_thread: unsafe extern "system" fn(JavaVm) -> i32,
    get_env: unsafe extern "system" fn(JavaVm, *mut *mut c_void, i32) -> i32,
    attach_current_thread_as_daemon:
        unsafe extern "system" fn(JavaVm, *mut *mut c_void, *mut c_void) -> i32,
}

/// JNI's `JavaVMAttachArgs`.
#[repr(C)]
struct AttachArgs {
    version: i32,
    name: *const c_char,
    group: *mut c_void,
}

type GetCreatedJavaVms = unsafe extern "system" fn(*mut JavaVm, i32, *mut i32) -> i32;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// The process's JVM, found once.
struct Vm(JavaVm);

// SAFETY: a `JavaVM` pointer is valid on every thread for the JVM's life (JNI spec).
unsafe impl Send for Vm {}
// SAFETY: as above; its invocation functions are thread-safe.
unsafe impl Sync for Vm {}

fn vm() -> Option<JavaVm> {
    static VM: OnceLock<Option<Vm>> = OnceLock::new();
    VM.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT (null on glibc) and a NUL-terminated name.
        let sym = unsafe { dlsym(ptr::null_mut(), c"JNI_GetCreatedJavaVMs".as_ptr()) };
        if sym.is_null() {
            return None;
        }
        // SAFETY: the symbol is libjvm's `JNI_GetCreatedJavaVMs`, of this signature (jni.h).
        let get: GetCreatedJavaVms = unsafe { std::mem::transmute(sym) };
        let (mut vm, mut n): (JavaVm, i32) = (ptr::null_mut(), 0);
        // SAFETY: room for one VM pointer and the count, as the call expects.
        let rc = unsafe { get(&raw mut vm, 1, &raw mut n) };
        (rc == JNI_OK && n >= 1 && !vm.is_null()).then_some(Vm(vm))
    })
    .as_ref()
    .map(|v| v.0)
}

/// Detaches the thread when it ends, when this module attached it.
struct Attached(JavaVm);

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: the VM pointer is valid for the JVM's life; the thread was attached by
        // `attach` and is not inside a JNI call (its thread-locals are being destroyed).
        unsafe {
            ((**self.0).detach_current_thread)(self.0);
        }
    }
}

fn attach() -> Option<Attached> {
    let vm = vm()?;
    let mut env: *mut c_void = ptr::null_mut();
    // SAFETY: a valid VM; GetEnv only reads whether this thread is attached.
    if unsafe { ((**vm).get_env)(vm, &raw mut env, JNI_VERSION_1_2) } == JNI_OK {
        return None; // a JVM thread already (nothing to detach later)
    }
    let args = AttachArgs {
        version: JNI_VERSION_1_2,
        name: c"wirecore-rt".as_ptr(),
        group: ptr::null_mut(),
    };
    // SAFETY: a valid VM, an out pointer for the env, and attach args that outlive the call.
    let rc = unsafe {
        ((**vm).attach_current_thread_as_daemon)(
            vm,
            &raw mut env,
            (&raw const args).cast_mut().cast(),
        )
    };
    (rc == JNI_OK).then_some(Attached(vm))
}

/// Attaches the calling (engine) thread to the JVM, once per thread; call it before waking a
/// Kotlin continuation.
pub(crate) fn attach_once() {
    thread_local! {
        static ATTACHED: OnceCell<Option<Attached>> = const { OnceCell::new() };
    }
    // Fails only while the thread's locals are being destroyed: JNA attaches as before.
    let _ = ATTACHED.try_with(|a| {
        a.get_or_init(attach);
    });
}

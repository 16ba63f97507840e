//! Gives `libwirecore.so` a versioned soname, so a program linked against one release does not
//! load an incompatible one: `libwirecore.so.0.<minor>` before 1.0 (where a minor release may
//! break the ABI), `libwirecore.so.<major>` after, as cargo-c names them.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soversion = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwirecore.so.{soversion}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

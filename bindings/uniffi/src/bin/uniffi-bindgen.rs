//! uniffi's generator, pinned with the crate's uniffi version (`make kotlin-bindings`).

fn main() {
    uniffi::uniffi_bindgen_main();
}

#!/usr/bin/env bash
# make test-miri: the C ABI's unsafe handle helpers (bindings/c/src/handle.rs and its tests)
# under Miri. Miri cannot run the engine (I/O, the runtime), and building the whole dependency
# tree for it is slow, so the file alone goes into a scratch crate: it needs only std once its
# one re-export of the bridge's runtime is left out.
set -euo pipefail
dir="${CARGO_TARGET_DIR:-target}/miri-handle"
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<'TOML'
[package]
name = "miri-handle"
version = "0.0.0"
edition = "2024"
publish = false
[workspace]
TOML
grep -v -e '^pub(crate) use wirecore_bridge::' -e '^/// The engine runtime, cached per thread' \
    "$(dirname "$0")/../src/handle.rs" > "$dir/src/handle.rs"
printf '#![expect(dead_code, reason = "only the helpers are under test")]\nmod handle;\n' > "$dir/src/lib.rs"
cd "$dir" && CARGO_TARGET_DIR="$PWD/target" cargo +nightly miri test

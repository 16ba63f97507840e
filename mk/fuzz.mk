# Fuzzing (fuzz/: cargo-fuzz targets, nightly, its own workspace; not part of make ready).
# New inputs go to fuzz/corpus/<target> (ignored); the committed seeds are fuzz/seeds/<target>.
.PHONY: fuzz

FUZZ_TARGETS := url_and_headers location config_json h2_settings decoders c_abi
FUZZ_SECONDS ?= 60

fuzz:  ## Run every cargo-fuzz target FUZZ_SECONDS (default 60) each, printing its CPU time; installs nightly and cargo-fuzz when missing
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@# Built first, so each target's CPU time below is its fuzzing only.
	cd fuzz && cargo +nightly fuzz build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		(cd fuzz && /usr/bin/time -f "== fuzz $$t: %U s user + %S s system CPU, %e s wall" \
			cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

# Sanitizers and Miri beyond make test-c-asan (nightly; not part of make ready: each builds the
# dependency tree again, instrumented). test-tsan: first build of the whole tree about 12 min on
# the shared 2 cores; tokio's I/O driver needs the suppression in bindings/bridge/tsan.supp.
.PHONY: test-tsan test-miri test-loom
TSAN_TARGET := x86_64-unknown-linux-gnu

# RUST_BACKTRACE=0: tests that panic on purpose (a_panicking_task_delivers_internal_exactly_once)
# spent over 30 s symbolising a backtrace of the instrumented binary and timed out.
test-tsan:  ## The bridge's completion-queue tests and the C ABI's unit tests under ThreadSanitizer (nightly, -Zbuild-std)
	@rustup component list --toolchain nightly --installed | grep -q '^rust-src' || rustup component add rust-src --toolchain nightly
	RUST_BACKTRACE=0 RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/bindings/bridge/tsan.supp" \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/tsan cargo +nightly test -Zbuild-std --target $(TSAN_TARGET) \
		-p wirecore-bridge -p wirecore-ffi

test-miri:  ## The C ABI's unsafe handle helpers (bindings/c/src/handle.rs and its tests) under Miri (nightly)
	@rustup component list --toolchain nightly --installed | grep -q '^miri' || rustup component add miri rust-src --toolchain nightly
	bash bindings/c/miri/run.sh

# Loom (bindings/bridge/loom, its own workspace): the completion queue (batch.rs) and the request
# count a close blocks on (requests.rs) under every interleaving loom finds of a few threads.
# Stable toolchain; about 20 s of models after a 1.5 min first build. Not in make ready.
test-loom:  ## Loom models of the bridge's completion queue and close accounting (RUSTFLAGS=--cfg loom)
	cd bindings/bridge/loom && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/loom \
		$(CARGO) test --release

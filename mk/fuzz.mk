# Fuzzing (fuzz/: cargo-fuzz targets, nightly, its own workspace; not part of make ready).
# New inputs go to fuzz/corpus/<target> (ignored); the committed seeds are fuzz/seeds/<target>.
.PHONY: fuzz

FUZZ_TARGETS := url_and_headers location config_json
FUZZ_SECONDS ?= 60

fuzz:  ## Run every cargo-fuzz target FUZZ_SECONDS (default 60) each; installs nightly and cargo-fuzz when missing
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		(cd fuzz && cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

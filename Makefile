# wirecore: one HTTP client engine for Rust, Python, Node, Go and C.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := target/x86_64-unknown-linux-gnu

.PHONY: help setup fmt lint schema test test-rust ready demo bench

help:  ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-12s %s\n", $$1, $$2}'

setup:  ## Install what the build and tests need (idempotent: apt-get, pip, npm, cargo, go)
	@bash scripts/setup.sh

fmt:  ## Format Rust
	$(CARGO) fmt --all

schema:  ## Rewrite core/config.schema.json from wirecore::Config
	WIRECORE_BLESS=1 $(CARGO) test -p wirecore --lib config::tests::committed_schema_is_current -q

lint: setup  ## Formatting, clippy -D warnings, stale generated files; no tests
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test -p wirecore --lib -q config::tests::committed_schema_is_current

test-rust: setup  ## Rust unit and integration tests (core + test server), replaying tests/scenarios
	$(CARGO) test --workspace

test: test-rust  ## Every suite: Rust, then each binding

ready: lint test  ## What CI runs: lint + every test suite

demo: setup  ## Start a local server, run the example, print stats
	$(CARGO) run -q -p wirecore --example demo

bench: setup  ## Benchmarks vs peers; results in bench/results/
	@bash bench/run-core.sh

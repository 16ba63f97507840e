# wirecore: one HTTP client engine for Rust, Python, Node, Go and C.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo
# Override CARGO_TARGET_DIR to build elsewhere; every target and mk/*.mk use $(TARGET_DIR).
export CARGO_TARGET_DIR ?= $(CURDIR)/target
TARGET_DIR := $(CARGO_TARGET_DIR)/x86_64-unknown-linux-gnu

.PHONY: help setup setup-rust fmt lint lint-version lint-parity lint-rust parity schema stats-fields test test-rust ready demo bench

# Each binding owns mk/<lang>.mk and appends its targets to these lists.
SETUP_TARGETS :=
LINT_TARGETS :=
TEST_TARGETS :=
DEMO_TARGETS :=
BENCH_TARGETS :=
-include mk/*.mk

help:  ## List targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-16s %s\n", $$1, $$2}'

setup: setup-rust $(SETUP_TARGETS)  ## Install what the build and tests need (idempotent: apt-get, pip, npm, cargo, go)
	@bash scripts/setup.sh

setup-rust:  ## Install cargo-deny 0.20.2 when missing (licenses, bans and sources in lint-rust)
	@cargo-deny --version 2>/dev/null | grep -q ' 0\.20\.2$$' || $(CARGO) install --locked cargo-deny --version 0.20.2

fmt:  ## Format Rust
	$(CARGO) fmt --all

schema:  ## Rewrite core/config.schema.json from wirecore::Config
	WIRECORE_BLESS=1 $(CARGO) test -p wirecore --lib config::tests::committed_schema_is_current -q

stats-fields:  ## Rewrite tests/stats-fields.json (the Stats field names every binding's stats test checks) from wirecore::Stats
	WIRECORE_BLESS=1 $(CARGO) test -p wirecore --lib metrics::stats::tests::committed_stats_fields_are_current -q

lint: lint-version lint-parity lint-rust $(LINT_TARGETS)  ## Formatting, clippy -D warnings, stale generated files; no tests

parity:  ## Rewrite docs/parity.md (options, stats fields, error codes, methods x languages) from each binding's source
	python3 scripts/parity.py

lint-parity:  ## Fail when docs/parity.md is stale or a binding lacks an option, a stats field or an error code
	python3 scripts/parity.py --check

lint-version:  ## One version in Cargo.toml, pyproject.toml, package.json and CHANGELOG.md
	python3 scripts/check-version.py

lint-rust: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test -p wirecore --lib -q config::tests::committed_schema_is_current
	$(CARGO) test -p wirecore --lib -q metrics::stats::tests::committed_stats_fields_are_current
	@# Two runs: the C ABI's lib is named `wirecore` too, and rustdoc writes both to one path.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --exclude wirecore-ffi --no-deps -q
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p wirecore-ffi --no-deps -q
	@# Advisories need the network (the advisory database): licenses, bans and sources do not.
	$(CARGO) deny --offline check --hide-inclusion-graph bans licenses sources

test-rust: setup  ## Rust unit and integration tests (core + test server), replaying tests/scenarios
	$(CARGO) test --workspace --no-fail-fast

test: test-rust $(TEST_TARGETS)  ## Every suite: Rust, then each binding

ready: lint test  ## What CI runs: lint + every test suite

demo: setup  ## Start a local server, run the example in every language, print stats
	$(CARGO) run -q -p wirecore --example demo
	@for t in $(DEMO_TARGETS); do $(MAKE) --no-print-directory $$t || exit 1; done
	@$(MAKE) --no-print-directory demo-cli

bench: setup  ## Benchmarks vs peers; results in bench/results/
	@bash bench/run-core.sh
	WIRECORE_BENCH_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-policy.md $(CARGO) bench -p wirecore --bench policy
	WIRECORE_BENCH_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-balance.md $(CARGO) bench -p wirecore --bench balance
	WIRECORE_BENCH_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-cache.md $(CARGO) bench -p wirecore --bench cache
	WIRECORE_BENCH_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-allocs.md $(CARGO) bench -p wirecore --bench allocs
	@for t in $(BENCH_TARGETS); do $(MAKE) --no-print-directory $$t || exit 1; done
	python3 bench/summary.py --date $$(date -u +%F)

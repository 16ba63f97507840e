# Python package (python/): abi3 wheel by maturin, pytest suite in a fresh venv, lint, demo, bench.
# Tests use a DEBUG wheel built in $(CARGO_TARGET_DIR), so CI compiles the Rust once; only
# bench-python builds a release wheel (into bench/build/python).
PY_DIR := python
PY_BOOT ?= python3
PY_VENV := $(PY_DIR)/.venv
PY_TEST_VENV := $(PY_DIR)/.venv-test
PY_WHEELHOUSE := $(PY_VENV)/wheelhouse
PY_PROFILE ?= dev
PY_DIST ?= dist
PY_TESTSERVER := $(abspath $(TARGET_DIR))/debug/wirecore-testserver
PY_MATURIN = cd $(PY_DIR) && .venv/bin/maturin build --target x86_64-unknown-linux-gnu

.PHONY: setup-python wheel wheel-portable py-test-venv lint-python test-python demo-python python-types

SETUP_TARGETS += setup-python
LINT_TARGETS += lint-python
TEST_TARGETS += test-python
DEMO_TARGETS += demo-python

setup-python: $(PY_VENV)/.installed  ## Python venv with maturin, ruff, pytest, mypy (+ an offline wheelhouse for test venvs)

$(PY_VENV)/.installed: $(PY_DIR)/requirements-dev.txt $(PY_DIR)/requirements-test.txt
	test -x $(PY_VENV)/bin/python || $(PY_BOOT) -m venv $(PY_VENV)
	$(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(PY_DIR)/requirements-dev.txt
	$(PY_VENV)/bin/python -m pip download -q --disable-pip-version-check -d $(PY_WHEELHOUSE) -r $(PY_DIR)/requirements-test.txt
	touch $@

wheel: setup-python  ## dist/wirecore-*.whl (abi3, CPython >= 3.9); PY_PROFILE=release for an optimised one
	rm -f $(PY_DIST)/wirecore-*.whl
	$(PY_MATURIN) --profile $(PY_PROFILE) --out $(abspath $(PY_DIST))

python-types:  ## Rewrite python/pysrc/wirecore/config.py (TypedDicts) from core/config.schema.json
	$(PY_BOOT) $(PY_DIR)/scripts/gen_config_types.py

# The wheel to ship: release, linked by zig against glibc 2.17 (manylinux2014), so it installs on
# older distributions too. Not part of `make ready` (a release build; ziglang is a 100 MB download).
PY_ZIG_VERSION := 0.17.1
wheel-portable: setup-python  ## dist/wirecore-*-manylinux2014*.whl: release, runs on glibc >= 2.17 (zig linker)
	$(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check ziglang==$(PY_ZIG_VERSION)
	rm -f $(PY_DIST)/wirecore-*.whl
	@# maturin finds zig through the venv's python (ziglang): PATH must reach maturin, not only the cd.
	export PATH=$(abspath $(PY_VENV))/bin:$$PATH && $(PY_MATURIN) --profile release --zig --compatibility manylinux2014 --out $(abspath $(PY_DIST))

lint-python: setup-python  ## ruff (package and bench scripts), mypy --strict on the package and the typed example, config.py current
	$(PY_BOOT) $(PY_DIR)/scripts/gen_config_types.py --check
	$(PY_VENV)/bin/ruff check $(PY_DIR) bench
	$(PY_VENV)/bin/ruff format --check $(PY_DIR) bench
	cd $(PY_DIR) && MYPYPATH=pysrc .venv/bin/mypy --strict pysrc/wirecore examples

# A fresh venv with only the wheel and the test requirements (offline, from the wheelhouse).
py-test-venv: wheel
	$(CARGO) build -q -p wirecore-testserver
	rm -rf $(PY_TEST_VENV)
	$(PY_BOOT) -m venv $(PY_TEST_VENV)
	$(PY_TEST_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-index \
		--find-links $(PY_WHEELHOUSE) -r $(PY_DIR)/requirements-test.txt $(PY_DIST)/wirecore-*.whl

test-python: py-test-venv node  ## Install the wheel into a fresh venv; pytest against the test server (and the Node addon, for the shared-cache test); stubtest
	cd $(PY_DIR) && WIRECORE_TESTSERVER=$(PY_TESTSERVER) .venv-test/bin/python -m pytest -q -rs -p no:cacheprovider tests
	cd $(PY_DIR) && .venv-test/bin/python -m mypy.stubtest --mypy-config-file pyproject.toml wirecore._wirecore

demo-python: py-test-venv  ## Python example against a freshly started test server; prints its stats
	cd $(PY_DIR) && WIRECORE_TESTSERVER=$(PY_TESTSERVER) .venv-test/bin/python examples/demo.py

# Release build allowed here only (a bench, never part of `make ready`).
PY_BENCH := bench/build/python
.PHONY: bench-python
BENCH_TARGETS += bench-python

bench-python: setup-python  ## wirecore Client/AsyncClient vs httpx, aiohttp, requests, pyreqwest → bench/results/<date>-python.md
	$(CARGO) build --release -q -p wirecore-testserver
	$(MAKE) --no-print-directory wheel PY_PROFILE=release PY_DIST=$(PY_BENCH)
	test -x $(PY_BENCH)/venv/bin/python || $(PY_BOOT) -m venv $(PY_BENCH)/venv
	$(PY_BENCH)/venv/bin/python -m pip install -q --disable-pip-version-check -r bench/python/requirements.txt
	$(PY_BENCH)/venv/bin/python -m pip install -q --disable-pip-version-check pyreqwest==0.15.1 \
		|| echo "bench-python: pyreqwest did not install; running without it"
	$(PY_BENCH)/venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps $(PY_BENCH)/wirecore-*.whl
	$(PY_BENCH)/venv/bin/python bench/python/bench.py --server $(abspath $(TARGET_DIR))/release/wirecore-testserver \
		--out bench/results/$$(date -u +%F)-python.md $(BENCH_PYTHON_ARGS)

# Host-thread CPU per request of AsyncClient (the loop thread's time sets the per-process ceiling
# on many cores). A bare venv: no optional package (OpenTelemetry) changes the hot path.
# HOST_BASE=<wheel of an older build> adds it as the first variant, alternated in one run.
.PHONY: bench-host-python
bench-host-python:  ## AsyncClient host-thread µs per request, GET 1 KiB h1+h2 C=64 (HOST_BASE=old.whl to compare) → bench/results/<date>-host-thread-python.md
	$(CARGO) build --release -q -p wirecore-testserver
	$(MAKE) --no-print-directory wheel PY_PROFILE=release PY_DIST=$(PY_BENCH)
	test -x $(PY_BENCH)/host-venv/bin/python || $(PY_BOOT) -m venv $(PY_BENCH)/host-venv
	$(PY_BENCH)/host-venv/bin/python bench/python/host_thread.py \
		--server $(abspath $(TARGET_DIR))/release/wirecore-testserver \
		$(if $(HOST_BASE),--variant base=$(HOST_BASE)) --variant wirecore=$$(ls $(PY_BENCH)/wirecore-*.whl) \
		--out bench/results/$$(date -u +%F)-host-thread-python.md $(BENCH_HOST_ARGS)

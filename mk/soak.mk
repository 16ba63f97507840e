# Soak (bench/soak): every binding's worker at once, mixed traffic through toxiproxy with a new
# fault every 30 s and Redis blackholed in turn; RSS/fds/threads/runtime gauge sampled every 10 s;
# writes bench/results/soak.md and soak-<lang>.svg. Not in make ready (SOAK_SECONDS, default 30 min).
# SOAK_LANGS=node,node-gc runs only those workers; node-gc is Node's worker under --expose-gc,
# collecting garbage before each sample (what V8 retains, apart from what it has not collected).
# The run's samples and errors go to $(SOAK_RAW): `bench/soak/soak.py --report-from FILE --out DIR`
# judges them again.
.PHONY: soak

SOAK_SECONDS ?= 1800
SOAK_OUT ?= bench/results
SOAK_RAW ?= $(TARGET_DIR)/soak-raw.json

soak: setup-faults build-go build-c py-test-venv node  ## Soak all bindings SOAK_SECONDS (default 1800) with rotating faults → bench/results/soak.md + SVGs
	$(CARGO) build -q -p wirecore-faults -p wirecore-testserver
	cd $(GO_DIR) && $(GO) build -o $(TARGET_DIR)/debug/soakworker ./examples/soakworker
	cc $(C_CFLAGS) -o $(C_BIN)/soak_worker bench/soak/worker.c $(C_LIB) -ldl -lm -lpthread
	SOAK_SECONDS=$(SOAK_SECONDS) python3 bench/soak/soak.py --toxiproxy $(TOXIPROXY) \
		--testserver $(TARGET_DIR)/debug/wirecore-testserver --redis $$(command -v redis-server) \
		--out $(SOAK_OUT) --raw $(SOAK_RAW) \
		--worker "rust=$(TARGET_DIR)/debug/soak-worker" \
		--worker "python=$(PY_TEST_VENV)/bin/python bench/soak/worker.py" \
		--worker "node=node bench/soak/worker.mjs $(CURDIR)/$(NODE_DIR)/index.js" \
		--worker "node-gc=node --expose-gc bench/soak/worker.mjs $(CURDIR)/$(NODE_DIR)/index.js" \
		--worker "go=$(TARGET_DIR)/debug/soakworker" \
		--worker "c=$(C_BIN)/soak_worker"

# WAN benchmark (bench/wan): toxiproxy with 50 ms each way in front of the test server's TLS
# port; new connection per request vs each language's default client vs wirecore, and an HTTP/2
# bulk download with wirecore's windows vs 64 KiB ones → bench/results/wan.md. Not in make ready.
.PHONY: bench-wan
WAN_VENV := bench/build/wan-venv

bench-wan: setup-faults build-go wheel setup-node node  ## WAN benchmark through toxiproxy (100 ms RTT, TLS) → bench/results/wan.md
	$(CARGO) build -q -p wirecore-bench-core --bin wan -p wirecore-testserver
	cd $(GO_DIR) && $(GO) build -o $(TARGET_DIR)/debug/wanclient ./examples/wanclient
	test -x $(WAN_VENV)/bin/python || $(PY_BOOT) -m venv $(WAN_VENV)
	$(WAN_VENV)/bin/python -m pip install -q --disable-pip-version-check "$$(grep '^httpx' bench/python/requirements.txt)"
	$(WAN_VENV)/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps $(PY_DIST)/wirecore-*.whl
	python3 bench/wan/wan.py --toxiproxy $(TOXIPROXY) --testserver $(TARGET_DIR)/debug/wirecore-testserver \
		--out bench/results/wan.md \
		--client "rust=$(TARGET_DIR)/debug/wan latency" \
		--client "python=$(WAN_VENV)/bin/python bench/wan/client.py" \
		--client "node=node bench/wan/client.mjs $(CURDIR)/$(NODE_DIR)/index.js $(CURDIR)/$(NODE_DIR)" \
		--client "go=$(TARGET_DIR)/debug/wanclient" \
		--bulk "$(TARGET_DIR)/debug/wan bulk"

# Fault matrix (tests/faults): toxiproxy in front of the test server, the same request from Rust
# and from every binding's fetcher per fault; writes bench/results/faults.md.
.PHONY: setup-faults test-faults

TOXIPROXY_VERSION := v2.12.0
# Outside the target dir, so a clean clone reuses it; versioned, so a bump reinstalls.
TOXIPROXY_DIR := $(HOME)/.cache/wirecore/toxiproxy-$(TOXIPROXY_VERSION)
TOXIPROXY := $(TOXIPROXY_DIR)/server
FAULTS_OUT ?= bench/results/faults.md

SETUP_TARGETS += setup-faults
TEST_TARGETS += test-faults

# The module proxy's @latest is stale for toxiproxy (TOOLCHAIN.md): the version is pinned.
setup-faults: setup-go  ## Install toxiproxy v2.12.0 (go install) when missing
	@test -x $(TOXIPROXY) || GOBIN=$(TOXIPROXY_DIR) $(GO) install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)

test-faults: setup-faults build-go build-c py-test-venv node  ## Fault matrix through toxiproxy: Rust, Python, Node, Go, C → bench/results/faults.md
	$(CARGO) build -q -p wirecore-faults
	cd $(GO_DIR) && $(GO) build -o $(TARGET_DIR)/debug/faultfetch ./examples/faultfetch
	$(TARGET_DIR)/debug/wirecore-faults --toxiproxy $(TOXIPROXY) --out $(FAULTS_OUT) \
		--fetcher "python=$(PY_TEST_VENV)/bin/python $(PY_DIR)/tests/fault_fetch.py" \
		--fetcher "node=node $(NODE_DIR)/test/fault-fetch.mjs $(CURDIR)/$(NODE_DIR)/index.js" \
		--fetcher "go=$(TARGET_DIR)/debug/faultfetch" \
		--fetcher "c=$(C_BIN)/fault_fetch"

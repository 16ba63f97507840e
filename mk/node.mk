# Node/TypeScript addon (node/): napi-rs crate wirecore-node + the `wirecore` npm package.
NODE_DIR := node
NODE_TGZ := $(NODE_DIR)/wirecore-0.1.0.tgz
NODE_TESTSERVER := $(TARGET_DIR)/debug/wirecore-testserver
NAPI := cd $(NODE_DIR) && npx --no-install napi

.PHONY: setup-node node node-types node-pack lint-node test-node demo-node bench-node

SETUP_TARGETS += setup-node
LINT_TARGETS += lint-node
TEST_TARGETS += test-node

# `npm install` (which installs the versions pinned in package-lock.json), not `npm ci`: npm 11's
# `npm ci` rejects any lockfile holding @napi-rs/cli's unpublished optional wasm/platform
# packages as "out of sync", even one it has just written (npm/cli#9846).
setup-node:  ## npm install in node/ from package-lock.json (napi CLI, TypeScript, ESLint, undici for the benchmark)
	@cd $(NODE_DIR) && if [ ! -x node_modules/.bin/napi ] || [ ! -x node_modules/.bin/eslint ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm install --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true; fi
	@test -x $(NODE_DIR)/node_modules/.bin/napi && test -x $(NODE_DIR)/node_modules/.bin/eslint || { echo "setup-node: npm install failed" >&2; exit 1; }

node: setup-node  ## Build the Node addon (debug) with the napi CLI; rewrites binding.js and binding.d.ts
	$(NAPI) build --platform --js binding.js --dts binding.d.ts

node-types:  ## Rewrite node/config.d.ts from core/config.schema.json
	node $(NODE_DIR)/scripts/gen-config-dts.mjs

node-pack: node  ## npm pack → node/wirecore-<version>.tgz
	cd $(NODE_DIR) && rm -f wirecore-*.tgz && npm pack --silent 2>&1 | grep -v 'Unknown user config'

lint-node: node  ## Generated files current (binding.*, config.d.ts), ESLint, .d.ts and index.js type-check
	node $(NODE_DIR)/scripts/gen-config-dts.mjs --check
	git diff --exit-code -- $(NODE_DIR)/binding.js $(NODE_DIR)/binding.d.ts || { echo "node/binding.* is stale: run make node and commit" >&2; exit 1; }
	cd $(NODE_DIR) && npx --no-install eslint --max-warnings 0 .
	cd $(NODE_DIR) && npx --no-install tsc -p tsconfig.json
	cd $(NODE_DIR) && npx --no-install tsc -p tsconfig.js.json

test-node: node-pack  ## Install the packed tgz in a temp folder; run the node:test suite there
	$(CARGO) build -q -p wirecore-testserver
	bash $(NODE_DIR)/scripts/test-packed.sh $(NODE_TESTSERVER)

DEMO_TARGETS += demo-node

demo-node: node  ## Run the typed Node example (examples/demo.mjs) against a started test server; prints stats
	$(CARGO) build -q -p wirecore-testserver
	node $(NODE_DIR)/examples/demo.mjs $(NODE_TESTSERVER)

BENCH_TARGETS += bench-node
NODE_BENCH_DIR := $(TARGET_DIR)/release/node-bench

.PHONY: node-bench-addon bench-host-node
node-bench-addon: setup-node
	@mkdir -p $(NODE_BENCH_DIR) bench/results
	cd $(NODE_DIR) && npx --no-install napi build --platform --release -o $(NODE_BENCH_DIR) --js binding.js --dts binding.d.ts
	cp $(NODE_DIR)/index.js $(NODE_DIR)/errors.js $(NODE_DIR)/package.json $(NODE_BENCH_DIR)/
	$(CARGO) build --release -q -p wirecore-testserver

bench-node: node-bench-addon  ## wirecore vs undici.request, fetch, node:http, node:http2: GET /1k, C=1..256, h1+h2 (release build)
	@pin=""; srv=""; if [ "$$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin="taskset -c 1"; srv="--server-cpu 0"; fi; \
	  $$pin node bench/node/bench.mjs --server $(TARGET_DIR)/release/wirecore-testserver --wirecore $(NODE_BENCH_DIR) \
	    $$srv --out bench/results/$$(date -u +%F)-node.md
	@cat bench/results/$$(date -u +%F)-node.md

# The JS thread's CPU per request (it sets the per-process ceiling on many cores).
# HOST_BASE=<package dir of an older release build> adds it as the first variant.
bench-host-node: node-bench-addon  ## Client host-thread µs per request, GET 1 KiB h1+h2 C=64 (HOST_BASE=old dir to compare) → bench/results/<date>-host-thread-node.md
	node bench/node/host-thread.mjs --server $(TARGET_DIR)/release/wirecore-testserver \
		$(if $(HOST_BASE),--variant base=$(HOST_BASE)) --variant wirecore=$(NODE_BENCH_DIR) \
		--out bench/results/$$(date -u +%F)-host-thread-node.md $(BENCH_HOST_ARGS)

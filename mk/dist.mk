# Release artifacts (make dist → dist/, ignored by git): the C tarball, the npm tgz with a release
# addon, the Python manylinux2014 abi3 wheel and sdist, and the Go module's prebuilt static
# library. Not part of `make ready` (release builds take minutes); `make test-dist` installs each
# into a clean place and runs a request against the test server. lint-dist (in `make lint`)
# checks the metadata only: the pkg-config template, package.json, a prebuilt Go library's match.
# One `cargo build --release` of the C ABI and the Node addon together serves the C tarball, the
# Go library and the npm package. The wheel cannot share it: maturin --zig builds through
# cargo-zigbuild (zig as linker and C compiler, for glibc 2.17, and the unstable
# target-applies-to-host), which compiles every dependency again, host tools included.
.PHONY: dist dist-lib dist-c dist-node dist-python go-vendor-lib lint-dist dist-testserver \
	test-dist test-dist-c test-dist-node test-dist-python test-dist-go scale-release

VERSION := $(shell sed -nE '/^\[workspace\.package\]/,/^\[/s/^version = "(.*)"/\1/p' Cargo.toml)
DIST_DIR := $(CURDIR)/dist
REL_DIR := $(TARGET_DIR)/release
C_TARBALL := $(DIST_DIR)/wirecore-$(VERSION)-linux-x86_64.tar.gz
DIST_TESTSERVER := $(TARGET_DIR)/debug/wirecore-testserver

LINT_TARGETS += lint-dist

dist: dist-c dist-node dist-python go-vendor-lib  ## Release artifacts: dist/ (C tarball, npm tgz, Python wheel + sdist), the Go module's prebuilt lib
	@ls -l $(DIST_DIR)

dist-lib:  ## One release build of the C ABI (libwirecore.a/.so) and the Node addon
	$(CARGO) build --release -p wirecore-ffi -p wirecore-node

dist-c: dist-lib  ## dist/wirecore-<version>-linux-x86_64.tar.gz: lib/libwirecore.{a,so}, include/, lib/pkgconfig/wirecore.pc
	@mkdir -p $(DIST_DIR)
	bash scripts/dist/c.sh $(REL_DIR) $(VERSION) $(DIST_DIR)

dist-node: dist-lib  ## dist/wirecore-<version>.tgz: the npm package with the release addon
	@mkdir -p $(DIST_DIR)
	bash scripts/dist/node.sh $(REL_DIR) $(DIST_DIR)

dist-python: setup-python  ## dist/wirecore-<version>-cp39-abi3-manylinux*.whl (make wheel-portable) and dist/wirecore-<version>.tar.gz (maturin sdist)
	$(MAKE) --no-print-directory wheel-portable PY_DIST=$(DIST_DIR)
	cd $(PY_DIR) && .venv/bin/maturin sdist --out $(DIST_DIR)

go-vendor-lib: dist-lib  ## Put the release libwirecore.a + header into bindings/go/internal/capi/prebuilt (recorded in its SOURCE)
	python3 scripts/dist/go_lib.py vendor $(REL_DIR)/libwirecore.a

lint-dist:  ## Release metadata: the wirecore.pc template, package.json's fields for npm users, a prebuilt Go lib matching the sources
	python3 scripts/dist/check.py
	python3 scripts/dist/go_lib.py check

test-dist: test-dist-c test-dist-node test-dist-python test-dist-go  ## Install every artifact of make dist into a clean place; a request against the test server each

dist-testserver:
	$(CARGO) build -q -p wirecore-testserver

test-dist-c: dist-c dist-testserver  ## Compile an example with `pkg-config --cflags --libs wirecore` only against the unpacked tarball; run it (shared and static)
	bash scripts/dist/test-c.sh $(C_TARBALL) $(DIST_TESTSERVER)

test-dist-node: dist-node dist-testserver  ## npm install the tgz under a path with spaces; require + import it from a read-only node_modules; a GET
	bash scripts/dist/test-node.sh $(DIST_DIR)/wirecore-$(VERSION).tgz $(DIST_TESTSERVER)

test-dist-python: dist-python dist-testserver  ## The wheel's tags, glibc 2.17 and release build; installed in a fresh venv, sync + async GET; the sdist's crates and lock
	PY_BOOT=$(PY_BOOT) bash scripts/dist/test-python.sh $(DIST_DIR)/wirecore-$(VERSION)-cp39-abi3-*.whl \
		$(DIST_DIR)/wirecore-$(VERSION).tar.gz $(DIST_TESTSERVER)

test-dist-go: go-vendor-lib dist-testserver  ## A fresh module using a copy of bindings/go by `replace`: builds with no cargo on PATH, runs a GET
	bash scripts/dist/test-go.sh $(DIST_TESTSERVER) $(VERSION)

# Issue 18's scale bound (10,000 requests in flight from one client: RSS growth < 300 MB) holds
# for optimized builds; `make test-*` link the debug engine and check 800 MB. This runs each
# binding's scale test against release builds with WIRECORE_SCALE_BUDGET_MB=$(SCALE_BUDGET_MB):
# dist-lib's one release build serves Node (dist-node's tgz) and Go (its libwirecore.a); the
# Python wheel is the plain release one (`make wheel PY_PROFILE=release`: same target dir and
# target, so it reuses most of dist-lib's compiled crates; the zig-linked wheel-portable compiles
# every crate again). Not part of `make ready`. The figures are printed per binding.
SCALE_BUDGET_MB ?= 300
SCALE_DIR := $(TARGET_DIR)/release/scale
SCALE_FAILED := $(SCALE_DIR)/failed
SCALE_ENV := WIRECORE_SCALE_BUDGET_MB=$(SCALE_BUDGET_MB) WIRECORE_TESTSERVER=$(REL_DIR)/wirecore-testserver

scale-release: dist-node setup-python setup-go  ## 10,000 requests in flight, RSS growth < 300 MB (SCALE_BUDGET_MB): Rust, Python, Node, Go against release builds
	$(CARGO) build --release -p wirecore-testserver
	$(MAKE) --no-print-directory wheel PY_PROFILE=release PY_DIST=$(SCALE_DIR)/python
	rm -rf $(SCALE_DIR)/python/venv $(SCALE_FAILED) && $(PY_BOOT) -m venv $(SCALE_DIR)/python/venv
	$(SCALE_DIR)/python/venv/bin/python -m pip install -q --disable-pip-version-check --no-index \
		--find-links $(PY_WHEELHOUSE) -r $(PY_DIR)/requirements-test.txt $(SCALE_DIR)/python/wirecore-*.whl
	@# Every binding runs even when one is over budget; the failures are listed at the end.
	$(SCALE_ENV) $(CARGO) test --release -p wirecore --test scale -- --nocapture || echo rust >> $(SCALE_FAILED)
	cd $(PY_DIR) && $(SCALE_ENV) $(SCALE_DIR)/python/venv/bin/python -m pytest -q -s -rs -p no:cacheprovider \
		tests/test_scale.py || echo python >> $(SCALE_FAILED)
	$(SCALE_ENV) WIRECORE_NODE_TGZ=$(DIST_DIR)/wirecore-$(VERSION).tgz WIRECORE_NODE_TESTS=test/scale.test.js \
		bash $(NODE_DIR)/scripts/test-packed.sh $(REL_DIR)/wirecore-testserver || echo node >> $(SCALE_FAILED)
	@mkdir -p $(GO_DIR)/lib
	ln -sfn $(REL_DIR)/libwirecore.a $(GO_DIR)/lib/libwirecore.a
	cd $(GO_DIR) && $(SCALE_ENV) $(GO) test -count=1 -v -run '^TestTenThousandRequestsInFlight$$' . || echo go >> $(SCALE_FAILED)
	ln -sfn $(TARGET_DIR)/debug/libwirecore.a $(GO_DIR)/lib/libwirecore.a
	@if [ -s $(SCALE_FAILED) ]; then echo "scale-release: over $(SCALE_BUDGET_MB) MB or failed: $$(cat $(SCALE_FAILED) | tr '\n' ' ')" >&2; exit 1; fi

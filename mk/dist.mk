# Release artifacts (make dist → dist/, ignored by git), so far the C tarball (issue 17: the npm
# tgz, the Python wheel + sdist and the Go module's prebuilt library follow). Not part of `make
# ready` (release builds take minutes); `make test-dist` installs each artifact into a clean place
# and runs a request against the test server. lint-dist (in `make lint`) checks metadata only.
.PHONY: dist dist-lib dist-c lint-dist dist-testserver test-dist test-dist-c

VERSION := $(shell sed -nE '/^\[workspace\.package\]/,/^\[/s/^version = "(.*)"/\1/p' Cargo.toml)
DIST_DIR := $(CURDIR)/dist
REL_DIR := $(TARGET_DIR)/release
C_TARBALL := $(DIST_DIR)/wirecore-$(VERSION)-linux-x86_64.tar.gz
DIST_TESTSERVER := $(TARGET_DIR)/debug/wirecore-testserver

LINT_TARGETS += lint-dist

dist: dist-c  ## Release artifacts in dist/ (so far the C tarball)
	@ls -l $(DIST_DIR)

dist-lib:  ## One release build of the C ABI (libwirecore.a/.so) and the Node addon
	$(CARGO) build --release -p wirecore-ffi -p wirecore-node

dist-c: dist-lib  ## dist/wirecore-<version>-linux-x86_64.tar.gz: lib/libwirecore.{a,so}, include/, lib/pkgconfig/wirecore.pc
	@mkdir -p $(DIST_DIR)
	bash scripts/dist/c.sh $(REL_DIR) $(VERSION) $(DIST_DIR)

lint-dist:  ## The release metadata: the wirecore.pc template
	python3 scripts/dist/check.py

test-dist: test-dist-c  ## Install every artifact of make dist into a clean place; a request against the test server each

dist-testserver:
	$(CARGO) build -q -p wirecore-testserver

test-dist-c: dist-c dist-testserver  ## Compile an example with `pkg-config --cflags --libs wirecore` only against the unpacked tarball; run it (shared and static)
	bash scripts/dist/test-c.sh $(C_TARBALL) $(DIST_TESTSERVER)
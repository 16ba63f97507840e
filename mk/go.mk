# Go module (bindings/go): an http.RoundTripper over the C ABI, linked statically.
# bindings/go/lib/libwirecore.a is a symlink to the library cargo built (debug for tests,
# release for bench-go); see bindings/go/README.md. Every Go build here links that one (tag
# wirecore_local); without the tag a build links the prebuilt library a released module carries
# (make go-vendor-lib, mk/dist.mk).
export GOFLAGS += -tags=wirecore_local
.PHONY: setup-go build-go lint-go test-go demo-go bench-go

GO ?= go
GO_DIR := bindings/go
GO_TESTSERVER := $(TARGET_DIR)/debug/wirecore-testserver

SETUP_TARGETS += setup-go
LINT_TARGETS += lint-go
TEST_TARGETS += test-go
DEMO_TARGETS += demo-go
BENCH_TARGETS += bench-go

setup-go:  ## Check the Go toolchain (1.26) and cgo
	@$(GO) version >/dev/null 2>&1 || (echo "Go is missing: install Go 1.26 (https://go.dev/dl)" >&2; exit 1)
	@test "$$($(GO) env CGO_ENABLED)" = 1 || (echo "CGO_ENABLED must be 1" >&2; exit 1)

build-go: setup-go
	$(CARGO) build -p wirecore-ffi -p wirecore-testserver
	@mkdir -p $(GO_DIR)/lib
	@ln -sfn $(TARGET_DIR)/debug/libwirecore.a $(GO_DIR)/lib/libwirecore.a

lint-go: build-go  ## go vet + gofmt
	cd $(GO_DIR) && $(GO) vet ./...
	cd bench/go && $(GO) vet ./...
	@out=$$(gofmt -l $(GO_DIR) bench/go); if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi

# The memory-growth check only measures RSS without -race (the detector's shadow memory grows
# with every access), so it runs once more in a plain build.
test-go: build-go  ## Go tests with -race (scenarios, 5000 goroutines, leaks, cancellation), then the RSS checks without it (leaks, 10,000 in flight)
	cd $(GO_DIR) && WIRECORE_TESTSERVER=$(GO_TESTSERVER) $(GO) test -race -count=1 ./...
	cd $(GO_DIR) && WIRECORE_TESTSERVER=$(GO_TESTSERVER) $(GO) test -count=1 -run '^(TestNoLeakOverManyRequests|TestTenThousandRequestsInFlight)$$' .

demo-go: build-go  ## The Go example against a fresh test server, with stats
	cd $(GO_DIR) && $(GO) run ./examples/demo -server $(GO_TESTSERVER)

# nginx serves the 1 KiB file when it is installed (the test server otherwise); each cell runs
# both clients three times, alternating which goes first, and the table gives medians; at
# GOMAXPROCS 1 (Go's default on the one CPU the client is pinned to) and 2 (as on a machine with
# more cores: a request alone in flight then waits in the engine).
BENCH_GO_ARGS ?= $(if $(wildcard /usr/sbin/nginx),-nginx /usr/sbin/nginx) -repeat 3 -procs 1,2

bench-go: setup-go  ## wirecore vs net/http, GET 1 KiB from nginx at C=1,16,64,256 over h1 and h2 (release build)
	$(CARGO) build --release -p wirecore-ffi -p wirecore-testserver
	@mkdir -p $(GO_DIR)/lib bench/results
	@ln -sfn $(TARGET_DIR)/release/libwirecore.a $(GO_DIR)/lib/libwirecore.a
	cd bench/go && $(GO) build -o $(TARGET_DIR)/release/wirecore-bench-go .
	taskset -c 1 $(TARGET_DIR)/release/wirecore-bench-go -server $(TARGET_DIR)/release/wirecore-testserver \
		-server-cpu 0 $(BENCH_GO_ARGS) > bench/results/$$(date -u +%F)-go.md
	@cat bench/results/$$(date -u +%F)-go.md
	@ln -sfn $(TARGET_DIR)/debug/libwirecore.a $(GO_DIR)/lib/libwirecore.a

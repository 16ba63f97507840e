# C ABI: the header (cbindgen), the examples and the scenario runner, run under valgrind.
# Link line for users: libwirecore.a -ldl -lm -lpthread (brotli needs -lm).
.PHONY: setup-c header lint-c build-c test-c test-c-asan demo-c

C_LIB := $(TARGET_DIR)/debug/libwirecore.a
C_BIN := $(TARGET_DIR)/debug/c-examples
C_EXAMPLES := blocking_get concurrent bad_input lifecycle cookies request_options scenarios fault_fetch dead_letter log proxy span
C_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O1 -g -Iinclude
CBINDGEN := cbindgen --quiet --config bindings/c/cbindgen.toml --output include/wirecore.h

SETUP_TARGETS += setup-c
LINT_TARGETS += lint-c
TEST_TARGETS += test-c
DEMO_TARGETS += demo-c

setup-c:  ## Install cbindgen 0.29.4, valgrind and C and C++ compilers when missing
	@cbindgen --version 2>/dev/null | grep -q '0.29.4' || $(CARGO) install cbindgen --locked --version 0.29.4
	@command -v valgrind >/dev/null && command -v cc >/dev/null && command -v g++ >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind gcc g++)

header: setup-c  ## Regenerate include/wirecore.h from bindings/c
	$(CBINDGEN) bindings/c

lint-c: setup-c  ## Fail when include/wirecore.h is stale, or does not compile as C and C++ in any include order
	$(CBINDGEN) --verify bindings/c || (echo "include/wirecore.h is stale: run make header" >&2; exit 1)
	bash bindings/c/check-header.sh include/wirecore.h

build-c: setup-c
	$(CARGO) build -p wirecore-ffi -p wirecore-testserver
	@mkdir -p $(C_BIN)
	@for ex in $(C_EXAMPLES); do \
		echo "cc bindings/c/examples/$$ex.c"; \
		cc $(C_CFLAGS) -o $(C_BIN)/$$ex bindings/c/examples/$$ex.c $(C_LIB) -ldl -lm -lpthread || exit 1; \
	done

test-c: build-c  ## C examples and tests/scenarios through the C ABI, under valgrind
	bash bindings/c/run-tests.sh $(TARGET_DIR)/debug/wirecore-testserver $(C_BIN) --valgrind

demo-c: build-c  ## The blocking C example against a fresh test server, with stats
	@bash bindings/c/run-tests.sh $(TARGET_DIR)/debug/wirecore-testserver $(C_BIN) --demo

C_ASAN_BIN := $(TARGET_DIR)/debug/c-examples-asan
# The C side is instrumented; the Rust staticlib is not (valgrind in test-c covers both).
C_ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

test-c-asan: build-c  ## C examples and the scenario runner built with ASan+UBSan against the Rust staticlib
	@mkdir -p $(C_ASAN_BIN)
	@for ex in $(C_EXAMPLES); do \
		echo "cc (asan, ubsan) bindings/c/examples/$$ex.c"; \
		cc $(C_CFLAGS) $(C_ASAN_FLAGS) -o $(C_ASAN_BIN)/$$ex bindings/c/examples/$$ex.c $(C_LIB) -ldl -lm -lpthread || exit 1; \
	done
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		bash bindings/c/run-tests.sh $(TARGET_DIR)/debug/wirecore-testserver $(C_ASAN_BIN)

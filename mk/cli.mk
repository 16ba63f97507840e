# The `wirecore` command (cli/): `bench` and `serve`. Its tests (cli/tests) run in test-rust,
# with the rest of the workspace: one debug build.
.PHONY: cli install-cli demo-cli bench-cli

CLI_DEBUG := $(TARGET_DIR)/debug/wirecore

BENCH_TARGETS += bench-cli

cli:  ## Build the `wirecore` command (release; the path is printed)
	$(CARGO) build --release -p wirecore-cli
	@echo "built $(TARGET_DIR)/release/wirecore"

install-cli:  ## cargo install the `wirecore` command into ~/.cargo/bin
	$(CARGO) install --locked --path cli

demo-cli:  ## `wirecore serve` a small site, `wirecore bench` it for 3 s: summary + SVG plot
	$(CARGO) build -q -p wirecore-cli
	@bash scripts/demo-cli.sh $(CLI_DEBUG) $(CARGO_TARGET_DIR)/demo

bench-cli: cli  ## `wirecore bench` vs wrk/h2load and `wirecore serve` vs nginx; bench/results/<date>-cli.md
	@bash bench/run-cli.sh $(TARGET_DIR)/release/wirecore

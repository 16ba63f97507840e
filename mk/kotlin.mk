# Kotlin/JVM (bindings/uniffi + bindings/kotlin): uniffi generates the Kotlin sources from the
# crate's proc-macro interface (library mode, from the debug cdylib); Maven compiles them with
# kotlinc and runs the JUnit suite (scenarios included) through JNA. Versions are pinned in
# bindings/kotlin/pom.xml; uniffi's generator is the crate's own bin, behind its `bindgen`
# feature so the workspace build never compiles it.
.PHONY: setup-kotlin kotlin-lib kotlin-bindgen kotlin-bindings lint-kotlin test-kotlin demo-kotlin

KT_DIR := bindings/kotlin
KT_LIB_DIR := $(abspath $(TARGET_DIR))/debug
KT_SO := $(KT_LIB_DIR)/libwirecore_uniffi.so
KT_GEN_DIR := $(KT_DIR)/src/main/kotlin
KT_BINDGEN := $(KT_LIB_DIR)/uniffi-bindgen
KT_MVN := mvn -B -ntp -f $(KT_DIR)/pom.xml -Dwirecore.lib.dir=$(KT_LIB_DIR)

SETUP_TARGETS += setup-kotlin
LINT_TARGETS += lint-kotlin
TEST_TARGETS += test-kotlin
DEMO_TARGETS += demo-kotlin

setup-kotlin:  ## Java 17 and Maven (apt-get when missing); Maven fetches kotlinc, JNA, JUnit as the pom pins them
	@command -v java >/dev/null && command -v mvn >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven)

kotlin-lib:
	$(CARGO) build -p wirecore-uniffi -p wirecore-testserver

# Built before the library it reads, so the cdylib left in $(KT_LIB_DIR) is the plain one.
kotlin-bindgen:
	$(CARGO) build -q -p wirecore-uniffi --features bindgen --bin uniffi-bindgen

# The package name and library name come from bindings/uniffi/uniffi.toml (found through cargo
# metadata); --no-format: the output must not depend on whether ktlint is installed.
KT_GENERATE = $(KT_BINDGEN) generate --library $(KT_SO) --language kotlin --no-format --out-dir

kotlin-bindings: kotlin-bindgen kotlin-lib  ## Regenerate bindings/kotlin/src/main/kotlin/wirecore/wirecore.kt from bindings/uniffi
	$(KT_GENERATE) $(KT_GEN_DIR)

lint-kotlin: setup-kotlin kotlin-bindgen kotlin-lib  ## Fail when the generated Kotlin sources are stale
	@rm -rf $(KT_LIB_DIR)/kotlin-gen && mkdir -p $(KT_LIB_DIR)/kotlin-gen
	$(KT_GENERATE) $(KT_LIB_DIR)/kotlin-gen
	diff -r $(KT_LIB_DIR)/kotlin-gen $(KT_GEN_DIR) || \
		(echo "bindings/kotlin's generated sources are stale: run make kotlin-bindings and commit" >&2; exit 1)

test-kotlin: setup-kotlin kotlin-lib  ## JUnit suite on the JVM: every tests/scenarios file, coroutines, cancellation, close, a Java caller
	$(KT_MVN) test

demo-kotlin: setup-kotlin kotlin-lib  ## The Kotlin example against a fresh test server, with stats
	$(KT_MVN) -q test-compile exec:java -Dexec.mainClass=wirecore.DemoKt -Dexec.classpathScope=test \
		-Djna.library.path=$(KT_LIB_DIR) -Dwirecore.testserver=$(KT_LIB_DIR)/wirecore-testserver

# Release build allowed here only (a bench, never part of `make ready`). The client JVM runs on
# CPU 1 and the test server on CPU 0, as bench-go does.
KT_REL_DIR := $(abspath $(TARGET_DIR))/release
BENCH_KOTLIN_ARGS ?= 3 1,64,256
.PHONY: bench-kotlin
BENCH_TARGETS += bench-kotlin

bench-kotlin: setup-kotlin  ## wirecore vs OkHttp 5.5.1 and the JDK HttpClient, GET /1k at C=1,64,256 over h1 and h2 (release) → bench/results/<date>-kotlin.md
	$(CARGO) build --release -p wirecore-uniffi -p wirecore-testserver
	@mkdir -p bench/results
	mvn -B -q -ntp -f $(KT_DIR)/pom.xml -Dwirecore.lib.dir=$(KT_REL_DIR) test-compile exec:exec \
		-Dexec.classpathScope=test -Dexec.executable=taskset \
		-Dexec.outputFile=$(CURDIR)/bench/results/$$(date -u +%F)-kotlin.md \
		-Dexec.args="-c 1 java -Djna.library.path=$(KT_REL_DIR) -Dwirecore.testserver=$(KT_REL_DIR)/wirecore-testserver -Dwirecore.server.cpu=0 -cp %classpath wirecore.BenchKt $(BENCH_KOTLIN_ARGS)"
	@cat bench/results/$$(date -u +%F)-kotlin.md

# `make dist` / `make test-dist` pick these up as extra prerequisites (mk/dist.mk owns the rest).
KT_JAR := $(CURDIR)/dist/wirecore-$(shell sed -nE '/^\[workspace\.package\]/,/^\[/s/^version = "(.*)"/\1/p' Cargo.toml)-linux-x86_64.jar
.PHONY: dist-kotlin test-dist-kotlin
dist: dist-kotlin
test-dist: test-dist-kotlin

# The same -p set as bench-kotlin: cargo unifies features per set, and `-p wirecore-uniffi`
# alone rebuilt most dependencies (7.5 min here after a bench build).
dist-kotlin: setup-kotlin  ## dist/wirecore-<version>-linux-x86_64.jar: the Kotlin/Java classes with the release native library inside
	$(CARGO) build --release -p wirecore-uniffi -p wirecore-testserver
	mvn -B -q -ntp -f $(KT_DIR)/pom.xml -Pdist -Dwirecore.native.dir=$(KT_REL_DIR) -Dmaven.test.skip=true clean package
	@mkdir -p dist
	cp $(KT_DIR)/target/wirecore-*.jar $(KT_JAR)

test-dist-kotlin: dist-kotlin  ## Compile and run a plain Java GET against the jar and its runtime dependencies only
	$(CARGO) build -q -p wirecore-testserver
	mvn -B -q -ntp -f $(KT_DIR)/pom.xml org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
		-Dmdep.includeScope=runtime -Dmdep.outputFile=$(abspath $(TARGET_DIR))/kotlin-runtime.classpath
	bash scripts/dist/test-kotlin.sh $(KT_JAR) $(abspath $(TARGET_DIR))/debug/wirecore-testserver $(abspath $(TARGET_DIR))/kotlin-runtime.classpath

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

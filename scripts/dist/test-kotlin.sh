#!/usr/bin/env bash
# Uses dist/wirecore-<version>-linux-x86_64.jar as a JVM user would: a plain Java program
# compiled and run against the jar and its runtime dependencies only (no jna.library.path: JNA
# finds the native library inside the jar), one GET against the test server.
# Usage: test-kotlin.sh JAR TESTSERVER CLASSPATH_FILE
set -euo pipefail
jar=$(realpath "$1") server=$(realpath "$2") deps=$(cat "$3")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/Get.java" <<'JAVA'
import java.util.List;
import wirecore.*;

public class Get {
    public static void main(String[] args) throws Exception {
        Process p = new ProcessBuilder(args[0], "--exit-on-stdin-eof", "--no-tls").start();
        String line = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream())).readLine();
        String http = line.replaceAll(".*\"http\":\"([^\"]+)\".*", "$1");
        try (Client c = new Client("{}")) {
            Response r = c.requestBlocking("GET", http + "/bytes/100", List.of(), null, null);
            int n = r.bytesBlocking().length;
            System.out.println("wirecore " + WirecoreKt.version() + " from the jar: GET /bytes/100 -> " + r.status() + ", " + n + " bytes");
            c.closeBlocking(2000);
            if (r.status() != 200 || n != 100) System.exit(1);
        } finally {
            p.getOutputStream().close();
        }
    }
}
JAVA
javac -d "$work" -cp "$jar:$deps" "$work/Get.java"
unzip -l "$jar" > "$work/list"
grep -q 'linux-x86-64/libwirecore_uniffi.so' "$work/list" || { echo "the jar holds no native library" >&2; exit 1; }
(cd "$work" && java -cp "$work:$jar:$deps" Get "$server")

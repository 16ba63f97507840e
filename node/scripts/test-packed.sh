#!/usr/bin/env bash
# Installs the packed addon (wirecore-*.tgz) into an empty temp folder, as a user would, and runs
# the node:test suite from there against the test server given as $1. WIRECORE_NODE_TGZ names
# another tgz (make scale-release: dist/'s, with the release addon); WIRECORE_NODE_TESTS, the test
# files to run (relative to node/, space-separated; default all).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
server="$1"; shift
tgz="${WIRECORE_NODE_TGZ:-$(ls -t "$here"/wirecore-*.tgz | head -1)}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/wirecore-node-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp "$tgz" "$tmp/"
cp -r "$here/test" "$tmp/test"
cd "$tmp"
printf '{"name":"wirecore-node-test","private":true}\n' > package.json
# Beside it, as an application has them, the OpenTelemetry API and context manager the tests take
# the caller's context from (the versions package.json pins as devDependencies).
otel="$(node -p "const d = require('$here/package.json').devDependencies; ['@opentelemetry/api', '@opentelemetry/context-async-hooks'].map((n) => n + '@' + d[n]).join(' ')")"
# shellcheck disable=SC2086
npm install --no-audit --no-fund --loglevel=error --prefer-offline "./$(basename "$tgz")" $otel 2>&1 | grep -v 'Unknown user config' || true
[ -f node_modules/wirecore/package.json ] || { echo "test-node: npm install of $tgz failed" >&2; exit 1; }
# shellcheck disable=SC2086  # the default's glob and WIRECORE_NODE_TESTS split into files
WIRECORE_TESTSERVER="$server" WIRECORE_REPO="$(cd "$here/.." && pwd)" \
  node --test --test-concurrency=1 "$@" ${WIRECORE_NODE_TESTS:-test/*.test.js}

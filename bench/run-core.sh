#!/usr/bin/env bash
# Core benchmark (`make bench`): builds bench/core in release and runs it once. The table goes
# to bench/results/<date>-core.md; extra arguments go to the binary (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/wirecore-bench-core"

# wrk (HTTP/1.1) and h2load (HTTP/2) are the ceiling; the run goes on without them.
if ! command -v wrk >/dev/null 2>&1 || ! command -v h2load >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "bench: apt-get install wrk nghttp2-client (the ceiling)"
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        wrk nghttp2-client; } >/dev/null 2>&1 ||
      echo "bench: could not install wrk/h2load; this run has no ceiling"
  fi
fi

cargo build --release -p wirecore-bench-core

date="$(date -u +%F)"
out="bench/results/$date-core.md"
pin=()
server=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  # As in DESIGN.md's budget: the server on one core, the client on the other.
  pin=(taskset -c 1)
  server=(--server-cpus 0)
fi
"${pin[@]}" "$bin" --date "$date" --out "$out" "${server[@]}" "$@"

#!/usr/bin/env bash
# User-space instructions per request of `wirecore bench --threads 1` against nginx on loopback
# (issue 15/18), counted by valgrind's cachegrind: deterministic, so unlike CPU time it does not
# move with the machine's load. Each binary runs N1 and then N2 requests (C=64, the 1 KiB file);
# the figure is (I(N2) - I(N1)) / (N2 - N1), which cancels start-up, connects and the report.
# Kernel time (the syscalls) is not counted.
#   bash bench/run-engine-instructions.sh NEW_WIRECORE [OLD_WIRECORE]
# ENGINE_INSTR_N1 (default 2000), ENGINE_INSTR_N2 (default 12000), ENGINE_INSTR_PROTOS
# (default "h1 h2").
set -euo pipefail
cd "$(dirname "$0")/.."
new="$(realpath "$1")"
old="${2:+$(realpath "$2")}"
n1="${ENGINE_INSTR_N1:-2000}"
n2="${ENGINE_INSTR_N2:-12000}"
protos="${ENGINE_INSTR_PROTOS:-h1 h2}"

command -v valgrind >/dev/null || { echo "engine-instructions: valgrind is not installed" >&2; exit 1; }

# shellcheck source=bench/nginx-lib.sh
source bench/nginx-lib.sh

instructions() { # $1 binary, $2 requests, rest: protocol arguments
  local bin="$1" n="$2"; shift 2
  "${cli[@]}" valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$dir/cg.out" \
    "$bin" bench --threads 1 -c 64 -n "$n" --no-progress --json -H 'accept-encoding: identity' \
    "$@" >"$dir/o" 2>&1 || { tail -5 "$dir/o" >&2; exit 1; }
  awk '/^summary:/ {print $2}' "$dir/cg.out"
}

echo "| protocol | client | instructions per request | I($n1) | I($n2) |"
echo "|---|---|---:|---:|---:|"
for proto in $protos; do
  args=(--h1 "http://127.0.0.1:$ng_http/1k")
  [ "$proto" = h2 ] && args=(--h2 --cacert "$dir/ca.pem" "https://localhost:$ng_https/1k")
  for which in old new; do
    bin="$new"; [ "$which" = old ] && bin="$old"
    [ -n "$bin" ] || continue
    a=$(instructions "$bin" "$n1" "${args[@]}")
    b=$(instructions "$bin" "$n2" "${args[@]}")
    echo "| $proto | $which | $(( (b - a) / (n2 - n1) )) | $a | $b |"
  done
done

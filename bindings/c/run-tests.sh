#!/usr/bin/env bash
# Runs the C examples (and the scenario runner) against a fresh test server.
# Usage: run-tests.sh TESTSERVER BIN_DIR [--valgrind] [--demo]
set -euo pipefail
server=$1
bin=$2
shift 2
vg=()
demo=0
for a in "$@"; do
  case $a in
    # --fair-sched=yes: valgrind runs one thread at a time, and by default a thread that never
    # blocks (an engine worker parsing a flood of `100 Continue`) can keep the others from
    # running for many seconds, the timer thread among them; with fair scheduling they take turns.
    --valgrind) vg=(valgrind -q --error-exitcode=1 --fair-sched=yes --leak-check=full --errors-for-leak-kinds=definite
                   --suppressions="$(dirname "$0")/valgrind.supp"
                   --show-leak-kinds=definite --track-fds=no) ;;
    --demo) demo=1 ;;
  esac
done

# The server dies when this script (the only holder of its stdin) exits.
coproc SRV { exec "$server" --exit-on-stdin-eof; }
line=""
read -r -t 30 line <&"${SRV[0]}" || { echo "run-tests: the test server did not start" >&2; exit 1; }
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$line")

if [[ $demo == 1 ]]; then
  "$bin/blocking_get" "$http"
  exit 0
fi
for ex in blocking_get concurrent bad_input lifecycle cookies; do
  echo "== $ex${vg:+ (valgrind)}"
  "${vg[@]}" "$bin/$ex" "$http"
done
echo "== request_options${vg:+ (valgrind)}"
"${vg[@]}" "$bin/request_options" "$line"
echo "== dead_letter${vg:+ (valgrind)}"
"${vg[@]}" "$bin/dead_letter" "$line"
echo "== span${vg:+ (valgrind)}"
"${vg[@]}" "$bin/span" "$line"
echo "== log${vg:+ (valgrind)}"
"${vg[@]}" "$bin/log" "$line"
echo "== proxy${vg:+ (valgrind)}"
"${vg[@]}" "$bin/proxy" "$line"
echo "== scenarios${vg:+ (valgrind)}"
"${vg[@]}" "$bin/scenarios" "$line" --stats-fields=tests/stats-fields.json tests/scenarios/*.json

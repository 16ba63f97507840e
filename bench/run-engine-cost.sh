#!/usr/bin/env bash
# The engine's cost per plain request (issue 15): `wirecore bench --threads 1` against nginx on
# loopback, side by side with wrk (HTTP/1.1, C connections) and h2load (HTTP/2 over TLS, one
# connection, C streams), one client thread each, rounds rotating the order.
#   bash bench/run-engine-cost.sh NEW_WIRECORE [OLD_WIRECORE]
# With OLD_WIRECORE (a build of the base commit), old and new alternate in every round.
# Reported per run: req/s and the client's CPU-µs per request (user+sys of the whole process,
# /usr/bin/time, over every request it made: no warm-up, so the figure is the steady state plus
# 64 connects). Medians over rounds; the load average is printed with every round.
# ENGINE_COST_SECS (default 5), ENGINE_COST_ROUNDS (default 3), ENGINE_COST_C (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
new="$(realpath "$1")"
old="${2:+$(realpath "$2")}"
secs="${ENGINE_COST_SECS:-5}"
rounds="${ENGINE_COST_ROUNDS:-3}"
conns="${ENGINE_COST_C:-64}"

for t in wrk h2load /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "engine-cost: $t is not installed" >&2; exit 1; }
done

# shellcheck source=bench/nginx-lib.sh
source bench/nginx-lib.sh
h1_url="http://127.0.0.1:$ng_http/1k"
h2_url="https://localhost:$ng_https/1k"

# Each run appends "proto|client|req/s|cpu-us per request" to $dir/runs.
timed() { # $1 output file; rest: the command. Prints "user sys" seconds on the last line.
  local out="$1"; shift
  "${cli[@]}" /usr/bin/time -f 'TIME %U %S' "$@" >"$out" 2>&1
}
cpu_us() { # $1 file with the TIME line, $2 requests
  awk -v n="$2" '/^TIME/ {printf "%.2f", ($2 + $3) * 1e6 / (n > 0 ? n : 1)}' "$1"
}
run_wrk() {
  timed "$dir/o" wrk -t1 -c"$conns" -d"${secs}s" "$h1_url"
  local n rps
  n=$(awk '/requests in/ {print $1}' "$dir/o")
  rps=$(awk '/Requests\/sec/ {print $2}' "$dir/o")
  echo "h1|wrk|$rps|$(cpu_us "$dir/o" "$n")" >>"$dir/runs"
}
run_h2load() {
  timed "$dir/o" h2load -c1 -m"$conns" -D "$secs" "$h2_url"
  local n rps
  n=$(awk '/^requests:/ {print $4}' "$dir/o")
  rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' "$dir/o")
  echo "h2|h2load|$rps|$(cpu_us "$dir/o" "$n")" >>"$dir/runs"
}
run_wc() { # $1 proto, $2 label, $3 binary
  local args=(--h1 "$h1_url")
  [ "$1" = h2 ] && args=(--h2 --cacert "$dir/ca.pem" "$h2_url")
  timed "$dir/o" "$3" bench --threads 1 -c "$conns" -d "${secs}s" --no-progress --json \
    -H 'accept-encoding: identity' "${args[@]}"
  local n rps
  read -r n rps < <(python3 -c '
import json,sys
t=open(sys.argv[1]).read(); r=json.loads(t[t.index("{"):t.rindex("}")+1])
print(r["requests"], "%.0f" % r["req_per_s"])' "$dir/o")
  echo "$1|$2|$rps|$(cpu_us "$dir/o" "$n")" >>"$dir/runs"
}

echo "engine-cost: ${secs}s per run, C=$conns, $rounds rounds, $(nproc) CPUs"
for r in $(seq "$rounds"); do
  echo "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)"
  for proto in h1 h2; do
    runs=(peer new)
    [ -n "$old" ] && runs=(peer old new)
    # Rotate the order each round, so no client always runs first or last.
    for i in $(seq 0 $((${#runs[@]} - 1))); do
      which=${runs[$(((i + r) % ${#runs[@]}))]}
      case "$proto/$which" in
        h1/peer) run_wrk ;;
        h2/peer) run_h2load ;;
        */old) run_wc "$proto" old "$old" ;;
        */new) run_wc "$proto" new "$new" ;;
      esac
      tail -1 "$dir/runs"
    done
  done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir/runs" <<'EOF'
import statistics, sys
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
print("\n| protocol | client | req/s (median) | CPU-µs per request (median) | req/s ÷ peer | runs (req/s) |")
print("|---|---|---:|---:|---:|---|")
for proto, peer in (("h1", "wrk"), ("h2", "h2load")):
    med = {}
    for client in (peer, "old", "new"):
        xs = [r for r in rows if r[0] == proto and r[1] == client]
        if not xs:
            continue
        rps = statistics.median(float(r[2]) for r in xs)
        cpu = statistics.median(float(r[3]) for r in xs)
        med[client] = rps
        ratio = "%.2f" % (rps / med[peer]) if peer in med and client != peer else "—"
        runs = ", ".join("%.0f" % float(r[2]) for r in xs)
        print(f"| {proto} | {client} | {rps:.0f} | {cpu:.2f} | {ratio} | {runs} |")
EOF

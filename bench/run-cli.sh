#!/usr/bin/env bash
# `make bench-cli`: the `wirecore` command side by side with the usual tools on loopback.
#   client: `wirecore bench` vs wrk (HTTP/1.1) and h2load (HTTP/2), both against nginx;
#   server: `wirecore serve` vs nginx (one worker each) under wrk and h2load;
#   memory of `wirecore serve` holding 10,000 keep-alive connections.
# Server on CPU 0, client on CPU 1 when there are two. Table: bench/results/<date>-cli.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "$1")"
secs="${CLI_BENCH_SECS:-5}"
conns=64

if ! command -v wrk >/dev/null 2>&1 || ! command -v h2load >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "bench-cli: apt-get install wrk nghttp2-client"
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      wrk nghttp2-client; } >/dev/null 2>&1 || echo "bench-cli: could not install wrk/h2load"
fi

# shellcheck source=bench/nginx-lib.sh
source bench/nginx-lib.sh

start_serve() { # $1: extra args; sets $port and $pid (not a subshell: pids must see it)
  port=$(free_port)
  # shellcheck disable=SC2086
  "${srv[@]}" "$bin" serve --threads 1 --listen "127.0.0.1:$port" --dir "$dir/www" --no-compress $1 \
    >/dev/null 2>>"$dir/serve.log" &
  pid=$!; pids+=("$pid")
  wait_port "$port"
}
start_serve ""; ws_http=$port
start_serve "--tls-cert $dir/cert.pem --tls-key $dir/key.pem"; ws_https=$port

# Each line: label|req/s|p50 ms|p95 ms|p99 ms|errors
results=()
wrk_run() { # $1 label, $2 url
  local out; out=$("${cli[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency "$2" 2>&1)
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local errs; errs=$(awk '/Socket errors|Non-2xx/ {n++} END {print n ? "see wrk" : 0}' <<<"$out")
  results+=("$1|$rps|$(ms "$p50")|—|$(ms "$p99")|$errs")
}
h2load_run() { # $1 label, $2 url
  local out; out=$("${cli[@]}" h2load -c1 -m"$conns" -D "$secs" "$2" 2>&1)
  local rps
  rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' <<<"$out")
  local mean; mean=$(awk '/time for request:/ {print $6}' <<<"$out")
  local errs; errs=$(awk '/^requests:/ {print $10 + $12}' <<<"$out")
  results+=("$1|$rps|mean $(ms "$mean")|—|—|$errs")
}
wc_run() { # $1 label, $2.. bench args
  local label="$1"; shift
  local json; json=$("${cli[@]}" "$bin" bench --threads 1 -c "$conns" -d "${secs}s" --warmup 1s \
    --no-progress --json -H 'accept-encoding: identity' "$@")
  results+=("$label|$(python3 -c '
import json,sys; r=json.load(sys.stdin); l=r["latency_ms"]
print("%.0f|%.3f|%.3f|%.3f|%d" % (r["req_per_s"], l["p50"], l["p95"], l["p99"], r["errors"]))' <<<"$json")")
}
ms() { # wrk/h2load latency (812.00us, 1.23ms, 2.1s) → ms
  python3 -c '
import re,sys; m=re.match(r"([0-9.]+)(us|ms|s)$", sys.argv[1])
print("—" if not m else "%.3f" % (float(m[1]) * {"us":1e-3,"ms":1,"s":1e3}[m[2]]))' "${1:-x}"
}

echo "bench-cli: ${secs}s per run, $conns connections/streams, 1 KiB file"
wrk_run "h1 client: wrk → nginx" "http://127.0.0.1:$ng_http/1k"
wc_run "h1 client: wirecore bench → nginx" --h1 "http://127.0.0.1:$ng_http/1k"
h2load_run "h2 client: h2load (1 conn, $conns streams) → nginx" "https://localhost:$ng_https/1k"
wc_run "h2 client: wirecore bench → nginx" --h2 --cacert "$dir/ca.pem" "https://localhost:$ng_https/1k"
wrk_run "h1 server: wrk → wirecore serve" "http://127.0.0.1:$ws_http/1k"
h2load_run "h2 server: h2load → wirecore serve" "https://localhost:$ws_https/1k"
wc_run "h1 server: wirecore bench → wirecore serve" --h1 "http://127.0.0.1:$ws_http/1k"

# 10,000 keep-alive connections held open against `wirecore serve`: its RSS while they are.
start_serve "--idle-timeout 120s"; mem_port=$port; mem_pid=$pid
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$mem_pid/status")
"${cli[@]}" "$bin" bench --h1 -c 10000 -d 8s --no-progress --json --config <(echo \
  '{"pool":{"max_connections":10000,"max_connections_per_host":10000,"max_idle_per_host":10000}}') \
  "http://127.0.0.1:$mem_port/delay/1000" >"$dir/mem.json" 2>/dev/null &
mem_bench=$!
open=0; peak=0
for _ in $(seq 60); do
  sleep 0.1
  open=$(curl -s "http://127.0.0.1:$mem_port/metrics" | awk '/^wirecore_serve_connections_active/ {print $2}')
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$mem_pid/status")
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  [ "${open:-0}" -ge 10000 ] && break
done
for _ in $(seq 20); do rss=$(awk '/VmRSS/ {print $2}' "/proc/$mem_pid/status"); [ "$rss" -gt "$peak" ] && peak=$rss; sleep 0.1; done
wait "$mem_bench" || true

date="$(date -u +%F)"
out="bench/results/$date-cli.md"
{
  echo "# \`wirecore\` command benchmark — $date"
  echo
  echo "1 KiB static file on loopback, ${secs} s per run after the tool's own warm-up; $conns connections (HTTP/1.1) or $conns streams on one connection (HTTP/2, TLS)."
  echo "nginx $("$nginx" -v 2>&1 | sed 's/.*\///'), one worker; \`wirecore serve --threads 1\`; wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') -t1; h2load -c1 -m$conns; \`wirecore bench --threads 1\`."
  echo "Servers pinned to CPU 0, clients to CPU 1 (\`taskset\`, when two CPUs); machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg). Run by \`make bench-cli\` (bench/run-cli.sh)."
  echo
  echo "| run | req/s | p50 ms | p95 ms | p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  for r in "${results[@]}"; do echo "| ${r//|/ | } |"; done
  echo
  rps() { for r in "${results[@]}"; do [[ "$r" == "$1|"* ]] && { cut -d'|' -f2 <<<"$r"; return; }; done; echo 0; }
  ratio() { python3 -c 'import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print("%.2f" % (a/b) if b else "—")' "$1" "$2"; }
  echo "Ratios: wirecore bench ÷ wrk (h1) $(ratio "$(rps "h1 client: wirecore bench → nginx")" "$(rps "h1 client: wrk → nginx")");"
  echo "wirecore bench ÷ h2load (h2) $(ratio "$(rps "h2 client: wirecore bench → nginx")" "$(rps "h2 client: h2load (1 conn, $conns streams) → nginx")");"
  echo "wirecore serve ÷ nginx under wrk (h1) $(ratio "$(rps "h1 server: wrk → wirecore serve")" "$(rps "h1 client: wrk → nginx")");"
  echo "wirecore serve ÷ nginx under h2load (h2) $(ratio "$(rps "h2 server: h2load → wirecore serve")" "$(rps "h2 client: h2load (1 conn, $conns streams) → nginx")")."
  echo
  echo "Memory: \`wirecore serve\` RSS $((rss0 / 1024)) MiB idle, peak $((peak / 1024)) MiB with ${open:-0} connections open (10,000 asked, each holding a /delay/1000 request then idle keep-alive)."
} >"$out"
cat "$out"

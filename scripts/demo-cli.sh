#!/usr/bin/env bash
# `make demo` ends here: `wirecore serve` a small site on a free port, a 3-second
# `wirecore bench` against it (summary + SVG plot), then SIGTERM and the drain message.
set -euo pipefail
bin="$1"
out="$2"
mkdir -p "$out/www"
printf '<!doctype html><title>wirecore</title><h1>wirecore serve</h1>\n' >"$out/www/index.html"
head -c 1024 /dev/zero | tr '\0' 'x' >"$out/www/1k.txt"

"$bin" serve --listen 127.0.0.1:0 --dir "$out/www" >"$out/serve.json" 2>"$out/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$out/serve.json" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/serve.log" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -E 's/.*"url":"([^"]+)".*/\1/' "$out/serve.json")
echo
echo "== wirecore serve =="
cat "$out/serve.json"
echo
echo "== wirecore bench -c 16 -d 3s $url/1k.txt =="
"$bin" bench -c 16 -d 3s --no-progress --plot "$out/bench.svg" "$url/1k.txt"
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
tail -n 1 "$out/serve.log"

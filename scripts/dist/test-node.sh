#!/usr/bin/env bash
# Installs the npm tgz into an empty project whose path has spaces, makes its node_modules
# read-only, and as an unprivileged user (root writes through any mode) requires and imports
# the package and runs a GET against a fresh test server; checks the packed package.json and
# that the addon is a release build (no overflow checks).
# Usage: test-node.sh TGZ TESTSERVER
set -euo pipefail
tgz=$(realpath "$1") server=$(realpath "$2")
tmp="$(mktemp -d "${TMPDIR:-/tmp}/wirecore dist node.XXXXXX")"
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
app="$tmp/my app"
mkdir "$app"
cp "$tgz" "$app/"
cd "$app"
printf '{"name":"my-app","version":"1.0.0","private":true}\n' > package.json
npm install --no-audit --no-fund --loglevel=error --offline "./$(basename "$tgz")" 2>&1 | grep -v 'Unknown user config' || true
pkg=node_modules/wirecore
[[ -f $pkg/package.json ]] || { echo "test-dist-node: npm install of $tgz failed" >&2; exit 1; }
node -e '
  const p = require(process.argv[1]);
  const want = { main: "index.js", types: "index.d.ts", os: ["linux"], cpu: ["x64"], libc: ["glibc"] };
  for (const [k, v] of Object.entries(want))
    if (JSON.stringify(p[k]) !== JSON.stringify(v)) throw new Error(`package.json ${k}: ${JSON.stringify(p[k])}`);
  if (!p.engines || !p.engines.node) throw new Error("package.json: no engines.node");
  if (!p.exports["."].import || !p.exports["."].require || !p.exports["."].types) throw new Error("package.json: exports");
' "$PWD/$pkg/package.json"
addon="$pkg/wirecore.linux-x64-gnu.node"
[[ -f $addon ]] || { echo "test-dist-node: $addon missing" >&2; exit 1; }
# Overflow checks are on in the dev profile, off in release: their panic message marks a debug build.
if grep -q 'attempt to add with overflow' "$addon"; then
  echo "test-dist-node: $addon is a debug build (it has overflow checks)" >&2; exit 1
fi

cat > smoke.cjs <<'JS'
const wirecore = require('wirecore')
const { version } = require('wirecore/package.json')
;(async () => {
  if (wirecore.version !== version) throw new Error(`version ${wirecore.version}, package ${version}`)
  const client = new wirecore.Client()
  const res = await client.get(`${process.argv[2]}/bytes/1024`)
  const body = await res.arrayBuffer()
  if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`${res.status}, ${body.byteLength} bytes`)
  await client.close()
  console.log(`cjs: wirecore ${wirecore.version} GET /bytes/1024 -> ${res.status}, ${body.byteLength} bytes`)
})().catch((e) => { console.error(e); process.exit(1) })
JS
cat > smoke.mjs <<'JS'
import { Client, version } from 'wirecore'
const client = new Client()
const res = await client.get(`${process.argv[2]}/bytes/10`)
const text = await res.text()
if (res.status !== 200 || text.length !== 10) throw new Error(`${res.status}, ${text.length} chars`)
await client.close()
console.log(`esm: wirecore ${version} GET /bytes/10 -> ${res.status}`)
JS
chmod -R a+rX "$tmp"
chmod -R a-w node_modules
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env)
if "${as_nobody[@]}" touch "$pkg/written" 2>/dev/null; then
  echo "test-dist-node: node_modules is writable by the test user: the read-only check would prove nothing" >&2; exit 1
fi

coproc SRV { exec "$server" --exit-on-stdin-eof; }
line=""
read -r -t 30 line <&"${SRV[0]}" || { echo "test-dist-node: the test server did not start" >&2; exit 1; }
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$line")
node=$(command -v node)
(cd "$app" && "${as_nobody[@]}" "$node" smoke.cjs "$http" && "${as_nobody[@]}" "$node" smoke.mjs "$http")
echo "test-dist-node: ok (installed under '$app', node_modules read-only; addon $(du -h "$addon" | cut -f1))"

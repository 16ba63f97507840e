#!/usr/bin/env bash
# Packs the npm package with the release addon: dist/wirecore-VERSION.tgz. The package's tracked
# files are copied to a staging folder, the addon cargo built in release
# (libwirecore_node.so) goes in as wirecore.linux-x64-gnu.node (the name binding.js loads),
# and `npm pack` packs what package.json's `files` names. node/ itself is left as it is (its
# addon is the debug one the tests use).
# Usage: node.sh RELEASE_DIR OUT_DIR
set -euo pipefail
rel=$1 out=$2
root="$(cd "$(dirname "$0")/../.." && pwd)"
stage="$out/.stage-node"
rm -rf "$stage" && mkdir -p "$stage"
git -C "$root" ls-files node | tar -C "$root" -cf - -T - | tar -C "$stage" -xf -
cp "$rel/libwirecore_node.so" "$stage/node/wirecore.linux-x64-gnu.node"
strip --strip-unneeded "$stage/node/wirecore.linux-x64-gnu.node"
rm -f "$out"/wirecore-*.tgz
tgz=$(cd "$stage/node" && npm pack --silent --pack-destination "$out" 2>&1 | grep -v 'Unknown user config' | tail -1)
rm -rf "$stage"
[[ -f $out/$tgz ]] || { echo "dist-node: npm pack did not write $out/$tgz" >&2; exit 1; }
echo "dist-node: $out/$tgz ($(du -h "$out/$tgz" | cut -f1))"

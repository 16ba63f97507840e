#!/usr/bin/env bash
# Packs the C library: dist/wirecore-VERSION-linux-x86_64.tar.gz with lib/libwirecore.a,
# lib/libwirecore.so.VERSION (+ the soname link and libwirecore.so), include/wirecore.h and
# lib/pkgconfig/wirecore.pc. Usage: c.sh RELEASE_DIR VERSION OUT_DIR
# Debug info (std's) and the LLVM bitcode rustc embeds for LTO are stripped: C linkers use neither,
# and they are 57 % of the static library (140 MB → 60 MB).
set -euo pipefail
rel=$1 version=$2 out=$3
root="$(cd "$(dirname "$0")/../.." && pwd)"
name="wirecore-$version-linux-x86_64"
stage="$out/.stage-c/$name"
rm -rf "$out/.stage-c" && mkdir -p "$stage/lib/pkgconfig" "$stage/include"

soname=$(readelf -d "$rel/libwirecore.so" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[[ $soname == libwirecore.so.* ]] || { echo "dist-c: $rel/libwirecore.so has no versioned soname (got '$soname')" >&2; exit 1; }
cp "$rel/libwirecore.a" "$stage/lib/"
strip --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd "$stage/lib/libwirecore.a"
cp "$rel/libwirecore.so" "$stage/lib/libwirecore.so.$version"
strip --strip-unneeded "$stage/lib/libwirecore.so.$version"
[[ $soname == "libwirecore.so.$version" ]] || ln -s "libwirecore.so.$version" "$stage/lib/$soname"
ln -s "$soname" "$stage/lib/libwirecore.so"
cp "$root/include/wirecore.h" "$stage/include/"
sed "s/@VERSION@/$version/" "$root/bindings/c/wirecore.pc.in" > "$stage/lib/pkgconfig/wirecore.pc"
cp "$root/bindings/c/README.md" "$stage/README.md"

# Reproducible: sorted names, no owner, the last commit's time.
mtime=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
tar -C "$out/.stage-c" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -czf "$out/$name.tar.gz" "$name"
rm -rf "$out/.stage-c"
echo "dist-c: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1); soname $soname)"

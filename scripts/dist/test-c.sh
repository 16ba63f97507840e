#!/usr/bin/env bash
# Unpacks the C tarball into an empty folder and, with nothing but `pkg-config --cflags --libs
# wirecore` (PKG_CONFIG_PATH at the tarball), compiles bindings/c/examples/blocking_get.c and
# runs it against a fresh test server; then links the static library the same way
# (`--static`, libwirecore.a from pkg-config's libdir) and runs that too.
# Usage: test-c.sh TARBALL TESTSERVER
set -euo pipefail
tarball=$(realpath "$1") server=$(realpath "$2")
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/wirecore-dist-c.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xzf "$tarball"
top="$tmp/$(basename "$tarball" .tar.gz)"
for f in lib/libwirecore.a lib/libwirecore.so include/wirecore.h lib/pkgconfig/wirecore.pc; do
  [[ -e $top/$f ]] || { echo "test-dist-c: $f missing from $tarball" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$top/lib/pkgconfig"
version=$(pkg-config --modversion wirecore)
[[ $tarball == *"wirecore-$version-"* ]] || { echo "test-dist-c: wirecore.pc says $version, the tarball's name differs" >&2; exit 1; }
soname=$(readelf -d "$top/lib/libwirecore.so" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')

# The example's source only: no -I or -L of the repository's.
cp "$root/bindings/c/examples/blocking_get.c" "$tmp/"
cd "$tmp"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror -o get blocking_get.c $(pkg-config --cflags --libs wirecore)
needed=$(readelf -d get | sed -nE 's/.*\(NEEDED\).*\[(libwirecore[^]]*)\]/\1/p')
[[ $needed == "$soname" ]] || { echo "test-dist-c: the example needs '$needed', the library's soname is '$soname'" >&2; exit 1; }
libdir=$(pkg-config --variable=libdir wirecore)
# shellcheck disable=SC2046
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror -o get-static blocking_get.c \
  $(pkg-config --cflags wirecore) "$libdir/libwirecore.a" $(pkg-config --static --libs-only-l wirecore | sed 's/-lwirecore\b//')
if readelf -d get-static | grep -q 'NEEDED.*libwirecore'; then
  echo "test-dist-c: the static build needs libwirecore.so" >&2; exit 1
fi

coproc SRV { exec "$server" --exit-on-stdin-eof; }
line=""
read -r -t 30 line <&"${SRV[0]}" || { echo "test-dist-c: the test server did not start" >&2; exit 1; }
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$line")
echo "== dynamic ($needed, LD_LIBRARY_PATH at the tarball)"
LD_LIBRARY_PATH="$libdir" ./get "$http" > out-dyn.txt
echo "== static (libwirecore.a)"
./get-static "$http" > out-static.txt
for o in out-dyn.txt out-static.txt; do
  grep -q -- '-> 200 HTTP/' "$o" || { echo "test-dist-c: $o shows no 200 answer:" >&2; cat "$o" >&2; exit 1; }
  head -1 "$o"
done
echo "test-dist-c: ok (wirecore $version; $(du -h "$top/lib/libwirecore.a" | cut -f1) .a, $(du -hL "$top/lib/libwirecore.so" | cut -f1) .so)"

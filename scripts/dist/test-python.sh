#!/usr/bin/env bash
# The Python artifacts of make dist. The wheel: its tags (abi3, manylinux2014), its module a
# release build (no overflow checks) needing no glibc symbol newer than 2.17, installed with
# --no-index into a fresh venv under a path with spaces, a sync and an asyncio GET against a
# fresh test server. The sdist: it holds every crate the module needs and the workspace it
# names resolves offline to the versions of the repository's Cargo.lock (no compile: see
# test-dist-sdist for a full pip build).
# Usage: test-python.sh WHEEL SDIST TESTSERVER
set -euo pipefail
wheel=$(realpath "$1") sdist=$(realpath "$2") server=$(realpath "$3")
root="$(cd "$(dirname "$0")/../.." && pwd)"
py=${PY_BOOT:-python3}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/wirecore dist python.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-dist-python: $*" >&2; exit 1; }

case $(basename "$wheel") in
  *-cp39-abi3-*manylinux_2_17_x86_64*) ;;
  *) fail "$wheel is not a cp39-abi3 manylinux_2_17 (manylinux2014) wheel" ;;
esac
mkdir "$tmp/whl" && (cd "$tmp/whl" && "$py" -m zipfile -e "$wheel" .)
so=$(ls "$tmp"/whl/wirecore/_wirecore*.so)
# Overflow checks are on in the dev profile, off in release: their panic message marks a debug build.
grep -q 'attempt to add with overflow' "$so" && fail "$so is a debug build (it has overflow checks)"
newest=$(objdump -T "$so" | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sort -t. -k2 -n | tail -1)
[[ $(printf '%s\n' "$newest" GLIBC_2.17 | sort -t. -k2 -n | tail -1) == GLIBC_2.17 ]] ||
  fail "$so needs $newest, newer than manylinux2014's GLIBC_2.17"

"$py" -m venv "$tmp/my venv"
"$tmp/my venv/bin/python" -m pip install -q --disable-pip-version-check --no-index "$wheel"
coproc SRV { exec "$server" --exit-on-stdin-eof; }
line=""
read -r -t 30 line <&"${SRV[0]}" || fail "the test server did not start"
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$line")
(cd "$tmp" && "$tmp/my venv/bin/python" - "$http" "$(basename "$wheel" | cut -d- -f2)" <<'PY'
import asyncio, sys
import wirecore
url, version = sys.argv[1], sys.argv[2]
assert wirecore.__version__ == version, (wirecore.__version__, version)
assert "my venv" in wirecore.__file__, wirecore.__file__
with wirecore.Client() as c:
    r = c.get(f"{url}/bytes/1024")
    assert r.status_code == 200 and len(r.content) == 1024, (r.status_code, len(r.content))
async def main() -> int:
    async with wirecore.AsyncClient() as c:
        r = await c.get(f"{url}/bytes/10")
        return r.status_code
assert asyncio.run(main()) == 200
print(f"wheel: wirecore {wirecore.__version__} from {wirecore.__file__}: sync and async GET -> 200")
PY
)

name=$(basename "$sdist" .tar.gz)
tar -C "$tmp" -xzf "$sdist"
top="$tmp/$name"
for f in pyproject.toml PKG-INFO Cargo.toml Cargo.lock python/Cargo.toml python/src/lib.rs \
         pysrc/wirecore/__init__.py pysrc/wirecore/py.typed core/Cargo.toml core/src/lib.rs \
         bindings/bridge/Cargo.toml bindings/bridge/src/lib.rs; do
  [[ -f $top/$f ]] || fail "$f missing from $sdist"
done
# Every workspace member the sdist's Cargo.toml names must be in it, and resolving it (offline)
# may drop the lock entries of crates left out, never pick another version.
"$py" - "$top" "$root/Cargo.lock" <<'PY'
import pathlib, sys, tomllib
top, lock = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
members = tomllib.loads((top / "Cargo.toml").read_text())["workspace"]["members"]
missing = [m for m in members if not (top / m / "Cargo.toml").is_file()]
assert not missing, f"the sdist's workspace names members it lacks: {missing}"
PY
cp "$top/Cargo.lock" "$tmp/Cargo.lock.packed"
cargo metadata --manifest-path "$top/python/Cargo.toml" --offline --format-version 1 >/dev/null ||
  fail "the sdist's workspace does not resolve offline"
"$py" - "$top/Cargo.lock" "$root/Cargo.lock" <<'PY'
import sys, tomllib
def pkgs(p):
    return {(x["name"], x["version"]) for x in tomllib.loads(open(p).read()).get("package", [])}
new, repo = pkgs(sys.argv[1]), pkgs(sys.argv[2])
assert new <= repo, f"the sdist resolves to versions not in Cargo.lock: {sorted(new - repo)}"
print(f"sdist: {len(new)} locked packages, all at the repository's versions")
PY
echo "test-dist-python: ok ($(du -h "$wheel" | cut -f1) wheel, $(du -h "$sdist" | cut -f1) sdist)"

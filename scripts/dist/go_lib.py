#!/usr/bin/env python3
"""The Go module's prebuilt static library (bindings/go/internal/capi/prebuilt/).

`vendor RELEASE_LIB` copies a release libwirecore.a there (debug info stripped) with the header
it was built from, and records in prebuilt/SOURCE the version, the ABI, rustc's version, a hash
of every input of the library (the tracked sources of the crates it is built from, the
manifests, Cargo.lock) and the library's own hash.
`check [--require]` fails when the library there no longer matches the sources: an input, the
header, the version or the library itself differs from the record. Without a library it passes
(the repository's main branch carries none: see bindings/go/README.md), unless --require."""

import hashlib
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PREBUILT = ROOT / "bindings/go/internal/capi/prebuilt"
LIB = PREBUILT / "linux_amd64/libwirecore.a"
HEADER = PREBUILT / "include/wirecore.h"
RECORD = PREBUILT / "SOURCE"
# What libwirecore.a is compiled from: the C ABI crate and the crates it depends on by path.
INPUTS = [
    "Cargo.toml", "Cargo.lock", ".cargo/config.toml", "include/wirecore.h",
    "core/Cargo.toml", "core/src",
    "bindings/bridge/Cargo.toml", "bindings/bridge/src",
    "bindings/c/Cargo.toml", "bindings/c/build.rs", "bindings/c/src",
]


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files() -> list[str]:
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *INPUTS],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    return sorted(f for f in files if f)


def inputs_hash() -> str:
    h = hashlib.sha256()
    for name in input_files():
        h.update(f"{name}\0{sha256(ROOT / name)}\n".encode())
    return h.hexdigest()


def version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', text, re.M | re.S)
    assert m, "Cargo.toml: no [workspace.package] version"
    return m.group(1)


def abi() -> str:
    m = re.search(r"^#define WIRECORE_ABI_VERSION (\d+)", (ROOT / "include/wirecore.h").read_text(), re.M)
    assert m, "include/wirecore.h: no WIRECORE_ABI_VERSION"
    return m.group(1)


def rustc() -> str:
    return subprocess.run(["rustc", "-V"], check=True, capture_output=True, text=True).stdout.strip()


def record(lib_hash: str) -> str:
    return (
        f"version {version()}\nabi {abi()}\nrustc {rustc()}\n"
        f"inputs {inputs_hash()}\nlinux_amd64/libwirecore.a {lib_hash}\n"
    )


def vendor(src: pathlib.Path) -> int:
    # The record vouches that the library was built from these inputs: refuse one older than
    # any of them (make go-vendor-lib builds first; a library copied from elsewhere may lag).
    newer = [f for f in input_files() if (ROOT / f).stat().st_mtime > src.stat().st_mtime]
    if newer:
        print(f"go-vendor-lib: {src} is older than {newer[:3]}: build it first (make dist-lib)", file=sys.stderr)
        return 1
    LIB.parent.mkdir(parents=True, exist_ok=True)
    HEADER.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, LIB)
    # std's debug info and the LLVM bitcode rustc embeds for LTO: no linker of cgo uses them.
    subprocess.run(
        ["strip", "--strip-debug", "--remove-section=.llvmbc", "--remove-section=.llvmcmd", str(LIB)],
        check=True,
    )
    shutil.copyfile(ROOT / "include/wirecore.h", HEADER)
    RECORD.write_text(record(sha256(LIB)))
    size = LIB.stat().st_size / 2**20
    print(f"go-vendor-lib: {LIB.relative_to(ROOT)} ({size:.1f} MiB), {RECORD.relative_to(ROOT)}:")
    print(RECORD.read_text(), end="")
    return 0


def check(require: bool) -> int:
    if not LIB.exists():
        if require:
            print(f"check-go-lib: no {LIB.relative_to(ROOT)}: run make go-vendor-lib", file=sys.stderr)
            return 1
        print("check-go-lib: no prebuilt library in bindings/go (released modules carry one)")
        return 0
    if not RECORD.exists():
        print(f"check-go-lib: {RECORD.relative_to(ROOT)} is missing", file=sys.stderr)
        return 1
    got = dict(line.split(" ", 1) for line in RECORD.read_text().splitlines() if " " in line)
    want = dict(line.split(" ", 1) for line in record(sha256(LIB)).splitlines())
    errors = [
        f"{key}: recorded {got.get(key)!r}, now {value!r}"
        for key, value in want.items()
        if key != "rustc" and got.get(key) != value
    ]
    if not HEADER.exists() or HEADER.read_bytes() != (ROOT / "include/wirecore.h").read_bytes():
        errors.append(f"{HEADER.relative_to(ROOT)} differs from include/wirecore.h")
    for e in errors:
        print(f"check-go-lib: stale prebuilt library ({e}): run make go-vendor-lib", file=sys.stderr)
    if not errors:
        print(f"check-go-lib: {LIB.relative_to(ROOT)} matches the sources ({got['version']}, {got['rustc']})")
    return 1 if errors else 0


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["vendor"] and len(args) == 2:
        return vendor(pathlib.Path(args[1]))
    if args[:1] == ["check"]:
        return check("--require" in args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

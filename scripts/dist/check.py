#!/usr/bin/env python3
"""The release metadata make dist relies on, checked without building (part of `make lint`):
the C library's pkg-config template, and the fields of node/package.json that npm users expect
(main, types, exports, engines, os/cpu/libc agreeing with the napi targets, every entry point
packed). One version for every artifact is scripts/check-version.py's job."""

import fnmatch
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

# napi target triple → npm's os, cpu and libc words.
NAPI_TARGETS = {
    "x86_64-unknown-linux-gnu": ("linux", "x64", "glibc"),
    "aarch64-unknown-linux-gnu": ("linux", "arm64", "glibc"),
    "x86_64-unknown-linux-musl": ("linux", "x64", "musl"),
    "aarch64-apple-darwin": ("darwin", "arm64", None),
    "x86_64-apple-darwin": ("darwin", "x64", None),
    "x86_64-pc-windows-msvc": ("win32", "x64", None),
}


def check_pc(errors: list[str]) -> None:
    path = "bindings/c/wirecore.pc.in"
    text = (ROOT / path).read_text()
    fields = dict(re.findall(r"^([A-Za-z.]+):\s*(.*)$", text, re.M))
    variables = dict(re.findall(r"^([a-z]+)=(.*)$", text, re.M))
    want = {"Name": "wirecore", "Version": "@VERSION@"}
    for key, value in want.items():
        if fields.get(key) != value:
            errors.append(f"{path}: {key} must be {value!r}, is {fields.get(key)!r}")
    if "-lwirecore" not in fields.get("Libs", "").split():
        errors.append(f"{path}: Libs must name -lwirecore")
    for lib in ("-ldl", "-lm", "-lpthread"):
        if lib not in fields.get("Libs.private", "").split():
            errors.append(f"{path}: Libs.private must name {lib} (the static library needs it)")
    if "-I${includedir}" not in fields.get("Cflags", ""):
        errors.append(f"{path}: Cflags must be -I${{includedir}}")
    if "${pcfiledir}" not in variables.get("prefix", ""):
        errors.append(f"{path}: prefix must be relative to ${{pcfiledir}} (the tarball unpacks anywhere)")


def packed(files: list[str], name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in files)


def check_package_json(errors: list[str]) -> None:
    path = "node/package.json"
    pkg = json.loads((ROOT / path).read_text())
    files = pkg.get("files", [])
    entry = []
    for key in ("main", "types"):
        if not pkg.get(key):
            errors.append(f"{path}: no {key!r}")
        else:
            entry.append((key, pkg[key]))
    dot = pkg.get("exports", {}).get(".")
    if not isinstance(dot, dict):
        errors.append(f"{path}: exports['.'] must map conditions to files")
        dot = {}
    for cond in ("types", "require", "import"):
        if cond not in dot:
            errors.append(f"{path}: exports['.'] has no {cond!r} condition")
        else:
            entry.append((f"exports['.'].{cond}", dot[cond]))
    if list(dot)[:1] != ["types"]:
        errors.append(f"{path}: exports['.'].types must come first (TypeScript takes the first match)")
    if pkg.get("exports", {}).get("./package.json") != "./package.json":
        errors.append(f"{path}: exports must export ./package.json")
    for key, file in entry:
        name = file.removeprefix("./")
        if not (ROOT / "node" / name).is_file():
            errors.append(f"{path}: {key} names {file}, which does not exist")
        if not packed(files, name):
            errors.append(f"{path}: {key} names {file}, which 'files' does not pack")
    for name in ("binding.js", "binding.d.ts", "errors.js", "config.d.ts", "wirecore.linux-x64-gnu.node"):
        if not packed(files, name):
            errors.append(f"{path}: 'files' does not pack {name}")
    if not re.fullmatch(r">=\d+(\.\d+)*", pkg.get("engines", {}).get("node", "")):
        errors.append(f"{path}: engines.node must be a lower bound such as '>=20'")
    targets = pkg.get("napi", {}).get("targets", [])
    unknown = [t for t in targets if t not in NAPI_TARGETS]
    if unknown or not targets:
        errors.append(f"{path}: napi.targets {targets!r}: add the npm words of {unknown} here")
        return
    os_ = sorted({NAPI_TARGETS[t][0] for t in targets})
    cpu = sorted({NAPI_TARGETS[t][1] for t in targets})
    libc = sorted({NAPI_TARGETS[t][2] for t in targets if NAPI_TARGETS[t][2]})
    for key, want in (("os", os_), ("cpu", cpu), ("libc", libc)):
        if sorted(pkg.get(key, [])) != want:
            errors.append(f"{path}: {key} must be {want!r} (napi.targets), is {pkg.get(key)!r}")


def main() -> int:
    errors: list[str] = []
    check_pc(errors)
    check_package_json(errors)
    for e in errors:
        print(f"lint-dist: {e}", file=sys.stderr)
    if not errors:
        print("lint-dist: wirecore.pc.in and node/package.json have what a release needs")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

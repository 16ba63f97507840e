#!/usr/bin/env python3
"""Writes docs/parity.md: every RequestOptions field, Stats field, error code and client method
of the core, with the name each binding gives it, read from each binding's own source.

    python3 scripts/parity.py          # rewrite docs/parity.md
    python3 scripts/parity.py --check  # fail when docs/parity.md is stale, or when a binding
                                       # lacks an option, a stats field or an error code

A cell is filled only when the binding's source shows the name: the conversion code that sets
the core field (Python, Node, C), the declared type (Go structs, index.d.ts), the error table
of each binding. An empty cell in the options, stats or error-code sections fails `make lint`;
client methods are listed for comparison (the idioms differ: `execute`, `send`, `RoundTrip`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "parity.md"
LANGS = ["Rust", "Python", "Node", "Go", "C", "Kotlin"]


def read(rel: str) -> str:
    return (ROOT / rel).read_text()


def camel(snake: str) -> str:
    return re.sub(r"_(.)", lambda m: m.group(1).upper(), snake)


def pascal(snake: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in snake.split("_"))


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def block(text: str, start: str) -> str:
    """The `{ ... }` block that follows the first match of regex `start`."""
    m = re.search(start, text, re.M)
    if not m:
        return ""
    i = text.index("{", m.end() - 1)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return ""


# --- RequestOptions ----------------------------------------------------------------------------


def option_fields() -> list[str]:
    body = block(read("core/src/request/options.rs"), r"pub struct RequestOptions\s*\{")
    return re.findall(r"^\s*pub (\w+):", body, re.M)


def statements(src: str, field: str) -> list[str]:
    """Each `o.FIELD = ...;` statement, with the line before it (where the input is named)."""
    lines = src.splitlines()
    out = []
    for i, line in enumerate(lines):
        if re.search(rf"\bo\.{field}\s*=", line):
            stmt = line
            j = i
            while not stmt.rstrip().endswith(";") and j + 1 < len(lines):
                j += 1
                stmt += lines[j]
            out.append((lines[i - 1] if i else "") + "\n" + stmt)
    return out


def rust_options() -> dict[str, str]:
    src = read("core/src/client/request_builder.rs")
    out = {}
    for f in option_fields():
        names = [
            m.group(1)
            for m in re.finditer(r"pub fn (\w+)\(", src)
            if re.search(rf"options\.{f}\b", block(src[m.start() :], r"\{"))
            and m.group(1) != "options"
        ]
        out[f] = f"`RequestBuilder::{names[0]}`" if names else f"`RequestOptions::{f}`"
    return out


def python_options() -> dict[str, str]:
    conv = read("python/src/client.rs")
    client = read("python/pysrc/wirecore/_client.py")
    params = set(re.findall(r"^\s{8}(\w+):", block_py(client, "def request("), re.M))
    timeout_attrs = set(re.findall(r"^\s{4}(\w+):", block_py(client, "class Timeout"), re.M))
    out = {}
    for f in option_fields():
        for stmt in statements(conv, f):
            before, this = stmt.split("\n", 1)
            lit = re.search(r'"([\w.]+)"', this)
            name = lit.group(1) if lit else None
            if name is None:
                m = re.search(r"\bx\.(\w+)", this) or re.search(r"= x\.(\w+) \{", before)
                name = m.group(1) if m else None
            if name and "." in name:
                head, attr = name.split(".", 1)
                if head in params and attr in timeout_attrs:
                    out[f] = f"`{head}=Timeout({attr}=)`"
            elif name in params:
                out[f] = f"`{name}=`"
    return out


def block_py(text: str, start: str) -> str:
    """From `start` to the next line at the same or a lower indentation than it."""
    i = text.find(start)
    if i < 0:
        return ""
    line_start = text.rfind("\n", 0, i) + 1
    indent = i - line_start
    rest = text[i:].splitlines()[1:]
    out = []
    for line in rest:
        if line.strip() and len(line) - len(line.lstrip()) <= indent and not line.startswith(")"):
            if not line.lstrip().startswith(")"):
                break
        out.append(line)
    return "\n".join(out)


def dts_interfaces(dts: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """`interface Name extends A, B { prop?: Type }` → (bases, {prop: type text})."""
    out = {}
    for m in re.finditer(r"interface (\w+)(?: extends ([\w, ]+))?\s*\{", dts):
        body = block(dts[m.start() :], r"\{")
        props = {}
        depth = 0
        for line in body.splitlines():
            s = line.strip()
            if depth == 0:
                p = re.match(r"(\w+)\??:\s*(.*)$", s)
                if p:
                    props[p.group(1)] = p.group(2)
            depth += s.count("{") - s.count("}")
        bases = [b.strip() for b in (m.group(2) or "").split(",") if b.strip()]
        out[m.group(1)] = (bases, props)
    return out


def dts_props(ifaces: dict[str, tuple[list[str], dict[str, str]]], name: str) -> dict[str, str]:
    bases, props = ifaces.get(name, ([], {}))
    merged: dict[str, str] = {}
    for b in bases:
        merged.update(dts_props(ifaces, b))
    merged.update(props)
    return merged


def node_options() -> dict[str, str]:
    conv = read("node/src/client.rs")
    declared = dts_props(dts_interfaces(read("node/index.d.ts")), "RequestOptions")
    out = {}
    for f in option_fields():
        for stmt in statements(conv, f):
            before, this = stmt.split("\n", 1)
            lit = re.search(r'"(\w+)"', this)
            if lit:
                name = lit.group(1)
            else:
                m = re.search(rf"o\.{f}\s*=\s*(\w+);", this) or re.search(
                    r"if let Some\(\w+\) = (\w+)", before
                )
                name = camel(m.group(1)) if m else ""
            if name in declared:
                out[f] = f"`{name}`"
    return out


def go_struct(src: str, name: str) -> list[tuple[str, str, str]]:
    """(field, type, json name) of a Go struct; embedded structs give ("", type, "")."""
    body = block(src, rf"^type {name} struct\s*\{{")
    out = []
    for line in body.splitlines():
        s = line.split("//")[0].strip() if "`" not in line else line.strip()
        m = re.match(r"(\w+)\s+([\w\[\]\*\.]+)(?:\s+`json:\"([^\",]*)[^`]*`)?", s)
        if m:
            out.append((m.group(1), m.group(2), m.group(3) or ""))
        elif re.match(r"^[A-Z]\w*$", s):
            out.append(("", s, ""))
    return out


def go_options() -> dict[str, str]:
    fields = {f for f, _, _ in go_struct(read("bindings/go/options.go"), "Options")}
    transport = read("bindings/go/transport.go")
    capi = read("bindings/go/internal/capi/capi.go")
    out = {}
    for f in option_fields():
        if pascal(f) in fields:
            out[f] = f"`Options.{pascal(f)}`"
        elif (
            f == "timeout"
            and "ctx.Deadline()" in transport
            and "wirecore_request_set_timeout_ms" in capi
        ):
            out[f] = "the context's deadline"
    return out


def c_setters() -> dict[str, str]:
    """Core option field → the C setter whose body sets it."""
    src = read("bindings/c/src/request.rs")
    out = {}
    parts = re.split(r"pub unsafe extern \"C\" fn (wirecore_request_set_\w+)\(", src)
    for name, body in zip(parts[1::2], parts[2::2]):
        body = body.split("#[unsafe(no_mangle)]")[0]
        for f in re.findall(r"\bo\.(\w+)\s*=", body) + re.findall(
            r"options_mut\(\)\.(\w+)\s*=", body
        ):
            out.setdefault(f, f"`{name}`")
    return out


def c_options() -> dict[str, str]:
    setters = c_setters()
    return {f: setters[f] for f in option_fields() if f in setters}


def kotlin_options() -> dict[str, str]:
    """`RequestOptions(name = ...)`: the uniffi record's field (camelCase in Kotlin) whose value
    bindings/uniffi/src/request.rs sets the core field from."""
    src = read("bindings/uniffi/src/request.rs")
    declared = set(
        re.findall(r"^\s*pub (\w+):", block(src, r"pub struct RequestOptions\s*\{"), re.M)
    )
    out = {}
    for f in option_fields():
        for stmt in statements(src, f):
            before, this = stmt.split("\n", 1)
            m = re.search(r"\bx\s*\.(\w+)", this) or re.search(r"= x\.(\w+) \{", before)
            if m and m.group(1) in declared:
                out[f] = f"`RequestOptions({camel(m.group(1))} =)`"
    return out


# --- Stats ------------------------------------------------------------------------------------


def stats_paths(shape: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(shape, dict):
        return [prefix]
    out = []
    for k, v in shape.items():
        out += stats_paths(v, prefix + (k,))
    return out


def node_stats_cell(ifaces: dict, path: tuple[str, ...]) -> str:
    """The camelCase path when index.d.ts declares it (maps as `Record<string, T>`)."""
    ty = "Stats"
    names = []
    for seg in path:
        if seg == "*":
            m = re.match(r"Record<string,\s*(\w+)>", ty)
            if not m:
                return ""
            ty = m.group(1)
            names.append("*")
            continue
        props = dts_props(ifaces, ty)
        name = camel(seg)
        if name not in props:
            return ""
        ty = props[name].split("|")[0].strip()
        names.append(name)
    return "`" + ".".join(names) + "`"


def go_stats_cell(src: str, path: tuple[str, ...]) -> str:
    ty = "Stats"
    names = []
    for seg in path:
        if seg == "*":
            m = re.match(r"map\[string\]\*?(\w+)", ty)
            if not m:
                return ""
            ty = m.group(1)
            names[-1] += "[*]"
            continue

        def fields(t: str) -> list[tuple[str, str, str]]:
            out = []
            for f, ft, j in go_struct(src, t):
                out += fields(ft) if f == "" else [(f, ft, j)]
            return out

        hit = [(f, ft) for f, ft, j in fields(ty) if j == seg]
        if not hit:
            return ""
        names.append(hit[0][0])
        ty = hit[0][1].lstrip("*")
    return "`" + ".".join(names) + "`"


def stats_rows() -> list[list[str]]:
    shape = json.loads(read("tests/stats-fields.json"))
    ifaces = dts_interfaces(read("node/index.d.ts"))
    go_src = read("bindings/go/stats.go")
    py_same = "self._raw.stats_json()" in read("python/pysrc/wirecore/_client.py")
    c_same = "c.stats().to_json()" in read("bindings/c/src/client.rs")
    kt_same = "self.client.stats().to_json()" in read("bindings/uniffi/src/client.rs")
    rows = []
    for path in stats_paths(shape):
        core = ".".join(path)
        rows.append(
            [
                f"`{core}`",
                f"`{core}`",
                f"`{core}`" if py_same else "",
                node_stats_cell(ifaces, path),
                go_stats_cell(go_src, path),
                f"`{core}`" if c_same else "",
                f"`{core}`" if kt_same else "",
            ]
        )
    return rows


# --- Error codes ------------------------------------------------------------------------------


def error_rows() -> list[list[str]]:
    kinds = re.findall(
        r"^\s*(\w+) => \"([\w.]+)\",", block(read("core/src/error.rs"), r"kinds! \{"), re.M
    )
    py = dict(
        re.findall(
            r'"([\w.]+)":\s*(\w+)',
            block_dict(read("python/pysrc/wirecore/exceptions.py"), "BY_CODE"),
        )
    )
    node = dict(
        (k.strip("'"), v)
        for k, v in re.findall(
            r"^\s*('?[\w.]+'?):\s*(\w+),",
            block(read("node/errors.js"), r"const CLASSES = \{"),
            re.M,
        )
    )
    go = {
        c: n
        for n, c in re.findall(
            r"(Err\w+)\s+error = &sentinel\{\"([\w.]+)\"\}", read("bindings/go/error.go")
        )
    }
    c_src = read("bindings/c/src/error.rs")
    c = dict(re.findall(r"ErrorKind::(\w+) => C::(WIRECORE_\w+)", c_src))
    c_by_code = {
        code: name for name, code in re.findall(r"C::(WIRECORE_\w+) => \"([\w.]+)\"", c_src)
    }
    kt: dict[str, str] = {}
    pending: list[str] = []
    kt_match = block(read("bindings/uniffi/src/error.rs"), r"match kind \{")
    for m in re.finditer(r"ErrorKind::(\w+)|=> W::(\w+)", kt_match):
        if m.group(1):
            pending.append(m.group(1))
        else:
            kt.update((k, m.group(2)) for k in pending)
            pending = []
    rows = []
    for kind, code in kinds:
        rows.append(
            [
                f"`ErrorKind::{kind}`",
                f"`{py[code]}`" if code in py else "",
                f"`{node[code]}`" if code in node else "",
                f"`{go[code]}`" if code in go else "",
                f"`{c[kind]}`"
                if kind in c
                else f"`{c_by_code[code]}`"
                if code in c_by_code
                else "",
                f"`WirecoreException.{kt[kind]}`" if kind in kt else "",
            ]
        )
    return [[f"`{code}`", *r] for (kind, code), r in zip(kinds, rows)]


def block_dict(text: str, name: str) -> str:
    m = re.search(rf"^{name}\b[^=]*=\s*\{{", text, re.M)
    if not m:
        return ""
    return block(text[m.start() :], r"\{")


# --- Client methods ---------------------------------------------------------------------------


def method_rows() -> list[list[str]]:
    by_lang: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
    rust = block(read("core/src/client.rs"), r"^impl Client \{")
    for n in re.findall(r"^    pub (?:async )?fn (\w+)", rust, re.M):
        by_lang["Rust"][n] = f"`{n}`"
    py = read("python/pysrc/wirecore/_client.py")
    for cls in ("class _BaseClient", "class Client(", "class AsyncClient("):
        for n in re.findall(r"^    (?:async )?def ([a-z]\w*)\(", block_py(py, cls), re.M):
            by_lang["Python"][n] = f"`{n}`"
    node = block(read("node/index.js"), r"^class Client \{")
    for n in re.findall(r"^  (?:async )?([a-z]\w*)\([^)]*\) \{", node, re.M):
        if n != "constructor":
            by_lang["Node"][snake(n)] = f"`{n}`"
    for f in sorted((ROOT / "bindings/go").glob("*.go")):
        if f.name.endswith("_test.go"):
            continue
        for n in re.findall(r"^func \(t \*Transport\) ([A-Z]\w*)\(", f.read_text(), re.M):
            by_lang["Go"][snake(n)] = f"`{n}`"
    for f in sorted((ROOT / "bindings/c/src").glob("*.rs")):
        for n in re.findall(r"extern \"C\" fn wirecore_client_(\w+)\(", f.read_text()):
            by_lang["C"][n] = f"`wirecore_client_{n}`"
    kt = block(read("bindings/uniffi/src/client.rs"), r"^#\[uniffi::export\]\nimpl Client \{")
    for n in re.findall(r"^    pub (?:async )?fn (\w+)\(", kt, re.M):
        if n != "new":
            by_lang["Kotlin"][n] = f"`{camel(n)}`"
    keys = sorted(set().union(*by_lang.values()))
    return [[f"`{k}`", *(by_lang[lang].get(k, "") for lang in LANGS)] for k in keys]


# --- Output -----------------------------------------------------------------------------------


def table(first: str, columns: list[str], rows: list[list[str]]) -> str:
    head = f"| {first} | " + " | ".join(columns) + " |\n"
    head += "|" + " --- |" * (len(columns) + 1) + "\n"
    return head + "".join("| " + " | ".join(r) + " |\n" for r in rows)


def render() -> tuple[str, list[str]]:
    opts = {
        lang: f()
        for lang, f in zip(
            LANGS,
            (rust_options, python_options, node_options, go_options, c_options, kotlin_options),
        )
    }
    option_rows = [[f"`{f}`", *(opts[lang].get(f, "") for lang in LANGS)] for f in option_fields()]
    stats = stats_rows()
    errors = error_rows()
    methods = method_rows()
    missing = []
    for section, rows, cols in (
        ("options", option_rows, LANGS),
        ("stats", stats, LANGS),
        ("error codes", errors, ["Rust", *LANGS[1:]]),
    ):
        for r in rows:
            for lang, cell in zip(cols, r[1:]):
                if not cell:
                    missing.append(f"{section}: {r[0]} has no {lang} name")
    text = (
        "# Parity: one engine, six languages\n\n"
        "Generated by `scripts/parity.py` from each binding's source (`make parity`; `make lint`\n"
        "fails when this file is stale or a cell of the first three tables is empty).\n\n"
        f"## Request options (`wirecore::RequestOptions`, {len(option_rows)} fields)\n\n"
        + table("field", LANGS, option_rows)
        + f"\n## Stats fields (`wirecore::Stats`, {len(stats)} fields; `*` is a key of a data map)\n\n"
        + "Python and C hand out the core's JSON as it is; Node renames each field mechanically to\n"
        + "camelCase; Go's typed `Stats` keeps the core's names as its `json` tags; Kotlin's\n"
        + "`stats()` is the core's JSON.\n\n"
        + table("field", LANGS, stats)
        + f"\n## Error codes (`wirecore::ErrorKind`, {len(errors)} codes)\n\n"
        + table("code", LANGS, errors)
        + "\n## Client methods\n\n"
        + "Each language's own idiom; a row is one name (snake_case), so a gap is a method that\n"
        + "language spells differently or lacks.\n\n"
        + table("method", LANGS, methods)
    )
    return text, missing


def main() -> int:
    text, missing = render()
    if "--check" in sys.argv[1:]:
        bad = False
        if not OUT.exists() or OUT.read_text() != text:
            print("docs/parity.md is stale: run `make parity`", file=sys.stderr)
            bad = True
        for m in missing:
            print(f"parity: {m}", file=sys.stderr)
        return 1 if bad or missing else 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    for m in missing:
        print(f"parity: {m}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Assembles bench/results/latest.md: every language's headline ratio against its best peer,
from the individual bench outputs (bench/results/<date>-<lang>.md) of one `make bench` run.

    python3 bench/summary.py [--date YYYY-MM-DD] [--out bench/results/latest.md]

Without --date, or where that date has no output for a language (its bench failed or was
skipped), the language's newest output is used; every row names its file. The ratios inside
one output come from one run (peers interleaved on one machine); ratios from different rows
may come from different sittings, so each row names its file and that run's load average.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CELLS = [("h1", "64"), ("h2", "64"), ("h1", "256"), ("h2", "256")]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in `text`, as rows keyed by the header's cells."""
    out: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip())
        ):
            head = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                rows.append(dict(zip(head, cells)))
                i += 1
            out.append(rows)
        else:
            i += 1
    return out


def num(cell: str | None) -> float | None:
    if not cell:
        return None
    m = re.search(r"[-+]?\d+(?:\.\d+)?", cell.replace("*", ""))
    return float(m.group()) if m else None


def load_of(text: str) -> str:
    """The load average at the end of the file's first run (the column's heading says so); a
    file that gives its load once (or only at the start) gives that one."""
    three = r"(\d+\.\d+),? (\d+\.\d+),? (\d+\.\d+)"
    m = re.search(r"at the end:? " + three, text, re.I)
    m = m or re.search(r"load average[^0-9]*" + three, text, re.I)
    return " ".join(m.groups()) if m else "not recorded"


def fmt(rps: float | None, cpu: float | None = None, peer: str | None = None) -> str:
    if rps is None:
        return "—"
    s = f"{rps:.2f}×"
    if cpu is not None:
        s += f" (CPU {cpu:.2f}×)"
    if peer:
        s += f" vs {peer}"
    return s


def cell_rows(rows: list[dict[str, str]], proto: str, c: str) -> list[dict[str, str]]:
    return [r for r in rows if r.get("proto") == proto and r.get("C") == c]


def core(text: str) -> tuple[str, str, dict[tuple[str, str], str]]:
    for t in tables(text):
        if t and "rps ÷ reqwest" in t[0]:
            out = {}
            for proto, c in CELLS:
                rs = cell_rows(t, proto, c)
                if rs:
                    out[(proto, c)] = fmt(
                        num(rs[0]["rps ÷ reqwest"]), num(rs[0].get("CPU ÷ reqwest"))
                    )
            return "Rust (core `Client`)", "reqwest", out
    raise ValueError("no ratio table")


def best_of(rows: list[dict[str, str]], wc: str, rps: str, cpu: str | None) -> str:
    """The peer wirecore beats by the least (the best peer) among `rows` of wirecore `wc`."""
    mine = [r for r in rows if r.get("wirecore") == wc]
    if not mine:
        return "—"
    r = min(mine, key=lambda r: num(r[rps]) or float("inf"))
    peer = r.get("peer") or r.get("÷ peer")
    return fmt(num(r[rps]), num(r.get(cpu)) if cpu else None, peer)


def python(text: str) -> tuple[str, str, dict[tuple[str, str], str]]:
    for t in tables(text):
        if t and "rps ÷ peer" in t[0] and "peer" in t[0]:
            out = {
                cell: best_of(cell_rows(t, *cell), "wirecore-async", "rps ÷ peer", "CPU ÷ peer")
                for cell in CELLS
            }
            return "Python (`AsyncClient`)", "best of pyreqwest, httpx, aiohttp, requests", out
    raise ValueError("no ratio table")


def node(text: str) -> tuple[str, str, dict[tuple[str, str], str]]:
    for t in tables(text):
        if t and "rps ratio" in t[0] and "÷ peer" in t[0]:
            out = {
                cell: best_of(cell_rows(t, *cell), "wirecore", "rps ratio", "CPU ratio")
                for cell in CELLS
            }
            return "Node (`Client`)", "best of undici, fetch, node:http(2)", out
    raise ValueError("no ratio table")


def go(text: str) -> tuple[str, str, dict[tuple[str, str], str]]:
    for t in tables(text):
        if t and "net/http req/s" in t[0] and "ratio" in t[0]:
            out = {}
            for proto, c in CELLS:
                rs = cell_rows(t, proto, c)
                if rs:
                    r = rs[0]
                    std, wc = num(r.get("net/http CPU µs/req")), num(r.get("wirecore CPU µs/req"))
                    out[(proto, c)] = fmt(num(r["ratio"]), wc / std if std and wc else None)
            return "Go (`Transport`)", "net/http", out
    raise ValueError("no ratio table")


def kotlin(text: str) -> tuple[str, str, dict[tuple[str, str], str]]:
    for t in tables(text):
        if t and "okhttp req/s" in t[0] and "wirecore req/s" in t[0]:
            out = {}
            for proto, c in CELLS:
                rs = cell_rows(t, proto, c)
                if rs:
                    r = rs[0]
                    peers = {"OkHttp": "okhttp", "JDK HttpClient": "jdk"}
                    name, key = max(peers.items(), key=lambda kv: num(r[f"{kv[1]} req/s"]) or 0)
                    wc, peer = num(r["wirecore req/s"]), num(r[f"{key} req/s"])
                    wcc, pc = num(r.get("wirecore CPU µs/req")), num(r.get(f"{key} CPU µs/req"))
                    out[(proto, c)] = fmt(
                        wc / peer if wc and peer else None, wcc / pc if wcc and pc else None, name
                    )
            return "Kotlin (JVM)", "best of OkHttp, JDK HttpClient", out
    raise ValueError("no figures table")


def cli(text: str) -> list[tuple[str, str, str]]:
    """(what, ratio, how) rows of the `wirecore` command."""
    # The newest run's table comes first; older runs' tables follow in the same file.
    first = next((t for t in tables(text) if t and "run" in t[0]), [])
    rows = {r.get("run", ""): num(r.get("req/s")) for r in first}

    def ratio(a: str, b: str) -> str:
        x = next((v for k, v in rows.items() if k.startswith(a)), None)
        y = next((v for k, v in rows.items() if k.startswith(b)), None)
        return f"{x / y:.2f}×" if x and y else "—"

    return [
        (
            "`wirecore bench` (h1, 64 conns) ÷ wrk",
            ratio("h1 client: wirecore bench", "h1 client: wrk"),
            "→ nginx",
        ),
        (
            "`wirecore bench` (h2, 64 streams) ÷ h2load",
            ratio("h2 client: wirecore bench", "h2 client: h2load"),
            "→ nginx",
        ),
        (
            "`wirecore serve` ÷ nginx under wrk (h1)",
            ratio("h1 server: wrk → wirecore serve", "h1 client: wrk → nginx"),
            "",
        ),
        (
            "`wirecore serve` ÷ nginx under h2load (h2)",
            ratio("h2 server: h2load → wirecore serve", "h2 client: h2load"),
            "",
        ),
    ]


LANGS = {"core": core, "python": python, "node": node, "go": go, "kotlin": kotlin}


def pick(lang: str, date: str | None) -> Path | None:
    """`<date>-<lang>.md`, else the language's newest output (its row names the file)."""
    if date:
        p = RESULTS / f"{date}-{lang}.md"
        if p.exists():
            return p
    found = sorted(RESULTS.glob(f"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-{lang}.md"))
    return found[-1] if found else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--date", help="the run's date (files <date>-<lang>.md); default: newest per language"
    )
    ap.add_argument("--out", default=str(RESULTS / "latest.md"))
    ap.add_argument(
        "--note", default="", help="a line added under the header (e.g. about the load)"
    )
    args = ap.parse_args()

    cores = os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"

    head = (
        "| language | best peer | h1 C=64 | h2 C=64 | h1 C=256 | h2 C=256 "
        "| from (load average at its end) |"
    )
    lines = [
        "# Benchmark summary",
        "",
        f"Assembled by `bench/summary.py` (run by `make bench`) at commit {commit}: "
        f"{cores} CPUs, load average {load} when assembled. Each cell: wirecore's requests/s "
        "÷ the best peer's in the same run (higher is better), with CPU per request ÷ the "
        "peer's (lower is better), GET 1 KiB from the wirecore test server on loopback, "
        "server and client pinned to one core each where two exist. Per-language details, "
        "p99 and every peer: the file named in the last column.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    lines += [head, "|---|---|---|---|---|---|---|"]
    for lang, parse in LANGS.items():
        p = pick(lang, args.date)
        if p is None:
            lines.append(f"| {lang} | — | not run | | | | — |")
            continue
        text = p.read_text()
        try:
            name, peer, cells = parse(text)
        except (ValueError, KeyError) as e:
            print(f"summary: {p.name}: {e}", file=sys.stderr)
            lines.append(f"| {lang} | — | unreadable | | | | `{p.name}` |")
            continue
        row = [name, peer] + [cells.get(c, "—") for c in CELLS] + [f"`{p.name}` ({load_of(text)})"]
        lines.append("| " + " | ".join(row) + " |")
    p = pick("cli", args.date)
    lines += ["", "## The `wirecore` command", ""]
    if p is None:
        lines.append("not run")
    else:
        text = p.read_text()
        lines += [
            f"From `{p.name}` (load average {load_of(text)}).",
            "",
            "| | ratio | |",
            "|---|---:|---|",
        ]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in cli(text)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"summary: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

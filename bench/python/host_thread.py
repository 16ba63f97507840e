"""Host-thread CPU per request of wirecore's AsyncClient: the CPU time of the one thread that
runs the asyncio loop (and so receives every result), per request, for a closed loop of C tasks
doing GET /bytes/1024 from the wirecore test server over HTTP/1.1 (plain) and HTTP/2 (TLS).

That thread's time sets a per-process ceiling no number of cores lifts: ceiling ≈ 1 / (host CPU
per request). Measured with time.thread_time() (CLOCK_THREAD_CPUTIME_ID) around N requests after
a warm-up; the whole process's CPU (getrusage) and the wall clock are reported beside it.

Each variant is a wheel (or an unpacked package directory) given as NAME=PATH; every (variant,
cell, round) runs in a fresh worker process, rounds rotate the variant order, so an old and a new
build are compared side by side in one run on one machine.

    python host_thread.py --server target/.../release/wirecore-testserver \
        --variant base=/tmp/old/wirecore-*.whl --variant new=dist/wirecore-*.whl --out x.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Any

PATH = "/bytes/1024"


def proc_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def worker(a: argparse.Namespace) -> dict[str, Any]:
    import wirecore

    info = json.loads(a.server_info)
    url = (info["http"] if a.proto == "h1" else info["https"]) + PATH
    c = a.concurrency
    cfg = {
        "tls": {"ca_files": [info["ca"]]},
        "pool": {
            "max_connections": max(c, 100),
            "max_connections_per_host": max(c, 50),
            "max_idle_per_host": max(c, 10),
        },
    }
    warm, n = a.warmup_requests, a.requests
    marks: dict[str, float] = {}
    state = {"count": 0, "errors": 0, "running": True}

    async def main() -> None:
        client = wirecore.AsyncClient(cfg)

        async def loop() -> None:
            while state["running"]:
                try:
                    r = await client.get(url)
                    if r.status_code != 200 or len(r.content) != 1024:
                        raise RuntimeError(r.status_code)
                except Exception:
                    state["errors"] += 1
                    if state["errors"] > 1000:
                        raise
                    continue
                k = state["count"] = state["count"] + 1
                if k == warm:
                    marks["t0"], marks["h0"], marks["p0"] = (
                        time.perf_counter(),
                        time.thread_time(),
                        proc_cpu(),
                    )
                elif k == warm + n:
                    marks["t1"], marks["h1"], marks["p1"] = (
                        time.perf_counter(),
                        time.thread_time(),
                        proc_cpu(),
                    )
                    state["running"] = False

        try:
            await asyncio.gather(*(loop() for _ in range(c)))
        finally:
            await client.aclose()

    asyncio.run(main())
    wall = marks["t1"] - marks["t0"]
    return {
        "version": wirecore.__version__,
        "requests": n,
        "errors": state["errors"],
        "rps": n / wall,
        "host_us": (marks["h1"] - marks["h0"]) * 1e6 / n,
        "proc_us": (marks["p1"] - marks["p0"]) * 1e6 / n,
    }


def unpack(path: str, into: str) -> str:
    """A directory whose `wirecore` package is the variant's (a wheel is unzipped)."""
    if os.path.isdir(path):
        return path
    d = tempfile.mkdtemp(prefix="wirecore-variant-", dir=into)
    with zipfile.ZipFile(path) as z:
        z.extractall(d)
    return d


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--proto", default="h1")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--server-info")
    p.add_argument("--server", help="wirecore-testserver binary (release build)")
    p.add_argument("--variant", action="append", default=[], help="NAME=wheel or package dir")
    p.add_argument("--out")
    p.add_argument("--concurrencies", default="64")
    p.add_argument("--protocols", default="h1,h2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--warmup-requests", type=int, default=3000)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return 0
    if not a.server or not a.out or not a.variant:
        p.error("--server, --out and at least one --variant are required")

    scratch = tempfile.mkdtemp(prefix="wirecore-host-thread-")
    variants = []
    for v in a.variant:
        name, _, path = v.partition("=")
        variants.append((name, unpack(path, scratch)))
    pin = (os.cpu_count() or 1) >= 2
    server_cmd = [a.server, "--exit-on-stdin-eof", "--no-request-log", "--threads", "1"]
    if pin:
        server_cmd = ["taskset", "-c", "0", *server_cmd]
    server = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert server.stdout is not None and server.stdin is not None
    info = json.loads(server.stdout.readline())
    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    load_before = os.getloadavg()
    started = time.time()
    try:
        for proto in a.protocols.split(","):
            for conc in [int(x) for x in a.concurrencies.split(",")]:
                for rnd in range(a.rounds):
                    k = rnd % len(variants)
                    for name, path in variants[k:] + variants[:k]:
                        cmd = [
                            sys.executable,
                            __file__,
                            "--worker",
                            "--proto",
                            proto,
                            "--concurrency",
                            str(conc),
                            "--server-info",
                            json.dumps(info),
                            "--requests",
                            str(a.requests),
                            "--warmup-requests",
                            str(a.warmup_requests),
                        ]
                        if pin:
                            cmd = ["taskset", "-c", "1", *cmd]
                        env = dict(os.environ, PYTHONPATH=path)
                        out = subprocess.run(
                            cmd,
                            check=False,
                            capture_output=True,
                            text=True,
                            timeout=300,
                            env=env,
                        )
                        if out.returncode != 0:
                            print(f"{proto} C={conc} {name}: failed: {out.stderr[-500:]}")
                            continue
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        results.setdefault((proto, conc, name), []).append(r)
                        print(
                            f"{proto} C={conc:<3} round {rnd + 1} {name:<8} "
                            f"host {r['host_us']:6.2f} µs/req  process {r['proc_us']:6.2f} "
                            f"µs/req  {r['rps']:8.0f} req/s",
                            flush=True,
                        )
    finally:
        server.stdin.close()
        server.stdout.close()
        server.wait(timeout=10)
    write(a, results, variants, pin, load_before, time.time() - started)
    return 0


def write(
    a: argparse.Namespace,
    results: dict[tuple[str, int, str], list[dict[str, Any]]],
    variants: list[tuple[str, str]],
    pin: bool,
    load_before: tuple[float, float, float],
    seconds: float,
) -> None:
    def med(rs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    lines = [
        "## Python AsyncClient: host-thread CPU per request",
        "",
        f"`bench/python/host_thread.py`: GET `{PATH}`, closed loop of C asyncio tasks on one "
        "AsyncClient, test server (release, 1 thread"
        + (", CPU 0" if pin else "")
        + "), each (variant, cell, round) a fresh worker"
        + (" on CPU 1" if pin else "")
        + f"; {a.warmup_requests} requests warm-up, then {a.requests} measured. host = "
        "time.thread_time() of the loop's thread ÷ requests; ceiling = 1e6 ÷ host µs. "
        f"Medians of {a.rounds} rounds in rotating variant order.",
        "",
        (
            f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, "
            f"Linux {platform.release()}, Python {platform.python_version()}; load average "
            f"before {' '.join(f'{x:.2f}' for x in load_before)}, after "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; run took {seconds:.0f}s"
        ),
        "",
        (
            "| proto | C | variant | host µs/req | ceiling req/s | process CPU µs/req | req/s "
            "| host ÷ first |"
        ),
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    first = variants[0][0]
    for proto in a.protocols.split(","):
        for conc in [int(x) for x in a.concurrencies.split(",")]:
            base = results.get((proto, conc, first))
            for name, _ in variants:
                rs = results.get((proto, conc, name))
                if not rs:
                    continue
                h = med(rs, "host_us")
                ratio = h / med(base, "host_us") if base else float("nan")
                lines.append(
                    f"| {proto} | {conc} | {name} | {h:.2f} | {1e6 / h:,.0f} | "
                    f"{med(rs, 'proc_us'):.2f} | {med(rs, 'rps'):,.0f} | {ratio:.2f} |"
                )
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-python`: wirecore's AsyncClient and Client vs httpx (async), aiohttp, requests and
pyreqwest, closed loop GET /bytes/1024 from the wirecore test server at C = 1, 16, 64, 256, over
HTTP/1.1 (plain) and HTTP/2 (TLS, ALPN) where the client speaks it.

Every (client, cell, round) runs in a fresh worker process (this file with --worker) pinned to
its own CPU, so one library's threads, pools and GC never touch another's figures; CPU is that
process's getrusage(RUSAGE_SELF) user+sys over the measured window. Rounds rotate the client
order. Writes a Markdown table of figures and ratios from this one run (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

PATH = "/bytes/1024"
ASYNC = {"wirecore-async", "httpx", "aiohttp", "pyreqwest-async"}
CLIENTS_H1 = [
    "wirecore-async",
    "wirecore-sync",
    "httpx",
    "aiohttp",
    "requests",
    "pyreqwest-async",
    "pyreqwest-sync",
]
CLIENTS_H2 = [
    "wirecore-async",
    "wirecore-sync",
    "httpx",
    "pyreqwest-async",
    "pyreqwest-sync",
]


# --- worker: one client, one cell, one round --------------------------------------------------


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    def __init__(self, warmup: float, duration: float, max_requests: int) -> None:
        self.warmup, self.duration, self.max_requests = warmup, duration, max_requests
        self.measuring = False
        self.running = True
        self.count = 0
        self.errors = 0
        self.lat: list[float] = []

    def record(self, started: float) -> None:
        if self.measuring:
            self.lat.append(time.perf_counter() - started)
            self.count += 1
            if self.count >= self.max_requests:
                self.running = False

    def result(self, cpu_s: float, wall: float) -> dict[str, Any]:
        lat = sorted(self.lat)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6 if lat else 0.0

        return {
            "requests": self.count,
            "errors": self.errors,
            "wall_s": wall,
            "cpu_s": cpu_s,
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
        }


async def run_async(fetch: Callable[[], Awaitable[None]], c: int, m: Meter) -> tuple[float, float]:
    async def loop() -> None:
        while m.running:
            t = time.perf_counter()
            try:
                await fetch()
            except Exception:
                m.errors += 1
                if m.errors > 1000:
                    raise
                continue
            m.record(t)

    tasks = [asyncio.ensure_future(loop()) for _ in range(c)]
    await asyncio.sleep(m.warmup)
    c0, t0 = cpu(), time.perf_counter()
    m.measuring = True
    deadline = t0 + m.duration
    while m.running and time.perf_counter() < deadline:  # noqa: ASYNC110 (a deadline, not an event)
        await asyncio.sleep(0.01)
    m.measuring = False
    c1, t1 = cpu(), time.perf_counter()
    m.running = False
    await asyncio.gather(*tasks, return_exceptions=True)
    return c1 - c0, t1 - t0


def run_threads(fetch: Callable[[], None], c: int, m: Meter) -> tuple[float, float]:
    lock = threading.Lock()

    def loop() -> None:
        while m.running:
            t = time.perf_counter()
            try:
                fetch()
            except Exception:
                with lock:
                    m.errors += 1
                continue
            with lock:
                m.record(t)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(c)]
    for th in threads:
        th.start()
    time.sleep(m.warmup)
    c0, t0 = cpu(), time.perf_counter()
    m.measuring = True
    deadline = t0 + m.duration
    while m.running and time.perf_counter() < deadline:
        time.sleep(0.01)
    m.measuring = False
    c1, t1 = cpu(), time.perf_counter()
    m.running = False
    for th in threads:
        th.join(timeout=30)
    return c1 - c0, t1 - t0


def worker(a: argparse.Namespace) -> dict[str, Any]:
    info = json.loads(a.server_info)
    base = info["http"] if a.proto == "h1" else info["https"]
    url = base + PATH
    ca = info["ca"]
    c = a.concurrency
    m = Meter(a.warmup, a.duration, a.max_requests)
    name = a.client
    version = ""

    if name in ("wirecore-async", "wirecore-sync"):
        import wirecore

        version = wirecore.__version__
        cfg = {
            "tls": {"ca_files": [ca]},
            "pool": {
                "max_connections": max(c, 100),
                "max_connections_per_host": max(c, 50),
            },
        }
        if name == "wirecore-async":

            async def main() -> tuple[float, float]:
                client = wirecore.AsyncClient(cfg)

                async def fetch() -> None:
                    r = await client.get(url)
                    if r.status_code != 200 or len(r.content) != 1024:
                        raise RuntimeError(r.status_code)

                try:
                    return await run_async(fetch, c, m)
                finally:
                    await client.aclose()

            spent = asyncio.run(main())
        else:
            sclient = wirecore.Client(cfg)

            def sfetch() -> None:
                r = sclient.get(url)
                if r.status_code != 200 or len(r.content) != 1024:
                    raise RuntimeError(r.status_code)

            spent = run_threads(sfetch, c, m)
    elif name == "httpx":
        import httpx

        version = httpx.__version__
        ctx = ssl.create_default_context(cafile=ca)

        async def main() -> tuple[float, float]:
            limits = httpx.Limits(max_connections=max(c, 100), max_keepalive_connections=c)
            async with httpx.AsyncClient(
                verify=ctx, http2=a.proto == "h2", limits=limits, timeout=60
            ) as client:

                async def fetch() -> None:
                    r = await client.get(url)
                    if r.status_code != 200 or len(r.content) != 1024:
                        raise RuntimeError(r.status_code)

                return await run_async(fetch, c, m)

        spent = asyncio.run(main())
    elif name == "aiohttp":
        import aiohttp

        version = aiohttp.__version__
        ctx = ssl.create_default_context(cafile=ca)

        async def main() -> tuple[float, float]:
            conn = aiohttp.TCPConnector(limit=max(c, 100), ssl=ctx)
            async with aiohttp.ClientSession(connector=conn) as session:

                async def fetch() -> None:
                    async with session.get(url) as r:
                        body = await r.read()
                        if r.status != 200 or len(body) != 1024:
                            raise RuntimeError(r.status)

                return await run_async(fetch, c, m)

        spent = asyncio.run(main())
    elif name == "requests":
        import requests
        from requests.adapters import HTTPAdapter

        version = requests.__version__
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=max(c, 10)))
        session.verify = ca

        def rfetch() -> None:
            r = session.get(url)
            if r.status_code != 200 or len(r.content) != 1024:
                raise RuntimeError(r.status_code)

        spent = run_threads(rfetch, c, m)
    elif name in ("pyreqwest-async", "pyreqwest-sync"):
        from importlib.metadata import version as dist_version

        from pyreqwest.client import ClientBuilder, SyncClientBuilder

        version = dist_version("pyreqwest")
        pem = open(ca, "rb").read()
        if name == "pyreqwest-async":

            async def main() -> tuple[float, float]:
                b = ClientBuilder().add_root_certificate_pem(pem).max_connections(max(c, 100))
                if a.proto == "h1":
                    b = b.http1_only()
                async with b.build() as client:

                    async def fetch() -> None:
                        r = await client.get(url).build().send()
                        body = await r.bytes()
                        if r.status != 200 or len(body) != 1024:
                            raise RuntimeError(r.status)

                    return await run_async(fetch, c, m)

            spent = asyncio.run(main())
        else:
            sb = SyncClientBuilder().add_root_certificate_pem(pem).max_connections(max(c, 100))
            if a.proto == "h1":
                sb = sb.http1_only()
            with sb.build() as sc:

                def pfetch() -> None:
                    r = sc.get(url).build().send()
                    body = r.bytes()
                    if r.status != 200 or len(body) != 1024:
                        raise RuntimeError(r.status)

                spent = run_threads(pfetch, c, m)
    else:
        raise SystemExit(f"unknown client {name}")
    out = m.result(*spent)
    out["version"] = version
    return out


# --- driver -----------------------------------------------------------------------------------


def control(info: dict[str, Any], path: str, method: str = "GET") -> Any:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(info["control"] + path, method=method)
    with opener.open(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def installed(client: str) -> bool:
    mod = {"wirecore-async": "wirecore", "wirecore-sync": "wirecore"}.get(
        client, client.split("-")[0]
    )
    try:
        __import__(mod)
    except ImportError:
        return False
    return True


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--client")
    p.add_argument("--proto", default="h1")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--server-info")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--max-requests", type=int, default=20000)
    p.add_argument("--server", help="wirecore-testserver binary (release build)")
    p.add_argument("--out")
    p.add_argument("--concurrencies", default="1,16,64,256")
    p.add_argument("--protocols", default="h1,h2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", default="")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return 0
    if not a.server or not a.out:
        p.error("--server and --out are required")

    pin = os.cpu_count() is not None and os.cpu_count() >= 2  # type: ignore[operator]
    server_cmd = [a.server, "--exit-on-stdin-eof", "--no-request-log", "--threads", "1"]
    if pin:
        server_cmd = ["taskset", "-c", "0", *server_cmd]
    server = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert server.stdout is not None and server.stdin is not None
    info = json.loads(server.stdout.readline())
    wanted = [c for c in a.clients.split(",") if c]
    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    conns: dict[tuple[str, int, str], int] = {}
    versions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    started = time.time()
    try:
        for proto in a.protocols.split(","):
            clients = CLIENTS_H1 if proto == "h1" else CLIENTS_H2
            clients = [c for c in clients if not wanted or c in wanted]
            for c in clients:
                if not installed(c):
                    skipped[c] = "not installed"
            clients = [c for c in clients if c not in skipped]
            for conc in [int(x) for x in a.concurrencies.split(",")]:
                for rnd in range(a.rounds):
                    order = clients[rnd % len(clients) :] + clients[: rnd % len(clients)]
                    for client in order:
                        control(info, "/_control/reset", "POST")
                        cmd = [
                            sys.executable,
                            __file__,
                            "--worker",
                            "--client",
                            client,
                            "--proto",
                            proto,
                            "--concurrency",
                            str(conc),
                            "--server-info",
                            json.dumps(info),
                            "--warmup",
                            str(a.warmup),
                            "--duration",
                            str(a.duration),
                            "--max-requests",
                            str(a.max_requests // a.rounds),
                        ]
                        if pin:
                            cmd = ["taskset", "-c", "1", *cmd]
                        key = (proto, conc, client)
                        try:
                            out = subprocess.run(
                                cmd,
                                capture_output=True,
                                text=True,
                                timeout=180,
                                check=True,
                            )
                            r = json.loads(out.stdout.strip().splitlines()[-1])
                        except (
                            subprocess.SubprocessError,
                            ValueError,
                            IndexError,
                        ) as e:
                            err = getattr(e, "stderr", "") or str(e)
                            print(
                                f"{proto} C={conc} {client}: failed: {err[-300:]}",
                                flush=True,
                            )
                            r = {"requests": 0, "errors": 1, "wall_s": 1, "cpu_s": 0,
                                 "p50_us": 0, "p99_us": 0, "version": ""}  # fmt: skip
                        versions[client] = r.pop("version") or versions.get(client, "")
                        results.setdefault(key, []).append(r)
                        conns[key] = (
                            conns.get(key, 0)
                            + control(info, "/_control/counters")["connections_accepted"]
                        )
                        print(
                            f"{proto} C={conc:<3} round {rnd + 1} {client:<16} "
                            f"{r['requests'] / r['wall_s']:8.0f} req/s "
                            f"{r['cpu_s'] * 1e6 / max(r['requests'], 1):7.1f} CPU-µs/req",
                            flush=True,
                        )
    finally:
        server.stdin.close()
        server.stdout.close()
        server.wait(timeout=10)
    write_report(a, results, conns, versions, skipped, pin, time.time() - started)
    return 0


def summarize(rs: list[dict[str, Any]]) -> dict[str, float]:
    n = sum(r["requests"] for r in rs)
    wall = sum(r["wall_s"] for r in rs)
    cpu_s = sum(r["cpu_s"] for r in rs)
    return {
        "rps": n / wall if wall else 0.0,
        "cpu_us": cpu_s * 1e6 / n if n else float("nan"),
        "p50": statistics.median(r["p50_us"] for r in rs),
        "p99": max(r["p99_us"] for r in rs),
        "requests": n,
        "errors": sum(r["errors"] for r in rs),
    }


def write_report(
    a: argparse.Namespace,
    results: dict[tuple[str, int, str], list[dict[str, Any]]],
    conns: dict[tuple[str, int, str], int],
    versions: dict[str, str],
    skipped: dict[str, str],
    pinned: bool,
    seconds: float,
) -> None:
    s = {k: summarize(v) for k, v in results.items()}
    cells = sorted({(k[0], k[1]) for k in s}, key=lambda x: (x[0], x[1]))
    peers = ["httpx", "aiohttp", "requests", "pyreqwest-async", "pyreqwest-sync"]
    today = datetime.date.today().isoformat()
    lines = [
        f"# Python benchmark — {today}",
        "",
        "GET `/bytes/1024` from the wirecore test server (release build, 1 worker thread, "
        "request log off"
        + (", pinned to CPU 0" if pinned else "")
        + "), closed loop with C requests in flight on one shared client (async clients: C "
        "tasks on one asyncio loop; sync clients: C threads). HTTP/1.1 over plain TCP, HTTP/2 "
        "over TLS (ALPN). Each (client, cell, round) is a fresh worker process"
        + (" pinned to CPU 1" if pinned else "")
        + f": {a.warmup}s warm-up, then at most {a.duration}s or "
        f"{a.max_requests // a.rounds} requests measured; {a.rounds} rounds per cell in "
        "rotating client order. CPU is getrusage(RUSAGE_SELF) user+sys of the worker over the "
        "measured window ÷ requests. Compare ratios within this run only.",
        "",
        f"- command: `make bench-python` (`{' '.join(sys.argv[:1])} --server … --out {a.out}`)",
        (
            f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
            f"Linux {platform.release()}, Python {platform.python_version()}, load average at the "
            f"end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; run took {seconds:.0f}s"
        ),
        "- clients: "
        + ", ".join(f"{c} {v}".strip() for c, v in sorted(versions.items()))
        + " (wirecore: release wheel, config = defaults + test CA + "
        "pools sized for C; peers: defaults + CA, pools sized for C)",
    ]
    if skipped:
        lines.append("- not run: " + ", ".join(f"{c} ({why})" for c, why in skipped.items()))
    lines += [
        "",
        (
            "## Ratios wirecore / peer (requests/s: higher is better; CPU per request: lower is "
            "better)"
        ),
        "",
        "| proto | C | wirecore | peer | rps ÷ peer | CPU ÷ peer |",
        "|---|---:|---|---|---:|---:|",
    ]
    for proto, conc in cells:
        for mine in ("wirecore-async", "wirecore-sync"):
            if (proto, conc, mine) not in s:
                continue
            w = s[(proto, conc, mine)]
            for peer in peers:
                if (proto, conc, peer) not in s:
                    continue
                o = s[(proto, conc, peer)]
                rps = w["rps"] / o["rps"] if o["rps"] else float("inf")
                cpu_ratio = w["cpu_us"] / o["cpu_us"] if o["cpu_us"] else float("nan")
                lines.append(
                    f"| {proto} | {conc} | {mine} | {peer} | {rps:.2f} | {cpu_ratio:.2f} |"
                )
    lines += [
        "",
        "## Figures",
        "",
        (
            "| proto | C | client | req/s | p50 µs | p99 µs | CPU-µs/req | conns opened | "
            "requests | errors |"
        ),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for proto, conc in cells:
        for client in [*CLIENTS_H1]:
            key = (proto, conc, client)
            if key not in s:
                continue
            f = s[key]
            lines.append(
                f"| {proto} | {conc} | {client} | {f['rps']:.0f} | {f['p50']:.0f} | "
                f"{f['p99']:.0f} | {f['cpu_us']:.1f} | {conns.get(key, 0)} | "
                f"{f['requests']} | {f['errors']} |"
            )
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())

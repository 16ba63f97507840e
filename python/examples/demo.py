"""wirecore from Python: blocking and asyncio requests, streaming, errors, stats.

    python demo.py [BASE_URL]

Without BASE_URL it starts the wirecore test server ($WIRECORE_TESTSERVER) for the run.
This file is also the typed example that `make lint-python` checks with mypy --strict.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import wirecore


def blocking(base: str, ca: str | None) -> None:
    config: wirecore.Config = {"pool": {"max_idle_per_host": 8}}
    if ca:
        config["tls"] = {"ca_files": [ca]}
    with wirecore.Client(config) as client:
        r = client.get(f"{base}/json")
        doc: dict[str, Any] = r.json()
        print(f"sync   GET /json      -> {r.status_code} {r.http_version} name={doc['name']}")
        r = client.post(f"{base}/echo", json={"hello": "wirecore"})
        print(f"sync   POST /echo     -> {r.status_code} body={r.json()['body']}")
        with client.stream("GET", f"{base}/stream?chunks=4&size=256") as s:
            sizes = [len(c) for c in s.iter_bytes()]
        print(f"sync   stream         -> chunks={sizes}")

        def chunks() -> Iterator[bytes]:
            for i in range(16):
                yield bytes([i]) * 4096

        up = client.post(f"{base}/upload", content=chunks(), priority="high")
        print(f"sync   streamed upload -> {up.status_code} {up.json()}")
        try:
            client.get(f"{base}/delay/500", timeout=0.05)
        except wirecore.TimeoutError as e:
            print(f"sync   timeout        -> {type(e).__name__} code={e.code}")


async def concurrent(base: str, ca: str | None, n: int) -> wirecore.AsyncClient:
    client = wirecore.AsyncClient(tls={"ca_files": [ca]} if ca else {})
    responses = await asyncio.gather(*(client.get(f"{base}/bytes/1024") for _ in range(n)))
    ok = sum(r.status_code == 200 for r in responses)
    reused = sum(r.reused for r in responses)
    t: wirecore.Timings = responses[-1].timings
    print(f"async  {n} x GET /1k  -> {ok} ok, {reused} on reused connections, ttfb={t.ttfb:.4f}s")
    return client


def summarize(stats: dict[str, Any]) -> None:
    keep = ("requests_total", "responses_by_status_class", "errors_by_code", "latency", "pool")
    print(json.dumps({k: stats[k] for k in keep if k in stats}, indent=2))


def main() -> int:
    server: subprocess.Popen[bytes] | None = None
    ca: str | None = None
    if len(sys.argv) > 1:
        base = sys.argv[1].rstrip("/")
    else:
        binary = os.environ.get("WIRECORE_TESTSERVER")
        if not binary:
            print("usage: demo.py BASE_URL (or set WIRECORE_TESTSERVER)", file=sys.stderr)
            return 2
        server = subprocess.Popen(
            [binary, "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert server.stdout is not None
        info: dict[str, Any] = json.loads(server.stdout.readline())
        base, ca = info["https"], info["ca"]
    try:
        print(f"wirecore {wirecore.__version__} against {base}")
        blocking(base, ca)
        client = asyncio.run(concurrent(base, ca, 64))
        print("async client stats:")
        summarize(client.stats())
        asyncio.run(client.aclose())
    finally:
        if server is not None:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.close()
            server.stdout.close()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

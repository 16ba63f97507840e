"""The Python side of the WAN benchmark (bench/wan/wan.py): httpx (the default client, HTTP/1.1
as it ships) vs wirecore's AsyncClient. argv: URL N CA_PEM. Prints
``latency CLIENT MODE MS,MS,...`` for 200 sequential, then 200 concurrent GETs, each mode on a
fresh client. A concurrent request that fails (httpx's pool timeout, 5 s by default, when it
cannot open 200 connections in time) is counted in a ``failed CLIENT MODE N`` line."""

import asyncio
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

import wirecore


async def run(
    name: str,
    make: Callable[[], Any],
    get: Callable[[Any], Awaitable[None]],
    close: Callable[[Any], Awaitable[None]],
    n: int,
) -> None:
    client = make()
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        await get(client)
        ms.append((time.perf_counter() - t) * 1e3)
    await close(client)
    print(f"latency {name} sequential {','.join(f'{m:.2f}' for m in ms)}", flush=True)

    client = make()
    start = time.perf_counter()

    async def timed() -> float | None:
        try:
            await get(client)
        except Exception:
            return None
        return (time.perf_counter() - start) * 1e3

    got = await asyncio.gather(*(timed() for _ in range(n)))
    await close(client)
    ms = [m for m in got if m is not None]
    print(f"latency {name} concurrent {','.join(f'{m:.2f}' for m in ms)}", flush=True)
    if len(ms) < n:
        print(f"failed {name} concurrent {n - len(ms)}", flush=True)


async def main() -> None:
    url, n, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context(cafile=ca)

    async def hx_get(c: httpx.AsyncClient) -> None:
        r = await c.get(url)
        r.raise_for_status()

    async def hx_close(c: httpx.AsyncClient) -> None:
        await c.aclose()

    async def wc_get(c: wirecore.AsyncClient) -> None:
        r = await c.get(url)
        r.raise_for_status()

    async def wc_close(c: wirecore.AsyncClient) -> None:
        await c.aclose()

    await run("httpx", lambda: httpx.AsyncClient(verify=ctx), hx_get, hx_close, n)
    await run(
        "wirecore", lambda: wirecore.AsyncClient({"tls": {"ca_files": [ca]}}), wc_get, wc_close, n
    )


asyncio.run(main())

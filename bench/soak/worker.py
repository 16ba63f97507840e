"""Soak worker for Python (bench/soak/soak.py starts it).

argv: SECONDS (BASE_URL CONFIG_JSON)...: until SECONDS pass, build an AsyncClient from the next
(BASE_URL, CONFIG_JSON) pair, send 40 mixed requests 4 at a time through it, close it. Prints
``err START_MS END_MS CODE`` per failed request and ``tick NOW_MS OK ERR GAUGE`` about once a
second (GAUGE: live Python objects, for leaks the RSS would hide)."""

import asyncio
import gc
import json
import sys
import time

import wirecore

PATHS = ["/bytes/1024", "/bytes/65536", "/echo", "/json"]
BODY = b"x" * 4096


def now_ms() -> int:
    return int(time.time() * 1000)


class Counts:
    ok = 0
    err = 0


async def one(client: wirecore.AsyncClient, base: str, i: int, counts: Counts) -> None:
    path = PATHS[i % len(PATHS)]
    start = now_ms()
    try:
        if path == "/echo":
            r = await client.request("POST", base + path, content=BODY)
        else:
            r = await client.request("GET", base + path)
        if r.status_code != 200:
            raise RuntimeError(f"status_{r.status_code}")
        counts.ok += 1
    except (wirecore.WirecoreError, RuntimeError) as e:
        counts.err += 1
        code = getattr(e, "code", str(e))
        print(f"err {start} {now_ms()} {code}", flush=True)


async def task(client: wirecore.AsyncClient, base: str, first: int, counts: Counts) -> None:
    for i in range(first, first + 10):
        await one(client, base, i, counts)
        await asyncio.sleep(0.05)


async def ticker(counts: Counts, deadline: float) -> None:
    while time.monotonic() < deadline:
        print(f"tick {now_ms()} {counts.ok} {counts.err} {len(gc.get_objects())}", flush=True)
        await asyncio.sleep(1)


async def main() -> None:
    seconds = float(sys.argv[1])
    kinds = [(sys.argv[i], json.loads(sys.argv[i + 1])) for i in range(2, len(sys.argv), 2)]
    deadline = time.monotonic() + seconds
    counts = Counts()
    tick = asyncio.create_task(ticker(counts, deadline))
    n = 0
    while time.monotonic() < deadline:
        base, config = kinds[n % len(kinds)]
        client = wirecore.AsyncClient(config)
        try:
            await asyncio.gather(*(task(client, base, n + 10 * t, counts) for t in range(4)))
        finally:
            await client.aclose()
        n += 1
    await tick


if __name__ == "__main__":
    asyncio.run(main())

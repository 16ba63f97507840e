"""Defects of issue 11 as a new user met them, from Python: clients dropped without ``close()``
keeping their sockets."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Callable

import wirecore
from conftest import Server


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settled_fds(start: int, within: float = 2.0) -> int:
    """Polls the open fd count until it is back at `start` ± 5; returns the last count."""
    deadline = time.monotonic() + within
    while True:
        n = _open_fds()
        if abs(n - start) <= 5 or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def _fds_after(make_and_use: Callable[[], None], srv: Server) -> tuple[int, int]:
    make_and_use()  # the runtime, the completer and the like exist before the count
    gc.collect()
    srv.wait_for(lambda c: c["connections_active"] == 0)
    start = _open_fds()
    for _ in range(200):
        make_and_use()
        gc.collect()
    return start, _settled_fds(start)


def test_dropped_clients_close_their_connections(srv: Server) -> None:
    def once() -> None:
        client = wirecore.Client()
        assert client.get(f"{srv.http}/bytes/1").status_code == 200
        del client

    start, end = _fds_after(once, srv)
    assert abs(end - start) <= 5, f"{end - start} more fds after 200 dropped clients"


def test_dropped_async_clients_close_their_connections(srv: Server) -> None:
    loop = asyncio.new_event_loop()

    async def use() -> None:
        client = wirecore.AsyncClient()
        assert (await client.get(f"{srv.http}/bytes/1")).status_code == 200
        del client

    try:
        start, end = _fds_after(lambda: loop.run_until_complete(use()), srv)
    finally:
        loop.close()
    assert abs(end - start) <= 5, f"{end - start} more fds after 200 dropped async clients"

"""Starts the shared test server once per session (it dies with our stdin) and talks to its
control port with the standard library, so the client under test never checks itself."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import pytest_asyncio

import wirecore

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


async def await_until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Polls `cond` until it holds, letting the event loop run in between; fails naming `what`
    after `timeout` seconds. Tests wait for what the engine or the server does asynchronously
    with this (or `Server.wait_for`), never with a bare sleep."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what}")
        await asyncio.sleep(0.005)


class Server:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.http: str = info["http"]
        self.https: str = info["https"]
        self.control: str = info["control"]
        self.ca: str = info["ca"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.control}{path}", data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        with _OPENER.open(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self._call("POST", "/_control/reset")

    def counters(self) -> dict[str, Any]:
        c: dict[str, Any] = self._call("GET", "/_control/counters")
        return c

    def script(self, entry: dict[str, Any]) -> None:
        self._call("POST", "/_control/script", entry)

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Polls the counters until `pred` holds; returns the last counters either way."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.counters()
            if pred(c) or time.monotonic() > deadline:
                return c
            time.sleep(0.01)


def _server_binary() -> str:
    path = os.environ.get("WIRECORE_TESTSERVER")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            "set WIRECORE_TESTSERVER to the wirecore-testserver binary "
            "(cargo build -p wirecore-testserver); `make test-python` does"
        )
    return path


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    proc = subprocess.Popen(
        [_server_binary(), "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("wirecore-testserver exited before printing its addresses")
    try:
        yield Server(json.loads(line))
    finally:
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def srv(server: Server) -> Server:
    """The server with counters, scripts and the request log reset."""
    server.reset()
    return server


@pytest.fixture
def tls_config(server: Server) -> dict[str, Any]:
    return {"tls": {"ca_files": [server.ca]}}


@pytest.fixture
def client(srv: Server, tls_config: dict[str, Any]) -> Iterator[wirecore.Client]:
    with wirecore.Client(tls_config) as c:
        yield c


@pytest_asyncio.fixture
async def aclient(srv: Server, tls_config: dict[str, Any]) -> Any:
    async with wirecore.AsyncClient(tls_config) as c:
        yield c

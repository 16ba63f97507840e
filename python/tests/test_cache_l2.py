"""The cache's Redis second level is language-neutral: an entry Python stores is a hit in a Node
process and the other way round (one upstream request each). Needs redis-server (`make setup`)
and the Node addon built in node/ (`make test-python` builds it)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wirecore
from conftest import Server

REPO = Path(__file__).resolve().parents[2]

# Node: GET `a` (stored by Python), then GET `b` and wait until Node has written it to Redis.
NODE_SCRIPT = """
const { Client } = require(process.argv[1])
const [config, a, b] = [JSON.parse(process.argv[2]), process.argv[3], process.argv[4]]
;(async () => {
  const c = new Client(config)
  const ra = await (await c.get(a)).json()
  const rb = await (await c.get(b)).json()
  const until = Date.now() + 10000
  while (c.stats().cache.l2Stores < 1 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5))
  }
  const s = c.stats().cache
  const out = { a: ra.served, b: rb.served, l2Hits: s.l2Hits, l2Stores: s.l2Stores }
  console.log(JSON.stringify(out))
  await c.close()
})().catch((e) => { console.error(e); process.exit(1) })
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def redis_url() -> Iterator[str]:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed: run `make setup`"
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def _served(srv: Server, path: str) -> int:
    n: int = srv.counters()["per_path_requests"].get(path, 0)
    return n


def test_python_and_node_share_an_entry_through_redis(srv: Server, redis_url: str) -> None:
    addon = REPO / "node"
    assert any(addon.glob("*.node")), "the Node addon is not built in node/: run `make node`"
    config: dict[str, Any] = {
        "cache": {
            "enabled": True,
            "l2": {"url": redis_url, "key_prefix": "wc-py-node:", "timeout_ms": 2000},
        }
    }
    a = srv.http + "/cache/py-node-a?cache_control=max-age=600"
    b = srv.http + "/cache/py-node-b?cache_control=max-age=600"
    with wirecore.Client(config) as c:
        assert c.get(a).json()["served"] == 1
        deadline = time.monotonic() + 10
        while c.stats()["cache"]["l2_stores"] < 1:
            assert time.monotonic() < deadline, "Python's entry did not reach Redis"
            time.sleep(0.005)
    out = subprocess.run(
        ["node", "-e", NODE_SCRIPT, str(addon), json.dumps(config), a, b],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert out.returncode == 0, out.stderr
    node = json.loads(out.stdout.strip().splitlines()[-1])
    assert node == {"a": 1, "b": 1, "l2Hits": 1, "l2Stores": 1}, node
    # A fresh Python client (its own memory): b comes from Node's entry.
    with wirecore.Client(config) as c:
        assert c.get(b).json()["served"] == 1
        cache = c.stats()["cache"]
        assert (cache["l2_hits"], cache["hits"], cache["misses"]) == (1, 1, 0), cache
    assert _served(srv, "/cache/py-node-a") == 1
    assert _served(srv, "/cache/py-node-b") == 1

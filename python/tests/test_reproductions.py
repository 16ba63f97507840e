"""The three defects of issue 11 as a new user met them, from Python: credentials leaked across
origins by a redirect, a PUT body lost (or stalled) after a 301, and clients dropped without
``close()`` keeping their sockets."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any, Callable
from urllib.parse import quote

import wirecore
from conftest import Server


def _redirect(srv: Server, base: str, target: str, status: int) -> str:
    return f"{base}/redirect-to?url={quote(target, safe='')}&status={status}"


def test_cross_origin_redirect_drops_default_authorization(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    cfg = {**tls_config, "default_headers": {"Authorization": "Bearer SECRET"}}
    with wirecore.Client(cfg) as c:
        # Same origin: the header goes along.
        r = c.get(_redirect(srv, srv.http, f"{srv.http}/headers", 302))
        assert r.status_code == 200
        assert r.json()["headers"].get("authorization") == "Bearer SECRET"
        # {http} is 127.0.0.1, {https} is localhost on another port: another origin.
        r = c.get(_redirect(srv, srv.http, f"{srv.https}/headers", 302))
        assert r.status_code == 200
        assert r.url.startswith(srv.https)
        assert "authorization" not in r.json()["headers"]
        # A per-request Authorization is stripped too.
        r = c.get(
            _redirect(srv, srv.http, f"{srv.https}/headers", 302),
            headers={"Authorization": "Bearer OTHER"},
        )
        assert "authorization" not in r.json()["headers"]
    # What the second origin saw, from the server's own log.
    log = srv._call("GET", "/_control/requests")
    at_other = [e for e in log if e["path"] == "/headers" and e["tls"]]
    assert len(at_other) == 2
    for e in at_other:
        assert "authorization" not in {k.lower() for k in e["headers"]}, e


def test_put_after_301_keeps_method_and_body(client: wirecore.Client, srv: Server) -> None:
    body = b'{"important":"data"}'
    r = client.put(_redirect(srv, srv.http, "/echo", 301), content=body, timeout=10)
    assert r.status_code == 200
    got = r.json()
    assert (got["method"], got["path"], got["body"]) == ("PUT", "/echo", body.decode())
    # With an explicit Content-Length the second hop must not wait for a body that never comes.
    r = client.put(
        _redirect(srv, srv.http, "/echo", 301),
        content=body,
        headers={"content-length": str(len(body))},
        timeout=10,
    )
    got = r.json()
    assert (got["method"], got["body"]) == ("PUT", body.decode())
    assert got["headers"]["content-length"] == str(len(body))


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

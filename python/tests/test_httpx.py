"""wirecore.httpx: httpx.Client / httpx.AsyncClient running on the engine."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import httpx
import pytest

import wirecore
from conftest import Server


def test_sync_transport(srv: Server, tls_config: dict[str, Any]) -> None:
    with httpx.Client(transport=wirecore.httpx.Transport(tls_config)) as c:
        r = c.get(f"{srv.https}/json")
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        assert r.json()["n"] == 42
        r = c.post(f"{srv.http}/echo", json={"a": 1}, headers={"X-T": "1"}, params={"q": "v"})
        echo = r.json()
        assert echo["body"] == '{"a":1}'
        assert echo["query"] == "q=v"
        assert echo["headers"]["x-t"] == "1"
        assert echo["headers"]["user-agent"].startswith("python-httpx/")
        # The engine decodes; httpx sees the plain body and no Content-Encoding.
        r = c.get(f"{srv.http}/gzip?size=300")
        assert len(r.content) == 300 and "content-encoding" not in r.headers
        # Redirects are httpx's: the engine hands back the 302.
        r = c.get(f"{srv.http}/redirect/2")
        assert r.status_code == 302
        r = c.get(f"{srv.http}/redirect/2", follow_redirects=True)
        assert r.status_code == 200 and len(r.history) == 2
        with pytest.raises(httpx.HTTPStatusError):
            c.get(f"{srv.http}/status/500").raise_for_status()
        with c.stream("GET", f"{srv.http}/stream?chunks=3&size=100&delay_ms=10") as s:
            chunks = list(s.iter_raw())
        assert b"".join(chunks) == bytes(i % 251 for i in range(100)) * 3
        assert len(chunks) >= 2


def test_sync_transport_errors(srv: Server, tls_config: dict[str, Any]) -> None:
    t = wirecore.httpx.Transport(tls_config)
    with httpx.Client(transport=t) as c:
        with pytest.raises(httpx.ConnectError) as e:
            c.get("http://127.0.0.1:9/")
        assert isinstance(e.value.__cause__, wirecore.ConnectError)
        with pytest.raises(httpx.ConnectError):
            c.get(f"{srv.info['bad_tls']}/")
        with pytest.raises(httpx.ReadError):
            c.get(f"{srv.http}/reset")
    with httpx.Client(transport=wirecore.httpx.Transport(timeouts={"total_ms": 100})) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"{srv.http}/hang")


def test_transport_shares_an_existing_client(srv: Server, tls_config: dict[str, Any]) -> None:
    engine = wirecore.Client(tls_config)
    with httpx.Client(transport=wirecore.httpx.Transport(engine)) as c:
        assert c.get(f"{srv.http}/bytes/5").status_code == 200
    assert engine.stats()["requests_total"] == 1
    with pytest.raises(TypeError):
        wirecore.httpx.Transport(engine, user_agent="x")


@pytest.mark.asyncio
async def test_async_transport(srv: Server, tls_config: dict[str, Any]) -> None:
    transport = wirecore.httpx.AsyncTransport(tls_config)
    async with httpx.AsyncClient(transport=transport) as c:
        rs = await asyncio.gather(*(c.get(f"{srv.https}/bytes/{n}") for n in range(1, 17)))
        assert [len(r.content) for r in rs] == list(range(1, 17))
        assert {r.http_version for r in rs} == {"HTTP/2"}
        r = await c.put(f"{srv.http}/echo", content=b"xyz")
        assert r.json()["body"] == "xyz"
        async with c.stream("GET", f"{srv.http}/stream?chunks=3&size=10&delay_ms=10") as s:
            body = b"".join([b async for b in s.aiter_bytes()])
        assert len(body) == 30
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:9/")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.get(f"{srv.http}/hang"), 0.2)
    counters = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert counters["requests_cancelled"] == 1
    assert counters["connections_accepted"] == 2


def test_httpx_timeouts_become_engine_overrides(srv: Server, tls_config: dict[str, Any]) -> None:
    cfg = {**tls_config, "timeouts": {"read_idle_ms": 10000}, "retry": {"enabled": False}}
    transport = wirecore.httpx.Transport(cfg)
    with httpx.Client(transport=transport, timeout=httpx.Timeout(5.0, read=0.1)) as c:
        t = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"{srv.http}/delay/2000")
        assert time.monotonic() - t < 5  # below the engine's 10 s; slack for a loaded machine
        # Per request, and `None` leaves the engine's 10 s read timeout in charge.
        assert c.get(f"{srv.http}/delay/300", timeout=None).status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"{srv.http}/delay/2000", timeout=httpx.Timeout(None, read=0.05))


def test_httpx_streams_generator_bodies(srv: Server, tls_config: dict[str, Any]) -> None:
    pieces = [bytes([i]) * 5000 for i in range(100)]
    whole = b"".join(pieces)
    with httpx.Client(transport=wirecore.httpx.Transport(tls_config)) as c:
        r = c.post(f"{srv.http}/upload", content=iter(pieces))
        assert r.json() == {"body_len": len(whole), "crc32": zlib.crc32(whole)}
        # No length was known: the engine streamed it chunked instead of buffering it first.
        echo = c.post(f"{srv.http}/echo", content=iter([b"ab", b"cd"])).json()
    assert echo["body"] == "abcd"
    assert echo["headers"].get("transfer-encoding") == "chunked", echo["headers"]


@pytest.mark.asyncio
async def test_async_httpx_timeouts_and_streamed_bodies(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    pieces = [bytes([i]) * 5000 for i in range(100)]
    whole = b"".join(pieces)

    async def agen() -> Any:
        for p in pieces:
            yield p

    transport = wirecore.httpx.AsyncTransport(tls_config)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, read=0.1)) as c:
        r = await c.post(f"{srv.https}/upload", content=agen())
        assert r.json() == {"body_len": len(whole), "crc32": zlib.crc32(whole)}
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{srv.http}/delay/2000")


def _redirect_to(base: str, target: str) -> str:
    from urllib.parse import quote

    return f"{base}/redirect-to?url={quote(target, safe='')}&status=302"


def test_httpx_redirects_keep_engine_default_headers_with_their_origin(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    cfg = {**tls_config, "default_headers": {"Authorization": "Bearer SECRET", "x-team": "a"}}
    with httpx.Client(transport=wirecore.httpx.Transport(cfg), follow_redirects=True) as c:
        # Same origin: the defaults go along.
        r = c.get(_redirect_to(srv.http, f"{srv.http}/headers"))
        assert r.json()["headers"].get("authorization") == "Bearer SECRET"
        # httpx follows the 302 to another origin: the engine's defaults stay behind, also on
        # a hop back to the first origin.
        r = c.get(_redirect_to(srv.http, f"{srv.https}/headers"))
        assert str(r.url).startswith(srv.https)
        headers = r.json()["headers"]
        assert "authorization" not in headers and "x-team" not in headers, headers
        back = _redirect_to(srv.https, f"{srv.http}/headers")
        r = c.get(_redirect_to(srv.http, back))
        assert len(r.history) == 2
        assert "authorization" not in r.json()["headers"]
        # A new request starts a new chain.
        assert c.get(f"{srv.https}/headers").json()["headers"]["authorization"] == "Bearer SECRET"


@pytest.mark.asyncio
async def test_async_httpx_redirects_keep_engine_default_headers_with_their_origin(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    cfg = {**tls_config, "default_headers": {"Authorization": "Bearer SECRET"}}
    transport = wirecore.httpx.AsyncTransport(cfg)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as c:
        r = await c.get(_redirect_to(srv.http, f"{srv.https}/headers"))
        assert str(r.url).startswith(srv.https)
        assert "authorization" not in r.json()["headers"]
        r = await c.get(_redirect_to(srv.http, f"{srv.http}/headers"))
        assert r.json()["headers"].get("authorization") == "Bearer SECRET"

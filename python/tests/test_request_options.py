"""Per-request options: idempotent, rate_limit_key, balance_key, priority, cache, Timeout,
uploads."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import wirecore
from conftest import Server, await_until


def _fast_retries(cfg: dict[str, Any]) -> dict[str, Any]:
    return {**cfg, "retry": {"backoff_base_ms": 5, "backoff_max_ms": 5}}


# --- idempotent / rate_limit_key --------------------------------------------------------------


def test_idempotent_post_is_retried_only_when_declared(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    with wirecore.Client(_fast_retries(tls_config)) as c:
        srv.script({"path": "/s/p", "replies": [{"status": 503}, {"status": 200, "body": "ok"}]})
        assert c.post(f"{srv.http}/s/p", content=b"x").status_code == 503
        assert srv.counters()["requests"] == 1
        srv.reset()
        srv.script({"path": "/s/p", "replies": [{"status": 503}, {"status": 200, "body": "ok"}]})
        r = c.post(f"{srv.http}/s/p", content=b"x", idempotent=True)
        assert (r.status_code, r.text) == (200, "ok")
        assert srv.counters()["requests"] == 2
        srv.reset()
        srv.script({"path": "/s/g", "replies": [{"status": 503}, {"status": 200}]})
        assert c.get(f"{srv.http}/s/g", idempotent=False).status_code == 503
        assert srv.counters()["requests"] == 1


@pytest.mark.asyncio
async def test_idempotent_async(srv: Server, tls_config: dict[str, Any]) -> None:
    async with wirecore.AsyncClient(_fast_retries(tls_config)) as c:
        srv.script({"path": "/s/p", "replies": [{"status": 503}, {"status": 200, "body": "ok"}]})
        r = await c.put(f"{srv.http}/s/p", json={"a": 1}, idempotent=True)
        assert r.status_code == 200
        assert srv.counters()["requests"] == 2


def test_rate_limit_key_limits_each_key_apart(srv: Server, tls_config: dict[str, Any]) -> None:
    cfg = {
        **tls_config,
        "rate_limit": {
            "enabled": True,
            "scope": "key",
            "requests": 1,
            "per_ms": 60000,
            "mode": "fail",
        },
    }
    with wirecore.Client(cfg) as c:
        assert c.get(f"{srv.http}/bytes/1", rate_limit_key="alice").status_code == 200
        with pytest.raises(wirecore.RateLimitedError):
            c.get(f"{srv.http}/bytes/1", rate_limit_key="alice")
        assert c.get(f"{srv.http}/bytes/1", rate_limit_key="bob").status_code == 200
    assert srv.counters()["requests"] == 2


def test_balance_key_is_checked_by_the_engine_before_io(
    client: wirecore.Client, srv: Server
) -> None:
    # The same bounds and messages as every language (RequestOptions::validate).
    with pytest.raises(wirecore.InvalidRequest, match="balance_key must not be empty"):
        client.get(f"{srv.http}/headers", balance_key="")
    with pytest.raises(ValueError, match="balance_key must be at most 1024 bytes, got 1025"):
        client.get(f"{srv.http}/headers", balance_key="b" * 1025)
    with pytest.raises(TypeError, match="balance_key"):
        client.get(f"{srv.http}/headers", balance_key=7)  # type: ignore[arg-type]
    assert srv.counters()["connections_accepted"] == 0
    # A plain origin is not a service: the key changes nothing there.
    assert client.get(f"{srv.http}/headers", balance_key="b" * 1024).status_code == 200


@pytest.mark.asyncio
async def test_balance_key_async_places_one_key_on_one_endpoint(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    eps = [{"url": srv.info[k]} for k in ("http", "http2", "http3")]
    svc = {"endpoints": eps, "strategy": "consistent_hash", "hash": {"header": "x-user"}}
    async with wirecore.AsyncClient({**tls_config, "services": {"svc": svc}}) as c:
        for i in range(8):
            r = await c.get("http://svc/json", headers={"x-user": f"u{i}"}, balance_key="alice")
            assert r.status_code == 200
        assert c.stats()["pool"]["connects"] == 1


# --- priority ---------------------------------------------------------------------------------


def test_priority_is_sent_as_the_rfc_9218_header(client: wirecore.Client, srv: Server) -> None:
    for given, sent in [(0, "u=0"), (7, "u=7"), ("high", "u=1"), ("LOW", "u=5")]:
        r = client.get(f"{srv.http}/headers", priority=given)
        assert r.json()["headers"]["priority"] == sent
    assert "priority" not in client.get(f"{srv.http}/headers").json()["headers"]


def test_priority_takes_every_languages_forms_and_replaces_the_header(
    client: wirecore.Client, srv: Server
) -> None:
    # The forms and the rule are the engine's (wirecore::Priority::parse, RequestOptions).
    for given, sent in [("2", "u=2"), ("highest", "u=0"), ("lowest", "u=7"), ("u=6, i", "u=6, i")]:
        r = client.get(f"{srv.http}/headers", priority=given)
        assert r.json()["headers"]["priority"] == sent, given
    r = client.get(f"{srv.http}/headers", headers={"Priority": "u=6"}, priority="high")
    assert r.json()["headers"]["priority"] == "u=1"
    r = client.get(f"{srv.http}/headers", headers={"Priority": "u=6;x, i"})
    assert r.json()["headers"]["priority"] == "u=6;x, i"


def test_bad_priorities_fail_before_io(client: wirecore.Client, srv: Server) -> None:
    with pytest.raises(ValueError, match="got 8"):
        client.get(f"{srv.http}/headers", priority=8)
    with pytest.raises(ValueError, match="urgent"):
        client.get(f"{srv.http}/headers", priority="urgent")
    with pytest.raises(ValueError, match="request option priority"):
        client.get(f"{srv.http}/headers", priority=-1)
    with pytest.raises(TypeError, match="priority"):
        client.get(f"{srv.http}/headers", priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="priority"):
        client.get(f"{srv.http}/headers", priority=True)
    with pytest.raises(TypeError, match="idempotent"):
        client.post(f"{srv.http}/echo", idempotent="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rate_limit_key"):
        client.get(f"{srv.http}/headers", rate_limit_key=1)  # type: ignore[arg-type]
    assert srv.counters()["connections_accepted"] == 0


# --- cache mode / cache status -------------------------------------------------------------


def test_cache_mode_and_status_sync(srv: Server, tls_config: dict[str, Any]) -> None:
    with wirecore.Client({**tls_config, "cache": {"enabled": True}}) as c:
        url = f"{srv.http}/cache/py?cache_control=max-age=0&etag=v1"
        r = c.get(url, cache="only-if-cached")
        assert (r.status_code, r.cache_status) == (504, "miss")
        assert c.get(url).cache_status == "miss"
        assert c.get(url, cache="force-cache").cache_status == "stale"
        assert c.get(url, cache="no-cache").cache_status == "revalidated"
        assert c.get(url, cache="No-Store").cache_status is None
        with c.stream("GET", url, cache="force-cache") as s:
            assert s.cache_status == "stale"
        assert srv.counters()["requests"] == 3
    with wirecore.Client(tls_config) as plain:
        assert plain.get(f"{srv.http}/json").cache_status is None


@pytest.mark.asyncio
async def test_cache_mode_and_status_async(srv: Server, tls_config: dict[str, Any]) -> None:
    async with wirecore.AsyncClient({**tls_config, "cache": {"enabled": True}}) as c:
        url = f"{srv.http}/cache/py-async?cache_control=max-age=60"
        assert (await c.get(url, cache="only-if-cached")).status_code == 504
        assert (await c.get(url)).cache_status == "miss"
        assert (await c.get(url, cache="only-if-cached")).cache_status == "hit"
        r = await c.request("GET", url, cache="reload")
        assert (r.cache_status, r.json()["served"]) == ("miss", 2)


def test_bad_cache_modes_fail_before_io(client: wirecore.Client, srv: Server) -> None:
    with pytest.raises(ValueError, match="request option cache must be one of default, no-store"):
        client.get(f"{srv.http}/json", cache="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache must be a str"):
        client.get(f"{srv.http}/json", cache=1)  # type: ignore[arg-type]
    assert srv.counters()["connections_accepted"] == 0


async def _queued(c: wirecore.AsyncClient, n: int) -> None:
    for _ in range(500):
        if c.stats()["pool"]["pending"] == n:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never saw {n} waiting: {c.stats()['pool']}")


@pytest.mark.asyncio
async def test_urgent_requests_overtake_queued_ones(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    order: list[str] = []
    cfg = {**tls_config, "pool": {"max_connections_per_host": 1}}
    async with wirecore.AsyncClient(cfg) as c:

        async def send(name: str, path: str, priority: int | None = None) -> None:
            await c.get(f"{srv.http}{path}", priority=priority)
            order.append(name)

        seen = srv.counters()["requests"]
        tasks = [asyncio.create_task(send("busy", "/delay/300"))]
        await await_until(lambda: srv.counters()["requests"] > seen, "busy reached the server")
        for i in range(3):
            tasks.append(asyncio.create_task(send(f"low-{i}", "/delay/5", 7)))
            await _queued(c, i + 1)
        tasks.append(asyncio.create_task(send("default", "/delay/5")))
        await _queued(c, 4)
        tasks.append(asyncio.create_task(send("urgent", "/delay/5", 0)))
        await _queued(c, 5)
        await asyncio.gather(*tasks)
    assert order == ["busy", "urgent", "default", "low-0", "low-1", "low-2"]


# --- Timeout ----------------------------------------------------------------------------------


def test_timeout_phases(srv: Server, tls_config: dict[str, Any]) -> None:
    cfg = {
        **tls_config,
        "timeouts": {"read_idle_ms": 10000, "pool_acquire_ms": 10000},
        "pool": {"max_connections_per_host": 1},
        "retry": {"enabled": False},
    }
    with wirecore.Client(cfg) as c:
        t = time.monotonic()
        with pytest.raises(wirecore.ReadTimeout, match="100 ms"):
            c.get(f"{srv.http}/delay/2000", timeout=wirecore.Timeout(read=0.1))
        # Far below the config's 10 s (the error itself proves the override; this only catches
        # a stall), far above 100 ms so that a loaded machine passes.
        assert time.monotonic() - t < 5
        with pytest.raises(wirecore.TotalTimeout):
            c.get(f"{srv.http}/delay/2000", timeout=wirecore.Timeout(total=0.1))
        # Arrivals, not requests in flight: the server still sleeps on the two timed-out requests.
        seen = srv.counters()["requests"]
        busy = threading.Thread(target=c.get, args=(f"{srv.http}/delay/500",))
        busy.start()
        k = srv.wait_for(lambda k: k["requests"] > seen)
        assert k["requests"] > seen, "the busy request reached the server"
        t = time.monotonic()
        with pytest.raises(wirecore.PoolTimeout):
            c.get(f"{srv.http}/bytes/1", timeout=wirecore.Timeout(pool=0.05))
        assert time.monotonic() - t < 5
        busy.join()
        assert c.get(f"{srv.http}/delay/200").status_code == 200
        with pytest.raises(wirecore.InvalidRequest, match=r"timeout\.read"):
            c.get(f"{srv.http}/bytes/1", timeout=wirecore.Timeout(read=0))
        with pytest.raises(TypeError, match=r"timeout\.connect"):
            c.get(f"{srv.http}/bytes/1", timeout=wirecore.Timeout(connect="1"))  # type: ignore[arg-type]


# --- streamed uploads -------------------------------------------------------------------------

_PIECES = [bytes([i % 251]) * (1000 + i * 37) for i in range(200)]
_WHOLE = b"".join(_PIECES)


def _expect(r: wirecore.Response, data: bytes = _WHOLE) -> None:
    assert r.status_code == 200
    assert r.json() == {"body_len": len(data), "crc32": zlib.crc32(data)}


def test_upload_from_a_generator_a_list_and_files(
    client: wirecore.Client, srv: Server, tmp_path: Any
) -> None:
    def gen() -> Iterator[bytes]:
        yield from _PIECES

    _expect(client.post(f"{srv.http}/upload", content=gen()))
    _expect(client.put(f"{srv.https}/upload", content=iter(_PIECES)))  # h2
    _expect(client.post(f"{srv.http}/upload", content=io.BytesIO(_WHOLE)))
    path = tmp_path / "body.bin"
    path.write_bytes(_WHOLE * 10)
    with open(path, "rb") as f:
        _expect(client.post(f"{srv.http}/upload", content=f), _WHOLE * 10)
    with client.stream("POST", f"{srv.http}/upload", content=gen()) as r:
        got = json.loads(b"".join(r.iter_bytes()))
    assert got == {"body_len": len(_WHOLE), "crc32": zlib.crc32(_WHOLE)}


def test_files_of_known_size_send_content_length(
    client: wirecore.Client, srv: Server, tmp_path: Any
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 1000)
    with open(path, "rb") as f:
        f.seek(10)
        echo = client.post(f"{srv.http}/echo", content=f).json()
    assert echo["headers"]["content-length"] == "9990"
    assert "transfer-encoding" not in echo["headers"]
    assert echo["body_len"] == 9990
    echo = client.post(f"{srv.http}/echo", content=io.BytesIO(b"abc")).json()
    assert (echo["headers"]["content-length"], echo["body"]) == ("3", "abc")

    def gen() -> Iterator[bytes]:
        yield b"abc"

    echo = client.post(f"{srv.http}/echo", content=gen()).json()
    assert echo["headers"]["transfer-encoding"] == "chunked"


def test_a_failing_generator_raises_its_error_and_the_pool_recovers(
    client: wirecore.Client, srv: Server
) -> None:
    def bad() -> Iterator[bytes]:
        yield b"x" * 1000
        raise ValueError("disk on fire")

    with pytest.raises(ValueError, match="disk on fire"):
        client.post(f"{srv.http}/upload", content=bad())
    with pytest.raises(TypeError, match="must yield bytes"):
        client.post(f"{srv.http}/upload", content=iter([b"a", 1]))  # type: ignore[list-item]
    _expect(client.post(f"{srv.http}/upload", content=iter(_PIECES)))


def test_an_async_iterable_needs_the_async_client(client: wirecore.Client, srv: Server) -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b"x"

    with pytest.raises(TypeError, match="AsyncClient"):
        client.post(f"{srv.http}/upload", content=agen())


@pytest.mark.asyncio
async def test_async_upload_from_async_and_sync_iterables(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    async def agen() -> AsyncIterator[bytes]:
        for p in _PIECES:
            yield p
            if len(p) % 3 == 0:
                await asyncio.sleep(0)

    _expect(await aclient.post(f"{srv.http}/upload", content=agen()))
    _expect(await aclient.post(f"{srv.https}/upload", content=agen()))
    _expect(await aclient.post(f"{srv.http}/upload", content=iter(_PIECES)))
    results = await asyncio.gather(
        *(aclient.post(f"{srv.https}/upload", content=agen()) for _ in range(20))
    )
    for r in results:
        _expect(r)


@pytest.mark.asyncio
async def test_async_failing_source_raises_its_error(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    async def bad() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.sleep(0.01)
        raise ValueError("upstream went away")

    with pytest.raises(ValueError, match="upstream went away"):
        await aclient.post(f"{srv.http}/upload", content=bad())
    _expect(await aclient.post(f"{srv.http}/upload", content=iter(_PIECES)))


@pytest.mark.asyncio
async def test_cancelling_a_streaming_upload_cancels_the_request(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    produced = 0

    async def slow() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1
            yield b"y" * 1024
            await asyncio.sleep(0.01)

    task = asyncio.create_task(aclient.post(f"{srv.http}/upload", content=slow()))
    await await_until(lambda: produced >= 5, "the engine reads the upload")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    k = srv.wait_for(lambda k: k["requests_in_flight"] == 0)
    assert k["requests_in_flight"] == 0
    n = produced
    await asyncio.sleep(0.1)  # proving that nothing more is read takes a wait
    assert produced == n, "the source is no longer read after the cancel"
    _expect(await aclient.post(f"{srv.http}/upload", content=iter(_PIECES)))


# --- multipart files, basic auth --------------------------------------------------------------


def _parts(echo: dict[str, Any]) -> list[Any]:
    import email.parser
    import email.policy

    ctype = echo["headers"]["content-type"]
    raw = f"Content-Type: {ctype}\r\n\r\n".encode() + echo["body"].encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert msg.is_multipart()
    return list(msg.iter_parts())


def test_files_are_sent_as_multipart(client: wirecore.Client, srv: Server, tmp_path: Any) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n" * 5000)
    with open(path, "rb") as f:
        r = client.post(
            f"{srv.http}/echo",
            data={"kind": "weekly", "tags": ["x", "y"]},
            files=[
                ("report", f),
                ("note", ("note.txt", b"hello", "text/plain")),
                ("blob", (None, "raw text")),
            ],
        )
    echo = r.json()
    assert echo["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    # Every part had a known size: a Content-Length, not chunked.
    assert int(echo["headers"]["content-length"]) == echo["body_len"]
    parts = _parts(echo)
    got = [(p.get_param("name", header="content-disposition"), p.get_filename()) for p in parts]
    assert got == [
        ("kind", None),
        ("tags", None),
        ("tags", None),
        ("report", "report.csv"),
        ("note", "note.txt"),
        ("blob", None),
    ]
    assert parts[3].get_content_type() == "text/csv"
    assert parts[3].get_payload(decode=True) == path.read_bytes()
    assert parts[4].get_payload(decode=True) == b"hello"
    assert parts[0].get_payload() == "weekly"


@pytest.mark.asyncio
async def test_async_multipart_from_an_unsized_stream(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    class Pipe:
        """A file-like object without a size (a pipe, a socket)."""

        def __init__(self) -> None:
            self.left = [b"chunk-1;", b"chunk-2"]

        def read(self, n: int = -1) -> bytes:
            return self.left.pop(0) if self.left else b""

    r = await aclient.post(f"{srv.http}/echo", files={"f": ("p.bin", Pipe())})
    echo = r.json()
    assert echo["headers"]["transfer-encoding"] == "chunked"
    [part] = _parts(echo)
    assert part.get_payload(decode=True) == b"chunk-1;chunk-2"


def test_basic_auth_and_bad_files(client: wirecore.Client, srv: Server) -> None:
    h = client.get(f"{srv.http}/headers", auth=("alice", "s3cr:t")).json()["headers"]
    assert h["authorization"] == "Basic YWxpY2U6czNjcjp0"
    with pytest.raises(TypeError, match="auth"):
        client.get(f"{srv.http}/headers", auth="alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="files"):
        client.post(f"{srv.http}/echo", files={"f": 12})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="at most one"):
        client.post(f"{srv.http}/echo", files={"f": b"x"}, json={})


_HUGE = [
    pytest.param("timeout", sys.maxsize, id="maxsize"),
    pytest.param("timeout", float("inf"), id="inf"),
    pytest.param("timeout", float("nan"), id="nan"),
    pytest.param("timeout", 10**400, id="beyond-float"),
    # Over a year: the engine's message, naming its option (wirecore.RequestOptions).
    pytest.param("connect_timeout", wirecore.Timeout(connect=sys.maxsize), id="connect-maxsize"),
    pytest.param("read_timeout", wirecore.Timeout(read=float("inf")), id="read-inf"),
    pytest.param("pool_timeout", wirecore.Timeout(pool=1e300), id="pool-1e300"),
    pytest.param("timeout", wirecore.Timeout(total=sys.maxsize), id="total-maxsize"),
]


def test_zero_timeouts_are_refused_before_io(client: wirecore.Client, srv: Server) -> None:
    # The one rule of every language (wirecore::RequestOptions): no timeout is zero; leave it
    # out (None) for the config's. C and Go, whose types have no "unset", read 0 as unset.
    for name, timeout in [
        ("timeout", 0),
        ("timeout", 0.0),
        ("timeout", wirecore.Timeout(total=0)),
        ("timeout.connect", wirecore.Timeout(connect=0)),
        ("timeout.read", wirecore.Timeout(read=0)),
        ("timeout.pool", wirecore.Timeout(pool=0)),
    ]:
        with pytest.raises(wirecore.InvalidRequest, match=re.escape(name)):
            client.get(f"{srv.http}/bytes/1", timeout=timeout)
    assert srv.counters()["connections_accepted"] == 0
    assert client.get(f"{srv.http}/bytes/1", timeout=None).status_code == 200


@pytest.mark.parametrize(("name", "timeout"), _HUGE)
def test_huge_timeouts_raise_value_error_naming_the_argument(
    client: wirecore.Client, srv: Server, name: str, timeout: Any
) -> None:
    with pytest.raises(ValueError, match=re.escape(name)) as e:
        client.get(f"{srv.http}/bytes/1", timeout=timeout)
    assert isinstance(e.value, wirecore.InvalidRequest)
    assert srv.counters()["requests"] == 0
    with pytest.raises(ValueError, match="timeout"):
        client.close(timeout=sys.maxsize)
    # The largest allowed value is a working timeout.
    assert client.get(f"{srv.http}/bytes/1", timeout=365 * 24 * 3600).status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "timeout"), _HUGE)
async def test_huge_timeouts_never_hang_an_async_call(
    aclient: wirecore.AsyncClient, srv: Server, name: str, timeout: Any
) -> None:
    with pytest.raises(ValueError, match=re.escape(name)):
        await asyncio.wait_for(aclient.get(f"{srv.http}/bytes/1", timeout=timeout), 30)
    with pytest.raises(ValueError, match="timeout"):
        await asyncio.wait_for(aclient.aclose(timeout=float("inf")), 30)
    r = await asyncio.wait_for(aclient.get(f"{srv.http}/bytes/1", timeout=365 * 24 * 3600), 30)
    assert r.status_code == 200


# --- redirect policy ----------------------------------------------------------------------------


def test_redirect_policy_per_request(client: wirecore.Client, srv: Server) -> None:
    chain = f"{srv.http}/redirect/3"
    assert client.get(chain).status_code == 200
    for kw in ({"follow_redirects": False}, {"redirect": "manual"}):
        r = client.get(chain, **kw)  # type: ignore[arg-type]
        assert (r.status_code, r.headers["location"], r.is_redirect) == (302, "/redirect/2", True)
    assert client.get(chain, follow_redirects=True, max_redirects=3).status_code == 200
    with pytest.raises(wirecore.TooManyRedirects, match='redirect policy is "error"'):
        client.get(chain, redirect="error")
    with pytest.raises(wirecore.TooManyRedirects, match="more than 2 redirects"):
        client.get(chain, max_redirects=2)
    with client.stream("GET", chain, follow_redirects=False) as r:
        assert r.status_code == 302


def test_redirect_policy_bad_values_raise_before_io(client: wirecore.Client, srv: Server) -> None:
    before = srv.counters()["requests"]
    url = f"{srv.http}/redirect/1"
    with pytest.raises(ValueError, match='redirect must be "follow", "manual" or "error"'):
        client.get(url, redirect="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_redirects must be 0 to 1000, got 1001"):
        client.get(url, max_redirects=1001)
    with pytest.raises(ValueError, match="max_redirects must be 0 to 1000, got -1"):
        client.get(url, max_redirects=-1)
    with pytest.raises(TypeError, match="follow_redirects or redirect, not both"):
        client.get(url, follow_redirects=False, redirect="error")
    with pytest.raises(TypeError, match="follow_redirects must be a bool"):
        client.get(url, follow_redirects="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_redirects must be an int"):
        client.get(url, max_redirects=True)
    assert srv.counters()["requests"] == before


@pytest.mark.asyncio
async def test_redirect_policy_async(aclient: wirecore.AsyncClient, srv: Server) -> None:
    chain = f"{srv.http}/redirect/2"
    assert (await aclient.get(chain, follow_redirects=False)).status_code == 302
    with pytest.raises(wirecore.TooManyRedirects):
        await aclient.get(chain, redirect="error")
    async with aclient.stream("GET", chain, redirect="manual") as r:
        assert r.status_code == 302
    assert (await aclient.get(chain, redirect="follow")).status_code == 200

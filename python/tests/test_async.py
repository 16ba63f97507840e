"""AsyncClient: real awaitables, streaming, and cancellation that reaches the engine."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

import wirecore
from conftest import Server, await_until
from wirecore import _wirecore


@pytest.mark.asyncio
async def test_get_post_and_gather(aclient: wirecore.AsyncClient, srv: Server) -> None:
    r = await aclient.get(f"{srv.http}/json")
    assert r.status_code == 200
    assert r.json()["n"] == 42
    r = await aclient.post(f"{srv.http}/echo", json=[1, 2], params={"q": "1"})
    assert r.json()["body"] == "[1,2]"
    assert r.json()["query"] == "q=1"
    rs = await asyncio.gather(*(aclient.get(f"{srv.https}/bytes/{i}") for i in range(1, 33)))
    assert [len(r.content) for r in rs] == list(range(1, 33))
    assert {r.http_version for r in rs} == {"HTTP/2"}
    c = srv.counters()
    assert c["connections_accepted"] == 2  # one h1, one h2 carrying all 32 streams


@pytest.mark.asyncio
async def test_every_method_helper(aclient: wirecore.AsyncClient, srv: Server) -> None:
    u = f"{srv.http}/echo"
    assert (await aclient.put(u, content="x")).json()["method"] == "PUT"
    assert (await aclient.patch(u, data={"a": "b"})).json()["body"] == "a=b"
    assert (await aclient.delete(u)).json()["method"] == "DELETE"
    assert (await aclient.options(u)).json()["method"] == "OPTIONS"
    assert (await aclient.head(f"{srv.http}/bytes/5")).content == b""
    r = await aclient.request("POST", u, headers={"x-y": "z"}, content=b"abc", timeout=5)
    assert r.json()["headers"]["x-y"] == "z"
    assert r.json()["body"] == "abc"


@pytest.mark.asyncio
async def test_aiter_bytes_streams(aclient: wirecore.AsyncClient, srv: Server) -> None:
    async with aclient.stream("GET", f"{srv.http}/stream?chunks=5&size=100&delay_ms=10") as r:
        assert r.status_code == 200
        chunks = [c async for c in r.aiter_bytes()]
    assert len(chunks) >= 2
    assert b"".join(chunks) == bytes(i % 251 for i in range(100)) * 5
    async with aclient.stream("GET", f"{srv.http}/bytes/250") as r:
        sizes = [len(c) async for c in r.aiter_bytes(chunk_size=100)]
    assert sizes == [100, 100, 50]
    async with aclient.stream("GET", f"{srv.http}/bytes/70") as r:
        assert len(await r.aread()) == 70
    r = await aclient.get(f"{srv.http}/bytes/30")
    assert [len(c) async for c in r.aiter_bytes()] == [30]


@pytest.mark.asyncio
async def test_errors_are_raised_from_await(aclient: wirecore.AsyncClient, srv: Server) -> None:
    with pytest.raises(wirecore.TotalTimeout) as e:
        await aclient.get(f"{srv.http}/hang", timeout=0.1)
    assert isinstance(e.value, TimeoutError)
    assert e.value.code == "timeout.total"
    with pytest.raises(wirecore.ConnectError):
        await aclient.get("http://127.0.0.1:9/")
    with pytest.raises(wirecore.InvalidURL):
        await aclient.get("not a url")


@pytest.mark.asyncio
async def test_cancelling_the_task_cancels_the_request(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    task = asyncio.ensure_future(aclient.get(f"{srv.http}/hang"))
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_in_flight"] == 1)
    assert c["requests_in_flight"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1
    assert c["requests_in_flight"] == 0
    # The pool is not poisoned: the next request works.
    assert (await aclient.get(f"{srv.http}/bytes/3")).content == b"\x00\x01\x02"


@pytest.mark.asyncio
async def test_wait_for_timeout_cancels_the_request(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(aclient.get(f"{srv.https}/hang"), 0.2)
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1


@pytest.mark.asyncio
async def test_cancelling_a_stream_read_cancels_the_body(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    async with aclient.stream("GET", f"{srv.http}/drip?bytes=10&chunks=10&delay_ms=300") as r:
        it = r.aiter_bytes()
        with pytest.raises(asyncio.TimeoutError):
            while True:
                await asyncio.wait_for(it.__anext__(), 0.1)
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1


def test_repeated_asyncio_run_with_one_client(srv: Server, tls_config: dict[str, Any]) -> None:
    client = wirecore.AsyncClient(tls_config)

    async def once(i: int) -> int:
        rs = await asyncio.gather(*(client.get(f"{srv.http}/bytes/{i}") for _ in range(4)))
        return sum(len(r.content) for r in rs)

    assert [asyncio.run(once(i)) for i in range(5)] == [0, 4, 8, 12, 16]
    asyncio.run(client.aclose())


def test_uvloop(srv: Server, tls_config: dict[str, Any]) -> None:
    import uvloop

    async def main() -> list[int]:
        async with wirecore.AsyncClient(tls_config) as c:
            rs = await asyncio.gather(*(c.get(f"{srv.https}/json") for _ in range(8)))
            return [r.status_code for r in rs]

    assert uvloop.run(main()) == [200] * 8


def test_completion_for_a_closed_loop_is_dropped(srv: Server, tls_config: dict[str, Any]) -> None:
    """A response that arrives after its loop closed is dropped, not delivered into the loop."""
    raw = _wirecore.Client(json.dumps(tls_config))
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    raw.send_async(_wirecore.Completer(loop), fut, "GET", f"{srv.http}/delay/100")
    loop.close()
    srv.wait_for(lambda c: c["requests"] == 1 and c["requests_in_flight"] == 0)
    # The engine completed (or dropped) the request by now; the future was never touched.
    assert not fut.done()
    del fut
    gc.collect()
    assert wirecore.Client(tls_config).get(f"{srv.http}/bytes/1").status_code == 200


def test_async_client_closes_gracefully(srv: Server, tls_config: dict[str, Any]) -> None:
    async def main() -> None:
        c = wirecore.AsyncClient(tls_config)
        # Arrivals, not requests in flight: the server still sleeps on requests others gave up on.
        seen = srv.counters()["requests"]
        slow = asyncio.ensure_future(c.get(f"{srv.http}/delay/200"))
        await await_until(lambda: srv.counters()["requests"] > seen, "the request arrived")
        await c.aclose()
        assert (await slow).status_code == 200  # in-flight requests finish
        with pytest.raises(wirecore.ClientClosedError):
            await c.get(f"{srv.http}/bytes/1")

    asyncio.run(main())


def test_loops_without_add_reader_complete_through_call_soon(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    class NoReaderLoop(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> None:
            raise NotImplementedError

    async def main() -> list[int]:
        async with wirecore.AsyncClient(tls_config) as c:
            rs = await asyncio.gather(*(c.get(f"{srv.http}/bytes/{n}") for n in range(10)))
            return [len(r.content) for r in rs]

    loop = NoReaderLoop()
    try:
        assert loop.run_until_complete(main()) == list(range(10))
    finally:
        loop.close()


async def _read_started(r: wirecore.Response, task: asyncio.Task[Any]) -> None:
    """Waits (bounded) until `task` reads the body of `r`."""
    for _ in range(10_000):
        if r._iterated or task.done():
            return
        await asyncio.sleep(0.001)


@pytest.mark.asyncio
async def test_cancelled_aread_never_caches_a_truncated_body(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    url = f"{srv.http}/drip?bytes=100&chunks=100&delay_ms=100"
    async with aclient.stream("GET", url) as r:
        task = asyncio.ensure_future(r.aread())
        await _read_started(r, task)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(wirecore.RequestCancelled, match="incomplete"):
            await r.aread()
        with pytest.raises(wirecore.RequestCancelled, match="incomplete"):
            _ = r.content
        with pytest.raises(wirecore.RequestCancelled):
            _ = [c async for c in r.aiter_bytes()]
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1


@pytest.mark.asyncio
async def test_cancelled_aiter_bytes_leaves_the_body_failed(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    url = f"{srv.http}/drip?bytes=100&chunks=100&delay_ms=100"
    got = bytearray()
    first = asyncio.Event()

    async def consume(r: wirecore.Response) -> None:
        async for chunk in r.aiter_bytes():
            got.extend(chunk)
            first.set()

    async with aclient.stream("GET", url) as r:
        task = asyncio.ensure_future(consume(r))
        await asyncio.wait_for(first.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0 < len(got) < 100
        # Neither the rest of the body nor an empty one may pass for the whole.
        with pytest.raises(wirecore.RequestCancelled):
            await r.aread()
        with pytest.raises(wirecore.RequestCancelled):
            _ = [c async for c in r.aiter_bytes()]


def test_aclose_waits_for_a_body_being_read(srv: Server, tls_config: dict[str, Any]) -> None:
    async def main() -> None:
        c = wirecore.AsyncClient(tls_config)
        slow = asyncio.ensure_future(c.get(f"{srv.http}/drip?bytes=1000&chunks=4&delay_ms=150"))
        # The engine counts a request only until its head: from then on only the body is read.
        await await_until(
            lambda: c.stats()["requests_total"] == 1 and c.stats()["requests_in_flight"] == 0,
            "the head arrived",
            timeout=30,
        )
        await c.aclose(timeout=30)
        assert c.stats()["bytes_received"] == 1000, "aclose returned before the body was read"
        assert len((await slow).content) == 1000

    asyncio.run(main())


@pytest.mark.asyncio
async def test_tasks_resumed_by_a_batch_keep_their_own_context(
    aclient: wirecore.AsyncClient, srv: Server
) -> None:
    """The completer resumes the awaiting tasks itself, one batch at a time: each must run in
    its own context, as a `call_soon` wake-up would have run it."""
    import contextvars

    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=-1)

    async def one(i: int) -> tuple[int, int]:
        var.set(i)
        r = await aclient.get(f"{srv.http}/bytes/{i % 7}")
        return var.get(), len(r.content)

    got = await asyncio.gather(*(one(i) for i in range(200)))
    assert got == [(i, i % 7) for i in range(200)]


@pytest.mark.asyncio
async def test_a_call_is_a_future_to_asyncio(srv: Server, tls_config: dict[str, Any]) -> None:
    """`call_async` returns an awaitable that speaks asyncio's future protocol: done, result,
    exception, callbacks added before and after it settled, cancel (which reaches the engine)."""
    raw = _wirecore.Client(json.dumps(tls_config))
    loop = asyncio.get_running_loop()
    completer = wirecore._client._completer(loop)
    call = raw.call_async(completer, "GET", f"{srv.http}/bytes/5")
    assert call.get_loop() is loop
    assert not call.done()
    with pytest.raises(asyncio.InvalidStateError):
        call.result()
    seen: list[Any] = []
    call.add_done_callback(seen.append)
    r = await call
    assert r.status_code == 200 and r.content == b"\x00\x01\x02\x03\x04"
    assert seen == [call]
    assert call.done() and not call.cancelled()
    assert call.result() is r and call.exception() is None
    late: list[Any] = []
    call.add_done_callback(late.append)  # scheduled on the loop, as asyncio does
    assert late == []
    await asyncio.sleep(0)
    assert late == [call]
    assert not call.cancel()

    failed = raw.call_async(completer, "GET", "http://127.0.0.1:9/")
    with pytest.raises(wirecore.ConnectError):
        await failed
    assert isinstance(failed.exception(), wirecore.ConnectError)

    hang = raw.call_async(completer, "GET", f"{srv.http}/hang")
    await asyncio.to_thread(srv.wait_for, lambda c: c["requests_in_flight"] == 1)
    assert hang.cancel("enough")
    assert hang.cancelled()
    with pytest.raises(asyncio.CancelledError, match="enough"):
        await hang
    c = await asyncio.to_thread(srv.wait_for, lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1
    raw.close(5.0)

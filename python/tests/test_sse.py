"""Server-Sent Events through the engine's parser: iter_events / aiter_events across
reconnections (Last-Event-ID, the server's retry:), a body read whole, leaving early."""

from __future__ import annotations

import pytest

import wirecore
from conftest import Server


def test_iter_events_reconnects_with_last_event_id(client: wirecore.Client, srv: Server) -> None:
    srv.reset()
    with client.stream("GET", f"{srv.http}/sse?events=2&total=5&retry=10&cut=1") as r:
        got = list(r.iter_events())
    assert [(e.event, e.id, e.json()) for e in got] == [
        ("message", "0", {"n": 0}),
        ("message", "1", {"n": 1}),
        ("message", "2", {"n": 2, "last_event_id": "1"}),
        ("message", "3", {"n": 3, "last_event_id": "1"}),
        ("message", "4", {"n": 4, "last_event_id": "3"}),
    ]
    assert srv.counters()["requests"] == 4
    assert got[0] == wirecore.ServerSentEvent("message", '{"n":0}', "0", None)


def test_events_of_a_body_read_whole(client: wirecore.Client, srv: Server) -> None:
    body = "\ufeffdata: a\r\ndata: b\r\r: comment\nretry: 50\nevent: x\ndata\n\nid: 7\ndata: cut"
    srv.script({"path": "/s/ev", "replies": [{"status": 200, "body": body}]})
    r = client.get(f"{srv.http}/s/ev")
    got = list(r.iter_events())
    assert got == [
        wirecore.ServerSentEvent("message", "a\nb", "", None),
        wirecore.ServerSentEvent("x", "", "", 50),
    ]


def test_leaving_the_loop_closes_the_stream(client: wirecore.Client, srv: Server) -> None:
    srv.reset()
    with client.stream("GET", f"{srv.http}/sse?events=3&delay_ms=20") as r:
        for ev in r.iter_events():
            assert ev.id == "0"
            break
    assert srv.wait_for(lambda c: c["requests_cancelled"] == 1)["requests_cancelled"] == 1
    with pytest.raises(RuntimeError, match="already iterated"):
        next(iter(r.iter_events()))


@pytest.mark.asyncio
async def test_aiter_events(aclient: wirecore.AsyncClient, srv: Server) -> None:
    srv.reset()
    async with aclient.stream("GET", f"{srv.http}/sse?events=2&total=3&retry=5") as r:
        ids = [e.id async for e in r.aiter_events()]
    assert ids == ["0", "1", "2"]
    assert srv.counters()["requests"] == 3

"""The blocking Client and Response API, against the test server."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import time
from typing import Any

import pytest

import wirecore
from conftest import Server


def test_get_returns_status_headers_and_body(client: wirecore.Client, srv: Server) -> None:
    r = client.get(f"{srv.http}/bytes/300")
    assert r.status_code == 200
    assert r.reason_phrase == "OK"
    assert r.is_success and not r.is_error
    assert r.content == bytes(i % 251 for i in range(300))
    assert r.headers["Content-Length"] == "300"
    assert r.http_version == "HTTP/1.1"
    assert r.url == f"{srv.http}/bytes/300"
    assert r.request_method == "GET"
    assert repr(r) == "<Response [200 OK]>"


def test_json_and_text(client: wirecore.Client, srv: Server) -> None:
    r = client.get(f"{srv.http}/json")
    doc = r.json()
    assert doc["name"] == "wirecore"
    assert json.loads(r.text) == doc
    assert r.encoding == "utf-8"


def test_headers_are_a_case_insensitive_multidict(client: wirecore.Client, srv: Server) -> None:
    srv.script(
        {"path": "/s/h", "replies": [{"status": 200, "headers": {"X-Thing": "a"}, "body": "x"}]}
    )
    r = client.get(f"{srv.http}/s/h")
    assert r.headers["x-thing"] == "a"
    assert r.headers["X-THING"] == "a"
    assert "X-Thing" in r.headers
    assert r.headers.get("missing") is None
    with pytest.raises(KeyError):
        r.headers["missing"]
    assert ("x-thing", "a") in r.headers.multi_items()
    h = wirecore.Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X", "y")])
    assert h.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert h["set-cookie"] == "a=1, b=2"
    assert list(h) == ["set-cookie", "x"]
    assert len(h) == 2
    assert h == {"x": "y", "set-cookie": "a=1"} or h != {"x": "y"}
    assert wirecore.Headers({"A": "1"}) == {"a": "1"}


def test_request_headers_params_and_bodies_reach_the_server(
    client: wirecore.Client, srv: Server
) -> None:
    r = client.post(
        f"{srv.http}/echo?x=1",
        params={"y": "2", "z": ["3", "4"]},
        headers=[("X-A", "1"), ("x-a", "2")],
        json={"k": "v"},
    )
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["query"] == "x=1&y=2&z=3&z=4"
    assert echo["body"] == '{"k":"v"}'
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["x-a"] == ["1", "2"]

    r = client.put(f"{srv.http}/echo", data={"a": "1", "b": "x y"})
    echo = r.json()
    assert echo["method"] == "PUT"
    assert echo["body"] == "a=1&b=x+y"
    assert echo["headers"]["content-type"] == "application/x-www-form-urlencoded"

    r = client.patch(f"{srv.http}/echo", content=b"\x00\x01raw")
    assert r.json()["body_len"] == 5
    assert client.delete(f"{srv.http}/echo").json()["method"] == "DELETE"
    assert client.options(f"{srv.http}/echo").json()["method"] == "OPTIONS"
    r = client.head(f"{srv.http}/bytes/100")
    assert r.status_code == 200 and r.content == b""
    r = client.request("get", f"{srv.http}/echo", headers={"x-b": "c"})
    assert r.json()["method"] == "GET"
    assert r.json()["headers"]["x-b"] == "c"


def test_raise_for_status(client: wirecore.Client, srv: Server) -> None:
    ok = client.get(f"{srv.http}/status/204")
    assert ok.raise_for_status() is ok
    r = client.get(f"{srv.http}/status/404")
    assert r.is_client_error
    with pytest.raises(wirecore.HTTPStatusError) as e:
        r.raise_for_status()
    assert e.value.response is r
    assert "404" in str(e.value)
    assert client.get(f"{srv.http}/status/503").is_server_error
    with pytest.raises(wirecore.HTTPStatusError):
        client.get(f"{srv.http}/status/503").raise_for_status()


def test_timings_elapsed_and_reuse(client: wirecore.Client, srv: Server) -> None:
    first = client.get(f"{srv.https}/delay/20")
    second = client.get(f"{srv.https}/json")
    assert first.reused is False
    assert second.reused is True
    t = first.timings
    assert isinstance(t, wirecore.Timings)
    assert t.connect > 0 and t.tls > 0
    assert t.total >= t.ttfb >= 0.02
    assert second.timings.connect == 0
    assert isinstance(first.elapsed, datetime.timedelta)
    assert first.elapsed >= datetime.timedelta(milliseconds=20)
    assert srv.counters()["connections_accepted"] == 1


def test_close_idle_connections_keeps_the_client_usable(
    client: wirecore.Client, srv: Server
) -> None:
    assert client.get(f"{srv.http}/bytes/1").reused is False
    assert client.get(f"{srv.http}/bytes/1").reused is True
    closed = srv.counters()["connections_closed"]
    client.close_idle_connections()
    # Other tests' connections may still be open at the server: count this one closing.
    k = srv.wait_for(lambda k: k["connections_closed"] == closed + 1)
    assert k["connections_closed"] == closed + 1
    assert client.get(f"{srv.http}/bytes/1").reused is False
    assert srv.counters()["connections_accepted"] == 2


def test_https_negotiates_h2(client: wirecore.Client, srv: Server) -> None:
    r = client.get(f"{srv.https}/json")
    assert r.http_version == "HTTP/2"
    assert r.json()["ok"] is True


def test_stream_yields_chunks_as_they_arrive(client: wirecore.Client, srv: Server) -> None:
    with client.stream("GET", f"{srv.http}/stream?chunks=4&size=1000&delay_ms=20") as r:
        assert r.status_code == 200
        with pytest.raises(wirecore._client.ResponseNotRead):
            _ = r.content
        chunks = list(r.iter_bytes())
    assert len(chunks) >= 2
    assert b"".join(chunks) == bytes(i % 251 for i in range(1000)) * 4


def test_stream_rechunks_and_reads(client: wirecore.Client, srv: Server) -> None:
    with client.stream("GET", f"{srv.http}/bytes/2500") as r:
        sizes = [len(c) for c in r.iter_bytes(chunk_size=1000)]
    assert sizes == [1000, 1000, 500]
    with client.stream("GET", f"{srv.http}/bytes/700") as r:
        assert len(r.read()) == 700
        assert len(r.content) == 700
        assert r.is_stream_consumed


def test_closing_an_unread_stream_discards_the_connection(
    client: wirecore.Client, srv: Server
) -> None:
    with client.stream("GET", f"{srv.http}/drip?bytes=10&chunks=10&delay_ms=200") as r:
        assert r.status_code == 200
    c = srv.wait_for(lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1
    assert client.get(f"{srv.http}/bytes/1").status_code == 200


def test_stats_prometheus_diagnostics_and_config(client: wirecore.Client, srv: Server) -> None:
    for _ in range(3):
        client.get(f"{srv.http}/bytes/10")
    stats = client.stats()
    assert stats["requests_total"] == 3
    assert stats["responses_by_status_class"]["2xx"] == 3
    assert "pool" in stats and "dns" in stats
    text = client.prometheus()
    assert "wirecore_requests_total" in text
    diag = client.diagnostics()
    assert isinstance(diag, dict) and diag
    cfg = client.config
    assert cfg["pool"]["max_idle_per_host"] >= 1
    assert cfg["tls"]["ca_files"] == [srv.ca]


def test_closed_client_refuses_requests(srv: Server, tls_config: dict[str, Any]) -> None:
    c = wirecore.Client(tls_config)
    assert c.get(f"{srv.http}/bytes/1").status_code == 200
    c.close()
    with pytest.raises(wirecore.ClientClosedError) as e:
        c.get(f"{srv.http}/bytes/1")
    assert e.value.code == "closed"


def test_bad_arguments_raise_clear_errors(client: wirecore.Client, srv: Server) -> None:
    with pytest.raises(TypeError, match="url must be str"):
        client.get(b"http://x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout"):
        client.get(f"{srv.http}/json", timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at most one"):
        client.post(f"{srv.http}/echo", content=b"a", json={})
    with pytest.raises(TypeError, match="header"):
        client.get(f"{srv.http}/json", headers={"x": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="content must be"):
        client.post(f"{srv.http}/echo", content=1)  # type: ignore[arg-type]
    with pytest.raises(wirecore.InvalidURL) as u:
        client.get("ftp://example.test/")
    assert isinstance(u.value, ValueError)
    assert "ftp" in str(u.value)
    with pytest.raises(wirecore.InvalidHeader) as h:
        client.get(f"{srv.http}/json", headers={"bad name": "x"})
    assert "bad name" in str(h.value)
    with pytest.raises(wirecore.InvalidRequest):
        client.request("BAD METHOD", f"{srv.http}/json")
    with pytest.raises(wirecore.InvalidRequest, match="timeout"):
        client.get(f"{srv.http}/json", timeout=-1)
    assert srv.counters()["connections_accepted"] == 0


def test_a_failed_body_read_raises_again_instead_of_returning_a_part(
    client: wirecore.Client, srv: Server
) -> None:
    # Headers and half the body, then a reset.
    with client.stream("GET", f"{srv.http}/reset?bytes=100000") as r:
        assert r.status_code == 200
        with pytest.raises(wirecore.WirecoreError) as first:
            r.read()
        for again in (r.read, lambda: r.content, lambda: list(r.iter_bytes())):
            with pytest.raises(type(first.value)) as e:
                again()
            assert e.value.code == first.value.code


def test_read_after_partial_iteration_or_close_raises(client: wirecore.Client, srv: Server) -> None:
    with client.stream("GET", f"{srv.http}/stream?chunks=50&size=1000&delay_ms=5") as r:
        it = r.iter_bytes()
        assert next(it)
        with pytest.raises(wirecore._client.StreamConsumed):
            r.read()
    # Closed before the end: later reads raise rather than return nothing.
    with client.stream("GET", f"{srv.http}/drip?bytes=10&chunks=10&delay_ms=200") as r:
        pass
    with pytest.raises(wirecore.RequestCancelled, match="closed"):
        r.read()
    with pytest.raises(wirecore.RequestCancelled, match="closed"):
        list(r.iter_bytes())
    # A whole body read stays readable after the block.
    with client.stream("GET", f"{srv.http}/bytes/300") as r:
        assert len(r.read()) == 300
    assert len(r.read()) == 300 and len(r.content) == 300


def _heads_arrived(c: wirecore.Client, n: int) -> None:
    """Waits (at most 30 s) until the engine has the heads of `n` requests: it counts a request
    only until its head, so from then on only the body is in flight."""
    deadline = time.monotonic() + 30
    while True:
        s = c.stats()
        if s["requests_total"] == n and s["requests_in_flight"] == 0:
            return
        assert time.monotonic() < deadline, f"the heads never arrived: {s}"
        time.sleep(0.002)


def test_close_waits_for_a_body_being_read(srv: Server, tls_config: dict[str, Any]) -> None:
    # A whole body read after its head arrived (600 ms of drip): close() waits for it (a
    # streamed body's reads count the same way; the C runner checks that case).
    c = wirecore.Client(tls_config)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        got = pool.submit(c.get, f"{srv.http}/drip?bytes=1000&chunks=4&delay_ms=150")
        _heads_arrived(c, 1)
        c.close(timeout=30)
        assert c.stats()["bytes_received"] == 1000, "close returned before the body was read"
        assert len(got.result(timeout=30).content) == 1000


def test_base_url_joins_relative_urls(srv: Server, tls_config: dict[str, Any]) -> None:
    with wirecore.Client(tls_config, base_url=f"{srv.http}/") as c:
        r = c.get("/echo", params={"x": "1"})
        assert r.url == f"{srv.http}/echo?x=1"
        assert r.json()["query"] == "x=1"
    with wirecore.Client(tls_config) as c, pytest.raises(wirecore.InvalidURL):
        c.get("/echo")

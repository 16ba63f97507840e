"""OpenTelemetry: the ``traceparent``/``tracestate`` options, the current context taken from
opentelemetry-api when it is installed, and spans exported to the test server's OTLP receiver."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

import wirecore
from conftest import Server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}-01"


def _otel_config(srv: Server, tls_config: dict[str, Any]) -> dict[str, Any]:
    # Exports go at close only.
    return {
        **tls_config,
        "otel": {"enabled": True, "endpoint": srv.http, "export_interval_ms": 600_000},
    }


def _spans(srv: Server) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in srv._call("GET", "/_control/otlp"):
        if e["path"] == "/v1/traces":
            for rs in e["body"]["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
    return out


def test_traceparent_options_go_out_unchanged_with_otel_off(
    client: wirecore.Client, srv: Server
) -> None:
    r = client.get(f"{srv.http}/echo", traceparent=TP, tracestate="congo=t61rcWkgMzE")
    h = r.json()["headers"]
    assert (h["traceparent"], h["tracestate"]) == (TP, "congo=t61rcWkgMzE")
    assert "traceparent" not in client.get(f"{srv.http}/echo").json()["headers"]


def test_a_bad_traceparent_is_invalid_request_before_io(
    client: wirecore.Client, srv: Server
) -> None:
    with pytest.raises(wirecore.InvalidRequest, match="traceparent must be a W3C traceparent"):
        client.get(f"{srv.http}/echo", traceparent="00-abc")
    with pytest.raises(ValueError, match="tracestate needs a traceparent"):
        client.get(f"{srv.http}/echo", tracestate="a=1")
    with pytest.raises(TypeError, match="traceparent must be str"):
        client.get(f"{srv.http}/echo", traceparent=7)  # type: ignore[arg-type]
    assert srv.counters()["requests"] == 0


def test_the_span_is_exported_as_a_child_of_the_option(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    with wirecore.Client(_otel_config(srv, tls_config)) as c:
        sent = c.get(f"{srv.http}/echo", traceparent=TP).json()["headers"]["traceparent"]
    assert sent.startswith(f"00-{TRACE}-") and PARENT not in sent
    (span,) = _spans(srv)
    assert (span["traceId"], span["parentSpanId"], span["name"]) == (TRACE, PARENT, "GET")
    assert sent.split("-")[2] == span["spanId"]


def _in_span() -> Any:
    trace = pytest.importorskip("opentelemetry.trace")
    ctx = trace.SpanContext(
        trace_id=int(TRACE, 16),
        span_id=int(PARENT, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.use_span(trace.NonRecordingSpan(ctx))


def test_the_current_opentelemetry_context_is_sent(client: wirecore.Client, srv: Server) -> None:
    with _in_span():
        h = client.get(f"{srv.http}/echo").json()["headers"]
    assert h["traceparent"] == TP
    # An explicit option wins over the context.
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with _in_span():
        assert (
            client.get(f"{srv.http}/echo", traceparent=other).json()["headers"]["traceparent"]
            == other
        )
    assert "traceparent" not in client.get(f"{srv.http}/echo").json()["headers"]


@pytest.mark.asyncio
async def test_the_async_client_takes_the_callers_context(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    async with wirecore.AsyncClient(_otel_config(srv, tls_config)) as c:
        with _in_span():
            r = await c.get(f"{srv.http}/echo")
    assert r.json()["headers"]["traceparent"].startswith(f"00-{TRACE}-")
    (span,) = _spans(srv)
    assert span["parentSpanId"] == PARENT


def test_flush_exports_the_spans_of_every_request(srv: Server, tls_config: dict[str, Any]) -> None:
    c = wirecore.Client(_otel_config(srv, tls_config))
    for _ in range(4):
        c.get(f"{srv.http}/bytes/10")
    assert c.stats()["otel"] == {"exported": 0, "dropped": 0}
    c.flush_telemetry()
    assert len(_spans(srv)) == 4
    assert c.stats()["otel"] == {"exported": 4, "dropped": 0}
    c.close()


@pytest.mark.asyncio
async def test_the_async_client_flushes_its_spans(srv: Server, tls_config: dict[str, Any]) -> None:
    async with wirecore.AsyncClient(_otel_config(srv, tls_config)) as c:
        for _ in range(3):
            await c.get(f"{srv.http}/bytes/10")
        await c.flush_telemetry()
        assert len(_spans(srv)) == 3
        assert c.stats()["otel"]["exported"] == 3


def test_close_with_no_time_left_still_exports_the_last_spans(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    c = wirecore.Client(_otel_config(srv, tls_config))
    for _ in range(2):
        c.get(f"{srv.http}/bytes/10")
    c.close(timeout=0)
    assert len(_spans(srv)) == 2


def test_spans_a_collector_does_not_take_are_counted_dropped(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    port = 9  # discard: nobody listens there, so every export is refused
    cfg = {
        **tls_config,
        "otel": {
            "enabled": True,
            "endpoint": f"http://127.0.0.1:{port}",
            "export_interval_ms": 600_000,
        },
    }
    with wirecore.Client(cfg) as c:
        for _ in range(3):
            c.get(f"{srv.http}/status/204")
        c.flush_telemetry()
        assert c.stats()["otel"] == {"exported": 0, "dropped": 3}
        assert 'wirecore_otel_spans_total{result="dropped"} 3' in c.prometheus()


def test_flush_without_otel_returns_at_once(client: wirecore.Client) -> None:
    client.flush_telemetry()
    assert client.stats()["otel"] == {"exported": 0, "dropped": 0}


# --- on_span: finished spans to a Python callback -------------------------------------------


def _refused_url() -> str:
    # Port 9 (discard): nothing listens there, as in tests/scenarios/connection_refused.json. A
    # port seen free and let go could be taken by another test's server before the request.
    return "http://127.0.0.1:9/x"


def test_on_span_gets_each_request_on_its_own_thread_under_the_callers_parent(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    got: list[tuple[wirecore.Span, str]] = []
    c = wirecore.Client({**tls_config, "otel": {"enabled": True}})
    c.on_span(lambda s: got.append((s, threading.current_thread().name)))
    with pytest.raises(wirecore.InvalidRequest):
        c.on_span(print)
    sent = c.get(f"{srv.http}/echo", traceparent=TP).json()["headers"]["traceparent"]
    refused = _refused_url()
    with pytest.raises(wirecore.ConnectError):
        c.get(refused)
    c.close()  # returns once the queued spans were handed to the callback
    assert [name for _, name in got] == ["wirecore-spans"] * 2
    (ok, _), (failed, _) = got
    assert sent == f"00-{TRACE}-{ok.span_id}-01"
    assert (ok.trace_id, ok.parent_span_id, ok.name, ok.kind) == (TRACE, PARENT, "GET", "client")
    assert (ok.status, ok.status_message) == ("unset", "")
    assert ok.end_unix_nanos >= ok.start_unix_nanos > 1_700_000_000 * 10**9
    a = ok.attributes
    assert a["http.request.method"] == "GET"
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == int(srv.http.rsplit(":", 1)[1])
    assert a["http.response.status_code"] == 200
    assert "error.type" not in a
    assert failed.parent_span_id is None and failed.trace_id != TRACE
    assert (failed.status, failed.attributes["error.type"]) == ("error", "connect")
    assert failed.attributes["url.full"] == refused
    assert c.stats()["otel"] == {"exported": 2, "dropped": 0}


def test_on_span_takes_the_current_opentelemetry_context(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    got: list[wirecore.Span] = []
    with wirecore.Client({**tls_config, "otel": {"enabled": True}}) as c:
        c.on_span(got.append)
        with _in_span():
            c.get(f"{srv.http}/status/204")
    (s,) = got
    assert (s.trace_id, s.parent_span_id) == (TRACE, PARENT)


def test_a_stuck_or_raising_callback_never_holds_up_requests_and_drops_are_counted(
    srv: Server, tls_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    raised: list[BaseException | None] = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: raised.append(e))
    entered, release = threading.Event(), threading.Event()
    got: list[wirecore.Span] = []

    def slow(s: wirecore.Span) -> None:
        got.append(s)
        if len(got) == 1:
            entered.set()
            release.wait(30)
        else:
            raise RuntimeError("a callback that raises")

    c = wirecore.Client({**tls_config, "otel": {"enabled": True, "callback_queue": 2}})
    c.on_span(slow)
    c.get(f"{srv.http}/status/204")
    assert entered.wait(30)
    # The callback holds the first span: two more wait for it, three find the queue full, and
    # every request completes meanwhile.
    for _ in range(5):
        assert c.get(f"{srv.http}/status/204").status_code == 204
    c.flush_telemetry()
    assert c.stats()["otel"] == {"exported": 3, "dropped": 3}
    release.set()
    c.close()
    assert len(got) == 3, "close handed over the two queued spans"
    assert [type(e) for e in raised] == [RuntimeError, RuntimeError]


def test_on_span_needs_otel_enabled(client: wirecore.Client) -> None:
    with pytest.raises(wirecore.ConfigError, match=r"otel\.enabled"):
        client.on_span(print)


@pytest.mark.asyncio
async def test_the_async_client_hands_its_spans_over_at_aclose(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    got: list[wirecore.Span] = []
    async with wirecore.AsyncClient({**tls_config, "otel": {"enabled": True}}) as c:
        c.on_span(got.append)
        for _ in range(3):
            await c.get(f"{srv.http}/status/201", traceparent=TP)
    assert [(s.parent_span_id, s.attributes["http.response.status_code"]) for s in got] == [
        (PARENT, 201)
    ] * 3

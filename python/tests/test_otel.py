"""OpenTelemetry: the ``traceparent``/``tracestate`` options, the current context taken from
opentelemetry-api when it is installed, and spans exported to the test server's OTLP receiver."""

from __future__ import annotations

import socket
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nobody listens at the endpoint any more: every export is refused.
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

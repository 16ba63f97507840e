"""Finished OpenTelemetry spans handed to a Python callback on a thread of its own
(``wirecore-spans``), never on an engine thread: the engine queues them in the shared bridge
(``otel.callback_queue``; more are dropped and counted) and the thread of ``_dead_letter``
takes them with the GIL released and calls the callback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import _wirecore
from ._dead_letter import start_thread


@dataclass(frozen=True)
class Span:
    """A finished client span, the engine's ``SpanRecord``: the same fields in every binding.
    ``attributes`` carries the HTTP client semantic conventions' names
    (``http.request.method``, ``server.address``, ``server.port``, ``url.full``,
    ``http.response.status_code``, ``error.type``, ``network.protocol.version`` ...)."""

    #: 32 lowercase hex digits.
    trace_id: str
    #: 16 lowercase hex digits.
    span_id: str
    #: The caller's span (a ``traceparent`` option or the current OpenTelemetry context).
    parent_span_id: str | None
    trace_state: str | None
    #: The method (``GET``), or ``HTTP`` for one the conventions do not know.
    name: str
    #: Always ``"client"``.
    kind: str
    start_unix_nanos: int
    end_unix_nanos: int
    #: ``"unset"``, or ``"error"`` for a failure or a 4xx/5xx answer.
    status: str
    status_message: str
    attributes: dict[str, str | int]


def listen(raw: _wirecore.Client, callback: Callable[[Span], object]) -> threading.Thread:
    """Starts the thread that calls ``callback`` (the caller checked it is set once)."""
    if not callable(callback):
        raise TypeError("on_span needs a callable")
    raw.listen_spans()
    return start_thread("wirecore-spans", raw.next_spans, Span, callback)


def join(t: threading.Thread | None, timeout: float) -> None:
    """Waits for the span thread to hand over what the closed client queued (unless called on
    that thread, from the callback)."""
    if t is not None and t is not threading.current_thread():
        t.join(timeout)

"""Dead letters: requests that failed after every retry, handed to a Python callback on a
thread of their own (never on an engine thread). The engine queues them in the shared bridge;
this thread takes them with the GIL released and calls the callback."""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _wirecore


@dataclass(frozen=True)
class DeadLetter:
    """A request that failed after every retry the policy allowed: an error, or a status
    ``retry.retry_on_status`` lists (``error_code`` is then ``"status"``)."""

    method: str
    #: Without userinfo.
    url: str
    #: The request's own headers, without Authorization, Proxy-Authorization and Cookie.
    headers: list[tuple[str, str]]
    #: The body when it was buffered and at most ``dead_letter.max_body_bytes``.
    body: bytes | None
    #: The error's code (``"connect"``, ``"timeout.total"`` ...), or ``"status"``.
    error_code: str
    message: str
    #: The last answer's status, when there was one.
    status: int | None
    attempts: int
    #: When it failed, milliseconds since the Unix epoch.
    time_ms: int


# How long the thread waits for letters before checking whether the process is exiting.
_SLICE = 0.2
_threads: list[threading.Thread] = []
_exiting = threading.Event()


def _deliver(
    take: Callable[[float], list[dict[str, Any]] | None],
    make: Callable[..., Any],
    callback: Callable[[Any], object],
) -> None:
    while not _exiting.is_set():
        batch = take(_SLICE)
        if batch is None:
            return
        for d in batch:
            try:
                callback(make(**d))
            except Exception:
                sys.excepthook(*sys.exc_info())


def start_thread(
    name: str,
    take: Callable[[float], list[dict[str, Any]] | None],
    make: Callable[..., Any],
    callback: Callable[[Any], object],
) -> threading.Thread:
    """Starts a thread that takes records with ``take`` until the client closes and calls
    ``callback`` with ``make(**record)`` for each (dead letters here, spans in ``_span``)."""
    t = threading.Thread(target=_deliver, args=(take, make, callback), name=name, daemon=True)
    _threads.append(t)
    t.start()
    return t


def listen(raw: _wirecore.Client, callback: Callable[[DeadLetter], object]) -> None:
    """Starts the thread that calls ``callback`` (the caller checked it is set once)."""
    if not callable(callback):
        raise TypeError("on_dead_letter needs a callable")
    raw.listen_dead_letters()
    start_thread("wirecore-dead-letters", raw.next_dead_letters, DeadLetter, callback)


@atexit.register
def _stop() -> None:
    # Before the interpreter finalizes: a thread blocked in the engine must not come back to
    # take the GIL afterwards.
    _exiting.set()
    for t in _threads:
        t.join(timeout=5)

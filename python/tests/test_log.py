"""Engine events reach the ``wirecore`` logger once ``wirecore.enable_logging()`` is called,
with their fields as record attributes, on a Python thread (never an engine thread)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import wirecore
from conftest import Server


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[logging.LogRecord, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, threading.current_thread().name))

    def find(
        self, event: str, origin: str, ok: Callable[[logging.LogRecord], bool]
    ) -> logging.LogRecord:
        deadline = time.monotonic() + 10
        while True:
            for r, _ in list(self.records):
                if (
                    getattr(r, "event", None) == event
                    and getattr(r, "origin", None) == origin
                    and ok(r)
                ):
                    return r
            seen = [(r.getMessage(), r.__dict__.get("event")) for r, _ in self.records]
            assert time.monotonic() < deadline, f"no {event} for {origin} in {seen}"
            time.sleep(0.01)


def test_enabled_logging_sends_connection_and_retry_records(srv: Server) -> None:
    keep = _Keep()
    log = logging.getLogger("wirecore")
    log.addHandler(keep)
    log.setLevel(logging.DEBUG)
    wirecore.enable_logging(logging.DEBUG)
    try:
        cfg = {"retry": {"max_attempts": 3, "backoff_base_ms": 1, "backoff_max_ms": 5}}
        with wirecore.Client(cfg) as c:
            srv.script({"path": "/s/py-log", "replies": [{"status": 503}, {"status": 200}]})
            assert c.get(f"{srv.http}/s/py-log").status_code == 200
            refused = "http://127.0.0.1:9"  # nothing listens on the discard port
            try:
                c.get(refused + "/")
            except wirecore.ConnectError:
                pass
            opened = keep.find("connection_opened", srv.http, lambda r: True)
            assert opened.levelno == logging.DEBUG and opened.protocol == "h1"  # type: ignore[attr-defined]
            assert opened.name == "wirecore" and opened.pathname.startswith("wirecore::")
            retry = keep.find("retry", srv.http, lambda r: r.attempt == 1)  # type: ignore[attr-defined]
            assert (retry.status, retry.error_code, retry.reason) == (503, "status", "status")  # type: ignore[attr-defined]
            for attempt in (1, 2):
                r = keep.find("retry", refused, lambda r, a=attempt: r.attempt == a)  # type: ignore[attr-defined,misc]
                assert (r.error_code, r.reason) == ("connect", "unsent")  # type: ignore[attr-defined]
        assert {name for _, name in keep.records} == {"wirecore-log"}
    finally:
        wirecore.disable_logging()
        log.removeHandler(keep)


def test_logging_is_off_by_default_and_after_disable(srv: Server) -> None:
    keep = _Keep()
    log = logging.getLogger("wirecore")
    log.addHandler(keep)
    try:
        wirecore.enable_logging("debug")
        wirecore.disable_logging()
        with wirecore.Client() as c:
            assert c.get(f"{srv.http}/bytes/1").status_code == 200
        time.sleep(0.5)
        assert keep.records == []
    finally:
        log.removeHandler(keep)

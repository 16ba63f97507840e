"""The dead-letter callback receives exactly the requests that failed after every retry, on a
Python thread (never an engine thread)."""

from __future__ import annotations

import threading
import time

import pytest

import wirecore
from conftest import Server


def _refused_url() -> str:
    # Port 9 (discard): nothing listens there, as in tests/scenarios/connection_refused.json. A
    # port seen free and let go could be taken by another test's server before the request.
    return "http://127.0.0.1:9/x"


def test_the_callback_gets_exactly_the_requests_that_failed_after_retries(srv: Server) -> None:
    got: list[tuple[wirecore.DeadLetter, str]] = []
    cfg = {"retry": {"max_attempts": 3, "backoff_base_ms": 1, "backoff_max_ms": 5}}
    with wirecore.Client(cfg) as c:
        c.on_dead_letter(lambda letter: got.append((letter, threading.current_thread().name)))
        with pytest.raises(wirecore.InvalidRequest):
            c.on_dead_letter(print)
        srv.script({"path": "/s/flaky", "replies": [{"status": 503}, {"status": 200}]})
        assert c.get(f"{srv.http}/s/flaky").status_code == 200  # fixed by a retry
        assert c.get(f"{srv.http}/status/503").status_code == 503  # failed after 3 attempts
        assert c.get(f"{srv.http}/status/404").status_code == 404  # an answer, not a failure
        refused = _refused_url()
        with pytest.raises(wirecore.ConnectError):
            c.post(refused, content=b"payload", headers={"authorization": "Bearer s"})
        # Letters arrive in order: once this one is in, every earlier one is.
        last = f"{srv.http}/status/502"
        c.get(last)
        deadline = time.monotonic() + 10
        while not any(letter.url == last for letter, _ in got):
            assert time.monotonic() < deadline, f"the last letter never came: {got}"
            time.sleep(0.005)
        # The engine counts a letter delivered once its sink returned, which can be just after
        # the callback saw it: poll the count.
        while c.stats()["dead_letter"]["delivered"] != 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert c.stats()["dead_letter"]["delivered"] == 3
    urls = [letter.url for letter, _ in got]
    assert urls == [f"{srv.http}/status/503", refused, last], urls
    assert {name for _, name in got} == {"wirecore-dead-letters"}
    s, p, _ = (letter for letter, _ in got)
    assert (s.method, s.error_code, s.status, s.attempts) == ("GET", "status", 503, 3)
    assert (p.method, p.error_code, p.status, p.body) == ("POST", "connect", None, b"payload")
    assert p.attempts == 3, "a POST that never connected was never sent: retried"
    assert not any(k == "authorization" for k, _ in p.headers), p.headers
    assert p.time_ms > 1_700_000_000_000

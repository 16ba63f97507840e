"""Binding concerns: the GIL is released, fork is safe, exit is clean, Ctrl-C is prompt."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import wirecore
from conftest import Server


def test_eight_threads_share_one_client_concurrently(client: wirecore.Client, srv: Server) -> None:
    barrier = threading.Barrier(8)

    def one(_: int) -> int:
        barrier.wait()
        return client.get(f"{srv.http}/delay/300").status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(8))) == [200] * 8
    # Holding the GIL while waiting would serialise the requests: at most one in flight.
    assert srv.counters()["max_requests_in_flight"] == 8


def test_python_threads_run_while_a_call_blocks(client: wirecore.Client, srv: Server) -> None:
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks
        client.get(f"{srv.http}/delay/200")
        during = ticks - before
    finally:
        stop.set()
        t.join()
    assert during > 1000


def _wait_child(pid: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung")


def _fork() -> int:
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() with threads; the engine is built for it.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def test_forked_child_uses_inherited_and_new_clients(
    client: wirecore.Client, srv: Server, tls_config: dict[str, Any]
) -> None:
    import asyncio

    assert client.get(f"{srv.http}/bytes/1").status_code == 200  # runtime and pool live
    pid = _fork()
    if pid == 0:
        code = 10
        try:
            ok = client.get(f"{srv.http}/bytes/7").content == bytes(range(7))
            ok &= wirecore.Client(tls_config).get(f"{srv.https}/json").status_code == 200

            async def main() -> bool:
                async with wirecore.AsyncClient(tls_config) as ac:
                    rs = await asyncio.gather(*(ac.get(f"{srv.http}/bytes/3") for _ in range(5)))
                return all(r.status_code == 200 for r in rs)

            ok &= asyncio.run(main())
            code = 0 if ok else 11
        finally:
            os._exit(code)
    assert _wait_child(pid) == 0
    assert client.get(f"{srv.http}/bytes/2").status_code == 200  # the parent still works


_INHERITED: wirecore.Client | None = None


def _fetch(url: str) -> int:
    assert _INHERITED is not None
    return len(_INHERITED.get(url).content)


def test_multiprocessing_fork_pool(client: wirecore.Client, srv: Server) -> None:
    global _INHERITED
    _INHERITED = client
    client.get(f"{srv.http}/bytes/1")
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with ctx.Pool(2) as pool:
            sizes = pool.map_async(_fetch, [f"{srv.http}/bytes/{n}" for n in range(8)]).get(60)
    assert sizes == list(range(8))


EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading, wirecore
    base = sys.argv[1]

    def blocked():
        wirecore.Client().get(base + "/hang")

    async def main():
        c = wirecore.AsyncClient()
        rs = await asyncio.gather(*(c.get(base + "/bytes/64") for _ in range(50)))
        assert all(len(r.content) == 64 for r in rs)
        # Left in flight: asyncio.run cancels them, some complete while the loop closes.
        for i in range(20):
            asyncio.ensure_future(c.get(base + "/delay/%d" % i))
        await asyncio.sleep(0.005)

    threading.Thread(target=blocked, daemon=True).start()
    asyncio.run(main())
    """
)


def test_gather_then_exit_is_clean_fifty_times(srv: Server, tmp_path: Any) -> None:
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)

    def run(_: int) -> tuple[int, str]:
        p = subprocess.run(
            [sys.executable, str(script), srv.http],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return p.returncode, p.stderr

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(50)))
    failures = [(rc, err[-500:]) for rc, err in results if rc != 0 or err]
    assert not failures, f"{len(failures)}/50 runs failed: {failures[:3]}"


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal, sys, wirecore
    # As in a terminal, even when this suite runs in a background job (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        wirecore.Client().get(sys.argv[1] + "/hang")
    except KeyboardInterrupt:
        sys.exit(42)
    sys.exit(1)
    """
)


def test_ctrl_c_interrupts_a_blocking_call(srv: Server) -> None:
    # Earlier tests' processes may still be closing connections: start from a quiet server.
    srv.wait_for(lambda c: c["requests_in_flight"] == 0 and c["connections_active"] == 0)
    srv.reset()
    p = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, srv.http])
    try:
        c = srv.wait_for(lambda c: c["requests_in_flight"] == 1, timeout=20)
        assert c["requests_in_flight"] == 1
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) == 42
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    c = srv.wait_for(lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1, c


@pytest.mark.parametrize("n", [1, 2])
def test_client_survives_many_sequential_event_loops(
    srv: Server, tls_config: dict[str, Any], n: int
) -> None:
    import asyncio

    c = wirecore.AsyncClient(tls_config)

    async def one() -> int:
        return (await c.get(f"{srv.https}/bytes/{n}")).status_code

    assert [asyncio.run(one()) for _ in range(10)] == [200] * 10

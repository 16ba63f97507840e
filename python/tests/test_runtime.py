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


INTERRUPTED_READ_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time, wirecore
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main = threading.main_thread()

    def interrupt_once_reading():
        # SIGINT while the main thread is inside read(): in its chunk loop, most likely
        # blocked in the engine with the GIL released.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            f = sys._current_frames().get(main.ident)
            if f is not None and f.f_code.co_name == "chunks":
                break
            time.sleep(0.005)
        signal.pthread_kill(main.ident, signal.SIGINT)

    with wirecore.Client() as c:
        url = sys.argv[1] + "/drip?bytes=100&chunks=100&delay_ms=100"
        with c.stream("GET", url) as r:
            threading.Thread(target=interrupt_once_reading, daemon=True).start()
            try:
                r.read()
                sys.exit("read() finished: the interrupt came too late")
            except KeyboardInterrupt:
                pass
            for again in (r.read, lambda: r.content, lambda: b"".join(r.iter_bytes())):
                try:
                    got = again()
                except wirecore.RequestCancelled as e:
                    assert "incomplete" in str(e), e
                    continue
                sys.exit(f"a later read returned {len(got)} bytes as if whole")
    sys.exit(42)
    """
)


def test_ctrl_c_during_read_never_caches_a_truncated_body(srv: Server) -> None:
    p = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_READ_SCRIPT, srv.http],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 42, p.stderr[-2000:]
    c = srv.wait_for(lambda c: c["requests_cancelled"] == 1)
    assert c["requests_cancelled"] == 1, c


# A daemon thread's blocking request that completes while the interpreter exits: a destructor
# that blocks at exit (as a flush or a socket close may) releases the GIL while the interpreter
# finalizes, and the daemon's response arrives meanwhile. Re-attaching then must not abort.
DAEMON_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading, types, wirecore
    from time import sleep
    delay_ms = int(sys.argv[2])

    class ClosesSlowly:
        def __del__(self, sleep=sleep, seconds=(delay_ms + 200) / 1000):
            sleep(seconds)

    # Collected while the interpreter finalizes (a daemon thread's frames keep __main__ alive).
    holder = types.ModuleType("holder")
    holder.resource = ClosesSlowly()
    sys.modules["holder"] = holder
    del holder

    client = wirecore.Client()
    client.get(sys.argv[1] + "/bytes/1")
    sent = threading.Event()

    def request():
        sent.set()
        client.get(sys.argv[1] + "/delay/%d" % delay_ms)

    threading.Thread(target=request, daemon=True).start()
    sent.wait(10)
    """
)


def test_daemon_thread_finishing_during_exit_does_not_abort(srv: Server, tmp_path: Any) -> None:
    script = tmp_path / "daemon_exit.py"
    script.write_text(DAEMON_EXIT_SCRIPT)

    def run(i: int) -> tuple[int, str]:
        p = subprocess.run(
            [sys.executable, str(script), srv.http, str(i % 10 * 10)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return p.returncode, p.stderr

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(30)))
    failures = [(rc, err[-500:]) for rc, err in results if rc != 0 or "Fatal Python error" in err]
    assert not failures, f"{len(failures)}/30 runs failed: {failures[:3]}"


def test_a_panic_in_the_engine_fails_the_call(srv: Server) -> None:
    import asyncio

    with pytest.raises(wirecore.InternalError, match="panicked") as e:
        wirecore._wirecore._panic_in_engine()
    assert e.value.code == "internal"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        completer = wirecore._client._completer(loop)
        assert wirecore._wirecore._panic_in_engine(completer, fut) is not None
        with pytest.raises(wirecore.InternalError, match="panicked"):
            await asyncio.wait_for(fut, 30)

    asyncio.run(main())

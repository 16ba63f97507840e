#!/usr/bin/env python3
"""Memory of `wirecore serve` holding N idle keep-alive connections (issue 15's target: under
300 MB at 10,000). Starts serve on a free port with a 1 KiB file, opens N connections, sends one
GET /1k.bin on each and reads the answer, leaves them open and idle, then reads the server's
RSS from /proc. Prints one Markdown table row. Usage: serve-idle-memory.py WIRECORE [N]."""

import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid: int) -> tuple[int, int]:
    status = open(f"/proc/{pid}/status").read()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1))  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def main() -> int:
    binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n * 2 + 100), hard))
    site = tempfile.mkdtemp()
    with open(os.path.join(site, "1k.bin"), "wb") as f:
        f.write(b"x" * 1024)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--dir", site, "--idle-timeout", "300s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        base, _ = rss_kib(srv.pid)
        req = f"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        conns = []
        start = time.time()
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(req)
            got = b""
            while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 1024:
                chunk = c.recv(65536)
                if not chunk:
                    raise RuntimeError("server closed a connection")
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:40]
            conns.append(c)
        took = time.time() - start
        time.sleep(1)
        rss, hwm = rss_kib(srv.pid)
        alive = sum(1 for c in conns if c.fileno() >= 0)
        per = (rss - base) * 1024 / n
        print(
            "| idle keep-alive connections | open | RSS before | RSS after | peak RSS "
            "| per connection | setup |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(
            f"| {n} | {alive} | {base / 1024:.1f} MiB | {rss / 1024:.1f} MiB "
            f"| {hwm / 1024:.1f} MiB "
            f"| {per / 1024:.1f} KiB | {took:.1f} s |"
        )
        for c in conns:
            c.close()
        return 0
    finally:
        srv.terminate()
        srv.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())

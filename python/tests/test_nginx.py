"""Against real nginx (installed by `make setup`), where users meet it: HTTP/1.1 keep-alive
with gzip, h2 over TLS. nginx runs on private loopback ports with a certificate made by openssl
and is stopped by its pid."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

import wirecore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _nginx_bin() -> str:
    for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"):
        if os.path.exists(p):
            return p
    raise RuntimeError("nginx is not installed: run `make setup`")


def _ossl(cwd: str, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def nginx() -> Iterator[dict[str, Any]]:
    d = tempfile.mkdtemp(prefix="wirecore-py-nginx-")
    os.mkdir(os.path.join(d, "www"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _ossl(d, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=wirecore test CA",
          "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    _ossl(d, "req", *ec, "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "extendedKeyUsage=serverAuth\n"
        )
    _ossl(d, "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem")  # fmt: skip
    with open(os.path.join(d, "www", "1k"), "wb") as f:
        f.write(b"x" * 1024)
    items = [{"id": i, "name": f"item {i}"} for i in range(400)]
    with open(os.path.join(d, "www", "data.json"), "w") as f:
        json.dump({"items": items}, f)
    http_port, https_port = _free_port(), _free_port()
    conf = f"""user root;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  types {{ application/json json; }}
  default_type application/octet-stream;
  gzip on; gzip_types application/json; gzip_min_length 100;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl http2;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    root {d}/www;
  }}
}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    proc = subprocess.Popen(
        [_nginx_bin(), "-p", d, "-c", os.path.join(d, "nginx.conf")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield {
            "http": f"http://127.0.0.1:{http_port}",
            "https": f"https://localhost:{https_port}",
            "ca": os.path.join(d, "ca.pem"),
        }
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_h1_keepalive_and_transparent_gzip(nginx: dict[str, Any]) -> None:
    with wirecore.Client(tls={"ca_files": [nginx["ca"]]}) as c:
        for _ in range(20):
            r = c.get(f"{nginx['http']}/data.json")
            assert r.status_code == 200
            assert r.http_version == "HTTP/1.1"
            assert "content-encoding" not in r.headers, "decoded transparently"
            assert len(r.json()["items"]) == 400
        s = c.stats()
        assert s["origins"][nginx["http"]]["connects"] == 1, "keep-alive reuse"
        assert s["compression_ratio"] > 2, s["compression_ratio"]


def test_h2_over_tls_multiplexes_on_one_connection(nginx: dict[str, Any]) -> None:
    async def run() -> dict[str, Any]:
        # No session counts as busy (the default is 32 streams), so one connection is the
        # dedupe of the burst, not luck in timing.
        async with wirecore.AsyncClient(
            tls={"ca_files": [nginx["ca"]]}, http2={"busy_streams_per_session": 1000}
        ) as c:
            rs = await asyncio.gather(*(c.get(f"{nginx['https']}/1k") for _ in range(50)))
            for r in rs:
                assert r.http_version == "HTTP/2"
                assert len(r.content) == 1024
            stats: dict[str, Any] = c.stats()
            return stats

    s = asyncio.run(run())
    o = s["origins"][nginx["https"]]
    assert o["connects"] == 1, o

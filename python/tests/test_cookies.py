"""The engine's cookie jar through the Python API: enabled by config, listed and cleared."""

from __future__ import annotations

from typing import Any

import pytest

import wirecore
from conftest import Server


def test_cookie_jar_is_off_by_default(client: wirecore.Client, srv: Server) -> None:
    client.get(f"{srv.http}/set-cookie?c=a%3D1")
    assert "cookie" not in client.get(f"{srv.http}/headers").json()["headers"]
    assert client.cookies() == []


def test_cookie_jar_stores_lists_and_clears(srv: Server, tls_config: dict[str, Any]) -> None:
    with wirecore.Client(tls_config, cookies={"enabled": True}) as c:
        c.get(f"{srv.http}/set-cookie?c=a%3D1&c=b%3D2%3B%20Path%3D%2Fheaders%3B%20SameSite%3DLax")
        assert c.get(f"{srv.http}/headers").json()["headers"]["cookie"] == "b=2; a=1"
        got = sorted(c.cookies(), key=lambda k: k["name"])
        assert [(k["name"], k["value"], k["path"]) for k in got] == [
            ("a", "1", "/"),
            ("b", "2", "/headers"),
        ]
        assert got[1]["same_site"] == "Lax"
        assert got[0]["domain"] == "127.0.0.1" and got[0]["host_only"] is True
        assert got[0]["expires_ms"] is None
        c.clear_cookies()
        assert c.cookies() == []
        assert "cookie" not in c.get(f"{srv.http}/headers").json()["headers"]


@pytest.mark.asyncio
async def test_async_client_shares_the_same_jar_api(
    srv: Server, tls_config: dict[str, Any]
) -> None:
    async with wirecore.AsyncClient(tls_config, cookies={"enabled": True}) as c:
        await c.get(f"{srv.http}/set-cookie?c=s%3D1%3B%20Max-Age%3D60")
        assert (await c.get(f"{srv.http}/headers")).json()["headers"]["cookie"] == "s=1"
        (only,) = c.cookies()
        assert isinstance(only["expires_ms"], int)
        await c.get(f"{srv.http}/set-cookie?c=s%3D%3B%20Max-Age%3D0")
        assert c.cookies() == []

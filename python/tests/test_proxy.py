"""Proxies against the test server's own (tests/server/README.md): an HTTP proxy in absolute
form and through CONNECT (h1 and h2 over TLS), proxy auth, no_proxy, and SOCKS5."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

import wirecore
from conftest import Server


def proxies(srv: Server) -> dict[str, Any]:
    got: dict[str, Any] = srv._call("GET", "/_control/proxies")
    return got


def proxied(srv: Server, proxy: dict[str, Any], **more: Any) -> wirecore.Client:
    return wirecore.Client(
        {"tls": {"ca_files": [srv.ca]}}, proxy={"from_env": False, **proxy}, **more
    )


def test_http_goes_in_absolute_form_and_the_credentials_stay_with_the_proxy(
    srv: Server,
) -> None:
    creds, addr = srv.info["proxy_credentials"], srv.info["proxy_auth"]
    with proxied(srv, {"http": f"http://{creds}@{addr}"}) as c:
        r = c.get(f"{srv.http}/headers")
        assert r.http_version == "HTTP/1.1"
        headers = r.json()["headers"]
    assert headers["via"] == "1.1 wirecore-test-proxy"
    assert "proxy-authorization" not in headers
    assert proxies(srv)["proxy_auth"] == {"tunnels": 0, "forwarded": 1, "rejected": 0}


@pytest.mark.parametrize(("h2", "version"), [(True, "HTTP/2"), (False, "HTTP/1.1")])
def test_https_tunnels_through_connect(srv: Server, h2: bool, version: str) -> None:
    with proxied(srv, {"https": f"http://{srv.info['proxy']}"}, http2={"enabled": h2}) as c:
        for _ in range(3):
            r = c.get(f"{srv.https}/bytes/4")
            assert (r.http_version, len(r.content)) == (version, 4)
    assert proxies(srv)["proxy"] == {"tunnels": 1, "forwarded": 0, "rejected": 0}


def test_407_to_connect_is_a_connect_error_naming_the_proxy(srv: Server) -> None:
    addr = srv.info["proxy_auth"]
    for userinfo in ["", "wirecore:wrong@"]:
        with proxied(srv, {"https": f"http://{userinfo}{addr}"}) as c:
            with pytest.raises(wirecore.ConnectError) as e:
                c.get(f"{srv.https}/bytes/1")
        assert e.value.code == "connect"
        assert "407" in e.value.message and addr in e.value.message
    with proxied(srv, {"http": f"http://{addr}"}) as c:
        assert c.get(f"{srv.http}/bytes/1").status_code == 407
    assert proxies(srv)["proxy_auth"]["rejected"] == 3
    assert srv.counters()["requests"] == 0


def test_no_proxy_entries_go_direct(srv: Server) -> None:
    port = urlsplit(srv.http).port
    for entry in ["127.0.0.1", "*", f"127.0.0.1:{port}"]:
        with proxied(srv, {"http": f"http://{srv.info['proxy']}", "no_proxy": [entry]}) as c:
            assert "via" not in c.get(f"{srv.http}/headers").json()["headers"], entry
    assert proxies(srv)["proxy"]["forwarded"] == 0


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_tunnels_http_and_https(srv: Server, scheme: str) -> None:
    url = f"{scheme}://{srv.info['socks5']}"
    with proxied(srv, {"http": url, "https": url}) as c:
        assert "via" not in c.get(f"{srv.http}/headers").json()["headers"]
        assert c.get(f"{srv.https}/bytes/2").http_version == "HTTP/2"
    got = proxies(srv)["socks5"]
    tls_port = urlsplit(srv.https).port
    assert got["tunnels"] == 2
    assert got["targets"][0] == f"ip:{urlsplit(srv.http).netloc}"
    if scheme == "socks5":
        assert re.fullmatch(rf"ip:(127\.0\.0\.1|\[::1\]):{tls_port}", got["targets"][1])
    else:
        assert got["targets"][1] == f"name:localhost:{tls_port}"


def test_socks5_user_password_and_refusals(srv: Server) -> None:
    creds, addr = srv.info["proxy_credentials"], srv.info["socks5_auth"]
    with proxied(srv, {"https": f"socks5h://{creds}@{addr}"}) as c:
        assert c.get(f"{srv.https}/bytes/1").status_code == 200
    for userinfo, says in [
        ("wirecore:wrong@", "refused the user name and password"),
        ("", "accepts none of the offered authentication methods"),
    ]:
        with proxied(srv, {"https": f"socks5://{userinfo}{addr}"}) as c:
            with pytest.raises(wirecore.ConnectError) as e:
                c.get(f"{srv.https}/bytes/1")
        assert says in e.value.message and f"socks5://{addr}" in e.value.message
    got = proxies(srv)["socks5_auth"]
    assert (got["tunnels"], got["rejected"]) == (1, 2)

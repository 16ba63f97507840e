"""Config from keyword arguments, a dict or JSON text; unknown keys are errors naming the key."""

from __future__ import annotations

import json

import pytest

import wirecore
from conftest import Server


def test_kwargs_dict_and_json_build_the_same_config() -> None:
    cfg = {"pool": {"max_idle_per_host": 3}, "timeouts": {"connect_ms": 1234}}
    a = wirecore.Client(**cfg).config
    b = wirecore.Client(cfg).config
    c = wirecore.Client(json.dumps(cfg)).config
    d = wirecore.AsyncClient(cfg).config
    assert a == b == c == d
    assert a["pool"]["max_idle_per_host"] == 3
    assert a["timeouts"]["connect_ms"] == 1234
    defaults = wirecore.Client().config
    assert defaults["pool"]["max_idle_per_host"] != 3
    assert defaults["timeouts"]["total_ms"] == a["timeouts"]["total_ms"]


def test_kwargs_override_top_level_sections() -> None:
    cfg = wirecore.Client(
        '{"pool": {"max_idle_per_host": 1}, "user_agent": "a"}', user_agent="b"
    ).config
    assert cfg["pool"]["max_idle_per_host"] == 1
    assert cfg["user_agent"] == "b"


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"pool": {"max_idle_perhost": 1}}, "pool.max_idle_perhost"),
        ({"no_such_section": {}}, "no_such_section"),
        ({"timeouts": {"connect_ms": "soon"}}, "timeouts.connect_ms"),
        ({"timeouts": {"connect_ms": -1}}, "timeouts.connect_ms"),
        ({"proxy": {"http": "socks4://h:1"}}, "proxy.http"),
        ({"dns": {"overrides": {"a.test": "not-an-ip"}}}, "dns.overrides.a.test"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, object], named: str) -> None:
    with pytest.raises(wirecore.ConfigError) as e:
        wirecore.Client(config)
    assert named in str(e.value)
    assert e.value.code == "invalid_config"
    assert isinstance(e.value, ValueError)
    with pytest.raises(wirecore.ConfigError):
        wirecore.AsyncClient(**config)


def test_bad_config_types() -> None:
    with pytest.raises(TypeError, match="config must be a dict or JSON text"):
        wirecore.Client(42)  # type: ignore[arg-type]
    with pytest.raises(wirecore.ConfigError):
        wirecore.Client("{not json")
    with pytest.raises(TypeError, match="JSON must be an object"):
        wirecore.Client("[1]", user_agent="x")


def test_config_reaches_the_engine(srv: Server) -> None:
    with wirecore.Client(default_headers={"x-team": "py"}, user_agent="wc-test/1") as c:
        headers = c.get(f"{srv.http}/headers").json()["headers"]
    assert headers["x-team"] == "py"
    assert headers["user-agent"] == "wc-test/1"


def test_proxy_overrides_and_socket_round_trip() -> None:
    proxy = {"https": "http://u:p@127.0.0.1:3128", "no_proxy": [".internal"], "from_env": False}
    overrides = {"api.test:443": "127.0.0.1"}
    got = wirecore.Client(
        proxy=proxy, dns={"overrides": overrides}, unix_socket="/tmp/wirecore-test.sock"
    ).config
    assert got["proxy"] == {**proxy, "http": None}
    assert got["dns"]["overrides"] == overrides
    assert got["unix_socket"] == "/tmp/wirecore-test.sock"
    assert wirecore.Client().config["proxy"]["from_env"] is True

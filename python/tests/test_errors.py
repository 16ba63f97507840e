"""Every engine error code maps to its own exception class, and real failures raise them."""

from __future__ import annotations

import builtins
import pickle

import pytest

import wirecore
from conftest import Server
from wirecore import _wirecore
from wirecore.exceptions import BY_CODE


def test_every_error_code_has_a_class() -> None:
    codes = _wirecore.ERROR_CODES
    assert len(codes) >= 20
    assert set(codes) == set(BY_CODE), "exceptions.BY_CODE and the engine's codes differ"
    classes = [BY_CODE[c] for c in codes]
    assert len(set(classes)) == len(classes), "two codes share a class"
    for code in codes:
        e = _wirecore._error_for_code(code, "boom")
        assert type(e) is BY_CODE[code], code
        assert isinstance(e, wirecore.WirecoreError)
        assert e.code == code
        assert e.message == "boom"
        assert str(e) == f"boom ({code})"
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and again.code == code


def test_unknown_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown error code"):
        _wirecore._error_for_code("no.such.code", "x")


def test_classes_subclass_the_builtins_callers_catch() -> None:
    for code, cls in BY_CODE.items():
        if code.startswith("timeout."):
            assert issubclass(cls, wirecore.TimeoutError)
            assert issubclass(cls, builtins.TimeoutError)
    for cls in (wirecore.ConnectError, wirecore.DNSError, wirecore.TLSError):
        assert issubclass(cls, ConnectionError)
    for cls in (wirecore.ConfigError, wirecore.InvalidURL, wirecore.InvalidHeader):
        assert issubclass(cls, ValueError)
    assert issubclass(wirecore.DNSError, wirecore.ConnectError)


def test_real_failures_raise_their_class(client: wirecore.Client, srv: Server) -> None:
    with pytest.raises(wirecore.ConnectError) as c:
        client.get("http://127.0.0.1:9/")
    assert c.value.code == "connect"
    with pytest.raises(wirecore.TLSError) as t:
        client.get(f"{srv.info['bad_tls']}/json")
    assert t.value.code == "tls"
    with pytest.raises(wirecore.TotalTimeout) as to:
        client.get(f"{srv.http}/hang", timeout=0.1)
    assert isinstance(to.value, TimeoutError)
    with pytest.raises(wirecore.NetworkError):
        client.get(f"{srv.http}/reset")
    assert client.get(f"{srv.http}/bytes/1").status_code == 200


def test_connect_timeout(srv: Server) -> None:
    with wirecore.Client(timeouts={"connect_ms": 100}) as c:
        with pytest.raises(wirecore.ConnectTimeout) as e:
            c.get(f"http://{srv.info['blackhole']}/")
    assert e.value.code == "timeout.connect"

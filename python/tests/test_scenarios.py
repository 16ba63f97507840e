"""Replays every tests/scenarios/*.json through Client and through AsyncClient."""

from __future__ import annotations

import asyncio
import json
import pathlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import wirecore
from conftest import Server
from wirecore.exceptions import BY_CODE

SCENARIOS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.json"))
REQUEST_KEYS = {"method", "url", "headers", "body", "timeout_ms"}
OUTCOME_KEYS = {
    "status",
    "error",
    "body",
    "body_contains",
    "body_len",
    "json",
    "json_absent",
    "headers",
    "absent_headers",
    "version",
    "reused",
}


def test_scenarios_are_found() -> None:
    assert len(FILES) >= 30, SCENARIOS


def load(path: pathlib.Path, server: Server) -> dict[str, Any]:
    text = path.read_text()
    info = server.info
    for key in ("http", "https", "bad_tls", "mtls", "ca", "client_cert", "client_key"):
        text = text.replace("{" + key + "}", str(info[key]))
    for key in ("blackhole", "silent", "dns"):
        text = text.replace("{" + key + "}", str(info[key]))
    scenario: dict[str, Any] = json.loads(text)
    return scenario


def config_of(scenario: dict[str, Any], server: Server) -> dict[str, Any]:
    config = dict(scenario.get("config", {}))
    config.setdefault("tls", {"ca_files": [server.ca]})
    return config


def subset(expected: Any, actual: Any, path: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing in {actual!r}"
            subset(v, actual[k], f"{path}.{k}")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def has_path(doc: Any, path: str) -> bool:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return False
        doc = doc[key]
    return True


def check_outcome(outcome: dict[str, Any], result: wirecore.Response | BaseException) -> None:
    unknown = set(outcome) - OUTCOME_KEYS
    assert not unknown, f"the Python runner does not know outcome keys {unknown}"
    if "error" in outcome:
        code = outcome["error"]
        assert isinstance(result, BaseException), f"expected error {code}, got {result!r}"
        assert isinstance(result, BY_CODE[code]), f"expected {BY_CODE[code]}, got {result!r}"
        assert isinstance(result, wirecore.WirecoreError)
        assert result.code == code
        return
    if isinstance(result, BaseException):
        raise result
    r = result
    if "status" in outcome:
        assert r.status_code == outcome["status"]
    if "body" in outcome:
        assert r.text == outcome["body"]
    if "body_contains" in outcome:
        assert outcome["body_contains"] in r.text
    if "body_len" in outcome:
        assert len(r.content) == outcome["body_len"]
    if "json" in outcome:
        subset(outcome["json"], r.json())
    for path in outcome.get("json_absent", []):
        assert not has_path(r.json(), path), f"{path} should be absent: {r.text[:300]}"
    for name, value in outcome.get("headers", {}).items():
        assert r.headers.get(name) == value, f"header {name}: {r.headers!r}"
    for name in outcome.get("absent_headers", []):
        assert name not in r.headers, f"header {name} present: {r.headers!r}"
    if "version" in outcome:
        assert {"HTTP/2": "HTTP/2.0"}.get(r.http_version, r.http_version) == outcome["version"]
    if "reused" in outcome:
        assert r.reused is outcome["reused"]


def request_args(req: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    unknown = set(req) - REQUEST_KEYS
    assert not unknown, f"the Python runner does not know request keys {unknown}"
    kw: dict[str, Any] = {}
    if "headers" in req:
        kw["headers"] = req["headers"]
    if "body" in req:
        kw["content"] = req["body"]
    if "timeout_ms" in req:
        kw["timeout"] = req["timeout_ms"] / 1000
    return req["method"], req["url"], kw


def check_server(expected: dict[str, Any], server: Server) -> None:
    def matches(c: dict[str, Any]) -> bool:
        for k, want in expected.items():
            got = c.get(k)
            if isinstance(want, dict):
                if got is None or not want.get("min", got) <= got <= want.get("max", got):
                    return False
            elif got != want:
                return False
        return True

    # Closes and cancellations reach the server after the client sees them: poll briefly.
    counters = server.wait_for(matches, timeout=3.0)
    assert matches(counters), f"expected {expected}, counters {counters}"


def prepare(path: pathlib.Path, server: Server) -> dict[str, Any]:
    scenario = load(path, server)
    assert scenario["name"] == path.stem
    if "python" in scenario.get("skip", {}):
        pytest.skip(scenario["skip"]["python"])
    server.reset()
    for entry in scenario.get("script", []):
        server.script(entry)
    return scenario


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_sync(path: pathlib.Path, server: Server) -> None:
    scenario = prepare(path, server)
    client = wirecore.Client(config_of(scenario, server))

    def run(req: dict[str, Any]) -> wirecore.Response | BaseException:
        method, url, kw = request_args(req)
        try:
            return client.request(method, url, **kw)
        except wirecore.WirecoreError as e:
            return e

    for step in scenario["steps"]:
        n = step.get("concurrency", 1)
        if n == 1:
            results = [run(step["request"])]
        else:
            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(run, [step["request"]] * n))
        for r in results:
            check_outcome(step["outcome"], r)
    client.close()
    check_server(scenario.get("server", {}), server)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_async(path: pathlib.Path, server: Server) -> None:
    scenario = prepare(path, server)

    async def main() -> None:
        client = wirecore.AsyncClient(config_of(scenario, server))

        async def run(req: dict[str, Any]) -> wirecore.Response | BaseException:
            method, url, kw = request_args(req)
            try:
                return await client.request(method, url, **kw)
            except wirecore.WirecoreError as e:
                return e

        for step in scenario["steps"]:
            n = step.get("concurrency", 1)
            results = await asyncio.gather(*(run(step["request"]) for _ in range(n)))
            for r in results:
                check_outcome(step["outcome"], r)
        await client.aclose()

    asyncio.run(main())
    check_server(scenario.get("server", {}), server)

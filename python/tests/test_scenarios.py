"""Replays every tests/scenarios/*.json through Client and through AsyncClient."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import wirecore
from conftest import Server
from wirecore.exceptions import BY_CODE

SCENARIOS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.json"))
# Every key a scenario file may use, per object; any other key fails the file.
TOP_KEYS = {"name", "description", "config", "script", "dns", "steps", "stats", "server", "skip"}
STEP_KEYS = {"request", "outcome", "concurrency", "dns", "wait_ms"}
SCRIPT_KEYS = {"path", "replies"}
DNS_KEYS = {"name", "ips", "ttl", "fail", "remove", "negative_ttl"}
RANGE_KEYS = {"min", "max"}
LANGUAGES = {"rust", "python", "node", "go", "c"}
REQUEST_KEYS = {
    "method",
    "url",
    "headers",
    "body",
    "timeout_ms",
    "priority",
    "redirect",
    "max_redirects",
    "cache",
    "balance_key",
    "traceparent",
    "tracestate",
}
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
    "cache_status",
    "any_of",
}


def test_scenarios_are_found() -> None:
    assert len(FILES) >= 80, SCENARIOS


def keys(obj: Any, allowed: set[str], what: str) -> None:
    if obj is None:
        return
    assert isinstance(obj, dict), f"{what} must be an object"
    unknown = set(obj) - allowed
    assert not unknown, f"unknown keys {what}.{sorted(unknown)}"


def validate(sc: dict[str, Any]) -> None:
    """Checks every key of the file before anything runs."""
    keys(sc, TOP_KEYS, "scenario")
    keys(sc.get("skip"), LANGUAGES, "skip")
    for entry in sc.get("script", []):
        keys(entry, SCRIPT_KEYS, "script[]")
    for entry in sc.get("dns", []):
        keys(entry, DNS_KEYS, "dns[]")
    for k, v in sc.get("server", {}).items():
        if isinstance(v, dict):
            keys(v, RANGE_KEYS, f"server.{k}")
    assert sc.get("steps"), "no steps"
    for i, step in enumerate(sc["steps"]):
        keys(step, STEP_KEYS, f"steps[{i}]")
        for entry in step.get("dns", []):
            keys(entry, DNS_KEYS, f"steps[{i}].dns[]")
        assert ("request" in step) == ("outcome" in step), (
            f"steps[{i}]: request and outcome go together"
        )
        keys(step.get("request"), REQUEST_KEYS, f"steps[{i}].request")
        keys(step.get("outcome"), OUTCOME_KEYS, f"steps[{i}].outcome")
        for alt in step.get("outcome", {}).get("any_of", []):
            keys(alt, OUTCOME_KEYS - {"any_of"}, f"steps[{i}].outcome.any_of[]")


def load(path: pathlib.Path, server: Server) -> dict[str, Any]:
    text = path.read_text()
    info = server.info
    for key in ("http", "http2", "http3", "https", "bad_tls", "mtls", "ca"):
        text = text.replace("{" + key + "}", str(info[key]))
    for key in ("client_cert", "client_key", "torture"):
        text = text.replace("{" + key + "}", str(info[key]))
    for key in ("blackhole", "silent", "dns"):
        text = text.replace("{" + key + "}", str(info[key]))
    text = text.replace("{http_port}", str(info["http"]).rsplit(":", 1)[1])
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


def is_range(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and set(v) <= RANGE_KEYS


def check_stats(want: Any, have: Any, path: str = "") -> None:
    """The `stats` outcome: every key given must exist; leaves compare exactly or by range."""
    if is_range(want):
        assert isinstance(have, (int, float)), f"stats {path}: {have!r} is not a number"
        assert want.get("min", have) <= have <= want.get("max", have), (
            f"stats {path}: {have} not in {want}"
        )
    elif isinstance(want, dict):
        assert isinstance(have, dict), f"stats {path}: expected an object, got {have!r}"
        for k, v in want.items():
            p = f"{path}.{k}" if path else k
            assert k in have, f"stats {p}: no such field"
            check_stats(v, have[k], p)
    else:
        assert want == have, f"stats {path}: want {want!r}, got {have!r}"


def check_outcome(outcome: dict[str, Any], result: wirecore.Response | BaseException) -> None:
    unknown = set(outcome) - OUTCOME_KEYS
    assert not unknown, f"the Python runner does not know outcome keys {unknown}"
    if "any_of" in outcome:
        why = []
        for alt in outcome["any_of"]:
            try:
                check_outcome(alt, result)
                return
            except AssertionError as e:
                why.append(str(e))
            except wirecore.WirecoreError as e:
                why.append(f"unexpected {e.code}: {e}")
        raise AssertionError(f"no outcome of any_of matched: {why}")
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
        assert r.status_code == outcome["status"], f"status {r.status_code}"
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
    if "cache_status" in outcome:
        assert (r.cache_status or "none") == outcome["cache_status"], r.cache_status


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
    if "priority" in req:
        kw["priority"] = req["priority"]
    for k in ("redirect", "max_redirects"):
        if k in req:
            kw[k] = req[k]
    if "cache" in req:
        kw["cache"] = req["cache"]
    for k in ("balance_key", "traceparent", "tracestate"):
        if k in req:
            kw[k] = req[k]
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

    unknown = set(expected) - set(server.counters())
    assert not unknown, f"unknown server counters {unknown}"
    # Closes and cancellations reach the server after the client sees them: poll briefly.
    counters = server.wait_for(matches, timeout=3.0)
    assert matches(counters), f"expected {expected}, counters {counters}"


def prepare(path: pathlib.Path, server: Server) -> dict[str, Any]:
    scenario = load(path, server)
    assert scenario["name"] == path.stem
    validate(scenario)
    if "python" in scenario.get("skip", {}):
        # Printed with its reason and counted in pytest's summary (make test-python runs -rs).
        pytest.skip(scenario["skip"]["python"])
    server.reset()
    for entry in scenario.get("script", []):
        server.script(entry)
    set_dns(scenario.get("dns", []), server)
    return scenario


def set_dns(entries: list[dict[str, Any]], server: Server) -> None:
    for entry in entries:
        server._call("POST", "/_control/dns", entry)


def before_request(step: dict[str, Any], server: Server) -> bool:
    """Posts the step's DNS entries and waits its wait_ms; whether it has a request to send."""
    set_dns(step.get("dns", []), server)
    if "wait_ms" in step:
        # Time passing is the behaviour under test here (a breaker's open time).
        time.sleep(step["wait_ms"] / 1000)
    return "request" in step


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

    try:
        for step in scenario["steps"]:
            if not before_request(step, server):
                continue
            n = step.get("concurrency", 1)
            if n == 1:
                results = [run(step["request"])]
            else:
                with ThreadPoolExecutor(n) as pool:
                    results = list(pool.map(run, [step["request"]] * n))
            for r in results:
                check_outcome(step["outcome"], r)
        if "stats" in scenario:
            check_stats(scenario["stats"], client.stats())
    finally:
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

        try:
            for step in scenario["steps"]:
                set_dns(step.get("dns", []), server)
                if "wait_ms" in step:
                    await asyncio.sleep(step["wait_ms"] / 1000)
                if "request" not in step:
                    continue
                n = step.get("concurrency", 1)
                results = await asyncio.gather(*(run(step["request"]) for _ in range(n)))
                for r in results:
                    check_outcome(step["outcome"], r)
            if "stats" in scenario:
                check_stats(scenario["stats"], client.stats())
        finally:
            await client.aclose()

    asyncio.run(main())
    check_server(scenario.get("server", {}), server)

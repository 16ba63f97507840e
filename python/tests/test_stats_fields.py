"""Python's stats carry the core's field names: tests/stats-fields.json, generated from
wirecore::Stats (`make stats-fields`), against a real client's snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import wirecore
from conftest import Server

FIELDS = Path(__file__).resolve().parents[2] / "tests" / "stats-fields.json"


def differences(value: Any, shape: Any, path: str = "") -> list[str]:
    """Where `value` and the core's field tree differ. `{"*": x}` is a data map (origins, error
    codes): its keys are data, each value has shape `x`, and one of records must not be empty."""
    if isinstance(shape, str):
        return []
    where = path.rstrip(".") or "stats"
    if not isinstance(value, dict):
        return [f"{where} is a {type(value).__name__}, the core has an object"]
    if set(shape) == {"*"}:
        if isinstance(shape["*"], dict) and not value:
            return [f"{where} is empty: the test must fill it to check its records"]
        return [d for k, v in value.items() for d in differences(v, shape["*"], f"{path}{k}.")]
    out = [f"{path}{k} is missing" for k in sorted(shape.keys() - value.keys())]
    out += [f"{path}{k} is not a core field" for k in sorted(value.keys() - shape.keys())]
    for k in sorted(shape.keys() & value.keys()):
        out += differences(value[k], shape[k], f"{path}{k}.")
    return out


def test_stats_use_the_core_field_names(srv: Server, tls_config: dict[str, Any]) -> None:
    shape = json.loads(FIELDS.read_text())
    cfg = {
        **tls_config,
        "rate_limit": {"enabled": True, "requests": 1000, "per_ms": 1000},
        "breaker": {"enabled": True, "consecutive_failures": 3},
        "concurrency": {"enabled": True, "initial_limit": 10},
        "services": {"svc": {"endpoints": [{"url": srv.http}]}},
    }
    with wirecore.Client(cfg) as c:
        for url in (f"{srv.http}/bytes/1", "http://svc/bytes/1"):
            assert c.get(url).status_code == 200
        stats = c.stats()
    assert differences(stats, shape) == []
    # The walk itself: a renamed or extra key is reported.
    stats["pool"]["connectz"] = stats["pool"].pop("connects")
    assert differences(stats, shape) == [
        "pool.connects is missing",
        "pool.connectz is not a core field",
    ]

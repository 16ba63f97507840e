"""The shipped types catch mistakes: mypy --strict on code using the installed wheel flags a
misspelled config key, a wrongly typed config value and an unknown request option, and accepts
the correct forms (config kwargs and dicts, Timeout, priority, streamed content)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SNIPPET = """\
from collections.abc import Iterator

import wirecore
from wirecore import Config, Timeout

cfg: Config = {"pool": {"max_connections_per_host": 4}, "retry": {"max_attempts": 2}}
ok = wirecore.Client(cfg, timeouts={"read_idle_ms": 500}, user_agent="t/1")
ok2 = wirecore.AsyncClient(rate_limit={"enabled": True, "scope": "key", "mode": "fail"})


def body() -> Iterator[bytes]:
    yield b"x"


r = ok.post("http://h/", content=body(), timeout=Timeout(read=1.0), priority="high")
r2 = ok.get("http://h/", idempotent=True, rate_limit_key="k", priority=2)
status: int = r.status_code + r2.status_code
bad1 = wirecore.Client(pool={"max_conections": 4})  # E
bad2 = wirecore.Client(retry={"max_attempts": "3"})  # E
bad3 = wirecore.Client(rate_limit={"mode": "sometimes"})  # E
ok.get("http://h/", prority=1)  # E
wirecore.Client(tiemouts={})  # E
"""


def test_mypy_flags_exactly_the_bad_lines(tmp_path: Path) -> None:
    src = tmp_path / "snippet.py"
    src.write_text(SNIPPET)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    flagged = {int(m.group(1)) for m in re.finditer(r"snippet\.py:(\d+): error", out.stdout)}
    expected = {i for i, line in enumerate(SNIPPET.splitlines(), 1) if line.endswith("# E")}
    assert len(expected) == 5
    assert flagged == expected, out.stdout

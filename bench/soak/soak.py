#!/usr/bin/env python3
"""Soak (`make soak`): every binding's worker runs mixed traffic at once through toxiproxy in
front of the test server, with a new fault every SOAK_PERIOD seconds and Redis (the distributed
rate limiter's store) blackholed as one of them; samples RSS, open fds, threads and a runtime
gauge of each worker every SOAK_SAMPLE seconds; writes a table and one SVG per language.

Pass: after the warm-up, the least-squares slope of each sampled series is under its bound, no
request failed outside a fault's window (plus SOAK_GRACE for requests in flight when it ended),
every worker exited 0 and completed requests.

    soak.py --toxiproxy PATH --testserver PATH --redis PATH --out DIR --worker NAME=COMMAND...

A worker command gets `SECONDS (BASE_URL CONFIG_JSON)...` appended; it prints
`err START_MS END_MS CODE` and `tick NOW_MS OK ERR GAUGE` (see bench/soak/worker.*).
No dependencies beyond the standard library.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ENV = os.environ
SECONDS = float(ENV.get("SOAK_SECONDS", "1800"))
PERIOD = float(ENV.get("SOAK_PERIOD", "30"))
ACTIVE = float(ENV.get("SOAK_ACTIVE", str(PERIOD * 2 / 3)))
SAMPLE = float(ENV.get("SOAK_SAMPLE", "10"))
WARMUP = float(ENV.get("SOAK_WARMUP", str(max(120.0, SECONDS / 10))))
GRACE = float(ENV.get("SOAK_GRACE", "6"))


def judged_from() -> float:
    """Where the judged slopes start: the second half of the run, or the end of the warm-up if
    later. A leak grows at a steady rate (per request, client or fault), so it shows in any
    window; growth that stops (a collector sizing its heap, an allocator reaching its
    high-water mark) is warm-up, however long it takes, and is over by then in a run long enough
    to judge. The bounds stay the same."""
    return max(WARMUP, SECONDS / 2)


def gauge_name(worker: str) -> str:
    """The gauge a worker reports (`node-gc` is Node's worker run with --expose-gc)."""
    return GAUGES.get(worker, GAUGES.get(worker.split("-")[0], "gauge"))


GAUGES = {
    "rust": "tokio tasks alive",
    "python": "Python objects (gc)",
    "node": "active libuv resources",
    "go": "goroutines",
    "c": "(none)",
}

# Slope bounds after the warm-up, per minute. At ~80 requests/s per worker, leaking 1 KiB per
# request would grow 4.7 MiB/min and one fd per client (a client lives ~0.5 s) ~100/min.
BOUNDS = {"rss_mib": 1.0, "fds": 1.0, "threads": 0.5}
GAUGE_BOUND_FRACTION = 0.01  # of the median per minute, at least 1/min


def toxic(kind: str, stream: str, **attributes: float) -> dict:
    return {
        "name": f"{kind}_{stream}",
        "type": kind,
        "stream": stream,
        "toxicity": 1.0,
        "attributes": attributes,
    }


# (name, what, {proxy: [toxics]} or None to disable the HTTP proxies)
FAULTS: list[tuple[str, str, dict | None]] = [
    (
        "latency",
        "100 ms ± 50 ms each way",
        {
            p: [
                toxic("latency", "downstream", latency=100, jitter=50),
                toxic("latency", "upstream", latency=100, jitter=50),
            ]
            for p in ("http", "https")
        },
    ),
    (
        "bandwidth",
        "256 KB/s downstream per connection",
        {p: [toxic("bandwidth", "downstream", rate=256)] for p in ("http", "https")},
    ),
    (
        "slicer",
        "8-byte segments, 50 µs apart, both ways",
        {
            p: [
                toxic("slicer", s, average_size=8, size_variation=4, delay=50)
                for s in ("downstream", "upstream")
            ]
            for p in ("http", "https")
        },
    ),
    (
        "reset_peer",
        "TCP RST when data arrives",
        {p: [toxic("reset_peer", "upstream", timeout=0)] for p in ("http", "https")},
    ),
    (
        "blackhole",
        "data dropped, connections kept open (timeout 0)",
        {p: [toxic("timeout", "downstream", timeout=0)] for p in ("http", "https")},
    ),
    (
        "limit_data",
        "connections cut after 4096 bytes downstream",
        {p: [toxic("limit_data", "downstream", bytes=4096)] for p in ("http", "https")},
    ),
    ("refused", "HTTP proxies disabled: connection refused", None),
    (
        "redis_blackhole",
        "Redis blackholed (timeout 0 both ways); the limiter fails open",
        {"redis": [toxic("timeout", s, timeout=0) for s in ("downstream", "upstream")]},
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > end:
            raise SystemExit(f"soak: {what} not ready within {deadline_s:.0f} s")
        time.sleep(0.05)


class Toxiproxy:
    def __init__(self, binary: str) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("toxiproxy", lambda: self.call("GET", "/version") is not None)

    def call(self, method: str, path: str, body: dict | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text.strip() else {}

    def proxy(self, name: str, upstream: str) -> str:
        p = self.call(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True},
        )
        assert isinstance(p, dict)
        return str(p["listen"])

    def apply(self, toxics: dict | None) -> None:
        self.call("POST", "/reset")
        if toxics is None:
            for p in ("http", "https"):
                self.call("POST", f"/proxies/{p}", {"enabled": False})
            return
        for proxy, ts in toxics.items():
            for t in ts:
                self.call("POST", f"/proxies/{proxy}/toxics", t)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    tick: tuple[int, int, int] = (0, 0, 0)  # ok, err, gauge
    # Optional `NAME=VALUE` fields after a tick's gauge (Node: process.memoryUsage() in MiB and
    # the addon's live-object counts), sampled with the rest and written as extra CSV columns.
    extra: dict[str, float] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["err"] and len(parts) == 4:
                self.errors.append((int(parts[1]), int(parts[2]), parts[3]))
            elif parts[:1] == ["tick"] and len(parts) >= 5:
                self.tick = (int(parts[2]), int(parts[3]), int(parts[4]))
                self.extra = {k: float(v) for k, _, v in (p.partition("=") for p in parts[5:]) if v}
            elif len(self.stray) < 20:
                self.stray.append(line.rstrip())


def proc_sample(pid: int) -> dict | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": fds,
    }


def slope_per_min(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 60


def extra_keys(samples: list[dict]) -> list[str]:
    """The extra sampled fields (see `Worker.extra`), in the order they first appear."""
    base = {"t", "rss_mib", "fds", "threads", "gauge", "ok", "err"}
    keys: dict[str, None] = {}
    for s in samples:
        keys.update((k, None) for k in s if k not in base)
    return list(keys)


COLORS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#495057"]


def svg(worker: Worker, windows: list[tuple[str, float, float]], t0: float, path: Path) -> None:
    # One panel per (label, keys); a panel with several keys draws one line each, with a legend.
    extras = extra_keys(worker.samples)
    series = [
        ("RSS (MiB)", ["rss_mib"]),
        ("open fds", ["fds"]),
        ("threads", ["threads"]),
        (gauge_name(worker.name), ["gauge"]),
    ]
    if mem := [k for k in extras if k.endswith("_mib")]:
        series.append(("memory (MiB)", mem))
    if counts := [k for k in extras if not k.endswith("_mib")]:
        series.append(("native counts", counts))
    w, ph, left, top = 760, 150, 70, 40
    h = top + len(series) * (ph + 30) + 20
    span = max(SECONDS, max((s["t"] for s in worker.samples), default=1))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">wirecore soak: {worker.name} '
        f"({span / 60:.0f} min, a fault every {PERIOD:.0f} s; shaded: fault windows, "
        f"dashed: start of the judged window)</text>",
    ]
    pw = w - left - 20
    for k, (label, keys) in enumerate(series):
        y0 = top + k * (ph + 30)
        vals = [s[key] for s in worker.samples for key in keys if key in s]
        lo, hi = (min(vals), max(vals)) if vals else (0, 1)
        lo = min(lo, 0) if keys != ["rss_mib"] else lo * 0.9
        hi = hi * 1.05 if hi > lo else lo + 1
        out.append(
            f'<rect x="{left}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>'
        )
        for _, ws, we in windows:
            x1 = left + pw * max(0.0, ws - t0) / span
            x2 = left + pw * min(span, we - t0) / span
            if x2 > x1:
                out.append(
                    f'<rect x="{x1:.1f}" y="{y0}" width="{x2 - x1:.1f}" height="{ph}" '
                    f'fill="#f4c7c3" fill-opacity="0.5"/>'
                )
        xw = left + pw * min(judged_from(), span) / span
        out.append(
            f'<line x1="{xw:.1f}" y1="{y0}" x2="{xw:.1f}" y2="{y0 + ph}" stroke="#555" '
            f'stroke-dasharray="4 3"/>'
        )
        for i, key in enumerate(keys):
            pts = " ".join(
                f"{left + pw * s['t'] / span:.1f},{y0 + ph - ph * (s[key] - lo) / (hi - lo):.1f}"
                for s in worker.samples
                if key in s
            )
            color = COLORS[i % len(COLORS)]
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
            if len(keys) > 1:
                out.append(
                    f'<text x="{left + pw - 4}" y="{y0 + 12 + 12 * i}" text-anchor="end" '
                    f'fill="{color}">{key}</text>'
                )
        out.append(f'<text x="{left}" y="{y0 - 4}">{label}</text>')
        out.append(f'<text x="{left - 4}" y="{y0 + 10}" text-anchor="end">{hi:.4g}</text>')
        out.append(f'<text x="{left - 4}" y="{y0 + ph}" text-anchor="end">{lo:.4g}</text>')
    out.append(
        f'<text x="{left + pw}" y="{h - 6}" text-anchor="end">minutes: 0 … {span / 60:.1f}</text>'
    )
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--toxiproxy")
    ap.add_argument("--testserver")
    ap.add_argument("--redis")
    ap.add_argument("--out", required=True)
    ap.add_argument("--report-from", help="judge a run saved with --raw again; run nothing")
    ap.add_argument("--worker", action="append", default=[], help="NAME=COMMAND")
    ap.add_argument("--raw", help="also save the run's samples, windows and errors here (JSON)")
    args = ap.parse_args()
    if args.report_from:
        return report_from(Path(args.report_from), Path(args.out))
    if not (args.toxiproxy and args.testserver and args.redis):
        ap.error("--toxiproxy, --testserver and --redis are required")
    langs = [x for x in ENV.get("SOAK_LANGS", "").split(",") if x]
    commands = [w.split("=", 1) for w in args.worker]
    if langs:
        commands = [(n, c) for n, c in commands if n in langs]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    server = subprocess.Popen(
        [args.testserver, "--no-request-log", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    info = json.loads(server.stdout.readline())
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            args.redis,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for(
        "redis", lambda: socket.create_connection(("127.0.0.1", redis_port), 1).close() or True
    )
    tp = Toxiproxy(args.toxiproxy)
    workers: list[Worker] = []
    try:
        http = tp.proxy("http", info["http"].split("//", 1)[1])
        https = tp.proxy("https", info["https"].split("//", 1)[1])
        rds = tp.proxy("redis", f"127.0.0.1:{redis_port}")
        base_cfg = {
            "timeouts": {"total_ms": 5000},
            "retry": {"backoff_base_ms": 10, "backoff_max_ms": 200},
            "rate_limit": {
                "enabled": True,
                "backend": "redis",
                "requests": 100000,
                "per_ms": 1000,
                "redis": {"url": f"redis://{rds}", "timeout_ms": 100, "on_error": "fail_open"},
            },
        }
        kinds = [
            (f"http://{http}", base_cfg),
            (f"http://{http}", {**base_cfg, "http2": {"prior_knowledge": True}}),
            (f"https://{https}", {**base_cfg, "tls": {"ca_files": [info["ca"]]}}),
        ]
        tail = [str(SECONDS)]
        for base, cfg in kinds:
            tail += [base, json.dumps(cfg)]
        for name, cmd in commands:
            proc = subprocess.Popen(
                shlex.split(cmd) + tail, stdout=subprocess.PIPE, text=True, bufsize=1
            )
            w = Worker(name, proc)
            threading.Thread(target=w.read, daemon=True).start()
            workers.append(w)
        print(
            f"soak: {', '.join(w.name for w in workers)} for {SECONDS:.0f} s, a fault every "
            f"{PERIOD:.0f} s ({ACTIVE:.0f} s on)",
            flush=True,
        )

        t0 = time.time()
        loads: list[float] = []
        windows: list[tuple[str, float, float]] = []
        next_sample, next_phase, phase, active = t0, t0 + PERIOD, 0, None
        while (now := time.time()) < t0 + SECONDS:
            if active and now >= active[1] + ACTIVE:
                tp.apply({})
                windows.append((active[0], active[1], time.time()))
                active = None
            if now >= next_phase:
                name, _, toxics = FAULTS[phase % len(FAULTS)]
                # The window opens before the first toxic does: a request it breaks at once
                # counts inside.
                active = (name, time.time())
                tp.apply(toxics)
                phase += 1
                next_phase += PERIOD
            if now >= next_sample:
                loads.append(os.getloadavg()[0])
                for w in workers:
                    s = proc_sample(w.proc.pid)
                    if s is not None:
                        s.update(w.extra)
                        s.update(t=now - t0, ok=w.tick[0], err=w.tick[1], gauge=w.tick[2])
                        w.samples.append(s)
                next_sample += SAMPLE
                line = "  ".join(
                    f"{w.name} {w.samples[-1]['rss_mib']:.0f}MiB/{w.samples[-1]['fds']}fd/"
                    f"{w.tick[0]}ok/{w.tick[1]}err"
                    for w in workers
                    if w.samples
                )
                print(
                    f"[{(now - t0) / 60:5.1f} min] {active[0] if active else '-':16} {line}",
                    flush=True,
                )
            time.sleep(
                max(
                    0.0,
                    min(next_sample, next_phase, (active or ("", 1e18))[1] + ACTIVE) - time.time(),
                )
            )
        if active:
            tp.apply({})
            windows.append((active[0], active[1], time.time()))
        exits = {}
        for w in workers:
            try:
                exits[w.name] = w.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                exits[w.name] = "killed after 120 s"
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
        tp.proc.kill()
        redis.kill()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    if args.raw:
        save_raw(Path(args.raw), workers, windows, t0, exits, loads)
    return report(workers, windows, t0, exits, out_dir, loads)


def save_raw(path: Path, workers, windows, t0, exits, loads) -> None:
    """What `report` reads, so `soak.py --report-from FILE --out DIR` can judge it again."""
    path.write_text(
        json.dumps(
            {
                "seconds": SECONDS,
                "warmup": WARMUP,
                "t0": t0,
                "windows": windows,
                "exits": exits,
                "loads": loads,
                "workers": [
                    {
                        "name": w.name,
                        "samples": w.samples,
                        "errors": w.errors,
                        "tick": w.tick,
                        "stray": w.stray,
                    }
                    for w in workers
                ],
            }
        )
    )


def report_from(path: Path, out_dir: Path) -> int:
    global SECONDS, WARMUP
    raw = json.loads(path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    SECONDS, WARMUP = raw["seconds"], raw["warmup"]
    workers = []
    for r in raw["workers"]:
        w = Worker(r["name"], None)  # type: ignore[arg-type]
        w.samples, w.tick, w.stray = r["samples"], tuple(r["tick"]), r["stray"]
        w.errors = [tuple(e) for e in r["errors"]]
        workers.append(w)
    windows = [tuple(x) for x in raw["windows"]]
    return report(workers, windows, raw["t0"], raw["exits"], out_dir, raw["loads"])


def report(workers, windows, t0, exits, out_dir: Path, loads: list[float]) -> int:
    ok_all = True
    when = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows, per_fault, problems = [], {}, []
    for w in workers:
        steady = [s for s in w.samples if s["t"] >= judged_from()]
        slopes = {k: slope_per_min([(s["t"], s[k]) for s in steady]) for k in (*BOUNDS, "gauge")}
        # Shown, not judged: the RSS slope from the end of the warm-up (the rule before
        # 2026-12-06), so what the second-half window leaves out stays visible.
        rss_warm = slope_per_min([(s["t"], s["rss_mib"]) for s in w.samples if s["t"] >= WARMUP])
        gauges = sorted(s["gauge"] for s in steady) or [0]
        bounds = dict(BOUNDS, gauge=max(1.0, GAUGE_BOUND_FRACTION * gauges[len(gauges) // 2]))
        over = [k for k in slopes if slopes[k] > bounds[k]]
        inside, outside = 0, []
        for start, end, code in w.errors:
            # The latest fault whose window (plus grace) the request overlapped.
            hit = next(
                (
                    name
                    for name, ws, we in reversed(windows)
                    if start <= (we + GRACE) * 1000 and end >= ws * 1000
                ),
                None,
            )
            if hit:
                inside += 1
                per_fault.setdefault(hit, {}).setdefault(w.name, {}).setdefault(code, 0)
                per_fault[hit][w.name][code] += 1
            else:
                outside.append((start, end, code))
        passed = not over and not outside and exits[w.name] == 0 and w.tick[0] > 0
        ok_all &= passed
        if over:
            problems.append(f"{w.name}: slope over bound: {', '.join(over)}")
        for start, end, code in outside[:10]:
            problems.append(
                f"{w.name}: `{code}` outside any fault window (request at "
                f"{start / 1000 - t0:.1f}–{end / 1000 - t0:.1f} s)"
            )
        if exits[w.name] != 0:
            problems.append(f"{w.name}: worker exit {exits[w.name]}; stray output {w.stray}")
        first, last = (w.samples[0], w.samples[-1]) if w.samples else ({}, {})
        rows.append(
            f"| {w.name} | {w.tick[0]} | {inside} | {len(outside)} | "
            f"{first.get('rss_mib', 0):.1f} → {last.get('rss_mib', 0):.1f} "
            f"(max {max((s['rss_mib'] for s in w.samples), default=0):.1f}) | "
            f"{slopes['rss_mib']:+.3f} | {rss_warm:+.3f} | "
            f"{first.get('fds', 0)} → {last.get('fds', 0)} | "
            f"{slopes['fds']:+.3f} | {first.get('threads', 0)} → {last.get('threads', 0)} | "
            f"{slopes['threads']:+.3f} | {gauge_name(w.name)}: "
            f"{first.get('gauge', 0)} → {last.get('gauge', 0)}, {slopes['gauge']:+.2f} "
            f"(bound {bounds['gauge']:.1f}) | {'pass' if passed else '**FAIL**'} |"
        )
        svg(w, windows, t0, out_dir / f"soak-{w.name}.svg")
        extras = extra_keys(w.samples)
        with open(out_dir / f"soak-{w.name}.csv", "w") as f:
            # The columns every binding has, then its extra fields (Node's memoryUsage()).
            f.write(",".join(["t_s,rss_mib,fds,threads,gauge,ok,err", *extras]) + "\n")
            for s in w.samples:
                more = "".join(f",{s[k]:g}" if k in s else "," for k in extras)
                f.write(
                    f"{s['t']:.1f},{s['rss_mib']:.2f},{s['fds']},{s['threads']},"
                    f"{s['gauge']},{s['ok']},{s['err']}{more}\n"
                )
    names = [w.name for w in workers]
    text = [
        "# Soak",
        "",
        f"Generated by `make soak` (bench/soak/soak.py) at {when}: {SECONDS / 60:.1f} min per "
        f"binding, all bindings at once ({', '.join(names)}), each a worker process sending mixed "
        "traffic (GET 1 KiB, GET 64 KiB, POST 4 KiB echo, GET JSON; 4 at a time, 50 ms pause "
        "between a task's requests) through toxiproxy to the test server; a new client every "
        "40 requests, rotating HTTP/1.1, h2c prior knowledge and HTTPS (ALPN h2); every client "
        "uses the Redis-backed rate limiter (fail open, 100 ms Redis timeout) through toxiproxy. "
        f"Every {PERIOD:.0f} s a new fault for {ACTIVE:.0f} s (first after {PERIOD:.0f} s); "
        f"samples every {SAMPLE:.0f} s. An error counts as inside a fault if its request "
        f"overlapped the fault's window plus {GRACE:.0f} s.",
        "",
        f"Pass: every slope under its bound, judged by least squares over the second half of the "
        f"run (the samples from {judged_from():.0f} s: the later of half the run and the "
        f"{WARMUP:.0f} s warm-up), the same window for every binding; no error outside a fault's "
        "window; the worker exited 0. A leak grows at a steady rate (per request, per client, "
        "per fault), so it shows in the second half as in any window; growth that levels off "
        "is warm-up however long it lasts. Node needs the longer window: its clients' native "
        "memory (pools, TLS config, buffers) is freed only when V8 collects the JS object that "
        "holds it, V8 cannot see that memory, and the RSS climbs in steps to the high-water mark "
        "of memory awaiting collection, which took up to 18 minutes in the 2026-12-06 runs "
        "(bench/results/soak-node-alone/: not a leak; `node-gc`, collected before each sample, "
        "is flat). "
        "The column after it shows the RSS slope from the end of the warm-up (the rule before "
        "2026-12-06), not judged.",
        "",
        f"Bounds per minute: RSS {BOUNDS['rss_mib']} MiB, fds {BOUNDS['fds']}, threads "
        f"{BOUNDS['threads']}, gauge max(1, {GAUGE_BOUND_FRACTION:.0%} of its median).",
        "",
        f"Machine: {os.cpu_count()} CPUs; 1-minute load average at the samples min "
        f"{min(loads, default=0):.1f}, median {sorted(loads or [0])[len(loads) // 2]:.1f}, "
        f"max {max(loads, default=0):.1f} (the soak's own processes included).",
        "",
        "| binding | requests ok | errors in faults | errors outside | RSS MiB first → last | "
        "RSS MiB/min | RSS MiB/min after warm-up (not judged) | fds | fds/min | threads | "
        "threads/min | gauge, /min | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Errors per fault (inside its window)",
        "",
        f"| fault | what | {' | '.join(names)} |",
        f"|---|---|{'---|' * len(names)}",
    ]
    for name, what, _ in FAULTS:
        cells = [
            ", ".join(f"{c} {n}" for c, n in sorted(per_fault.get(name, {}).get(x, {}).items()))
            or "none"
            for x in names
        ]
        text.append(f"| {name} | {what} | {' | '.join(cells)} |")
    for w in workers:
        extras = extra_keys(w.samples)
        if not extras:
            continue
        steady = [s for s in w.samples if s["t"] >= judged_from()]
        text += [
            "",
            f"## {w.name}: extra series (informational; not judged)",
            "",
            "| series | first | after warm-up | last | max | slope /min, judged window | "
            "slope /min after warm-up |",
            "|---|---|---|---|---|---|---|",
        ]
        warm = next((s for s in w.samples if s["t"] >= WARMUP), w.samples[-1])
        for k in extras:
            pts = [(s["t"], s[k]) for s in w.samples if k in s]
            text.append(
                f"| {k} | {pts[0][1]:g} | {warm.get(k, 0):g} | {pts[-1][1]:g} | "
                f"{max(v for _, v in pts):g} | "
                f"{slope_per_min([(s['t'], s[k]) for s in steady if k in s]):+.3f} | "
                f"{slope_per_min([(t, v) for t, v in pts if t >= WARMUP]):+.3f} |"
            )
    text += ["", "## Plots", ""]
    text += [f"![{n}](soak-{n}.svg)" for n in names]
    text += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["none"])
    (out_dir / "soak.md").write_text("\n".join(text) + "\n")
    print("\n".join(text[-len(problems) - 2 :]))
    print(f"soak: wrote {out_dir / 'soak.md'}: {'pass' if ok_all else 'FAIL'}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())

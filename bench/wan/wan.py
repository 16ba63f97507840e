#!/usr/bin/env python3
"""WAN benchmark (`make bench-wan`): toxiproxy adds WAN_LATENCY_MS (default 50) each way in
front of the test server's TLS port; each language's client program sends N (default 200)
sequential, then N concurrent GETs of 1 KiB with a new connection per request (Rust baseline),
the language's default client and wirecore; then one HTTP/2 download of WAN_BULK_MB (default
8) MiB with wirecore's windows and with 64 KiB windows. Writes a Markdown table.

    wan.py --toxiproxy PATH --testserver PATH --out FILE --client NAME=COMMAND... --bulk COMMAND

A client command gets `URL N CA_PEM` appended and prints `latency CLIENT MODE MS,...` lines;
the bulk command gets `URL CA_PEM` and prints `bulk CLIENT BYTES SECONDS`.
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
import time
import urllib.request

N = int(os.environ.get("WAN_REQUESTS", "200"))
LATENCY = int(os.environ.get("WAN_LATENCY_MS", "50"))
BULK_MB = int(os.environ.get("WAN_BULK_MB", "8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(api: str, method: str, path: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
    return json.loads(text) if text.strip() else {}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def accepted(control: str) -> int:
    with urllib.request.urlopen(control + "/_control/counters", timeout=10) as r:
        return int(json.loads(r.read()).get("connections_accepted", 0))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--toxiproxy", required=True)
    ap.add_argument("--testserver", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--client", action="append", default=[], help="LANG=COMMAND")
    ap.add_argument("--bulk", required=True)
    args = ap.parse_args()

    server = subprocess.Popen(
        [args.testserver, "--no-request-log", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    info = json.loads(server.stdout.readline())
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    tp = subprocess.Popen(
        [args.toxiproxy, "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[tuple[str, str, str, list[float], int]] = []
    bulk: list[tuple[str, int, float]] = []
    failed: dict[tuple[str, str, str], int] = {}
    try:
        end = time.monotonic() + 20
        while True:
            try:
                call(api, "GET", "/version")
                break
            except OSError:
                if time.monotonic() > end:
                    raise SystemExit("wan: toxiproxy did not start") from None
                time.sleep(0.05)
        p = call(api, "POST", "/proxies", {"name": "wan", "listen": "127.0.0.1:0",
                                           "upstream": info["https"].split("//", 1)[1]})
        assert isinstance(p, dict)
        for stream in ("upstream", "downstream"):
            call(api, "POST", "/proxies/wan/toxics",
                 {"name": f"latency_{stream}", "type": "latency", "stream": stream,
                  "attributes": {"latency": LATENCY, "jitter": 0}})
        base = f"https://{p['listen']}"
        control = info["control"]
        for spec in args.client:
            lang, cmd = spec.split("=", 1)
            before = accepted(control)
            print(f"wan: {lang} …", flush=True)
            out = subprocess.run(shlex.split(cmd) + [f"{base}/bytes/1024", str(N), info["ca"]],
                                 capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                print(out.stdout + out.stderr, file=sys.stderr)
                raise SystemExit(f"wan: {lang} failed")
            conns = accepted(control) - before
            for line in out.stdout.splitlines():
                parts = line.split()
                if parts[:1] == ["failed"] and len(parts) == 4:
                    failed[(lang, parts[1], parts[2])] = int(parts[3])
                    print(f"  {parts[1]:16} {parts[2]:10} {parts[3]} failed", flush=True)
                if parts[:1] == ["latency"] and len(parts) == 4:
                    rows.append((lang, parts[1], parts[2], [float(x) for x in parts[3].split(",")],
                                 conns))
                    print(f"  {parts[1]:16} {parts[2]:10} p50 {pct(rows[-1][3], 50):8.1f} ms  "
                          f"p95 {pct(rows[-1][3], 95):8.1f} ms", flush=True)
        print("wan: bulk …", flush=True)
        out = subprocess.run(shlex.split(args.bulk) + [f"{base}/bytes/{BULK_MB << 20}", info["ca"]],
                             capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            print(out.stdout + out.stderr, file=sys.stderr)
            raise SystemExit("wan: bulk failed")
        for line in out.stdout.splitlines():
            parts = line.split()
            if parts[:1] == ["bulk"] and len(parts) == 4:
                bulk.append((parts[1], int(parts[2]), float(parts[3])))
                print(f"  {line}", flush=True)
    finally:
        tp.kill()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    write(args.out, rows, bulk, failed)
    return 0


def write(path: str, rows, bulk, failed) -> None:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    base = {(mode): pct(ms, 50) for lang, client, mode, ms, _ in rows if client == "new-connection"}
    default = {
        (lang, mode): pct(ms, 50)
        for lang, client, mode, ms, _ in rows
        if client not in ("wirecore", "new-connection")
    }
    text = [
        "# WAN benchmark",
        "",
        f"Generated by `make bench-wan` (bench/wan/wan.py) at {when}. toxiproxy v2.12.0 adds "
        f"{LATENCY} ms each way ({2 * LATENCY} ms RTT) in front of the test server's TLS port "
        "(TLS 1.3, ALPN h2/http1.1, the test CA trusted). Each client sends "
        f"{N} sequential GETs of 1 KiB, then, on a fresh client, {N} concurrent ones (all "
        "started at once; a request's latency counts from the common start). Fresh clients: "
        "the first requests pay the TCP and TLS handshakes, as a new service's would. toxiproxy accepts the TCP connection itself, so the TCP handshake costs no added RTT here: a new connection costs TLS (1 RTT, TLS 1.3) + the request (1 RTT), where a real WAN adds a third. "
        "Debug builds of wirecore (latency here is the network's; the CPU cost is in the "
        "other benchmark files).",
        "",
        "Baseline (a), new connection per request: reqwest, HTTP/1.1 with no idle pool. Default "
        "clients (b), as they ship: reqwest (h2 over ALPN), httpx.AsyncClient (HTTP/1.1), "
        "undici.request on its default Agent (HTTP/1.1), Go net/http's default Transport "
        "(h2 over ALPN). wirecore (c): default config (h2 over ALPN).",
        "",
        "| language | client | sequential p50 ms | p95 ms | concurrent p50 ms | p95 ms | "
        "connections | seq p50 ÷ (a) | conc p50 ÷ (a) | seq p50 ÷ default | conc p50 ÷ default |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by = {}
    for lang, client, mode, ms, conns in rows:
        by.setdefault((lang, client), {})[mode] = ms
        by[(lang, client)]["conns"] = conns
    for (lang, client), m in by.items():
        seq, conc = m.get("sequential") or [0], m.get("concurrent") or [0]
        lost = failed.get((lang, client, "concurrent"), 0)
        s50, c50 = pct(seq, 50), pct(conc, 50)

        def ratio(v: float, ref: float | None) -> str:
            return f"{v / ref:.2f}" if ref else "–"

        is_def = client not in ("wirecore", "new-connection")
        text.append(
            f"| {lang} | {client} | {s50:.1f} | {pct(seq, 95):.1f} | {c50:.1f} | "
            f"{pct(conc, 95):.1f}{f' ({lost} of {N} failed)' if lost else ''} | {m['conns']} | {ratio(s50, base.get('sequential'))} | "
            f"{ratio(c50, base.get('concurrent'))} | "
            f"{'–' if is_def or client == 'new-connection' else ratio(s50, default.get((lang, 'sequential')))} | "
            f"{'–' if is_def or client == 'new-connection' else ratio(c50, default.get((lang, 'concurrent')))} |"
        )
    text += [
        "",
        "The connections column is the test server's accepted-connection count over the whole "
        "program run of that language (all its clients, both modes). Baseline (a) is measured "
        "once, in Rust; every language's ratios use it. Figures move between runs on a loaded "
        "2-core machine (the concurrent column most: it is CPU-bound handshakes for the "
        "clients that open a connection per request).",
        "",
        f"## HTTP/2 bulk download, {BULK_MB} MiB over the {2 * LATENCY} ms RTT path (Rust)",
        "",
        "| client | bytes | seconds | MB/s | speed-up vs 64 KiB window |",
        "|---|---|---|---|---|",
    ]
    slow = next((s for name, _, s in bulk if name == "reqwest-64KiB-window"), None)
    for name, n, s in bulk:
        text.append(f"| {name} | {n} | {s:.2f} | {n / s / 1e6:.2f} | "
                    f"{(slow / s) if slow else 0:.1f}× |")
    text.append("")
    text.append("wirecore's windows: `http2.initial_stream_window_bytes` 2 MiB, "
                "`initial_connection_window_bytes` 4 MiB (the defaults); the 64 KiB clients set "
                "both to 65,535 (HTTP/2's initial value).")
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    sys.exit(main())

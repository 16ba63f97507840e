"""Fetcher for the fault matrix (tests/faults): for each stdin line ``METHOD URL CONFIG_JSON``,
one request on a fresh client; prints ``status CODE BODY_LEN`` or ``error CODE``."""

import json
import sys

import wirecore


def main() -> None:
    for line in sys.stdin:
        method, url, config = line.rstrip("\n").split(" ", 2)
        client = wirecore.Client(json.loads(config))
        try:
            body = b"fault" if method == "POST" else None
            r = client.request(method, url, content=body)
            print(f"status {r.status_code} {len(r.content)}", flush=True)
        except wirecore.WirecoreError as e:
            print(f"error {e.code}", flush=True)
        finally:
            client.close()


if __name__ == "__main__":
    main()

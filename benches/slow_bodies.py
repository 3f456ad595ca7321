"""Clients that never finish their request bodies, against a one-worker gateway: how long each is held and
what it is answered (408 at the body read timeout; 503 at once beyond the cap on unfinished bodies).

    python benches/slow_bodies.py [--connections 400] [--timeout 3] [--cap 256]
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from servers import ADMIN_KEY, gateway_env, manage_call, start_gateway, start_mock


def hold(base: str, key: str) -> tuple[int, float]:
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
            "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{".encode()
        )
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return 0, time.monotonic() - started
            data += chunk
    return int(data.split()[1]), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--cap", type=int, default=256)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="slow-bodies-"))
    mock = start_mock()
    config = root / "config.yaml"
    config.write_text(
        "providers: {mock: {base_url: env:ROUTER_MOCK_URL}}\nmodels: [{id: mock/gpt-4o, upstream_model: gpt-4o}]\n"
        f"server: {{body_read_timeout: {args.timeout}, max_pending_bodies: {args.cap}}}\n"
    )
    gateway = start_gateway(gateway_env(root / "router.db", mock.base, config))
    try:
        key = manage_call(gateway.base, ADMIN_KEY, "POST", "/apikey", json={"name": "slow"}).json()["key"]
        with ThreadPoolExecutor(args.connections) as pool:
            results = list(pool.map(lambda _: hold(gateway.base, key), range(args.connections)))
        by_status: dict[int, list[float]] = collections.defaultdict(list)
        for status, held in results:
            by_status[status].append(held)
        report = {
            str(status): {"count": len(held), "max_held_s": round(max(held), 2), "min_held_s": round(min(held), 2)}
            for status, held in sorted(by_status.items())
        }
        print(json.dumps({"connections": args.connections, "timeout": args.timeout, "cap": args.cap, **report}))
    finally:
        gateway.stop()
        mock.stop()


if __name__ == "__main__":
    main()

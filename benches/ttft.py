"""Time to first token through the gateway: translating routes against the pass-through route, in one run.

Starts the mock and a 1-worker gateway with the same mock model reachable as an OpenAI chat upstream
(`up/gpt-4o`, pass-through) and as an Anthropic upstream (`anthropic/claude`), then streams the same prompt
over one keep-alive connection, alternating the routes request by request so drift hits all of them alike:

- chat → chat        pass-through (Rust StreamTap), the baseline
- chat → Anthropic   request translated in Python, stream by the Rust Transcoder
- Anthropic → chat   /v1/messages caller on the OpenAI upstream
- Anthropic → Anthropic  /v1/messages pass-through (events passed on by the Transcoder)

TTFT is measured from sending the request to receiving the first body chunk that carries a content delta.
Each route is measured on a gateway with the default guardrails on (every answer text screened) and on one
with them off, interleaved, so the last column is what answer screening adds to time to first token.

    python benches/ttft.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import create_key, gateway_env, start_gateway, start_mock  # noqa: E402

CONFIG = """
providers:
  up: {base_url: '%(mock)s/v1', api_key: bench}
  anthropic: {kind: anthropic, base_url: '%(mock)s/v1', api_key: bench}
models:
  - {id: up/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming]}
  - {id: anthropic/claude, upstream_model: claude, capabilities: [streaming]}
"""
PROMPT = "What is the capital of France?"
ROUTES = {
    "chat -> chat (pass-through)": ("/v1/chat/completions", "up/gpt-4o", b'"content":"The'),
    "chat -> anthropic": ("/v1/chat/completions", "anthropic/claude", b'"content":"The'),
    "anthropic -> chat": ("/v1/messages", "up/gpt-4o", b"text_delta"),
    "anthropic -> anthropic": ("/v1/messages", "anthropic/claude", b"text_delta"),
}


def _request(path: str, model: str, key: str) -> bytes:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    if path == "/v1/messages":
        body["max_tokens"] = 64
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _ttft(sock: socket.socket, request: bytes, marker: bytes) -> float:
    """Seconds to the first content delta; then reads the rest of the chunked answer."""
    started = time.perf_counter()
    sock.sendall(request)
    received = b""
    first = None
    while not received.endswith(b"\r\n0\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        received += chunk
        if first is None and marker in received:
            first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"no content delta in: {received[:500]!r}")
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="streams per route (default 1000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="router-ttft-"))
    mock = start_mock()
    gateways = []
    samples: dict[tuple[str, bool], list[float]] = {(name, on): [] for name in ROUTES for on in (True, False)}
    try:
        socks = {}
        for on in (True, False):
            config = workdir / f"ttft-{on}.yaml"
            config.write_text(CONFIG % {"mock": mock.base} + ("" if on else "guardrails: {enabled: false}\n"))
            env = gateway_env(workdir / f"router-{on}.db", mock.base, config)
            gateways.append(start_gateway(env, workers=1))
            key = create_key(env, "bench")["key"]
            sock = socket.create_connection(("127.0.0.1", int(gateways[-1].base.rsplit(":", 1)[1])))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks[on] = (sock, {name: (_request(path, model, key), m) for name, (path, model, m) in ROUTES.items()})
        for rounds, record in ((50, False), (args.requests, True)):  # warm up pools and caches first
            for _ in range(rounds):
                for on, (sock, requests) in socks.items():
                    for name, (request, marker) in requests.items():
                        value = _ttft(sock, request, marker)
                        if record:
                            samples[name, on].append(value)
        for sock, _ in socks.values():
            sock.close()
    finally:
        for gateway in gateways:
            gateway.stop()
        mock.stop()
    base = statistics.median(samples["chat -> chat (pass-through)", True]) * 1000
    print(f"\nTTFT through the gateway (1 worker, mock upstream), {args.requests} streams per route and setting\n")
    print("| route | p50 TTFT | p90 TTFT | added p50 vs pass-through | guardrails off p50 | added by guardrails |")
    print("|---|---|---|---|---|---|")
    for name in ROUTES:
        values, off = sorted(samples[name, True]), statistics.median(samples[name, False]) * 1000
        p50, p90 = statistics.median(values) * 1000, values[int(len(values) * 0.9)] * 1000
        print(f"| {name} | {p50:.3f} ms | {p90:.3f} ms | {p50 - base:+.3f} ms | {off:.3f} ms | {p50 - off:+.3f} ms |")


if __name__ == "__main__":
    main()

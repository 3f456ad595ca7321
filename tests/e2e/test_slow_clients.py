"""Slow stream clients: a client that stops reading holds its upstream read instead of making the gateway buffer
the rest of the stream, and hundreds of stalled clients do not stop the others' streams.

granian's RSGI `send_bytes` never waits for the client's socket, so without the gateway's own check a stalled
client made the worker hold its whole stream (a 24 MB answer grew the worker by 24 MB within seconds)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import openai
import pytest

from servers import Server, create_key, gateway_env, start_gateway, start_mock

CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/huge, upstream_model: "gpt-4o@tokens=100000", capabilities: [streaming]}
  - {id: mock/large, upstream_model: "gpt-4o@tokens=3000", capabilities: [streaming]}
  - {id: mock/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming]}
  - {id: mock/slow, upstream_model: "gpt-4o@tokens=40@token_delay_ms=500", capabilities: [streaming]}
  - {id: mock/thinking, upstream_model: "gpt-4o@ttft_ms=30000", capabilities: [streaming]}
policies:
  - {name: slow-first, type: fallback, targets: [{model: mock/slow}, {model: mock/gpt-4o}]}
"""

# A stalled stream may cost the worker its objects (~150 KiB), the gateway's cap (64 KiB) plus one chunk, and
# what the upstream connection's reader took from the socket before the relay stopped asking (hyper's read
# buffer, up to ~400 KiB), with allocator slack; unchecked, the worker grew by 6 MB per stream within these
# 4 s and held the whole 24 MB answer in the end.
MAX_GROWTH_PER_STALLED_STREAM = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Its own mock: the stalled streams' rest waits in the mock's memory, not the session mock's.
    mock = start_mock()
    root = tmp_path_factory.mktemp("slow-clients")
    config = root / "router.yaml"
    config.write_text(CONFIG)
    try:
        env = gateway_env(root / "router.db", mock.base, config)
        # A fixed mmap threshold: glibc then maps every block over 128 KiB on its own and unmaps it when freed, so
        # the worker's RSS follows what it holds (by default glibc raises the threshold after the first free and
        # keeps the freed prompts in its heap).
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
        server = start_gateway(env)
        server.key = create_key(server.env, "slow")["key"]  # type: ignore[attr-defined]
        yield server
        server.stop()
    finally:
        mock.stop()


def _descendants(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in f.read().split():
                found += [int(child), *_descendants(int(child))]
    return found


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _worker(server: Server) -> int:
    """The granian worker (the one gateway process serving requests: the biggest)."""
    return max(_descendants(server.proc.pid), key=_rss_kib)


def _request(server: Server, model: str, path: str = "/v1/chat/completions", prompt: str = "hi") -> bytes:
    messages = [{"role": "user", "content": prompt}]
    body = {"model": model, "stream": True, "messages": messages}
    if path == "/v1/messages":
        body["max_tokens"] = 100_000
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {server.key}\r\n"  # type: ignore[attr-defined]
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _stalled(server: Server, model: str, path: str = "/v1/chat/completions") -> socket.socket:
    """A client that sends its request and then reads nothing (a small receive buffer, so it fills at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(server.base.rsplit(":", 1)[1])))
    sock.sendall(_request(server, model, path))
    return sock


def _read_to_end(sock: socket.socket) -> tuple[int, bytes]:
    """Read the chunked response to its terminator: (bytes read, the last ones)."""
    sock.settimeout(60)
    total, tail = 0, b""
    while not tail.endswith(b"\r\n0\r\n\r\n"):
        data = sock.recv(1 << 16)
        if not data:
            break
        total += len(data)
        tail = (tail + data)[-256:]
    return total, tail


@pytest.mark.parametrize(
    ("path", "done"),
    [("/v1/chat/completions", b"data: [DONE]"), ("/v1/messages", b"event: message_stop")],
    ids=["pass-through", "translated"],
)
def test_a_stalled_client_holds_its_upstream_instead_of_filling_the_worker(
    stack: Server, path: str, done: bytes
) -> None:
    worker = _worker(stack)
    before = _rss_kib(worker)
    stalled = [_stalled(stack, "mock/huge", path) for _ in range(20)]
    try:
        # Unchecked, the worker reads the 24 MB answers as fast as the mock writes them (megabytes a second).
        time.sleep(4)
        growth = (_rss_kib(worker) - before) * 1024 / len(stalled)
        assert growth < MAX_GROWTH_PER_STALLED_STREAM, f"the worker grew {growth / 1024:.0f} KiB per stalled stream"
        # Held, not lost: once the client reads again, the whole answer arrives and ends properly.
        total, tail = _read_to_end(stalled[0])
        assert total > 10_000_000
        assert done in tail
    finally:
        for sock in stalled:
            sock.close()


def test_hundreds_of_stalled_clients_do_not_stop_the_other_streams(stack: Server) -> None:
    stalled = [_stalled(stack, "mock/large") for _ in range(500)]
    try:
        base = f"{stack.base}/v1"
        with openai.OpenAI(base_url=base, api_key=stack.key, max_retries=0, timeout=60) as sdk:  # type: ignore[attr-defined]
            for _ in range(5):
                chunks = list(
                    sdk.chat.completions.create(
                        model="mock/gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                )
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                assert chunks[-1].choices[0].finish_reason == "stop"
                assert len(text.split()) == 16  # the mock's default answer: 16 tokens
        # The stalled ones are still there, held at their cap, and still end whole once read.
        total, tail = _read_to_end(stalled[-1])
        assert b"data: [DONE]" in tail
        assert total > 500_000
    finally:
        for sock in stalled:
            sock.close()


# An agent's prompt: the conversation so far, tool results and all (prose: nothing for the guardrails to mask).
PROMPT = "The quick brown fox jumps over the lazy dog. " * (4 * 1024 * 1024 // 45)


@pytest.mark.parametrize("model", ["mock/slow", "policy/slow-first"], ids=["one model", "fallback policy"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"], ids=["pass-through", "translated"])
def test_an_open_stream_does_not_hold_the_copies_of_its_prompt(stack: Server, path: str, model: str) -> None:
    """A stream outlives its request by minutes. Once the prompt is sent upstream the worker drops its decoded,
    translated and re-encoded copies, and the client's body once nothing can re-send it (a policy's fallback
    until the answer's first byte is relayed): with every copy, each open stream held 3.6 to 4 times its prompt;
    with the client's body, 1.6; now 0.6 (the rest is allocator slack: memory freed, not yet returned)."""
    worker = _worker(stack)
    before = _rss_kib(worker)
    streams = []
    try:
        for _ in range(8):
            sock = socket.socket()
            sock.connect(("127.0.0.1", int(stack.base.rsplit(":", 1)[1])))
            sock.sendall(_request(stack, model, path, PROMPT))
            sock.settimeout(30)
            head = b""
            while b"data: " not in head:  # the stream is open and relaying (20 s of it left)
                data = sock.recv(1 << 16)
                assert data, head
                head += data
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            streams.append(sock)
        growth = (_rss_kib(worker) - before) * 1024 / len(streams)
        assert growth < 1.0 * len(PROMPT), f"each open stream holds {growth / len(PROMPT):.1f} times its prompt"
    finally:
        for sock in streams:
            sock.close()


def _settled_rss_kib(pid: int) -> int:
    """The worker's RSS once it stops growing: the requests sent are read, forwarded and waiting upstream."""
    last = _rss_kib(pid)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _rss_kib(pid)
        if abs(now - last) < 1024:
            return now
        last = now
    return last


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"], ids=["pass-through", "translated"])
def test_a_stream_waiting_for_its_first_token_does_not_hold_its_prompt(stack: Server, path: str) -> None:
    """A reasoning model may think for a minute before its first token. With one model to serve the request (no
    fallback to re-send it), the client's body goes as soon as the upstream's is built, not at the first byte:
    while the upstream thinks, each request held its prompt twice (the client's body and the upstream's, which
    pyreqwest keeps until the answer's head arrives); now once."""
    worker = _worker(stack)
    before = _settled_rss_kib(worker)
    waiting = []
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", int(stack.base.rsplit(":", 1)[1])))
            sock.sendall(_request(stack, "mock/thinking", path, PROMPT))
            waiting.append(sock)
        growth = (_settled_rss_kib(worker) - before) * 1024 / len(waiting)
        for sock in waiting:  # still waiting for the answer: nothing came back
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
        assert growth < 1.5 * len(PROMPT), f"each waiting request holds {growth / len(PROMPT):.1f} times its prompt"
    finally:
        for sock in waiting:
            sock.close()

"""Harness for the mock provider tests: a real ``python -m router.mock`` subprocess on a free loopback port and a
raw HTTP/1.1 client that shows exactly what went over the wire (incomplete chunked bodies, closed connections).

Servers run with one granian worker, so request logs and fail-rate sequences (both per worker) are exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_request(
    port: int,
    method: str,
    path: str,
    body: bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> bytes:
    """Send one HTTP/1.1 request with ``Connection: close`` and return every byte received until EOF."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    body = body or b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes  # de-chunked
    complete: bool  # the body ended where HTTP framing says it should (chunked terminator / content-length)

    def json(self):
        return json.loads(self.body)


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body, complete = dechunk(body)
    else:
        complete = len(body) == int(headers.get("content-length", len(body)))
    return RawResponse(int(status_line.split()[1]), headers, body, complete)


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body; the flag tells whether the terminating zero-size chunk arrived."""
    out = bytearray()
    while True:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return bytes(out), False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out), True
        out += rest[:size]
        if len(rest) < size + 2:
            return bytes(out), False
        body = rest[size + 2 :]


class MockServer:
    def __init__(self, port: int, process: subprocess.Popen, log_path: Path) -> None:
        self.port = port
        self.process = process
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def request(
        self, method: str, path: str, body: bytes | dict | None = None, headers: dict[str, str] | None = None
    ) -> RawResponse:
        return parse_response(raw_request(self.port, method, path, body, headers))

    def recorded(self) -> list[dict]:
        return self.request("GET", "/_mock/requests").json()["requests"]

    def reset(self) -> None:
        assert self.request("POST", "/_mock/reset").status == 200

    def log(self) -> str:
        return self.log_path.read_text()


@contextlib.contextmanager
def run_mock(tmp_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Iterator[MockServer]:
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_MOCK_")}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_DIR), os.environ.get("PYTHONPATH")]))
    child_env.update(env or {})
    log_path = tmp_dir / f"mock-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "router.mock", "--port", str(port), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
        )
    server = MockServer(port, process, log_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mock exited with {process.returncode}:\n{server.log()}")
            with contextlib.suppress(OSError):
                if server.request("GET", "/_mock/health").status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mock did not come up:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

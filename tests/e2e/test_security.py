"""Security limits as an attacker meets them: request ids, feedback ownership, /metrics, unfinished bodies,
failed-authentication budget, the admin key's strength and the database files' modes."""

from __future__ import annotations

import re
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from servers import (
    ADMIN_KEY,
    ROUTER,
    Server,
    free_port,
    gateway_engine,
    gateway_env,
    local_files,
    manage_call,
    start_gateway,
)

HELLO = {"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

# The usage writer flushes once a second here, so feedback sent right after an answer finds no row yet.
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o}
  - {id: mock/gpt-4o-mini, upstream_model: gpt-4o-mini}
usage_log: {flush_interval: 1.0}
server:
  body_read_timeout: 1
  max_pending_bodies: 3
metrics: {require_key: true}
"""


@dataclass
class Gateway:
    server: Server
    keys: dict[str, str]  # role → secret

    @property
    def base(self) -> str:
        return self.server.base

    def post(self, path: str, key: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20)


def _gateway(root: Path, mock_base: str, config: str) -> Server:
    (root / "config.yaml").write_text(config)
    return start_gateway(gateway_env(root / "router.db", mock_base, root / "config.yaml"))


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    server = _gateway(tmp_path_factory.mktemp("security"), mock_server.base, CONFIG)

    def admin(method: str, path: str, body: dict) -> dict:
        r = manage_call(server.base, ADMIN_KEY, method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    keys = {"admin": ADMIN_KEY}
    for name, role in [("alice", "standard"), ("bob", "standard"), ("analyst", "analyst")]:
        user = admin("POST", "/user", {"email": f"{name}@corp.test", "role": role})
        keys[name] = admin("POST", "/apikey", {"name": name, "owner": {"type": "user", "id": user["id"]}})["key"]
    keys["reader"] = admin("POST", "/apikey", {"name": "scraper", "permission": "read"})["key"]
    keys["bot"] = admin("POST", "/apikey", {"name": "bot"})["key"]
    yield Gateway(server, keys)
    server.stop()


# -- request ids and feedback --------------------------------------------------------------------------------


def test_request_ids_are_96_random_bits(gw: Gateway) -> None:
    ids = [httpx.get(f"{gw.base}/healthz").headers["x-request-id"] for _ in range(40)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids), ids[:3]
    # No shared prefix and no counter: every part of every id differs.
    assert len({i[4:16] for i in ids}) == len({i[16:] for i in ids}) == 40


def test_feedback_only_on_a_request_the_key_made(gw: Gateway) -> None:
    answered = gw.post("/v1/chat/completions", gw.keys["alice"], HELLO)
    request_id = answered.headers["x-request-id"]
    # At once, before the writer has flushed the usage row: the grace window waits for it.
    assert gw.post(f"/v1/feedback/{request_id}", gw.keys["alice"], {"rating": 1}).status_code == 201
    # Another user's key, and a key of nobody's: as if the request did not exist.
    for key in (gw.keys["bob"], gw.keys["bot"]):
        refused = gw.post(f"/v1/feedback/{request_id}", key, {"rating": -1})
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "request_not_found"
    # Managers may annotate any request of the organisation.
    for role in ("admin", "analyst", "reader"):
        assert gw.post(f"/v1/feedback/{request_id}", gw.keys[role], {"rating": 0}).status_code == 201, role
    stored = manage_call(gw.base, ADMIN_KEY, "GET", f"/feedback/{request_id}").json()["data"]
    assert sorted(f["rating"] for f in stored) == [0, 0, 0, 1]


def test_feedback_on_a_request_nobody_made_is_404(gw: Gateway) -> None:
    made_up = "req_" + "0123456789abcdef01234567"
    refused = gw.post(f"/v1/feedback/{made_up}", gw.keys["alice"], {"rating": 1})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "request_not_found"
    assert manage_call(gw.base, ADMIN_KEY, "GET", f"/feedback/{made_up}").json()["data"] == []


# -- /v1/models?view=all -------------------------------------------------------------------------------------


def test_only_managers_see_the_whole_catalog(gw: Gateway) -> None:
    for role in ("alice", "bot"):
        r = httpx.get(f"{gw.base}/v1/models?view=all", headers={"authorization": f"Bearer {gw.keys[role]}"})
        assert r.status_code == 403 and r.json()["error"]["param"] == "view", role
    for role in ("admin", "analyst", "reader"):
        r = httpx.get(f"{gw.base}/v1/models?view=all", headers={"authorization": f"Bearer {gw.keys[role]}"})
        assert r.status_code == 200 and {m["id"] for m in r.json()["data"]} == {"mock/gpt-4o", "mock/gpt-4o-mini"}


# -- /metrics ------------------------------------------------------------------------------------------------


def test_metrics_need_a_reading_key_when_configured(gw: Gateway) -> None:
    url = f"{gw.base}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer rk-wrong"}).status_code == 401
    for role in ("alice", "bot"):
        denied = httpx.get(url, headers={"authorization": f"Bearer {gw.keys[role]}"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "insufficient_permissions"
    for role in ("admin", "analyst", "reader"):
        r = httpx.get(url, headers={"authorization": f"Bearer {gw.keys[role]}"})
        assert r.status_code == 200 and "router_requests_total" in r.text, role


def test_metrics_are_open_by_default(gateway: Server) -> None:
    assert httpx.get(f"{gateway.base}/metrics").status_code == 200


# -- unfinished bodies ---------------------------------------------------------------------------------------


def _start_body(base: str, key: str, path: str = "/v1/chat/completions", declared: int = 1000) -> socket.socket:
    """A connection that sends its headers and a first piece of its body, then nothing more."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"model": "mock/gpt-4o", ')
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed without an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_a_body_that_never_arrives_gets_408(gw: Gateway) -> None:
    sock = _start_body(gw.base, gw.keys["alice"])
    try:
        status, headers, body = _answer(sock)
    finally:
        sock.close()
    assert status == 408 and headers["content-type"] == "application/json"
    error = httpx.Response(408, content=body).json()["error"]
    assert error["code"] == "request_timeout" and "1 seconds" in error["message"]
    # The worker is free again: a whole request is answered.
    assert gw.post("/v1/chat/completions", gw.keys["alice"], HELLO).status_code == 200


def test_a_body_timeout_on_the_messages_endpoint_is_anthropic_shaped(gw: Gateway) -> None:
    sock = _start_body(gw.base, gw.keys["alice"], "/v1/messages")
    try:
        status, _, body = _answer(sock)
    finally:
        sock.close()
    answer = httpx.Response(status, content=body).json()
    assert status == 408 and answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert answer["request_id"].startswith("req_")


def test_unfinished_bodies_are_capped_per_worker(gw: Gateway) -> None:
    held = [_start_body(gw.base, gw.keys["alice"]) for _ in range(3)]
    try:
        time.sleep(0.3)  # let the worker reach the body read of each
        extra = _start_body(gw.base, gw.keys["alice"])
        status, headers, body = _answer(extra)
        extra.close()
        assert status == 503 and headers["retry-after"] == "1"
        assert httpx.Response(503, content=body).json()["error"]["code"] == "too_many_pending_bodies"
        # The held ones time out in their turn, and the worker serves again.
        assert [_answer(s)[0] for s in held] == [408, 408, 408]
    finally:
        for s in held:
            s.close()
    assert gw.post("/v1/chat/completions", gw.keys["alice"], HELLO).status_code == 200


# -- failed authentication ------------------------------------------------------------------------------------

LIMITED = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o}
server:
  auth_failures: {exempt_loopback: false, max_failures: 3, window: 30, backoff_initial: 1, backoff_max: 2}
"""


def test_failed_authentications_back_off_per_address(mock_server: Server, tmp_path: Path) -> None:
    server = _gateway(tmp_path, mock_server.base, LIMITED)
    try:
        good = manage_call(server.base, ADMIN_KEY, "POST", "/apikey", json={"name": "good"}).json()["key"]

        def chat(key: str) -> httpx.Response:
            return httpx.post(
                f"{server.base}/v1/chat/completions", json=HELLO, headers={"authorization": f"Bearer {key}"}
            )

        assert chat(good).status_code == 200
        assert [chat(f"rk-guess{i}").status_code for i in range(3)] == [401, 401, 401]
        blocked = chat("rk-guess4")
        assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_auth_failures"
        assert blocked.headers["retry-after"] == "1"
        # While blocked even the right key is refused, so a guesser cannot tell when it guessed right.
        assert chat(good).status_code == 429
        # And the management API and Anthropic-shaped endpoints share the same budget.
        assert manage_call(server.base, good, "GET", "/org").status_code == 429
        time.sleep(1.1)
        assert chat(good).status_code == 200
        # One more failure within the window blocks again, twice as long.
        assert chat("rk-guess5").status_code == 401
        again = chat("rk-guess6")
        assert again.status_code == 429 and again.headers["retry-after"] == "2"
    finally:
        server.stop()


def test_loopback_is_exempt_by_default(gateway: Server) -> None:
    statuses = {
        httpx.post(f"{gateway.base}/v1/chat/completions", json=HELLO, headers={"authorization": f"Bearer rk-{i}"})
        .status_code for i in range(30)
    }  # fmt: skip
    assert statuses == {401}


# -- start-up checks and files --------------------------------------------------------------------------------


def test_a_short_admin_key_stops_the_start(mock_server: Server, tmp_path: Path) -> None:
    import subprocess

    env = gateway_env(tmp_path / "router.db", mock_server.base, admin_key="admin-test-key")
    done = subprocess.run(
        [*ROUTER, "serve", "--port", str(free_port()), "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "ROUTER_ADMIN_KEY is 14 characters long; it must be at least 32" in done.stderr


def test_database_files_are_owner_only(mock_server: Server, tmp_path: Path) -> None:
    server = start_gateway(gateway_env(tmp_path / "router.db", mock_server.base))
    try:
        key = manage_call(server.base, ADMIN_KEY, "POST", "/apikey", json={"name": "m"}).json()["key"]
        r = httpx.post(f"{server.base}/v1/chat/completions", json=HELLO, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200
        # The host's files: the SQLite database and the files beside it, or on PostgreSQL those beside where
        # its local state lives (the ledger, the change signal, the usage spool: rows not committed yet).
        files = local_files(server.env)
        if gateway_engine() == "sqlite":
            names = ["router.db", "router.db-wal", "router.db-shm"]
            modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in names}
            assert modes == dict.fromkeys(names, 0o600)
        beside = [p for p in files.parent.iterdir() if p.name.startswith(files.name)]
        assert {p.name.removeprefix(files.name) for p in beside} >= {"-budgets", "-signal", "-spool"}
        for other in [*beside, *(files.parent / f"{files.name}-spool").iterdir()]:
            assert stat.S_IMODE(other.stat().st_mode) & 0o077 == 0, other.name
    finally:
        server.stop()

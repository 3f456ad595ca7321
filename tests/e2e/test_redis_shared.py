"""Replicas sharing Redis: three `router serve` processes on one SQLite file, the change epoch and the budget
ledger in a throwaway redis-server. Every process gets ROUTER_REDIS, so the memory-mapped ledger and signal
files beside the database are never used: what the tests see crossed Redis, as it would between hosts."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from redis_server import RedisServer
from router.shared.ledger import PREFIX

from servers import MockControl, Server, create_key, gateway_env, manage_call, router_cli, start_gateway, usage_rows

CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/cheap, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 100}
  - {id: mock/other, upstream_model: gpt-4o-mini, prices: {input: 1.0, output: 1.0}}
"""


class Replicas:
    def __init__(self, root: Path, mock_base: str, redis: RedisServer, n: int = 3, extra: str = "") -> None:
        (root / "config.yaml").write_text(CONFIG + extra)
        self.env = {**gateway_env(root / "router.db", mock_base, root / "config.yaml"), "ROUTER_REDIS": redis.url}
        self.servers: list[Server] = []
        try:
            for i in range(n):
                self.servers.append(start_gateway(self.env, workers=2 if i == 0 else 1))
        except BaseException:
            self.stop()
            raise
        self.bases = [s.base for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def manage(self, i: int, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return manage_call(self.bases[i], self.env["ROUTER_ADMIN_KEY"], method, path, json=body)


def chat(base: str, key: str, model: str = "mock/cheap", **extra) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, **extra}
    return httpx.post(
        f"{base}/v1/chat/completions", json=payload, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


@pytest.fixture(scope="module")
def redis_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    mock_server: Server, redis_db: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    group = Replicas(tmp_path_factory.mktemp("replicas"), mock_server.base, redis_db)
    yield group
    group.stop()


def test_revoked_on_one_replica_is_refused_by_the_others_on_the_next_request(replicas: Replicas) -> None:
    created = replicas.manage(0, "POST", "/apikey", {"name": "shared"}).json()
    for base in replicas.bases:  # every worker caches the key
        for _ in range(4):
            assert chat(base, created["key"]).status_code == 200
    r = replicas.manage(1, "DELETE", f"/apikey/{created['id']}")
    assert r.status_code == 200, r.text
    # No sleep: the next request on every replica (and every worker of replica 0) is refused.
    for base in replicas.bases:
        for _ in range(4):
            assert chat(base, created["key"]).status_code == 401


def test_a_key_revoked_with_the_cli_is_refused_by_every_replica(replicas: Replicas) -> None:
    created = create_key(replicas.env, "cli-revoked")
    for base in replicas.bases:
        for _ in range(4):
            assert chat(base, created["key"]).status_code == 200
    router_cli(replicas.env, "keys", "revoke", created["id"])
    for base in replicas.bases:
        for _ in range(4):
            assert chat(base, created["key"]).status_code == 401


def test_approved_model_removal_on_one_replica_is_enforced_on_another(replicas: Replicas) -> None:
    check_model_removal_from_c_is_enforced_on_a(replicas)


def check_model_removal_from_c_is_enforced_on_a(replicas: Replicas) -> None:
    """A model taken off the approved list through replica 2 is refused on replica 0's both workers at once."""
    created = replicas.manage(2, "POST", "/apikey", {"name": "approved"}).json()
    r = replicas.manage(2, "POST", "/models/approved", {"models": ["mock/cheap", "mock/other"]})
    assert r.status_code == 200, r.text
    for _ in range(4):
        assert chat(replicas.bases[0], created["key"], "mock/other").status_code == 200
    r = replicas.manage(2, "POST", "/models/approved/remove", {"models": ["mock/other"]})
    assert r.status_code == 200, r.text
    try:
        for _ in range(4):  # both workers of replica 0, on their next request
            assert chat(replicas.bases[0], created["key"], "mock/other").status_code == 403
            assert chat(replicas.bases[0], created["key"], "mock/cheap").status_code == 200
    finally:
        assert replicas.manage(1, "POST", "/models/approval", {"enabled": False}).status_code == 200


def fire(bases: list[str], key: str, payload: bytes, n: int) -> list[int]:
    """`n` requests at once (all in flight together), spread round-robin over `bases`; their statuses."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            calls = [
                client.post(f"{bases[i % len(bases)]}/v1/chat/completions", content=payload, headers=headers)
                for i in range(n)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    return asyncio.run(run())


def limited_key(replicas: Replicas, payload: bytes, room: float) -> tuple[dict, float]:
    reservation = len(payload) + 10  # micro-dollars at $1/M: every body byte a prompt token, plus max_tokens
    limit = room * reservation / 1e6
    return replicas.manage(0, "POST", "/apikey", {"name": "budget", "monthly_limit": limit}).json(), limit


def body(ttft_ms: int) -> bytes:
    payload = {"model": "mock/cheap", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    payload["mock"] = {"ttft_ms": ttft_ms}
    return json.dumps(payload).encode()


def spent(replicas: Replicas, key_id: str, expect: int) -> float:
    rows = usage_rows(replicas.servers[0], f"key_id = '{key_id}' AND status = 200", expect=expect)
    return sum(r["cost"] for r in rows)


def test_600_concurrent_requests_over_3_replicas_against_room_for_100(replicas: Replicas, mock: MockControl) -> None:
    payload = body(ttft_ms=4000)  # every request still in flight when the last one arrives
    created, limit = limited_key(replicas, payload, 100.5)
    before = mock.count()
    statuses = fire(replicas.bases, created["key"], payload, 600)
    ok = statuses.count(200)
    assert statuses.count(402) == 600 - ok, Counter(statuses)  # every refusal a 402
    assert ok == 100  # exactly the room: no overrun, nothing refused that fit
    assert mock.count() - before == ok
    assert spent(replicas, created["id"], ok) <= limit


def test_redis_restart_mid_load_no_overrun_and_recovery(
    replicas: Replicas, redis_db: RedisServer, mock: MockControl
) -> None:
    payload = body(ttft_ms=1500)  # long enough for every request of a burst to be in flight together
    created, limit = limited_key(replicas, payload, 60.5)
    before = mock.count()
    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(fire, replicas.bases, created["key"], payload, 300)
        # Redis dies only once requests holding reservations are with the upstream: truly mid-load.
        deadline = time.monotonic() + 20
        while mock.count() - before < 10:
            assert time.monotonic() < deadline, "no request reached the upstream"
            time.sleep(0.02)
        redis_db.stop()
        time.sleep(0.5)
        redis_db.start()
        statuses = load.result()
    assert set(statuses) <= {200, 402, 503}
    ok = statuses.count(200)
    assert 10 <= ok <= 60
    # Recovery without restarting anything: the budget goes on being enforced.
    deadline = time.monotonic() + 10
    while any(httpx.get(f"{b}/readyz", timeout=5).status_code != 200 for b in replicas.bases):
        assert time.monotonic() < deadline, "a replica never became ready again"
        time.sleep(0.1)
    spent_before = spent(replicas, created["id"], ok)
    # Nothing is in flight now: every lane empties, including reservations whose reply the crash lost (each
    # worker's heartbeat reconciles its lane with what it knows it holds).
    client = redis_db.client()
    deadline = time.monotonic() + 15
    while any(client.hlen(lane) for lane in client.scan_iter(match=PREFIX + "lane:*")):
        assert time.monotonic() < deadline, "reservations left behind by the crash were never returned"
        time.sleep(0.1)
    # Another burst all in flight together, asking for far more than the room left: some fit, the rest get 402.
    rest = fire(replicas.bases, created["key"], payload, 300)
    assert set(rest) <= {200, 402}, Counter(rest)
    assert 402 in rest and 200 in rest, Counter(rest)
    # Each request costs less than its worst case, so the room left holds at least what it held in worst cases.
    room = int((limit - spent_before) * 1e6) // (len(payload) + 10)
    assert rest.count(200) >= min(room, 300), (Counter(rest), room)
    assert mock.count() - before == ok + rest.count(200)  # nothing refused was forwarded
    assert spent(replicas, created["id"], ok + rest.count(200)) <= limit


def test_commands_per_request_counted_on_the_server(replicas: Replicas, redis_db: RedisServer) -> None:
    unlimited = replicas.manage(0, "POST", "/apikey", {"name": "free"}).json()
    payload = body(ttft_ms=0)
    limited, _ = limited_key(replicas, payload, 10_000)
    base = replicas.bases[1]  # one worker: every request after the first finds the key cached
    assert chat(base, unlimited["key"]).status_code == 200
    assert chat(base, limited["key"]).status_code == 200
    time.sleep(0.3)
    n = 50
    before = redis_db.commandstats()
    for _ in range(n):
        assert chat(base, unlimited["key"]).status_code == 200
    after = redis_db.commandstats()

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    # Background work is time-based, not per request: the epoch read every second (GET), and every 2 s a
    # lease (SET, SADD, EXISTS) and a reap script, the only script that runs SMEMBERS.
    assert delta("hmget") == 0 and delta("hincrby") == 0
    assert delta("evalsha") == delta("smembers")
    before = after
    for _ in range(n):
        assert chat(base, limited["key"]).status_code == 200
    time.sleep(0.3)  # the batched settlements
    after = redis_db.commandstats()
    # The reserve script is the only one that runs HMGET, once per budget (this key has one limited budget):
    # exactly one script call on each request's path. Settlements are script calls too, sent in batches after
    # the answer: at most one per request when requests come one at a time, far fewer under load.
    assert delta("hmget") == n
    assert n < delta("evalsha") - delta("smembers") <= 2 * n


def test_readyz_goes_red_and_budgets_fail_closed_while_redis_is_down(replicas: Replicas, redis_db: RedisServer) -> None:
    unlimited = replicas.manage(0, "POST", "/apikey", {"name": "unlimited-down"}).json()
    limited = replicas.manage(0, "POST", "/apikey", {"name": "limited-down", "monthly_limit": 10.0}).json()
    for base in replicas.bases:
        assert chat(base, unlimited["key"]).status_code == 200
    redis_db.stop()
    try:
        for base in replicas.bases:
            r = httpx.get(f"{base}/readyz", timeout=5)
            assert r.status_code == 503 and r.json()["redis"] == "unreachable"
            r = chat(base, limited["key"])
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "budget_store_unavailable"
            # Governance keeps serving from what it loaded; usage rows still go to the database.
            assert chat(base, unlimited["key"]).status_code == 200
        rows = usage_rows(replicas.servers[0], f"key_id = '{unlimited['id']}'", expect=2 * len(replicas.bases))
        assert len(rows) == 2 * len(replicas.bases)
    finally:
        redis_db.start()
    deadline = time.monotonic() + 10
    while chat(replicas.bases[0], limited["key"]).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert httpx.get(f"{replicas.bases[0]}/readyz", timeout=5).status_code == 200


def test_fail_open_when_configured(mock_server: Server, tmp_path: Path) -> None:
    redis_db = RedisServer(tmp_path)
    # ROUTER_REDIS gives the URL; the config's `redis:` the failure mode.
    extra = "redis: {url: redis://127.0.0.1:1, on_failure: open}\n"
    group = Replicas(tmp_path, mock_server.base, redis_db, n=1, extra=extra)
    try:
        created = group.manage(0, "POST", "/apikey", {"name": "open", "monthly_limit": 10.0}).json()
        assert chat(group.bases[0], created["key"]).status_code == 200
        redis_db.stop()
        r = chat(group.bases[0], created["key"])
        assert r.status_code == 200, r.text
        assert httpx.get(f"{group.bases[0]}/readyz", timeout=5).status_code == 503
    finally:
        group.stop()
        redis_db.stop()

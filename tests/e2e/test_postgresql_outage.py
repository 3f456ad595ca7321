"""PostgreSQL stopped under load: replicas on one PostgreSQL database and one Redis keep answering the keys they
have cached, spool the usage rows of what they answer and commit them once the database is back, and refuse
management writes with a 503 that says why. With `governance.on_database_failure: closed` they refuse every
request while the database is away instead."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_redis_shared import CONFIG, chat
from test_replicas import Replicas, load

from pg import PostgresServer
from redis_server import RedisServer

from servers import Server, create_key, db_query, gateway_env, start_gateway

pytestmark = pytest.mark.one_engine("the gateways run on a PostgreSQL server of their own, stopped and started here")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def outage(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """The server, started again after the test whatever happened (a later test needs it)."""
    yield postgres
    if postgres.proc is None or postgres.proc.poll() is not None:
        postgres.start()


def warm(replicas: Replicas, key: str) -> None:
    """Every worker of every replica caches the key (replica 0 has two workers: several requests reach both)."""
    for base in replicas.bases:
        for _ in range(6):
            r = chat(base, key)
            assert r.status_code == 200, r.text


def stored_request_ids(replicas: Replicas, key_id: str) -> set[str]:
    return {r[0] for r in db_query(replicas.env, "SELECT request_id FROM usage_log WHERE key_id = ?", (key_id,))}


def wait_ready(base: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (r := httpx.get(f"{base}/readyz", timeout=5)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    return r


def test_cached_keys_are_served_and_no_usage_row_is_lost_while_postgresql_is_down(
    mock_server: Server, outage: PostgresServer, redis_db: RedisServer, tmp_path: Path
) -> None:
    replicas = Replicas(tmp_path, mock_server.base, outage.fresh(), redis_db, n=2)
    try:
        created = replicas.manage(0, "POST", "/apikey", {"name": "outage"}).json()
        unused = replicas.manage(0, "POST", "/apikey", {"name": "never-used"}).json()
        warm(replicas, created["key"])
        down: list[float] = []
        up: list[float] = []
        during: dict[str, httpx.Response] = {}

        def stop_then_start() -> None:
            time.sleep(1.0)
            outage.halt()
            down.append(time.monotonic())
            time.sleep(0.5)
            # While the database is away: a management write on each replica, and their readiness.
            during["write0"] = replicas.manage(0, "POST", "/apikey", {"name": "during-outage"})
            during["write1"] = replicas.manage(1, "POST", "/group", {"name": "outage"})
            during["read"] = replicas.manage(0, "GET", "/apikey")
            during["ready"] = httpx.get(f"{replicas.bases[1]}/readyz", timeout=10)
            # A key no worker has checked yet cannot be: 503, not 401 (it may well be valid).
            during["uncached"] = chat(replicas.bases[1], unused["key"])
            time.sleep(2.0)
            up.append(time.monotonic())
            outage.start()

        chaos = threading.Thread(target=stop_then_start)
        chaos.start()
        results = load(replicas.bases, created["key"], _payload(), seconds=6.0, concurrency=12)
        chaos.join()
        (t_down,), (t_up,) = down, up

        # Every request was answered, the ones sent while the database was away included.
        statuses = Counter(status for _, _, status, _ in results)
        assert set(statuses) == {200}, statuses
        assert [1 for _, start, _, _ in results if t_down + 0.2 < start < t_up], "no request was sent during the outage"

        # Management calls and a key not cached: a 503 that says the database is unavailable, as the API's JSON error.
        for name in ("write0", "write1", "read", "uncached"):
            r = during[name]
            assert r.status_code == 503, (name, r.status_code, r.text)
            error = r.json()["error"]
            assert error["code"] == "database_unavailable", error
            assert "database is unavailable" in error["message"], error
            assert "127.0.0.1" not in r.text and "postgres" not in r.text.lower(), r.text  # no server detail
        assert during["ready"].status_code == 503 and during["ready"].json()["database"].startswith("unreachable")

        # Once it is back: ready again, management writes work, and every answered request has its usage row.
        for base in replicas.bases:
            assert wait_ready(base).status_code == 200
        r = replicas.manage(1, "POST", "/apikey", {"name": "after-outage"})
        assert r.status_code == 201, r.text
        assert chat(replicas.bases[1], unused["key"]).status_code == 200
        answered = {rid for _, _, status, rid in results if status == 200}
        deadline = time.monotonic() + 20
        while True:
            stored = stored_request_ids(replicas, created["id"])
            missing = {rid for rid in answered if not any(s == rid or s.startswith(f"{rid}:") for s in stored)}
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not missing, f"{len(missing)} of {len(answered)} answered requests have no usage row"
        # Counted once each: the spool replay skips rows already committed.
        rows = db_query(replicas.env, "SELECT request_id, COUNT(*) FROM usage_log WHERE key_id = ? GROUP BY 1 "
                        "HAVING COUNT(*) > 1", (created["id"],))  # fmt: skip
        assert not rows, rows
    finally:
        logs = "".join(server.stop() for server in replicas.servers)
    # Said once per process, not a traceback per failed flush or request.
    assert "Traceback" not in logs, logs
    assert "checking again every" in logs and "is reachable again" in logs, logs


def test_refuse_answers_503_while_postgresql_is_down_then_serves_again(
    mock_server: Server, outage: PostgresServer, tmp_path: Path
) -> None:
    """`governance.on_database_failure: refuse` on a single host (no Redis): cached keys are refused too."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG + "governance: {on_database_failure: refuse}\n")
    env = {**gateway_env(tmp_path / "router.db", mock_server.base, config), "ROUTER_DB": outage.fresh()}
    env.pop("ROUTER_REDIS", None)
    server = start_gateway(env, workers=1)
    try:
        key = create_key(env, "refuse")["key"]
        assert chat(server.base, key).status_code == 200
        outage.halt()
        # The worker notices within its epoch check (a second); until then the cached key is still served.
        deadline = time.monotonic() + 10
        while (r := chat(server.base, key)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable"
        assert chat(server.base, key).status_code == 503
        outage.start()
        deadline = time.monotonic() + 10
        while (r := chat(server.base, key)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.status_code == 200, r.text
    finally:
        log = server.stop()
    # The outage is logged once when seen and once when over, without a traceback.
    assert log.count("checking again every") == 1 and log.count("is reachable again") == 1, log
    assert "Traceback" not in log, log


def _payload() -> bytes:
    return b'{"model": "mock/cheap", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}'

"""Scale-out end to end: three `router serve` replicas sharing ONE PostgreSQL database and ONE Redis, each with
its own data folder and TMPDIR (so no local file is shared: they stand for different hosts), and nginx in front
of them as the load balancer users put there."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from test_redis_shared import CONFIG, body, chat, check_model_removal_from_c_is_enforced_on_a, fire, limited_key

from pg import PostgresServer
from redis_server import RedisServer

from servers import (
    Server,
    db_query,
    free_port,
    gateway_env,
    local_files,
    manage_call,
    start_gateway,
    usage_rows,
    wait_port,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.one_engine("the replicas run on a PostgreSQL server of their own")


class Replicas:
    """`n` replicas on one PostgreSQL database and one Redis; replica i keeps its host's files under host<i>/."""

    def __init__(self, root: Path, mock_base: str, database: str, redis: RedisServer, n: int = 3) -> None:
        (root / "config.yaml").write_text(CONFIG)
        self.env = {**gateway_env(root / "router.db", mock_base, root / "config.yaml")}
        self.env.update(ROUTER_DB=database, ROUTER_REDIS=redis.url)
        self.envs: list[dict[str, str]] = []
        for i in range(n):
            host = root / f"host{i}"
            (host / "data").mkdir(parents=True)
            (host / "tmp").mkdir()
            self.envs.append({**self.env, "XDG_DATA_HOME": str(host / "data"), "TMPDIR": str(host / "tmp")})
        self.servers: list[Server] = []
        try:
            for i in range(n):
                self.servers.append(self.start(i))
        except BaseException:
            self.stop()
            raise

    def start(self, i: int) -> Server:
        return start_gateway(self.envs[i], workers=2 if i == 0 else 1)

    @property
    def bases(self) -> list[str]:
        return [s.base for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def manage(self, i: int, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return manage_call(self.bases[i], self.env["ROUTER_ADMIN_KEY"], method, path, json=body)


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


@pytest.fixture(scope="module")
def replicas(
    mock_server: Server, postgres: PostgresServer, redis_db: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    group = Replicas(tmp_path_factory.mktemp("replicas"), mock_server.base, postgres.fresh(), redis_db)
    yield group
    group.stop()


def test_every_replica_is_on_postgresql_with_its_own_files(replicas: Replicas) -> None:
    assert replicas.env["ROUTER_DB"].startswith("postgresql://")
    created = replicas.manage(0, "POST", "/apikey", {"name": "files"}).json()
    for base in replicas.bases:
        assert chat(base, created["key"]).status_code == 200
    assert usage_rows(replicas.servers[0], f"key_id = '{created['id']}'", expect=3)
    # Nothing beside a database file: each replica's host files are in its own data folder.
    for env in replicas.envs:
        assert list((Path(env["XDG_DATA_HOME"]) / "router" / "postgresql").iterdir())


def test_key_created_on_a_works_on_b_and_c_and_revoked_on_b_is_refused_by_a_and_c(replicas: Replicas) -> None:
    created = replicas.manage(0, "POST", "/apikey", {"name": "shared"}).json()
    # At once: no sleep between the create on A and the first request on B and C.
    for base in replicas.bases[1:] + replicas.bases[:1]:
        for _ in range(4):  # every worker caches the key
            r = chat(base, created["key"])
            assert r.status_code == 200, r.text
    r = replicas.manage(1, "DELETE", f"/apikey/{created['id']}")
    assert r.status_code == 200, r.text
    for base in (replicas.bases[0], replicas.bases[2], replicas.bases[1]):
        for _ in range(4):
            assert chat(base, created["key"]).status_code == 401


def test_approved_model_removal_on_c_is_enforced_on_a(replicas: Replicas) -> None:
    check_model_removal_from_c_is_enforced_on_a(replicas)


def test_600_concurrent_requests_over_3_replicas_against_room_for_100(replicas: Replicas, mock) -> None:
    payload = body(ttft_ms=4000)  # every request still in flight when the last one arrives
    created, limit = limited_key(replicas, payload, 100.5)
    before = mock.count()
    statuses = fire(replicas.bases, created["key"], payload, 600)
    ok = statuses.count(200)
    assert statuses.count(402) == 600 - ok, Counter(statuses)  # every refusal a 402
    assert ok == 100  # exactly the room: no overrun, nothing refused that fit
    assert mock.count() - before == ok
    rows = usage_rows(replicas.servers[0], f"key_id = '{created['id']}' AND status = 200", expect=ok)
    assert len(rows) == ok
    assert sum(r["cost"] for r in rows) <= limit


def load(bases: list[str], key: str, payload: bytes, seconds: float, concurrency: int) -> list[tuple]:
    """Requests kept `concurrency` at a time for `seconds`, round-robin over `bases`: (replica index, start,
    status or the exception's type name, x-request-id)."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    results: list[tuple] = []

    async def run() -> None:
        end = time.monotonic() + seconds
        turn = iter(range(10**9))
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency * 2)) as client:

            async def one_at_a_time() -> None:
                while (start := time.monotonic()) < end:
                    i = next(turn) % len(bases)
                    try:
                        r = await client.post(f"{bases[i]}/v1/chat/completions", content=payload, headers=headers)
                        results.append((i, start, r.status_code, r.headers.get("x-request-id")))
                    except httpx.HTTPError as e:
                        results.append((i, start, type(e).__name__, None))
                        await asyncio.sleep(0.01)

            await asyncio.gather(*(one_at_a_time() for _ in range(concurrency)))

    asyncio.run(run())
    return results


def test_kill_9_one_replica_under_load_the_others_serve_and_no_usage_row_is_lost(replicas: Replicas) -> None:
    created = replicas.manage(0, "POST", "/apikey", {"name": "crash"}).json()
    bases = replicas.bases
    killed_at: list[float] = []

    def kill_replica_2() -> None:
        time.sleep(1.0)
        killed_at.append(time.monotonic())
        replicas.servers[2].stop(signal.SIGKILL, timeout=10)

    killer = threading.Thread(target=kill_replica_2)
    killer.start()
    results = load(bases, created["key"], body(ttft_ms=50), seconds=3.0, concurrency=24)
    killer.join()
    (t_kill,) = killed_at
    on_survivors = [status for i, _, status, _ in results if i != 2]
    assert on_survivors and set(on_survivors) == {200}, Counter(on_survivors)
    assert [1 for i, start, _, _ in results if i != 2 and start > t_kill + 0.2]  # kept serving after the kill
    on_killed = Counter(status for i, _, status, _ in results if i == 2)
    assert on_killed[200] > 0 and len(on_killed) > 1, on_killed  # it served, then died under load

    # What the dead workers had answered but not yet committed is in their spool files on this host.
    spool = Path(f"{local_files(replicas.envs[2])}-spool")
    left = [f for f in spool.iterdir() if f.stat().st_size > 0]
    # Restarted on the same host folder: it replays the spool its dead workers left, then serves again.
    replicas.servers[2] = replicas.start(2)
    assert chat(replicas.bases[2], created["key"]).status_code == 200
    answered = {rid for _, _, status, rid in results if status == 200}
    deadline = time.monotonic() + 10
    while True:
        stored = {
            r[0] for r in db_query(replicas.env, "SELECT request_id FROM usage_log WHERE key_id = ?", (created["id"],))
        }
        missing = {rid for rid in answered if not any(s == rid or s.startswith(f"{rid}:") for s in stored)}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no usage row"
    assert not set(left) & set(spool.iterdir())  # the dead workers' files were replayed, then removed


def test_reservations_of_a_killed_replica_return_to_the_budget(replicas: Replicas) -> None:
    payload = body(ttft_ms=3000)
    created, limit = limited_key(replicas, payload, 10.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Ten requests in flight on replica C hold the whole room when C dies.
        held = pool.submit(lambda: load_once(replicas.bases[2], created["key"], payload, 10))
        time.sleep(1.0)
        assert chat(replicas.bases[0], created["key"]).status_code == 402
        replicas.servers[2].stop(signal.SIGKILL, timeout=10)
        assert not [s for s in held.result() if s == 200]
    try:
        # The dead process's lease expires and the survivors' heartbeat returns its reservations: in full.
        deadline = time.monotonic() + 30
        while (r := chat(replicas.bases[0], created["key"], max_tokens=1)).status_code == 402:
            assert time.monotonic() < deadline, "the killed replica's reservations were never returned"
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        statuses = fire(replicas.bases[:2], created["key"], payload, 30)
        # The whole room again (the probe above cost far less than one reservation): none of it was lost.
        assert Counter(statuses) == {200: 10, 402: 20}
        rows = usage_rows(replicas.servers[0], f"key_id = '{created['id']}' AND status = 200", expect=11)
        assert len(rows) == 11 and sum(row["cost"] for row in rows) <= limit
    finally:
        replicas.servers[2] = replicas.start(2)


def load_once(base: str, key: str, payload: bytes, n: int) -> list:
    """`n` requests at once to one replica; a status each, or the exception's type name when it died."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    async def run() -> list:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
            calls = [client.post(f"{base}/v1/chat/completions", content=payload, headers=headers) for _ in range(n)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        return [r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results]

    return asyncio.run(run())


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream router {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://router;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 60s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(replicas: Replicas, tmp_path: Path) -> Iterator[str]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (`make services` installs it)")
    port = free_port()
    servers = "\n".join(f"        server {b.removeprefix('http://')};" for b in replicas.bases)
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, servers=servers, port=port))
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, proc, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight, then exit
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_openai_sdk_through_nginx_round_robin_unary_and_streaming(replicas: Replicas, nginx: str) -> None:
    created = replicas.manage(0, "POST", "/apikey", {"name": "nginx"}).json()
    client = openai.OpenAI(base_url=f"{nginx}/v1", api_key=created["key"], max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "hi"}]
    upstreams = set()
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="mock/cheap", messages=messages, max_tokens=10)
        upstreams.add(raw.headers["x-upstream"])
        reply = raw.parse()
        assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
    assert upstreams == {b.removeprefix("http://") for b in replicas.bases}  # every replica answered
    for _ in range(3):
        stream = client.chat.completions.create(
            model="mock/cheap", messages=messages, max_tokens=10, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # A key revoked behind the balancer is refused whichever replica the next request lands on, once the change
    # has reached them: the published epoch arrives within milliseconds (its bound is 100 ms at p99), and a
    # request that lands on a replica in that window is still served.
    assert replicas.manage(1, "DELETE", f"/apikey/{created['id']}").status_code == 200
    time.sleep(0.2)
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="mock/cheap", messages=messages, max_tokens=10)

"""What only the PostgreSQL backend has: the change epoch across hosts, an unreachable server, the dialect."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import pg
from router.errors import ConfigError, DatabaseUnavailable, Unauthorized
from router.governance.keys import KeyCache, awaited, create_key
from router.store import open_store
from router.store.postgres import EPOCH_POLL, PostgresStore, StoreUnavailable, ddl, translate

from servers import authenticate_now


def test_a_revocation_on_another_host_is_seen_within_the_poll_interval(tmp_path: Path) -> None:
    url = pg.server().fresh()
    # Two hosts: each its own local files (signal, spool, ledger), the database shared.
    here = PostgresStore(url, str(tmp_path / "a" / "router"))
    there = PostgresStore(url, str(tmp_path / "b" / "router"))
    record, secret = create_key(here, "shared")
    cache = KeyCache(here, admin_key=None)
    assert authenticate_now(cache, secret).key_id == record.id
    there.revoke_key(record.id)
    start = time.monotonic()
    while True:
        try:
            authenticate_now(cache, secret)
        except Unauthorized as exc:
            assert "revoked" in str(exc)
            break
        assert time.monotonic() - start < EPOCH_POLL * 5, "the other host's change was never seen"
        time.sleep(0.02)
    here.close()
    there.close()


class Ticker:
    """A task on the running loop counting 10 ms sleeps: while the loop is blocked, the count stands still."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)

    def stop(self) -> int:
        self._task.cancel()
        return self.ticks


def test_a_key_read_from_the_database_does_not_block_the_event_loop(tmp_path: Path) -> None:
    url = pg.server().fresh()
    store = PostgresStore(url, str(tmp_path / "router"))
    record, secret = create_key(store, "slow")
    cache = KeyCache(store, admin_key=None)
    # Another session holds the keys table: the lookup waits on the server until it lets go.
    blocker = psycopg.connect(url, autocommit=False)
    blocker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
    threading.Timer(0.4, blocker.commit).start()

    async def main() -> tuple[int, str]:
        ticker = Ticker()
        await asyncio.sleep(0)
        reading = cache.authenticate(secret)  # a miss: an awaitable, read by the lookup pool
        assert asyncio.iscoroutine(reading)
        principal = await reading
        return ticker.stop(), principal.key_id

    ticks, key_id = asyncio.run(main())
    assert key_id == record.id
    assert ticks >= 10  # the loop kept running for the 0.4 s the lookup waited
    assert not asyncio.iscoroutine(cache.authenticate(secret))  # cached: a Principal, no await
    blocker.close()
    cache.close()
    store.close()


def test_concurrent_misses_of_one_key_share_one_read_and_a_change_meanwhile_is_not_cached(tmp_path: Path) -> None:
    url = pg.server().fresh()
    store = PostgresStore(url, str(tmp_path / "router"))
    record, secret = create_key(store, "shared-read")
    cache = KeyCache(store, admin_key=None)

    reads: list[bytes] = []
    find_key = store.find_key

    def counted(digest: bytes) -> object:
        reads.append(digest)
        return find_key(digest)

    store.find_key = counted  # type: ignore[method-assign]

    async def main() -> None:
        principals = await asyncio.gather(*(cache.authenticate(secret) for _ in range(20)))
        assert {p.key_id for p in principals} == {record.id}
        assert len(reads) == 1  # one read for the 20 requests that missed together
        store.revoke_key(record.id)  # moves the epoch: the next request reloads and reads the key again
        with pytest.raises(Unauthorized, match="revoked"):
            await cache.authenticate(secret)

    asyncio.run(main())
    cache.close()
    store.close()


def test_the_request_path_reads_a_cached_epoch(tmp_path: Path) -> None:
    store = PostgresStore(pg.server().fresh(), str(tmp_path / "router"))
    store.keys_epoch()
    store._conn.close()  # any query on the caller's thread would now fail
    store._conn._connect = None  # and could not reconnect
    for _ in range(100):
        store.keys_epoch()
    store.close()  # stops the poller, which would otherwise see the test server go away at exit


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = "postgresql://router:s3cret-pw@127.0.0.1:1/router"
    with pytest.raises(
        ConfigError, match=re.escape("PostgreSQL at postgresql://router:***@127.0.0.1:1/router is unavailable")
    ) as e:
        open_store(url)
    assert "s3cret-pw" not in str(e.value)


def test_the_dialect_layer() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE '%x'") == "SELECT a FROM t WHERE b = %s AND c LIKE '%%x'"
    assert translate("BEGIN IMMEDIATE") == "BEGIN"
    assert translate("INSERT OR REPLACE INTO mcp_health (server, status) VALUES (?, ?)") == (
        "INSERT INTO mcp_health (server, status) VALUES (%s, %s) "
        "ON CONFLICT (server) DO UPDATE SET status = excluded.status"
    )
    assert translate("SELECT x FROM t LIMIT ?") == "SELECT x FROM t LIMIT NULLIF(%s, -1)"
    assert ddl("CREATE TABLE a (seq INTEGER PRIMARY KEY, k BLOB, g TEXT REFERENCES groups (id), n INTEGER)") == (
        "CREATE TABLE a (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, k BYTEA, g TEXT, n BIGINT)"
    )


def test_a_connection_lost_inside_a_transaction_is_a_503_then_replaced(tmp_path: Path) -> None:
    # Inside a transaction nothing is run twice: the transaction fails (outside one, see the next test).
    server = pg.server()
    url = server.fresh()
    store = PostgresStore(url, str(tmp_path / "router"))
    record, _secret = create_key(store, "k")
    pid = store._conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(StoreUnavailable) as lost, store.transaction():
        with psycopg.connect(server.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        store.get_key(record.id)
    assert lost.value.status == 503 and lost.value.code == "database_unavailable"
    assert "unavailable" in lost.value.message and "127.0.0.1" not in lost.value.message
    assert store.get_key(record.id).id == record.id  # the next statement reconnects
    store.close()


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_an_error(tmp_path: Path) -> None:
    """After a restart (here: the server ending every session of the database), the next read and the next
    transaction each run on a new connection instead of failing with a 503 once per stale connection."""
    url = pg.server().fresh()
    store = PostgresStore(url, str(tmp_path / "router"))
    record, _ = create_key(store, "before")

    def drop_every_session() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    drop_every_session()
    assert store.get_key(record.id) is not None  # a read
    drop_every_session()
    create_key(store, "after")  # a transaction: its BEGIN meets the dropped connection
    assert {k.name for k in store.list_keys()} == {"before", "after"}
    store.close()


def test_a_server_away_is_noticed_by_the_poller_and_then_fails_fast(tmp_path: Path) -> None:
    server = pg.PostgresServer()  # its own: stopped and started here
    try:
        url = server.fresh()
        store = PostgresStore(url, str(tmp_path / "router"))
        record, secret = create_key(store, "k")
        serve = KeyCache(store, admin_key=None)
        refuse = KeyCache(store, admin_key=None, refuse_without_database=True)
        assert authenticate_now(serve, secret).key_id == authenticate_now(refuse, secret).key_id == record.id
        assert not store.database_unreachable()
        server.halt()
        deadline = time.monotonic() + EPOCH_POLL * 10
        while not store.database_unreachable():
            assert time.monotonic() < deadline, "the poller never noticed the server was away"
            time.sleep(0.02)
        assert authenticate_now(serve, secret).key_id == record.id  # served from the cache
        with pytest.raises(DatabaseUnavailable):
            authenticate_now(refuse, secret)

        def connect() -> None:
            raise AssertionError("reconnected while the server is known to be away")

        store._conn._connect = connect  # type: ignore[method-assign]
        for _ in range(2):  # the first finds the connection lost, the second does not try to reconnect
            with pytest.raises(StoreUnavailable, match="is unavailable"):
                store.get_key(record.id)
        del store._conn._connect
        server.start()
        deadline = time.monotonic() + EPOCH_POLL * 10
        while store.database_unreachable():
            assert time.monotonic() < deadline, "the poller never noticed the server was back"
            time.sleep(0.02)
        assert store.get_key(record.id).id == record.id  # reconnected
        assert authenticate_now(refuse, secret).key_id == record.id
        store.close()
    finally:
        server.stop()


def test_a_change_is_reloaded_off_the_event_loop_once_and_swapped_in_on_it(tmp_path: Path) -> None:
    url = pg.server().fresh()
    store = PostgresStore(url, str(tmp_path / "router"))
    record, secret = create_key(store, "reload")
    cache = KeyCache(store, admin_key=None)
    loads: list[int] = []
    swaps: list[int] = []

    def load() -> Callable[[], None]:  # a slow read of stored settings
        loads.append(threading.get_ident())
        time.sleep(0.3)
        return lambda: swaps.append(threading.get_ident())

    cache.on_change.append(load)
    assert authenticate_now(cache, secret).key_id == record.id

    async def main() -> int:
        ticker = Ticker()
        create_key(store, "another")  # a governance change: the epoch moves
        principals = await asyncio.gather(*(awaited(cache.authenticate(secret)) for _ in range(10)))
        assert {p.key_id for p in principals} == {record.id}
        return ticker.stop()

    ticks = asyncio.run(main())
    assert len(loads) == 1 and loads[0] != threading.get_ident()  # read once, in the lookup pool
    assert swaps == [threading.get_ident()]  # swapped in once, on the loop's thread
    assert ticks >= 10  # the loop kept serving during the 0.3 s read
    assert not asyncio.iscoroutine(cache.authenticate(secret))
    cache.close()
    store.close()

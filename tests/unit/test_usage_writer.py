from __future__ import annotations

import asyncio
import sqlite3
import time

import msgspec
import pytest

from router.store import UsageRow, open_store
from router.store.migrations import MIGRATIONS
from router.store.usage_writer import UsageWriter


def _row(i: int, key_id: str | None = "key_a") -> UsageRow:
    return UsageRow(
        request_id=f"req_{i}", ts=time.time(), key_id=key_id, endpoint="chat", model="mock/gpt-4o",
        provider="mock", status=200, prompt_tokens=3, completion_tokens=5, cached_tokens=0, latency_ms=1.5,
        ttft_ms=None, stream=False, error_type=None,
    )  # fmt: skip


@pytest.fixture
def db(db_url):
    return db_url


def test_rows_are_written_in_batches_in_background(db) -> None:
    store = open_store(db)

    async def scenario() -> None:
        writer = UsageWriter(store, flush_interval=0.05, batch_size=1000)
        writer.start()
        for i in range(10):
            writer.add(_row(i))
        assert store.count_usage() == 0  # add() never touches the disk
        for _ in range(100):
            await asyncio.sleep(0.02)
            if store.count_usage() == 10:
                break
        await writer.close()

    asyncio.run(scenario())
    assert store.count_usage() == 10
    row = store.recent_usage(1)[0]
    assert (row.model, row.status, row.prompt_tokens, row.completion_tokens, row.stream) == (
        "mock/gpt-4o", 200, 3, 5, False,
    )  # fmt: skip
    store.close()


def test_close_flushes_everything_still_pending(db) -> None:
    store = open_store(db)

    async def scenario() -> UsageWriter:
        writer = UsageWriter(store, flush_interval=3600, batch_size=10**6)
        writer.start()
        for i in range(2500):
            writer.add(_row(i))
        return writer

    loop = asyncio.new_event_loop()
    writer = loop.run_until_complete(scenario())
    # As granian's __rsgi_del__ does: the serving loop has stopped, shutdown runs on it once more.
    loop.run_until_complete(writer.close())
    loop.close()
    assert store.count_usage() == 2500
    store.close()


def test_full_batch_wakes_the_flusher_early(db) -> None:
    store = open_store(db)

    async def scenario() -> None:
        writer = UsageWriter(store, flush_interval=3600, batch_size=5)
        writer.start()
        for i in range(5):
            writer.add(_row(i))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if store.count_usage() == 5:
                break
        assert store.count_usage() == 5
        await writer.close()

    asyncio.run(scenario())
    store.close()


def test_last_used_is_updated_from_usage(db) -> None:
    from router.governance.keys import create_key

    store = open_store(db)
    record, _ = create_key(store, "k")
    before = time.time()
    store.write_usage([_row(1, key_id=record.id)])
    (listed,) = store.list_keys()
    assert listed.last_used_at is not None and listed.last_used_at >= before
    store.close()


def test_attempt_migration_keeps_old_rows_and_allows_one_row_per_attempt(tmp_path) -> None:
    # A database as the first schema version left it, with one logged request (SQLite: the file is written
    # directly; tests/unit/test_db_cli.py upgrades an old PostgreSQL schema).
    db = str(tmp_path / "usage.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    version, _title, statements = MIGRATIONS[0]
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
    conn.execute(
        "INSERT INTO usage_log VALUES ('req_old', 1.0, 'key_a', 'chat', 'mock/gpt-4o', 'mock', 200, 1, 2, 0, 3.5,"
        " NULL, 0, NULL)"
    )
    conn.commit()
    conn.close()

    store = open_store(db)
    (old,) = store.recent_usage()
    assert (old.request_id, old.attempt, old.completion_tokens, old.stream) == ("req_old", 1, 2, False)
    first = UsageRow(request_id="req_new", ts=2.0, key_id=None, endpoint="chat", model="mock/a", provider="mock",
                     status=429, error_type="upstream_rate_limited", attempt=1)  # fmt: skip
    second = msgspec.structs.replace(first, ts=3.0, status=200, error_type=None, attempt=2)
    store.write_usage([first, second])
    rows = [r for r in store.recent_usage() if r.request_id == "req_new"]
    assert sorted((r.attempt, r.status) for r in rows) == [(1, 429), (2, 200)]
    with pytest.raises(sqlite3.IntegrityError):
        store.write_usage([second])
    store.close()

"""The usage spool: rows on disk before their answer leaves, removed once committed, replayed exactly once."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from router.store import Store, UsageRow, open_store
from router.store.spool import Spool, read_rows, replay, spool_dir
from router.store.usage_writer import UsageWriter


def _row(i: int, attempt: int = 1) -> UsageRow:
    return UsageRow(
        request_id=f"req_{i}", ts=time.time(), key_id="key_a", endpoint="chat", model="mock/gpt-4o",
        provider="mock", status=200, prompt_tokens=3, completion_tokens=5, latency_ms=1.5, cost=0.000123 * (i + 1),
        period=202612, budgets="key:key_a org", attempt=attempt,
    )  # fmt: skip


@pytest.fixture
def db(db_url: str) -> str:
    return db_url


def _files(db: str) -> list[Path]:
    return sorted(Path(spool_dir(db) or "").glob("*.spool"))


def _spend(store: Store) -> dict[str, int]:
    return dict(store._conn.execute("SELECT budget, amount FROM spend WHERE period = 202612").fetchall())


def test_rows_are_on_disk_before_the_flush_and_gone_after_it(db: str) -> None:
    store = open_store(db)

    async def scenario() -> None:
        writer = UsageWriter(store, flush_interval=3600, batch_size=10**6, spool=Spool(spool_dir(store.path) or ""))
        writer.start()
        for i in range(5):
            writer.add(_row(i))
        (path,) = _files(store.path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert [r.request_id for r in read_rows(path.read_bytes(), str(path))] == [f"req_{i}" for i in range(5)]
        assert store.count_usage() == 0
        await writer.close()

    asyncio.run(scenario())
    assert store.count_usage() == 5
    assert _files(store.path) == []
    store.close()


def test_a_dead_writers_spool_is_replayed_once_with_its_spend(db: str, tmp_path: Path) -> None:
    store = open_store(db)
    spool = Spool(spool_dir(store.path) or "")
    for i in range(3):
        spool.append(_row(i))
    # Two of the three were committed by the process before it died; the third only reached the spool.
    store.write_usage([_row(0), _row(1)])
    (path,) = _files(store.path)
    replay(spool_dir(store.path), store)
    assert _files(store.path) == [path], "a living process's spool (locked) is never replayed"
    sealed = spool.seal()
    assert sealed is not None
    Spool.abandon([sealed])  # what dying does: the descriptor and its lock go, the file stays
    shutil.copy(path, tmp_path / "copy")
    with open(path, "ab") as f:
        f.write(b"\x20\x00\x00\x00\x93")  # a record torn by the crash: its length says more than is there
    assert replay(spool_dir(store.path), store) == 3
    assert _files(store.path) == []
    assert store.count_usage() == 3
    expected = sum(round(0.000123 * (i + 1) * 1_000_000) for i in range(3))
    assert _spend(store) == {"key:key_a": expected, "org": expected}
    # The same file again (a crash during the replay, before it was removed): nothing is counted twice.
    shutil.copy(tmp_path / "copy", path)
    replay(spool_dir(store.path), store)
    assert store.count_usage() == 3
    assert _spend(store) == {"key:key_a": expected, "org": expected}
    store.close()


def test_failed_flushes_keep_their_spool_until_one_commits(db: str) -> None:
    store = open_store(db)

    async def scenario() -> None:
        writer = UsageWriter(store, flush_interval=3600, batch_size=1, spool=Spool(spool_dir(store.path) or ""))
        writer.start()
        real = writer._store.write_usage
        calls = 0

        def locked_three_times(rows, audit=(), **kwargs) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls <= 3:
                raise sqlite3.OperationalError("database is locked")
            real(rows, audit, **kwargs)

        writer._store.write_usage = locked_three_times  # type: ignore[method-assign]
        for i in range(4):
            writer.add(_row(i))  # each add wakes the flusher (batch_size 1)
            for _ in range(500):
                if calls > i:
                    break
                await asyncio.sleep(0.01)
            if i < 3:
                # Every row is still on disk, in at most two files however often the database refuses.
                assert 1 <= len(_files(store.path)) <= 2
                spooled = [r for f in _files(store.path) for r in read_rows(f.read_bytes(), str(f))]
                assert sorted(r.request_id for r in spooled) == [f"req_{n}" for n in range(i + 1)]
        for _ in range(500):
            if store.count_usage() == 4:
                break
            await asyncio.sleep(0.01)
        await writer.close()

    asyncio.run(scenario())
    assert _files(store.path) == []
    assert store.count_usage() == 4
    store.close()


def test_a_failing_spool_does_not_fail_the_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(str(tmp_path / "spool"))
    shutil.rmtree(tmp_path / "spool")  # no file can be created there now
    spool.append(_row(0))
    spool.append(_row(1))
    assert [r.message for r in caplog.records].count(
        f"usage spool write failed in {tmp_path / 'spool'}; rows are kept in memory only"
    ) == 1  # once, not per row
    assert spool.seal() is None

"""The store's sqlite3 adapters for None and bool (a shortcut past the adapter protocol, `store/sqlite.py`) bind
exactly what sqlite3 binds without them: NULL, and the integers 0 and 1; a usage row reads back as written."""

from __future__ import annotations

import sqlite3
import time

from router.store import UsageRow, open_store
from router.store import sqlite as _registers_the_adapters  # noqa: F401


def test_none_and_booleans_bind_as_null_and_integers() -> None:
    conn = sqlite3.connect(":memory:")
    got = [conn.execute("SELECT typeof(?1), ?1", (value,)).fetchone() for value in (None, True, False, 7, 1.5, "x")]
    assert got == [("null", None), ("integer", 1), ("integer", 0), ("integer", 7), ("real", 1.5), ("text", "x")]


def test_a_usage_row_with_nulls_and_booleans_reads_back_unchanged(tmp_path) -> None:
    store = open_store(str(tmp_path / "r.db"))
    row = UsageRow("req_1", time.time(), None, "chat", "m/x", None, 200, stream=True, byok=False, cost_estimated=True)
    store.write_usage([row])
    assert store.recent_usage() == [row]
    (types,) = store._conn.execute("SELECT typeof(key_id), typeof(stream), typeof(byok) FROM usage_log").fetchall()
    assert types == ("null", "integer", "integer")
    store.close()

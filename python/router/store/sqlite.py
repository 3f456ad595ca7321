"""The embedded SQLite backend: one file, nothing to start.

WAL mode lets the usage writer's thread commit while request handlers read keys on another connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from msgspec.structs import astuple

from . import rollup, sketch
from .analytics import AnalyticsQueries
from .bulk import BulkInsert
from .governance import KEY_COLUMNS, GovernanceTables, key_from_row
from .guardrail_tables import GuardrailTables
from .mcp_tables import McpTables
from .migrations import MIGRATIONS
from .prompt_tables import PromptTables
from .records import USAGE_COLUMNS, AuditEvent, KeyRecord, UsageRow
from .routing_tables import RoutingTables
from .session_queries import SessionQueries
from .signal import ChangeSignal
from .ui_session_tables import UiSessionTables

_ROLLUP_UPSERTS = [(r, r.upsert()) for r in rollup.ROLLUPS]
_BOOL_COLUMNS = [USAGE_COLUMNS.index(c) for c in ("stream", "cost_estimated", "byok")]
_INSERT_USAGE = BulkInsert(f"INSERT INTO usage_log ({', '.join(USAGE_COLUMNS)})", len(USAGE_COLUMNS))
_UPSERT_SPEND = BulkInsert(
    "INSERT INTO spend (budget, period, amount)",
    3,
    "ON CONFLICT (budget, period) DO UPDATE SET amount = amount + excluded.amount",
)


def _usage_row(row: Sequence[object]) -> UsageRow:
    values = list(row)
    for i in _BOOL_COLUMNS:
        values[i] = bool(values[i])
    return UsageRow(*values)


class SQLiteStore(
    GovernanceTables,
    RoutingTables,
    GuardrailTables,
    PromptTables,
    AnalyticsQueries,
    McpTables,
    SessionQueries,
    UiSessionTables,
):
    def __init__(self, path: str) -> None:
        self.path = path
        self._memory = path == ":memory:"
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Keys' digests, usage and audit data: owner-only, like the ledger and signal files. Created here,
            # empty, before SQLite opens it, because SQLite gives the -wal and -shm files the database's mode.
            # Only when missing: closing a descriptor of a database this process has open would drop SQLite's
            # POSIX locks on it (they are per process), and another connection could then corrupt it.
            if not os.path.exists(path):
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        # The rollups' latency sketches merge in SQL (upserts, reports, rebuilds).
        sketch.register(self._conn)
        if not self._memory:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._signal = None if self._memory else ChangeSignal(path + "-signal")
        self._local_epoch = 0
        self._depth = 0

    def clone(self) -> SQLiteStore:
        """A second connection to the same database, for another thread."""
        if self._memory:
            return self
        return SQLiteStore(self.path)

    def close(self) -> None:
        if self._signal is not None:
            self._signal.close()
        self._conn.close()

    def migrate(self) -> list[int]:
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, _title, statements in MIGRATIONS:
            if version in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have applied it while we waited for the write lock.
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    conn.execute("ROLLBACK")
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied

    def ping(self) -> None:
        self._conn.execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchone()

    # -- keys ---------------------------------------------------------------------------------------

    def _after_commit(self) -> None:
        self._local_epoch += 1
        if self._signal is not None:
            self._signal.bump()

    def insert_key(self, record: KeyRecord, key_hash: bytes) -> None:
        values = list(astuple(record))[:-1]
        values[9] = msgspec.json.encode(values[9]).decode()
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}, key_hash) VALUES ({', '.join('?' * (len(values) + 1))})",
                [*values, key_hash],
            )
            self._conn.executemany("INSERT INTO key_groups VALUES (?, ?)", [(record.id, g) for g in record.groups])

    def find_key(self, key_hash: bytes) -> tuple[KeyRecord, bytes] | None:
        row = self._conn.execute(
            f"SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        if row is None:
            return None
        return key_from_row(row[:-1], self._key_groups([row[0]]).get(row[0], ())), row[-1]

    def revoke_key(self, key_id: str) -> KeyRecord | None:
        with self.transaction():
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
        return self.get_key(key_id)

    def keys_epoch(self) -> int:
        """A number that changes whenever a cached key may have become invalid, in any process."""
        if self._signal is None:
            return self._local_epoch
        return self._signal.read()

    # -- usage --------------------------------------------------------------------------------------

    def write_usage(self, rows: Sequence[UsageRow], audit: Sequence[AuditEvent] = (), *, replay: bool = False) -> None:
        """Commit rows (with their rollups, spend and the keys' last use) in one transaction. `replay`: rows
        from a spool, some maybe committed already; those are skipped, so their spend is counted once."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE" if replay else "BEGIN")
        try:
            if replay:
                rows = self._uncommitted(rows)
            self._write_usage(rows, audit)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _uncommitted(self, rows: Sequence[UsageRow]) -> list[UsageRow]:
        seen: set[tuple[str, int]] = set()
        ids = sorted({r.request_id for r in rows})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            seen.update(
                self._conn.execute(
                    f"SELECT request_id, attempt FROM usage_log WHERE request_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            )
        fresh = []
        for r in rows:
            if (r.request_id, r.attempt) not in seen:
                seen.add((r.request_id, r.attempt))
                fresh.append(r)
        return fresh

    def _write_usage(self, rows: Sequence[UsageRow], audit: Sequence[AuditEvent]) -> None:
        last_used: dict[str, float] = {}
        for row in rows:
            if row.key_id is not None:
                last_used[row.key_id] = max(row.ts, last_used.get(row.key_id, 0.0))
        conn = self._conn
        _INSERT_USAGE(conn, [astuple(r) for r in rows])
        # Summed per budget list first: a batch has few distinct lists, so each is split once, not per row
        # (this thread holds the GIL while it runs Python, and every request waits for it then).
        by_list: dict[tuple[str, int], int] = {}
        for r in rows:
            if r.cost and r.budgets and r.period is not None:
                key = (r.budgets, r.period)
                by_list[key] = by_list.get(key, 0) + round(r.cost * 1_000_000)
        spend: dict[tuple[str, int], int] = {}
        for (budgets, period), micro in by_list.items():
            for budget in budgets.split():
                spend[(budget, period)] = spend.get((budget, period), 0) + micro
        for table, upsert in _ROLLUP_UPSERTS:
            upsert(conn, table.fold(rows))
        _UPSERT_SPEND(conn, [(b, p, a) for (b, p), a in spend.items()])
        if audit:
            self.append_audit(audit)
        conn.executemany(
            "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
            [(ts, key_id) for key_id, ts in last_used.items()],
        )

    def recent_usage(self, limit: int = 100) -> list[UsageRow]:
        rows = self._conn.execute(
            f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage_log ORDER BY ts DESC LIMIT ?", (limit,)
        )
        return [_usage_row(row) for row in rows]

    def count_usage(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0]

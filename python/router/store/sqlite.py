"""The embedded SQLite backend: one file, nothing to start.

WAL mode lets the usage writer's thread commit while request handlers read keys on another connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from msgspec.structs import astuple

from .migrations import MIGRATIONS
from .records import USAGE_COLUMNS, KeyRecord, UsageRow
from .signal import ChangeSignal

_KEY_COLUMNS = "id, name, prefix, created_at, revoked_at, last_used_at"
_INSERT_USAGE = f"INSERT INTO usage_log ({', '.join(USAGE_COLUMNS)}) VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._memory = path == ":memory:"
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if not self._memory:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._signal = None if self._memory else ChangeSignal(path + "-signal")
        self._local_epoch = 0

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

    def insert_key(self, record: KeyRecord, key_hash: bytes) -> None:
        self._conn.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.name, record.prefix, record.created_at, None, None, key_hash),
        )

    def list_keys(self) -> list[KeyRecord]:
        rows = self._conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [KeyRecord(*row) for row in rows]

    def find_key(self, key_hash: bytes) -> tuple[KeyRecord, bytes] | None:
        row = self._conn.execute(
            f"SELECT {_KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        return (KeyRecord(*row[:-1]), row[-1]) if row else None

    def revoke_key(self, key_id: str) -> KeyRecord | None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
            conn.execute("UPDATE epochs SET value = value + 1 WHERE name = 'keys'")
            row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._local_epoch += 1
        if self._signal is not None:
            self._signal.bump()
        return KeyRecord(*row) if row else None

    def keys_epoch(self) -> int:
        """A number that changes whenever a cached key may have become invalid, in any process."""
        if self._signal is None:
            return self._local_epoch
        return self._signal.read()

    # -- usage --------------------------------------------------------------------------------------

    def write_usage(self, rows: Sequence[UsageRow]) -> None:
        last_used: dict[str, float] = {}
        for row in rows:
            if row.key_id is not None:
                last_used[row.key_id] = max(row.ts, last_used.get(row.key_id, 0.0))
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT_USAGE, [astuple(r) for r in rows])
            conn.executemany(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
                [(ts, key_id) for key_id, ts in last_used.items()],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def recent_usage(self, limit: int = 100) -> list[UsageRow]:
        rows = self._conn.execute(
            f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage_log ORDER BY ts DESC LIMIT ?", (limit,)
        )
        return [UsageRow(*row[:-3], bool(row[-3]), *row[-2:]) for row in rows]

    def count_usage(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0]

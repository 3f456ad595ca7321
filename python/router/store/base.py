"""What both backends share: the schema's versions, keys and the usage log, over a `_conn` that speaks the SQL
both engines accept (`?` placeholders, explicit BEGIN/COMMIT). SQLite runs it as is; PostgreSQL through the thin
translating connection in `postgres.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec.structs import astuple

from ..errors import ConfigError
from . import rollup
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
from .ui_session_tables import UiSessionTables

_ROLLUP_UPSERTS = [(r, r.upsert()) for r in rollup.ROLLUPS]
_BOOL_COLUMNS = [USAGE_COLUMNS.index(c) for c in ("stream", "cost_estimated", "byok")]
_INSERT_USAGE = BulkInsert(f"INSERT INTO usage_log ({', '.join(USAGE_COLUMNS)})", len(USAGE_COLUMNS))
_UPSERT_SPEND = BulkInsert(
    "INSERT INTO spend (budget, period, amount)",
    3,
    "ON CONFLICT (budget, period) DO UPDATE SET amount = spend.amount + excluded.amount",
)
LATEST = MIGRATIONS[-1][0]


class SchemaError(ConfigError):
    """The database's schema is not the one this version of the code runs on."""


def _usage_row(row: Sequence[object]) -> UsageRow:
    values = list(row)
    for i in _BOOL_COLUMNS:
        values[i] = bool(values[i])
    return UsageRow(*values)


class StoreBase(
    GovernanceTables,
    RoutingTables,
    GuardrailTables,
    PromptTables,
    AnalyticsQueries,
    McpTables,
    SessionQueries,
    UiSessionTables,
):
    _conn: Any
    path: str
    engine: str

    # -- schema -------------------------------------------------------------------------------------

    def _ddl(self, statement: str) -> str:
        """A migration statement in this engine's dialect."""
        return statement

    def _migration_lock(self) -> Any:  # a context manager: one process migrates at a time
        raise NotImplementedError

    def _begin_write(self, replay: bool) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        """The newest version applied (0: an empty database)."""
        if not self._has_table("schema_migrations"):
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    def _has_table(self, name: str) -> bool:
        raise NotImplementedError

    def database_unreachable(self) -> bool:
        """Whether the database server is known to be away (a file on this host, as SQLite is, never is)."""
        return False

    def _insert_id(self, sql: str, params: tuple[object, ...], column: str) -> int:
        """Insert one row; the value the database gave its identity `column` (SQLite: the rowid it aliases)."""
        return int(self._conn.execute(sql, params).lastrowid or 0)

    def _insert_usage(self, rows: Sequence[tuple[object, ...]]) -> None:
        """Usage rows in multi-row INSERTs (a primary-key conflict fails the batch: rows are logged once)."""
        _INSERT_USAGE(self._conn, rows)

    def check_schema(self, *, migrate: bool) -> None:
        """Refuse a schema newer than the code; one older only when `migrate` is off (then name the fix)."""
        version = self.schema_version()
        if version > LATEST:
            raise SchemaError(
                f"the {self.engine} database's schema is version {version}, newer than this router "
                f"(version {LATEST}): upgrade router, or point ROUTER_DB at a database of this version"
            )
        if version < LATEST and not migrate:
            state = "empty" if version == 0 else f"at schema version {version}"
            raise SchemaError(
                f"the {self.engine} database is {state}; this router needs version {LATEST}: "
                "run `router db upgrade` (or start with `router serve --migrate`)"
            )

    def migrate(self) -> list[int]:
        """Apply every version not recorded yet, in order, each in its own transaction; returns those applied."""
        conn = self._conn
        with self._migration_lock():
            self.check_schema(migrate=True)
            conn.execute(
                self._ddl("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, _title, statements in MIGRATIONS:
                if version in done:
                    continue
                self._begin_write(True)
                try:
                    # Another process may have applied it while we waited for the write lock.
                    if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                        conn.execute("ROLLBACK")
                        continue
                    for statement in statements:
                        conn.execute(self._ddl(statement))
                    conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                applied.append(version)
        return applied

    # -- keys ---------------------------------------------------------------------------------------

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

    # -- usage --------------------------------------------------------------------------------------

    def write_usage(self, rows: Sequence[UsageRow], audit: Sequence[AuditEvent] = (), *, replay: bool = False) -> None:
        """Commit rows (with their rollups, spend and the keys' last use) in one transaction. `replay`: rows
        from a spool, some maybe committed already; those are skipped, so their spend is counted once."""
        conn = self._conn
        self._begin_write(replay)
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
        self._insert_usage([astuple(r) for r in rows])
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
        for (_, upsert), cells in zip(_ROLLUP_UPSERTS, rollup.fold_all(rows), strict=True):
            upsert(conn, cells)
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

"""Guardrail settings stored through the management API: the organisation's (scope `org`) and the stricter
overrides of keys (`key:<id>`) and groups (`group:<id>`).

A mixin over the SQLite connection like `routing_tables.py`. Writes go through `transaction()`, which bumps
the change epoch: every worker re-reads these rows before its next request.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import msgspec

ORG_SCOPE = "org"
_COLUMNS = "scope, settings, updated_at, updated_by"


class StoredGuardrails(msgspec.Struct, frozen=True):
    scope: str
    settings: str  # JSON, as accepted by the API
    updated_at: float
    updated_by: str | None = None


class GuardrailTables:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by GovernanceTables

        def transaction(self) -> AbstractContextManager[None]: ...

    def guardrail_rows(self) -> list[StoredGuardrails]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM guardrail_settings ORDER BY scope")
        return [StoredGuardrails(*r) for r in rows]

    def get_guardrails(self, scope: str) -> StoredGuardrails | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM guardrail_settings WHERE scope = ?", (scope,)).fetchone()
        return None if row is None else StoredGuardrails(*row)

    def put_guardrails(self, row: StoredGuardrails) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO guardrail_settings ({_COLUMNS}) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (row.scope, row.settings, row.updated_at, row.updated_by),
            )

    def delete_guardrails(self, scope: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM guardrail_settings WHERE scope = ?", (scope,))

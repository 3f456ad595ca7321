"""Routing tables: policies managed through the API, and the organisation's sealed provider keys (BYOK).

A mixin over the SQLite connection like `governance.py`. Writes go through `transaction()`, which bumps the
change epoch: every worker reloads its policy set and provider keys before its next request.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import msgspec

from ..config import PolicyConfig, PolicyTarget

ORG = "org_default"
_POLICY_COLUMNS = "name, key_id, type, targets, created_at, updated_at, created_by"
_decode_targets = msgspec.json.Decoder(list[PolicyTarget]).decode


class StoredPolicy(msgspec.Struct, frozen=True):
    """A policy as stored; `key_id` None is org-wide."""

    name: str
    key_id: str | None
    type: str
    targets: list[PolicyTarget]
    created_at: float
    updated_at: float
    created_by: str | None = None

    def config(self) -> PolicyConfig:
        return PolicyConfig(self.name, self.type, self.targets)  # type: ignore[arg-type]  # checked on write


class SealedKey(msgspec.Struct, frozen=True):
    provider: str
    sealed: bytes
    master: str
    fingerprint: str
    created_at: float
    created_by: str | None = None


def _policy(row: tuple) -> StoredPolicy:
    name, key_id, kind, targets, created, updated, by = row
    return StoredPolicy(name, key_id or None, kind, _decode_targets(targets), created, updated, by)


class RoutingTables:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by GovernanceTables

        def transaction(self) -> AbstractContextManager[None]: ...

    # -- policies -------------------------------------------------------------------------------------

    def list_policies(self) -> list[StoredPolicy]:
        rows = self._conn.execute(f"SELECT {_POLICY_COLUMNS} FROM policies ORDER BY created_at, name")
        return [_policy(r) for r in rows]

    def policy_rows(self) -> list[tuple]:
        """The raw rows, for a cheap "did anything change" comparison in every worker."""
        return self._conn.execute(f"SELECT {_POLICY_COLUMNS} FROM policies ORDER BY created_at, name").fetchall()

    def get_policy(self, name: str) -> StoredPolicy | None:
        row = self._conn.execute(f"SELECT {_POLICY_COLUMNS} FROM policies WHERE name = ?", (name,)).fetchone()
        return None if row is None else _policy(row)

    def put_policy(self, policy: StoredPolicy) -> None:
        targets = msgspec.json.encode(policy.targets).decode()
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO policies ({_POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET key_id = excluded.key_id, type = excluded.type, targets = excluded.targets, "
                "updated_at = excluded.updated_at",
                (policy.name, policy.key_id or "", policy.type, targets, policy.created_at, policy.updated_at,
                 policy.created_by),
            )  # fmt: skip

    def delete_policy(self, name: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM policies WHERE name = ?", (name,))

    # -- provider keys -------------------------------------------------------------------------------

    def provider_keys(self, org_id: str = ORG) -> list[SealedKey]:
        rows = self._conn.execute(
            "SELECT provider, sealed, master, fingerprint, created_at, created_by FROM provider_keys "
            "WHERE org_id = ? ORDER BY provider",
            (org_id,),
        )
        return [SealedKey(p, bytes(s), m, f, c, b) for p, s, m, f, c, b in rows]

    def put_provider_key(self, key: SealedKey, org_id: str = ORG) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO provider_keys (org_id, provider, sealed, master, fingerprint, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, provider) DO UPDATE SET sealed = excluded.sealed, "
                "master = excluded.master, fingerprint = excluded.fingerprint, created_at = excluded.created_at, "
                "created_by = excluded.created_by",
                (org_id, key.provider, key.sealed, key.master, key.fingerprint, key.created_at, key.created_by),
            )

    def delete_provider_key(self, provider: str, org_id: str = ORG) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM provider_keys WHERE org_id = ? AND provider = ?", (org_id, provider))

"""Governance tables: users, service accounts, groups, access lists, approved models, key fields, audit log.

A mixin over the SQLite connection so that `sqlite.py` stays about the connection and the hot tables.
Every change runs inside `transaction()`, which also bumps the change epoch: workers drop their cached
principals and effective model sets before the next request, wherever the change came from (API or CLI).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from .bulk import BulkInsert
from .records import (
    AccessListRecord,
    AuditEvent,
    GroupMember,
    GroupRecord,
    KeyRecord,
    Rules,
    ServiceAccountRecord,
    UserRecord,
)

KEY_COLUMNS = (
    "id, name, prefix, created_at, revoked_at, last_used_at, owner_type, owner_id, access_list_id, labels, "
    "monthly_limit, expires_at, expired_logged_at, created_by, permission, auto_cache, limit_set_by, expiry_set_by"
)
# The SQL of each key status (`KeyRecord.status`) for list filters; `?` is the current time (twice for expiring).
_KEY_STATUS = {
    "active": "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
    "revoked": "revoked_at IS NOT NULL",
    "expired": "revoked_at IS NULL AND expires_at <= ?",
    "expiring": "revoked_at IS NULL AND expires_at > ? AND expires_at <= ?",
}
_USER_COLUMNS = "id, email, name, role, monthly_limit, status, created_at"
_GROUP_COLUMNS = "id, name, description, access_list_id, monthly_budget, created_at"
_LIST_COLUMNS = "id, name, description, rules, created_at, updated_at"
_AUDIT_COLUMNS = "ts, actor, action, target_type, target_id, before, after, detail"
_INSERT_AUDIT = BulkInsert(f"INSERT INTO audit_log ({_AUDIT_COLUMNS})", 8)

# Guardrail triggers live on usage rows (`guardrails.audit`); as audit events, one per entry of the list.
TRIGGERED = "guardrail.triggered"
_TRIGGER_EVENTS = (
    "SELECT u.ts, 'key:' || u.key_id, '" + TRIGGERED + "', 'request', u.request_id, NULL, NULL, "
    "json_object('request_id', u.request_id, 'key_id', u.key_id, 'category', t.value ->> 1, 'type', t.value ->> 2, "
    "'direction', t.value ->> 0, 'action', t.value ->> 3, 'count', t.value ->> 4), NULL "
    "FROM usage_log AS u, json_each(u.guardrails) AS t WHERE u.guardrails IS NOT NULL"
)


def _given(clauses: dict[str, object | None]) -> tuple[list[str], list[object]]:
    """The clauses whose value is given, and those values (the query's parameters)."""
    given = {clause: value for clause, value in clauses.items() if value is not None}
    return list(given), list(given.values())


_json_encode = msgspec.json.encode
_decode_labels = msgspec.json.Decoder(dict[str, str]).decode
_decode_rules = msgspec.json.Decoder(Rules).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any] | None).decode


def _opt_json(value: object | None) -> str | None:
    return None if value is None else _json_encode(value).decode()


def key_from_row(row: Sequence[Any], groups: tuple[str, ...] = ()) -> KeyRecord:
    values = list(row)
    values[9] = _decode_labels(values[9] or "{}")
    values[15] = None if values[15] is None else bool(values[15])
    return KeyRecord(*values, groups=groups)


class GovernanceTables:
    _conn: sqlite3.Connection
    _depth: int
    _trigger_events = _TRIGGER_EVENTS

    def _after_commit(self) -> None:  # the backend signals other processes
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic change (nested calls join the outer one); commits and bumps the change epoch."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            conn.execute("UPDATE epochs SET value = value + 1 WHERE name = 'keys'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self._after_commit()

    # -- keys ---------------------------------------------------------------------------------------

    def _key_groups(self, key_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        ids = list(key_ids)
        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._conn.execute(
                f"SELECT key_id, group_id FROM key_groups WHERE key_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY group_id",
                chunk,
            )
            for key_id, group_id in rows:
                out.setdefault(key_id, []).append(group_id)
        return {k: tuple(v) for k, v in out.items()}

    def _keys(self, where: str, params: Sequence[Any]) -> list[KeyRecord]:
        rows = self._conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys {where}", params).fetchall()
        groups = self._key_groups(r[0] for r in rows)
        return [key_from_row(r, groups.get(r[0], ())) for r in rows]

    def get_key(self, key_id: str) -> KeyRecord | None:
        found = self._keys("WHERE id = ?", (key_id,))
        return found[0] if found else None

    def list_keys(
        self,
        owner_id: str | None = None,
        limit: int = -1,
        offset: int = 0,
        ids: Sequence[str] | None = None,
        status: tuple[str, float, float] | None = None,
    ) -> list[KeyRecord]:
        """`status`: (active | revoked | expired | expiring, now, expiring's horizon in seconds), as
        `KeyRecord.status` decides; expiring means active and expiring within the horizon."""
        clauses: list[str] = []
        params: list[Any] = []
        if owner_id is not None:
            clauses.append("owner_id = ?")
            params.append(owner_id)
        if status is not None:
            state, now, horizon = status
            clauses.append(_KEY_STATUS[state])
            params.extend({"active": [now], "revoked": [], "expired": [now], "expiring": [now, now + horizon]}[state])
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "1 = 0")
            params.extend(ids)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        return self._keys(f"{where}ORDER BY created_at, id LIMIT ? OFFSET ?", [*params, limit, offset])

    def keys_of_owner(self, owner_id: str, active_only: bool = True) -> list[KeyRecord]:
        keys = self._keys("WHERE owner_id = ? ORDER BY created_at", (owner_id,))
        return [k for k in keys if k.active] if active_only else keys

    def update_key(self, key_id: str, **fields: Any) -> None:
        if "labels" in fields:
            fields["labels"] = _json_encode(fields["labels"]).decode()
        assigns = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction():
            self._conn.execute(f"UPDATE api_keys SET {assigns} WHERE id = ?", [*fields.values(), key_id])

    def set_key_groups(self, key_id: str, group_ids: Sequence[str]) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM key_groups WHERE key_id = ?", (key_id,))
            self._conn.executemany("INSERT INTO key_groups VALUES (?, ?)", [(key_id, g) for g in group_ids])

    def delete_key(self, key_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM key_groups WHERE key_id = ?", (key_id,))
            self._conn.execute("DELETE FROM guardrail_settings WHERE scope = ?", (f"key:{key_id}",))
            self._conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,))

    def claim_expiry_event(self, key_id: str, now: float) -> bool:
        """True exactly once per key, across every process: the caller then writes `key.expired`."""
        cur = self._conn.execute(
            "UPDATE api_keys SET expired_logged_at = ? WHERE id = ? AND expired_logged_at IS NULL "
            "AND expires_at IS NOT NULL AND expires_at <= ?",
            (now, key_id, now),
        )
        return cur.rowcount == 1

    def expired_unlogged_keys(self, now: float) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM api_keys WHERE expires_at <= ? AND expired_logged_at IS NULL AND revoked_at IS NULL",
            (now,),
        )
        return [r[0] for r in rows]

    # -- users and service accounts -----------------------------------------------------------------

    def insert_user(self, user: UserRecord) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", msgspec.structs.astuple(user)
            )

    def get_user(self, user_id: str) -> UserRecord | None:
        row = self._conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return UserRecord(*row) if row else None

    def find_user(self, id_or_email: str) -> UserRecord | None:
        row = self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = ? OR email = ?", (id_or_email, id_or_email.lower())
        ).fetchone()
        return UserRecord(*row) if row else None

    def list_users(self, limit: int = -1, offset: int = 0) -> list[UserRecord]:
        rows = self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT ? OFFSET ?", (limit, offset)
        )
        return [UserRecord(*r) for r in rows]

    def update_user(self, user_id: str, **fields: Any) -> None:
        assigns = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction():
            self._conn.execute(f"UPDATE users SET {assigns} WHERE id = ?", [*fields.values(), user_id])

    def delete_user(self, user_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM group_members WHERE user_id = ?", (user_id,))
            self._conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

    def insert_service_account(self, account: ServiceAccountRecord) -> None:
        with self.transaction():
            self._conn.execute("INSERT INTO service_accounts VALUES (?, ?, ?, ?)", msgspec.structs.astuple(account))

    def get_service_account(self, account_id: str) -> ServiceAccountRecord | None:
        row = self._conn.execute(
            "SELECT id, name, description, created_at FROM service_accounts WHERE id = ? OR name = ?",
            (account_id, account_id),
        ).fetchone()
        return ServiceAccountRecord(*row) if row else None

    def list_service_accounts(self, limit: int = -1, offset: int = 0) -> list[ServiceAccountRecord]:
        rows = self._conn.execute(
            "SELECT id, name, description, created_at FROM service_accounts ORDER BY created_at, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [ServiceAccountRecord(*r) for r in rows]

    def delete_service_account(self, account_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM service_accounts WHERE id = ?", (account_id,))

    # -- access lists -------------------------------------------------------------------------------

    def insert_access_list(self, record: AccessListRecord) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO access_lists ({_LIST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.name,
                    record.description,
                    _json_encode(record.rules).decode(),
                    record.created_at,
                    record.updated_at,
                ),
            )

    def _access_lists(self, where: str, params: Sequence[Any]) -> list[AccessListRecord]:
        rows = self._conn.execute(f"SELECT {_LIST_COLUMNS} FROM access_lists {where}", params)
        return [AccessListRecord(r[0], r[1], r[2], _decode_rules(r[3]), r[4], r[5]) for r in rows]

    def get_access_list(self, id_or_name: str) -> AccessListRecord | None:
        found = self._access_lists("WHERE id = ? OR name = ?", (id_or_name, id_or_name))
        return found[0] if found else None

    def list_access_lists(
        self, limit: int = -1, offset: int = 0, ids: Sequence[str] | None = None
    ) -> list[AccessListRecord]:
        where, params = "", []
        if ids is not None:
            where = f"WHERE id IN ({','.join('?' * len(ids))}) " if ids else "WHERE 1 = 0 "
            params = list(ids)
        return self._access_lists(f"{where}ORDER BY created_at, id LIMIT ? OFFSET ?", [*params, limit, offset])

    def update_access_list(self, list_id: str, name: str, description: str | None, rules: Rules, now: float) -> None:
        with self.transaction():
            self._conn.execute(
                "UPDATE access_lists SET name = ?, description = ?, rules = ?, updated_at = ? WHERE id = ?",
                (name, description, _json_encode(rules).decode(), now, list_id),
            )

    def access_list_users(self, list_id: str) -> tuple[list[str], list[str]]:
        """(group ids, key ids) the list is attached to."""
        groups = [r[0] for r in self._conn.execute("SELECT id FROM groups WHERE access_list_id = ?", (list_id,))]
        keys = [r[0] for r in self._conn.execute("SELECT id FROM api_keys WHERE access_list_id = ?", (list_id,))]
        return groups, keys

    def delete_access_list(self, list_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM access_lists WHERE id = ?", (list_id,))

    # -- groups -------------------------------------------------------------------------------------

    def insert_group(self, group: GroupRecord) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO groups ({_GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                msgspec.structs.astuple(group)[:6],
            )

    def _members(self, group_id: str) -> tuple[GroupMember, ...]:
        rows = self._conn.execute(
            "SELECT user_id, role, added_at FROM group_members WHERE group_id = ? ORDER BY added_at, user_id",
            (group_id,),
        )
        return tuple(GroupMember(*r) for r in rows)

    def get_group(self, id_or_name: str) -> GroupRecord | None:
        row = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = ? OR name = ?", (id_or_name, id_or_name)
        ).fetchone()
        return GroupRecord(*row, members=self._members(row[0])) if row else None

    def list_groups(self, limit: int = -1, offset: int = 0, ids: Sequence[str] | None = None) -> list[GroupRecord]:
        where, params = "", []
        if ids is not None:
            where = f"WHERE id IN ({','.join('?' * len(ids))}) " if ids else "WHERE 1 = 0 "
            params = list(ids)
        rows = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups {where}ORDER BY created_at, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [GroupRecord(*r, members=self._members(r[0])) for r in rows]

    def update_group(self, group_id: str, **fields: Any) -> None:
        assigns = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction():
            self._conn.execute(f"UPDATE groups SET {assigns} WHERE id = ?", [*fields.values(), group_id])

    def delete_group(self, group_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM group_members WHERE group_id = ?", (group_id,))
            self._conn.execute("DELETE FROM key_groups WHERE group_id = ?", (group_id,))
            self._conn.execute("DELETE FROM guardrail_settings WHERE scope = ?", (f"group:{group_id}",))
            self._conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))

    def upsert_member(self, group_id: str, user_id: str, role: str, now: float) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO group_members VALUES (?, ?, ?, ?) ON CONFLICT (group_id, user_id) DO UPDATE SET role = ?",
                (group_id, user_id, role, now, role),
            )

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id))

    def keys_of_group(self, group_id: str) -> list[str]:
        """Keys in the group directly or through their owner's membership."""
        rows = self._conn.execute(
            "SELECT key_id FROM key_groups WHERE group_id = ? UNION "
            "SELECT k.id FROM api_keys k JOIN group_members m ON m.user_id = k.owner_id WHERE m.group_id = ?",
            (group_id, group_id),
        )
        return [r[0] for r in rows]

    def memberships(self, user_id: str) -> dict[str, str]:
        """group id → the user's role in it."""
        rows = self._conn.execute("SELECT group_id, role FROM group_members WHERE user_id = ?", (user_id,))
        return dict(rows.fetchall())

    # -- approved models ----------------------------------------------------------------------------

    def approval(self) -> tuple[bool, frozenset[str]]:
        """(whether approval is configured, the approved model ids)."""
        configured = bool(self._conn.execute("SELECT approval FROM org WHERE id = 1").fetchone()[0])
        ids = frozenset(r[0] for r in self._conn.execute("SELECT model_id FROM approved_models"))
        return configured, ids

    def require_approval(self) -> None:
        """Switch approval on without approving anything (idempotent; a no-op once it is on)."""
        if not self.approval()[0]:
            with self.transaction():
                self._conn.execute("UPDATE org SET approval = 1 WHERE id = 1")

    def disable_approval(self) -> None:
        """Switch approval off: every key is back to the whole catalog (through its access lists), and the
        approved list is emptied, so switching approval on again starts from nothing approved."""
        with self.transaction():
            self._conn.execute("UPDATE org SET approval = 0 WHERE id = 1")
            self._conn.execute("DELETE FROM approved_models")

    def approve_models(self, model_ids: Iterable[str], now: float) -> None:
        with self.transaction():
            self._conn.execute("UPDATE org SET approval = 1 WHERE id = 1")
            self._conn.executemany(
                "INSERT INTO approved_models VALUES (?, ?) ON CONFLICT (model_id) DO NOTHING",
                [(m, now) for m in model_ids],
            )

    def remove_approved(self, model_ids: Iterable[str]) -> None:
        with self.transaction():
            self._conn.execute("UPDATE org SET approval = 1 WHERE id = 1")
            self._conn.executemany("DELETE FROM approved_models WHERE model_id = ?", [(m,) for m in model_ids])

    def org_limit(self) -> float | None:
        return self._conn.execute("SELECT monthly_limit FROM org WHERE id = 1").fetchone()[0]

    def org_auto_cache(self) -> bool | None:
        value = self._conn.execute("SELECT auto_cache FROM org WHERE id = 1").fetchone()[0]
        return None if value is None else bool(value)

    def set_org_auto_cache(self, value: bool | None) -> None:
        with self.transaction():
            self._conn.execute("UPDATE org SET auto_cache = ? WHERE id = 1", (value,))

    def set_org_limit(self, usd: float | None) -> None:
        with self.transaction():
            self._conn.execute("UPDATE org SET monthly_limit = ? WHERE id = 1", (usd,))

    def spend_of(self, budget: str, period: int) -> int:
        """Committed micro-dollars recorded for a budget and period."""
        row = self._conn.execute(
            "SELECT amount FROM spend WHERE budget = ? AND period = ?", (budget, period)
        ).fetchone()
        return row[0] if row else 0

    def spend_for_period(self, period: int) -> list[tuple[str, int, int]]:
        return self._conn.execute("SELECT budget, period, amount FROM spend WHERE period = ?", (period,)).fetchall()

    def org_name(self) -> str:
        return self._conn.execute("SELECT name FROM org WHERE id = 1").fetchone()[0]

    def org_counts(self) -> dict[str, int]:
        tables = ("users", "groups", "service_accounts", "access_lists", "approved_models")
        counts = {t: self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        counts["api_keys"] = self._conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]
        return counts

    # -- audit log ----------------------------------------------------------------------------------

    def append_audit(self, events: Sequence[AuditEvent]) -> None:
        rows = [
            (
                e.ts,
                e.actor,
                e.action,
                e.target_type,
                e.target_id,
                _opt_json(e.before),
                _opt_json(e.after),
                _opt_json(e.detail),
            )
            for e in events
        ]
        _INSERT_AUDIT(self._conn, rows)

    def query_audit(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Events in time order: the rows of `audit_log`, and the guardrail triggers written with usage rows."""
        where, params = _given({"ts >= ?": start, "ts < ?": end, "actor = ?": actor, "target_id = ?": target})
        # `key.*` selects a family of actions; the triggers' action is a constant, filtered by the same test.
        test: tuple[str, str] | None = None
        if action is not None:
            family = action.endswith(".*")
            test = ("LIKE ?" if family else "= ?", action[:-1] + "%" if family else action)
            where.append(f"action {test[0]}")
            params.append(test[1])
        sql = f"SELECT {_AUDIT_COLUMNS}, seq FROM audit_log" + (f" WHERE {' AND '.join(where)}" if where else "")
        # Triggers are reported by keys: an actor filter of any other kind excludes them.
        if actor is None or actor.startswith("key:"):
            key_id = actor.removeprefix("key:") if actor is not None else None
            found, found_params = _given(
                {"u.ts >= ?": start, "u.ts < ?": end, "u.key_id = ?": key_id, "u.request_id = ?": target}
            )
            if test is not None:
                found.append(f"'{TRIGGERED}' {test[0]}")
                found_params.append(test[1])
            sql += f" UNION ALL {self._trigger_events}" + "".join(f" AND {clause}" for clause in found)
            params += found_params
        rows = self._conn.execute(f"{sql} ORDER BY ts, seq LIMIT ? OFFSET ?", [*params, limit, offset])
        return [
            AuditEvent(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                _decode_dict(r[5] or "null"),
                _decode_dict(r[6] or "null"),
                _decode_dict(r[7] or "null"),
                r[8],
            )
            for r in rows
        ]

    # -- usage per key ------------------------------------------------------------------------------

    def key_usage(
        self, key_id: str, start: float, end: float
    ) -> list[tuple[str, str | None, int, int, int, int, float]]:
        """(UTC day, model, requests, prompt tokens, completion tokens, errors, cost) for one key and range."""
        rows = self._conn.execute(
            "SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS day, model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(completion_tokens), 0), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
            "COALESCE(SUM(cost), 0) "
            "FROM usage_log WHERE key_id = ? AND ts >= ? AND ts < ? GROUP BY day, model ORDER BY day, model",
            (key_id, start, end),
        )
        return rows.fetchall()

"""Dashboard sessions (`/ui`): a random token exchanged for a gateway API key at login.

Stored in the database, not in a worker's memory, so every worker and process behind the same database accepts
the cookie. Only digests are stored: the token's (a leaked database grants no session) and the API key's (the
same SHA-256 the `api_keys` table holds; each request re-authenticates it, so revoking the key ends the session).
Plain autocommit statements: a login must not move the change epoch that invalidates every worker's key cache.
"""

from __future__ import annotations

import sqlite3

import msgspec


class UiSession(msgspec.Struct, frozen=True):
    token_hash: bytes
    key_hash: bytes
    csrf_token: str  # session-bound: sent back in the x-csrf-token header on every state-changing call
    created_at: float
    last_seen_at: float
    expires_at: float  # the absolute timeout; the idle timeout is counted from last_seen_at
    client: str | None = None


_COLUMNS = "token_hash, key_hash, csrf_token, created_at, last_seen_at, expires_at, client"


class UiSessionTables:
    _conn: sqlite3.Connection

    def create_ui_session(self, session: UiSession) -> None:
        self._conn.execute(
            f"INSERT INTO ui_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", msgspec.structs.astuple(session)
        )

    def get_ui_session(self, token_hash: bytes) -> UiSession | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM ui_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        return None if row is None else UiSession(bytes(row[0]), bytes(row[1]), *row[2:])

    def touch_ui_session(self, token_hash: bytes, now: float) -> None:
        self._conn.execute("UPDATE ui_sessions SET last_seen_at = ? WHERE token_hash = ?", (now, token_hash))

    def delete_ui_session(self, token_hash: bytes) -> None:
        self._conn.execute("DELETE FROM ui_sessions WHERE token_hash = ?", (token_hash,))

    def prune_ui_sessions(self, now: float, idle_seconds: float) -> int:
        """Drop sessions past either timeout; returns how many."""
        cursor = self._conn.execute(
            "DELETE FROM ui_sessions WHERE expires_at <= ? OR last_seen_at <= ?", (now, now - idle_seconds)
        )
        return cursor.rowcount

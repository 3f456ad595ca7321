"""The MCP gateway's tables: registered servers, the tools each exploration found and the admin approved,
users' own sealed credentials, client sessions, and one usage row per MCP call.

A mixin over the SQLite connection like `guardrail_tables.py`. Configuration writes go through
`transaction()`, which bumps the change epoch so every worker re-reads servers and approvals before its next
request. Sessions and usage rows are not configuration: they are written without bumping the epoch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import msgspec

MCP_MIGRATION = [
    # headers_sealed: the organisation-wide headers as one JSON object, sealed with AES-GCM under the BYOK
    # master key (`master` names the key); header_fingerprints: {name: fingerprint}, all the API ever shows.
    """CREATE TABLE mcp_servers (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        transport TEXT NOT NULL,
        description TEXT,
        enabled INTEGER NOT NULL,
        timeout DOUBLE PRECISION NOT NULL,
        user_keys TEXT NOT NULL,
        user_headers TEXT NOT NULL,
        headers_sealed BLOB,
        master TEXT,
        header_fingerprints TEXT NOT NULL,
        template TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        created_by TEXT,
        explored_at DOUBLE PRECISION,
        last_diff TEXT,
        guardrails INTEGER NOT NULL DEFAULT 0
    )""",
    # One row per tool an exploration found. `schema_hash` covers description + input schema as last seen;
    # `approved_hash` is the hash the admin whitelisted: the tool is offered only while the two are equal.
    """CREATE TABLE mcp_tools (
        server TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        input_schema TEXT NOT NULL,
        schema_hash TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        removed_at DOUBLE PRECISION,
        approved_hash TEXT,
        approved_at DOUBLE PRECISION,
        approved_by TEXT,
        approved_schema TEXT,
        approved_description TEXT,
        PRIMARY KEY (server, name)
    )""",
    """CREATE TABLE mcp_user_credentials (
        server TEXT NOT NULL,
        user_id TEXT NOT NULL,
        sealed BLOB NOT NULL,
        master TEXT NOT NULL,
        header_fingerprints TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (server, user_id)
    )""",
    # Only the SHA-256 of a session id is stored: the database never holds a usable session.
    """CREATE TABLE mcp_sessions (
        id_hash BLOB PRIMARY KEY,
        key_id TEXT NOT NULL,
        protocol_version TEXT NOT NULL,
        client TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        last_seen_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION
    )""",
    """CREATE TABLE mcp_usage (
        ts DOUBLE PRECISION NOT NULL,
        request_id TEXT NOT NULL,
        key_id TEXT,
        user_id TEXT,
        server TEXT,
        tool TEXT,
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        error_type TEXT,
        latency_ms DOUBLE PRECISION NOT NULL,
        gateway_ms DOUBLE PRECISION NOT NULL,
        server_ms DOUBLE PRECISION NOT NULL,
        request_bytes INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL
    )""",
    "CREATE INDEX mcp_usage_ts ON mcp_usage (ts)",
    "CREATE INDEX mcp_usage_server_ts ON mcp_usage (server, ts)",
    # Replies of the legacy HTTP+SSE transport whose event stream is held by another worker; also the replay
    # buffers of resumable Streamable HTTP event streams (keyed by a digest of session and stream).
    """CREATE TABLE mcp_outbox (
        seq INTEGER PRIMARY KEY,
        id_hash BLOB NOT NULL,
        payload BLOB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX mcp_outbox_session ON mcp_outbox (id_hash, seq)",
    """CREATE TABLE mcp_health (
        server TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        checked_at DOUBLE PRECISION NOT NULL,
        latency_ms DOUBLE PRECISION,
        error TEXT,
        tools INTEGER
    )""",
]

_SERVER_COLUMNS = (
    "name, url, transport, description, enabled, timeout, user_keys, user_headers, headers_sealed, master, "
    "header_fingerprints, template, created_at, updated_at, created_by, explored_at, last_diff, guardrails"
)
_TOOL_COLUMNS = (
    "server, name, description, input_schema, schema_hash, seen_at, removed_at, approved_hash, approved_at, "
    "approved_by, approved_schema, approved_description"
)
_CRED_COLUMNS = "server, user_id, sealed, master, header_fingerprints, status, updated_at"
USAGE_COLUMNS = (
    "ts, request_id, key_id, user_id, server, tool, method, status, error_type, latency_ms, gateway_ms, server_ms, "
    "request_bytes, response_bytes"
)


class McpServerRecord(msgspec.Struct, frozen=True):
    name: str
    url: str
    transport: str
    description: str | None
    enabled: bool
    timeout: float
    user_keys: str  # required | optional | off
    user_headers: list[str]
    headers_sealed: bytes | None
    master: str | None
    header_fingerprints: dict[str, str]
    template: str | None
    created_at: float
    updated_at: float
    created_by: str | None
    explored_at: float | None = None
    last_diff: dict | None = None
    # The organisation's guardrails (mask or block) on this server's tool arguments and results.
    guardrails: bool = False


class McpToolRecord(msgspec.Struct, frozen=True):
    server: str
    name: str
    description: str | None
    input_schema: str  # JSON
    schema_hash: str
    seen_at: float
    removed_at: float | None
    approved_hash: str | None
    approved_at: float | None
    approved_by: str | None
    # What the admin approved: the gateway serves this, never a newer upstream version.
    approved_schema: str | None
    approved_description: str | None

    @property
    def state(self) -> str:
        if self.approved_hash is None:
            return "not_whitelisted"
        if self.removed_at is not None:
            return "removed"
        if self.approved_hash != self.schema_hash:
            return "held"
        return "enabled"


class McpCredentialRecord(msgspec.Struct, frozen=True):
    server: str
    user_id: str
    sealed: bytes
    master: str
    header_fingerprints: dict[str, str]
    status: str  # configured | invalid
    updated_at: float


class McpSession(msgspec.Struct, frozen=True):
    id_hash: bytes
    key_id: str
    protocol_version: str
    client: str | None
    created_at: float
    last_seen_at: float
    ended_at: float | None


class McpUsageRow(msgspec.Struct, array_like=True):
    """One MCP call; field order is the mcp_usage column order."""

    ts: float
    request_id: str
    key_id: str | None
    user_id: str | None
    server: str | None
    tool: str | None
    method: str
    status: str  # ok | error
    error_type: str | None
    latency_ms: float
    gateway_ms: float
    server_ms: float
    request_bytes: int
    response_bytes: int


class McpHealthRecord(msgspec.Struct, frozen=True):
    server: str
    status: str
    checked_at: float
    latency_ms: float | None
    error: str | None
    tools: int | None


def _server(row: Sequence[object]) -> McpServerRecord:
    v = list(row)
    v[4] = bool(v[4])
    v[7] = msgspec.json.decode(str(v[7]))
    v[10] = msgspec.json.decode(str(v[10]))
    v[16] = None if v[16] is None else msgspec.json.decode(str(v[16]))
    v[17] = bool(v[17])
    return McpServerRecord(*v)  # type: ignore[arg-type]


def _cred(row: Sequence[object]) -> McpCredentialRecord:
    v = list(row)
    v[4] = msgspec.json.decode(str(v[4]))
    return McpCredentialRecord(*v)  # type: ignore[arg-type]


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


class McpTables:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by GovernanceTables

        def transaction(self) -> AbstractContextManager[None]: ...

        def _insert_id(self, sql: str, params: tuple[object, ...], column: str) -> int: ...  # StoreBase

    # -- servers ------------------------------------------------------------------------------------

    def mcp_servers(self) -> list[McpServerRecord]:
        return [_server(r) for r in self._conn.execute(f"SELECT {_SERVER_COLUMNS} FROM mcp_servers ORDER BY name")]

    def mcp_server(self, name: str) -> McpServerRecord | None:
        row = self._conn.execute(f"SELECT {_SERVER_COLUMNS} FROM mcp_servers WHERE name = ?", (name,)).fetchone()
        return None if row is None else _server(row)

    def put_mcp_server(self, r: McpServerRecord) -> None:
        values = (
            r.name, r.url, r.transport, r.description, int(r.enabled), r.timeout, r.user_keys, _json(r.user_headers),
            r.headers_sealed, r.master, _json(r.header_fingerprints), r.template, r.created_at, r.updated_at,
            r.created_by, r.explored_at, None if r.last_diff is None else _json(r.last_diff), int(r.guardrails),
        )  # fmt: skip
        with self.transaction():
            self._conn.execute(
                f"INSERT OR REPLACE INTO mcp_servers ({_SERVER_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                values,
            )

    def delete_mcp_server(self, name: str) -> None:
        with self.transaction():
            for table in ("mcp_servers", "mcp_health"):
                self._conn.execute(
                    f"DELETE FROM {table} WHERE {'name' if table == 'mcp_servers' else 'server'} = ?", (name,)
                )
            for table in ("mcp_tools", "mcp_user_credentials"):
                self._conn.execute(f"DELETE FROM {table} WHERE server = ?", (name,))

    # -- tools --------------------------------------------------------------------------------------

    def mcp_tools(self, server: str | None = None) -> list[McpToolRecord]:
        if server is None:
            rows = self._conn.execute(f"SELECT {_TOOL_COLUMNS} FROM mcp_tools ORDER BY server, name")
        else:
            rows = self._conn.execute(
                f"SELECT {_TOOL_COLUMNS} FROM mcp_tools WHERE server = ? ORDER BY name", (server,)
            )
        return [McpToolRecord(*r) for r in rows]

    def put_mcp_tools(self, tools: Sequence[McpToolRecord]) -> None:
        with self.transaction():
            self._conn.executemany(
                f"INSERT OR REPLACE INTO mcp_tools ({_TOOL_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                [msgspec.structs.astuple(t) for t in tools],
            )

    # -- users' credentials -------------------------------------------------------------------------

    def mcp_credential(self, server: str, user_id: str) -> McpCredentialRecord | None:
        row = self._conn.execute(
            f"SELECT {_CRED_COLUMNS} FROM mcp_user_credentials WHERE server = ? AND user_id = ?", (server, user_id)
        ).fetchone()
        return None if row is None else _cred(row)

    def mcp_credentials(self, server: str | None = None, user_id: str | None = None) -> list[McpCredentialRecord]:
        sql = f"SELECT {_CRED_COLUMNS} FROM mcp_user_credentials WHERE 1 = 1"
        args: list[str] = []
        if server is not None:
            sql += " AND server = ?"
            args.append(server)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        return [_cred(r) for r in self._conn.execute(sql + " ORDER BY server, user_id", args)]

    def put_mcp_credential(self, c: McpCredentialRecord) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT OR REPLACE INTO mcp_user_credentials ({_CRED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.server, c.user_id, c.sealed, c.master, _json(c.header_fingerprints), c.status, c.updated_at),
            )

    def delete_mcp_credential(self, server: str, user_id: str) -> bool:
        with self.transaction():
            cur = self._conn.execute(
                "DELETE FROM mcp_user_credentials WHERE server = ? AND user_id = ?", (server, user_id)
            )
        return cur.rowcount > 0

    def mark_mcp_credential(self, server: str, user_id: str, status: str) -> None:
        """Status only (a failed call marks it invalid): not configuration, so no epoch bump."""
        self._conn.execute(
            "UPDATE mcp_user_credentials SET status = ? WHERE server = ? AND user_id = ?", (status, server, user_id)
        )

    # -- sessions -----------------------------------------------------------------------------------

    def insert_mcp_session(self, s: McpSession) -> None:
        self._conn.execute(
            "INSERT INTO mcp_sessions (id_hash, key_id, protocol_version, client, created_at, last_seen_at, ended_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            msgspec.structs.astuple(s),
        )

    def mcp_session(self, id_hash: bytes) -> McpSession | None:
        row = self._conn.execute(
            "SELECT id_hash, key_id, protocol_version, client, created_at, last_seen_at, ended_at FROM mcp_sessions "
            "WHERE id_hash = ?",
            (id_hash,),
        ).fetchone()
        return None if row is None else McpSession(*row)

    def touch_mcp_session(self, id_hash: bytes, now: float) -> None:
        self._conn.execute("UPDATE mcp_sessions SET last_seen_at = ? WHERE id_hash = ?", (now, id_hash))

    def end_mcp_session(self, id_hash: bytes, now: float) -> None:
        self._conn.execute(
            "UPDATE mcp_sessions SET ended_at = ? WHERE id_hash = ? AND ended_at IS NULL", (now, id_hash)
        )

    def prune_mcp_state(self, before: float) -> int:
        """Drop sessions last used before `before`, and legacy-transport replies nobody collected."""
        self._conn.execute("DELETE FROM mcp_outbox WHERE created_at < ?", (before,))
        return self._conn.execute("DELETE FROM mcp_sessions WHERE last_seen_at < ?", (before,)).rowcount

    def push_mcp_outbox(self, id_hash: bytes, payload: bytes, now: float) -> None:
        self._conn.execute(
            "INSERT INTO mcp_outbox (id_hash, payload, created_at) VALUES (?, ?, ?)", (id_hash, payload, now)
        )

    def pop_mcp_outbox(self, id_hash: bytes) -> list[bytes]:
        rows = self._conn.execute(
            "SELECT seq, payload FROM mcp_outbox WHERE id_hash = ? ORDER BY seq LIMIT 256", (id_hash,)
        ).fetchall()
        if rows:
            self._conn.execute("DELETE FROM mcp_outbox WHERE id_hash = ? AND seq <= ?", (id_hash, rows[-1][0]))
        return [r[1] for r in rows]

    def drop_mcp_outbox(self, id_hash: bytes) -> None:
        self._conn.execute("DELETE FROM mcp_outbox WHERE id_hash = ?", (id_hash,))

    # -- resumable event streams (Streamable HTTP, Last-Event-ID) -------------------------------------

    def push_mcp_event(self, stream: bytes, payload: bytes, now: float) -> int:
        """Append one event to a stream's replay buffer; its sequence number (unique across all streams)."""
        return self._insert_id(
            "INSERT INTO mcp_outbox (id_hash, payload, created_at) VALUES (?, ?, ?)", (stream, payload, now), "seq"
        )

    def mcp_events_after(self, stream: bytes, after: int, limit: int = 256) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT seq, payload FROM mcp_outbox WHERE id_hash = ? AND seq > ? ORDER BY seq LIMIT ?",
            (stream, after, limit),
        ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def mcp_stream_known(self, stream: bytes) -> bool:
        row = self._conn.execute("SELECT 1 FROM mcp_outbox WHERE id_hash = ? LIMIT 1", (stream,)).fetchone()
        return row is not None

    def trim_mcp_events(self, stream: bytes, keep: int) -> None:
        """Keep a stream's newest `keep` events."""
        self._conn.execute(
            "DELETE FROM mcp_outbox WHERE id_hash = ? AND seq < (SELECT seq FROM mcp_outbox WHERE id_hash = ? "
            "ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (stream, stream, keep - 1),
        )

    def expire_mcp_events(self, stream: bytes, before: float) -> None:
        self._conn.execute("DELETE FROM mcp_outbox WHERE id_hash = ? AND created_at < ?", (stream, before))

    # -- usage and health ---------------------------------------------------------------------------

    def write_mcp_usage(self, rows: Sequence[McpUsageRow]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO mcp_usage ({USAGE_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                [msgspec.structs.astuple(r) for r in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def mcp_usage_rows(
        self,
        start: float,
        end: float,
        server: str | None = None,
        limit: int = 200_000,
        *,
        keys: Sequence[str] | None = None,
        user: str | None = None,
    ) -> list[McpUsageRow]:
        """Usage rows in [start, end), newest first; `keys` limits them to calls made with those keys."""
        sql = f"SELECT {USAGE_COLUMNS} FROM mcp_usage WHERE ts >= ? AND ts < ?"
        args: list[object] = [start, end]
        if server is not None:
            sql += " AND server = ?"
            args.append(server)
        if user is not None:
            sql += " AND user_id = ?"
            args.append(user)
        if keys is not None:
            if not keys:
                return []
            sql += f" AND key_id IN ({', '.join('?' * len(keys))})"
            args.extend(keys)
        args.append(limit)
        return [McpUsageRow(*r) for r in self._conn.execute(sql + " ORDER BY ts DESC LIMIT ?", args)]

    def put_mcp_health(self, h: McpHealthRecord) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO mcp_health (server, status, checked_at, latency_ms, error, tools) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            msgspec.structs.astuple(h),
        )

    def mcp_health(self) -> dict[str, McpHealthRecord]:
        rows = self._conn.execute("SELECT server, status, checked_at, latency_ms, error, tools FROM mcp_health")
        return {r[0]: McpHealthRecord(*r) for r in rows}

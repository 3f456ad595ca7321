"""Schema migrations, in order. A backend applies each version it has not recorded yet.

The SQL is kept to the subset PostgreSQL shares with SQLite (TEXT, INTEGER, DOUBLE PRECISION, BLOB↔BYTEA
is the one rename), so the PostgreSQL backend can mirror these versions one for one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "api keys, usage log, change epochs",
        [
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                prefix TEXT NOT NULL,
                key_hash BLOB NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION,
                last_used_at DOUBLE PRECISION
            )""",
            """CREATE TABLE usage_log (
                request_id TEXT PRIMARY KEY,
                ts DOUBLE PRECISION NOT NULL,
                key_id TEXT,
                endpoint TEXT NOT NULL,
                model TEXT,
                provider TEXT,
                status INTEGER NOT NULL,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                cached_tokens INTEGER,
                latency_ms DOUBLE PRECISION NOT NULL,
                ttft_ms DOUBLE PRECISION,
                stream INTEGER NOT NULL,
                error_type TEXT
            )""",
            "CREATE INDEX usage_log_ts ON usage_log (ts)",
            "CREATE INDEX usage_log_key_ts ON usage_log (key_id, ts)",
            # Bumped on every change a worker must see at once (revocation); workers compare it, not a TTL.
            "CREATE TABLE epochs (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO epochs (name, value) VALUES ('keys', 0)",
        ],
    ),
    (
        2,
        "usage log: one row per upstream attempt (policies retry and fall back), keyed by request id and attempt",
        [
            # A primary key cannot be altered in SQLite: rebuild the table (the same statements work in PostgreSQL).
            "ALTER TABLE usage_log RENAME TO usage_log_v1",
            """CREATE TABLE usage_log (
                request_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                key_id TEXT,
                endpoint TEXT NOT NULL,
                model TEXT,
                provider TEXT,
                status INTEGER NOT NULL,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                cached_tokens INTEGER,
                latency_ms DOUBLE PRECISION NOT NULL,
                ttft_ms DOUBLE PRECISION,
                stream INTEGER NOT NULL,
                error_type TEXT,
                attempt INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (request_id, attempt)
            )""",
            "INSERT INTO usage_log SELECT *, 1 FROM usage_log_v1",
            "DROP TABLE usage_log_v1",
            "CREATE INDEX usage_log_ts ON usage_log (ts)",
            "CREATE INDEX usage_log_key_ts ON usage_log (key_id, ts)",
        ],
    ),
]

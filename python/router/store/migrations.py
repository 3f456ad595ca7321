"""Schema migrations, in order. A backend applies each version it has not recorded yet.

The SQL is kept to the subset PostgreSQL shares with SQLite (TEXT, INTEGER, DOUBLE PRECISION, BLOB↔BYTEA
is the one rename), so the PostgreSQL backend can mirror these versions one for one.
"""

from __future__ import annotations

from .mcp_tables import MCP_MIGRATION
from .rollup import DAILY, HOURLY

# The usage log's columns after migration 3, copied across when migration 4 rebuilds the table.
_V3_COLUMNS = (
    "request_id, ts, key_id, endpoint, model, provider, status, prompt_tokens, completion_tokens, cached_tokens, "
    "latency_ms, ttft_ms, stream, error_type, cost, cost_estimated, cache_savings, period, budgets, user_id, "
    "end_user, trace_id, tags, extra"
)

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
        "governance: users, service accounts, groups, access lists, approved models, key fields, audit log",
        [
            """CREATE TABLE users (
                id TEXT PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                monthly_limit DOUBLE PRECISION,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE service_accounts (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE access_lists (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT,
                rules TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE groups (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT,
                access_list_id TEXT REFERENCES access_lists (id),
                monthly_budget DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE group_members (
                group_id TEXT NOT NULL REFERENCES groups (id),
                user_id TEXT NOT NULL REFERENCES users (id),
                role TEXT NOT NULL,
                added_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (group_id, user_id)
            )""",
            "CREATE INDEX group_members_user ON group_members (user_id)",
            """CREATE TABLE key_groups (
                key_id TEXT NOT NULL REFERENCES api_keys (id),
                group_id TEXT NOT NULL REFERENCES groups (id),
                PRIMARY KEY (key_id, group_id)
            )""",
            "CREATE INDEX key_groups_group ON key_groups (group_id)",
            "CREATE TABLE approved_models (model_id TEXT PRIMARY KEY, approved_at DOUBLE PRECISION NOT NULL)",
            # One row of organisation settings; `approval` flips to 1 the first time an admin approves anything.
            """CREATE TABLE org (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                approval INTEGER NOT NULL
            )""",
            "INSERT INTO org (id, name, approval) VALUES (1, 'default', 0)",
            "ALTER TABLE api_keys ADD COLUMN owner_type TEXT",
            "ALTER TABLE api_keys ADD COLUMN owner_id TEXT",
            "ALTER TABLE api_keys ADD COLUMN access_list_id TEXT REFERENCES access_lists (id)",
            "ALTER TABLE api_keys ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE api_keys ADD COLUMN monthly_limit DOUBLE PRECISION",
            "ALTER TABLE api_keys ADD COLUMN expires_at DOUBLE PRECISION",
            "ALTER TABLE api_keys ADD COLUMN expired_logged_at DOUBLE PRECISION",
            "ALTER TABLE api_keys ADD COLUMN created_by TEXT",
            "ALTER TABLE api_keys ADD COLUMN permission TEXT",
            "CREATE INDEX api_keys_owner ON api_keys (owner_id)",
            # Append-only: rows are inserted, never updated or deleted. `seq` orders events written in the same instant
            # (a rowid here; an identity column in PostgreSQL).
            """CREATE TABLE audit_log (
                seq INTEGER PRIMARY KEY,
                ts DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target_type TEXT NOT NULL,
                target_id TEXT,
                before TEXT,
                after TEXT,
                detail TEXT
            )""",
            "CREATE INDEX audit_log_ts ON audit_log (ts)",
            "CREATE INDEX audit_log_target ON audit_log (target_id, ts)",
            "CREATE INDEX audit_log_actor ON audit_log (actor, ts)",
        ],
    ),
    (
        3,
        "spend: cost and request metadata on usage rows, committed spend per budget and period, feedback",
        [
            "ALTER TABLE usage_log ADD COLUMN cost DOUBLE PRECISION",
            "ALTER TABLE usage_log ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE usage_log ADD COLUMN cache_savings DOUBLE PRECISION",
            "ALTER TABLE usage_log ADD COLUMN period INTEGER",
            "ALTER TABLE usage_log ADD COLUMN budgets TEXT",
            "ALTER TABLE usage_log ADD COLUMN user_id TEXT",
            "ALTER TABLE usage_log ADD COLUMN end_user TEXT",
            "ALTER TABLE usage_log ADD COLUMN trace_id TEXT",
            "ALTER TABLE usage_log ADD COLUMN tags TEXT",
            "ALTER TABLE usage_log ADD COLUMN extra TEXT",
            "CREATE INDEX usage_log_trace ON usage_log (trace_id, ts)",
            # Rollups of the usage log, written with it: analytics over months read these, not raw rows.
            DAILY.create_sql(),
            HOURLY.create_sql(),
            "CREATE INDEX usage_hourly_key ON usage_hourly (key_id, slot)",
            "CREATE INDEX usage_hourly_user ON usage_hourly (user_id, slot)",
            # Committed spend per budget (key:<id>, user:<id>, group:<id>, org) and period (YYYYMM), in
            # micro-dollars: the stored side of the in-memory ledger, added to by the usage writer.
            """CREATE TABLE spend (
                budget TEXT NOT NULL,
                period INTEGER NOT NULL,
                amount INTEGER NOT NULL,
                PRIMARY KEY (budget, period)
            )""",
            "ALTER TABLE org ADD COLUMN monthly_limit DOUBLE PRECISION",
            # One row per alert that fired: the primary key makes "once per threshold per period" hold across workers.
            """CREATE TABLE alerts_fired (
                alert TEXT PRIMARY KEY,
                ts DOUBLE PRECISION NOT NULL,
                payload TEXT NOT NULL
            )""",
            """CREATE TABLE alert_deliveries (
                seq INTEGER PRIMARY KEY,
                alert TEXT NOT NULL,
                url TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                status INTEGER,
                error TEXT
            )""",
            """CREATE TABLE feedback (
                request_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                key_id TEXT,
                rating INTEGER,
                data TEXT,
                PRIMARY KEY (request_id, ts)
            )""",
        ],
    ),
    (
        4,
        "usage log: one row per upstream attempt (policies retry and fall back), keyed by request id and attempt",
        [
            # A primary key cannot be altered in SQLite: rebuild the table (the same statements work in PostgreSQL).
            "ALTER TABLE usage_log RENAME TO usage_log_v3",
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
                cost DOUBLE PRECISION,
                cost_estimated INTEGER NOT NULL DEFAULT 0,
                cache_savings DOUBLE PRECISION,
                period INTEGER,
                budgets TEXT,
                user_id TEXT,
                end_user TEXT,
                trace_id TEXT,
                tags TEXT,
                extra TEXT,
                attempt INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (request_id, attempt)
            )""",
            f"INSERT INTO usage_log ({_V3_COLUMNS}, attempt) SELECT {_V3_COLUMNS}, 1 FROM usage_log_v3",
            "DROP TABLE usage_log_v3",
            "CREATE INDEX usage_log_ts ON usage_log (ts)",
            "CREATE INDEX usage_log_key_ts ON usage_log (key_id, ts)",
            "CREATE INDEX usage_log_trace ON usage_log (trace_id, ts)",
        ],
    ),
    (
        5,
        "routing: policies managed by API (org-wide or one key's), BYOK provider keys, which key paid a usage row",
        [
            # key_id '' is an org-wide policy; names are unique across scopes (a policy is addressed by name).
            """CREATE TABLE policies (
                name TEXT PRIMARY KEY,
                key_id TEXT NOT NULL DEFAULT '',
                type TEXT NOT NULL,
                targets TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                created_by TEXT
            )""",
            # Sealed with AES-GCM under ROUTER_MASTER_KEY; `master` is the fingerprint of the master key that
            # sealed the row (so rotation knows which rows are done), `fingerprint` that of the provider key.
            """CREATE TABLE provider_keys (
                org_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                sealed BLOB NOT NULL,
                master TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                created_by TEXT,
                PRIMARY KEY (org_id, provider)
            )""",
            # 1 when the organisation's own provider key paid for the call (cost to the org, not through us).
            "ALTER TABLE usage_log ADD COLUMN byok INTEGER NOT NULL DEFAULT 0",
        ],
    ),
    (
        6,
        "auto-cache defaults on keys and the org; tool calls and tool results on usage rows",
        [
            # NULL: no setting at this level, the next one decides (request > key > org > config).
            "ALTER TABLE api_keys ADD COLUMN auto_cache INTEGER",
            "ALTER TABLE org ADD COLUMN auto_cache INTEGER",
            "ALTER TABLE usage_log ADD COLUMN tool_calls TEXT",
            "ALTER TABLE usage_log ADD COLUMN tool_results TEXT",
        ],
    ),
    (
        7,
        "reasoning tokens on usage rows and rollups; the BYOK part of the cost in rollups",
        [
            "ALTER TABLE usage_log ADD COLUMN reasoning_tokens INTEGER",
            *DAILY.add_columns_sql(),
            *HOURLY.add_columns_sql(),
        ],
    ),
    (
        8,
        "guardrail settings managed by API: the organisation's, and stricter overrides per key and per group",
        [
            # scope: 'org', 'key:<id>' or 'group:<id>'; settings: the JSON the API accepted.
            """CREATE TABLE guardrail_settings (
                scope TEXT PRIMARY KEY,
                settings TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                updated_by TEXT
            )""",
        ],
    ),
    (
        9,
        "guardrail triggers on usage rows, read back as guardrail.triggered audit events",
        [
            "ALTER TABLE usage_log ADD COLUMN guardrails TEXT",
            # Only requests the guardrails acted on have an entry: the audit log's reads of them by time.
            "CREATE INDEX usage_log_guardrails ON usage_log (ts) WHERE guardrails IS NOT NULL",
        ],
    ),
    (
        10,
        "prompt library: system and vibe prompts, immutable versions, attachments to keys and groups",
        [
            """CREATE TABLE prompts (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                description TEXT,
                tags TEXT NOT NULL,
                latest INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                created_by TEXT,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE prompt_versions (
                prompt_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                content TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                created_by TEXT,
                note TEXT,
                PRIMARY KEY (prompt_id, version)
            )""",
            # scope: 'key:<id>' or 'group:<id>'; version NULL follows the latest.
            """CREATE TABLE prompt_attachments (
                scope TEXT NOT NULL,
                kind TEXT NOT NULL,
                prompt_id TEXT NOT NULL,
                version INTEGER,
                mode TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                updated_by TEXT,
                PRIMARY KEY (scope, kind)
            )""",
            # Which prompt versions a request carried ("name@3", space-separated): tokens and cost per version.
            "ALTER TABLE usage_log ADD COLUMN prompt TEXT",
        ],
    ),
    (
        11,
        "latency percentiles over the rollups: sums for averages, errors by status class, latency sketches",
        [
            # The gateway's own time per request (x-router-overhead-ms): reported like latency and TTFT.
            "ALTER TABLE usage_log ADD COLUMN overhead_ms DOUBLE PRECISION",
            *DAILY.add_timing_columns_sql(),
            *HOURLY.add_timing_columns_sql(),
        ],
    ),
    (
        12,
        "MCP gateway: servers, their tools and approvals, users' sealed credentials, sessions, per-call usage",
        MCP_MIGRATION,
    ),
    (
        13,
        "who set a key's monthly limit and expiry: a key's owner may only tighten what someone else set",
        [
            # 'user:<id>' when the key's (non-admin) owner set it, else the admin actor ('admin', 'cli', 'key:<id>').
            "ALTER TABLE api_keys ADD COLUMN limit_set_by TEXT",
            "ALTER TABLE api_keys ADD COLUMN expiry_set_by TEXT",
        ],
    ),
    (
        14,
        "sessions: the session of each request (explicit or reconstructed), its branch and the request it continued",
        [
            "ALTER TABLE usage_log ADD COLUMN session_id TEXT",
            "ALTER TABLE usage_log ADD COLUMN session_branch INTEGER",
            "ALTER TABLE usage_log ADD COLUMN session_parent TEXT",
            # Timelines read one session's rows in order; the list groups rows by session.
            "CREATE INDEX usage_log_session ON usage_log (session_id, ts) WHERE session_id IS NOT NULL",
        ],
    ),
    (
        15,
        "dashboard sessions: a login's token and API key digests, its CSRF token, idle and absolute timeouts",
        [
            """CREATE TABLE ui_sessions (
                token_hash BLOB PRIMARY KEY,
                key_hash BLOB NOT NULL,
                csrf_token TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                last_seen_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                client TEXT
            )""",
            "CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at)",
        ],
    ),
]

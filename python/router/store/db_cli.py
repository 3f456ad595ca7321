"""`router db`: the schema (`upgrade`) and moving a deployment between engines (`copy`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from . import LATEST, database_url, open_store, sqlite_path
from .base import StoreBase
from .migrations import MIGRATIONS

# Tables the migrations seed with a row: a target holding only those rows is still empty.
_SEEDED = {"org", "epochs"}
_CHUNK = 1000


def _url(args: argparse.Namespace) -> str:
    if os.environ.get("ROUTER_DB"):
        return os.environ["ROUTER_DB"]
    return database_url(load_config(args.config).database, args.config)


def _raw(url: str) -> StoreBase:
    """A store opened without migrating or checking (the command decides)."""
    if url.startswith(("postgres://", "postgresql://")):
        from .postgres import PostgresStore, StoreUnavailable

        try:
            return PostgresStore(url)
        except StoreUnavailable as exc:
            raise ConfigError(str(exc)) from None
    from .sqlite import SQLiteStore

    path = sqlite_path(url)
    if path is None:
        raise ConfigError(f"not a database file or URL: {url}")
    return SQLiteStore(str(path))


def _where(url: str) -> str:
    if url.startswith(("postgres://", "postgresql://")):
        from .postgres import redact

        return redact(url)
    return str(sqlite_path(url))


def upgrade_command(args: argparse.Namespace) -> int:
    url = _url(args)
    store = _raw(url)
    try:
        before = store.schema_version()
        applied = store.migrate()
    finally:
        store.close()
    titles = dict((v, t) for v, t, _ in MIGRATIONS)
    where = f"{store.engine} database {_where(url)}"
    if not applied:
        print(f"router: {where} is up to date (schema version {before})")
        return 0
    for version in applied:
        print(f"applied {version}: {titles[version]}")
    print(f"router: {where} upgraded from schema version {before} to {LATEST}")
    return 0


def _tables(store: StoreBase) -> list[str]:
    if store.engine == "SQLite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
    return [r[0] for r in store._conn.execute(sql).fetchall() if r[0] != "schema_migrations"]


def _count(store: StoreBase, table: str) -> int:
    return store._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def copy_command(args: argparse.Namespace) -> int:
    source = open_store(args.source, migrate=False)  # refuses a source not at this version (upgrade it first)
    target = open_store(args.target, migrate=True)
    try:
        if _where(args.source) == _where(args.target):
            raise ConfigError("--from and --to name the same database")
        tables = _tables(source)
        missing = sorted(set(tables) - set(_tables(target)))
        if missing:
            raise ConfigError(f"the target has no table {', '.join(missing)}: is it a router database?")
        filled = [t for t in tables if t not in _SEEDED and _count(target, t)]
        if filled:
            raise ConfigError(
                f"the target {_where(args.target)} already holds data (tables {', '.join(filled)}): "
                "copy into an empty database, never over one in use"
            )
        counts = _copy(source, target, tables)
    finally:
        source.close()
        target.close()
    for table, n in counts.items():
        print(f"{table}: {n} rows")
    print(f"router: copied {sum(counts.values())} rows from {_where(args.source)} to {_where(args.target)}")
    return 0


def _copy(source: StoreBase, target: StoreBase, tables: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    conn = target._conn
    conn.execute("BEGIN")
    try:
        for table in tables:
            cur = source._conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cur.description]
            if table in _SEEDED:
                conn.execute(f"DELETE FROM {table}")
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            n = 0
            while rows := cur.fetchmany(_CHUNK):
                conn.executemany(insert, [_portable(r) for r in rows])
                n += len(rows)
            counts[table] = n
        # Every worker reading the target reloads what it cached.
        conn.execute("UPDATE epochs SET value = value + 1 WHERE name = 'keys'")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    reset = getattr(target, "reset_identities", None)
    if reset is not None:
        reset()
    return counts


def _portable(row: Any) -> tuple[Any, ...]:
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="the database: apply schema migrations, copy between engines")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser(
        "upgrade", help="apply the schema migrations this version needs (ROUTER_DB, else the config's database)"
    )
    upgrade.add_argument("--config", help="config file (default: $ROUTER_CONFIG, else the bundled demo config)")
    upgrade.set_defaults(func=upgrade_command)
    copy = actions.add_parser(
        "copy", help="copy every table of one database into another, empty one (e.g. SQLite to PostgreSQL)"
    )
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///path.db, a path, or postgresql://…")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://…, sqlite:///path.db or a path")
    copy.set_defaults(func=copy_command)

"""Storage behind one interface: keys, the usage log, and change epochs.

`open_store` picks the backend from ROUTER_DB (or the config's `database`): a file path (or `sqlite:///path`)
means SQLite, the embedded default; a `postgresql://` (or `postgres://`) URL the PostgreSQL backend, for
several gateway hosts on one database. Both run the same migrations and methods (`base.StoreBase`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config import DEFAULT_CONFIG, config_path
from ..errors import ConfigError
from .base import LATEST, SchemaError, StoreBase
from .records import KeyRecord, UsageRow
from .signal import Signal
from .sqlite import SQLiteStore

__all__ = [
    "LATEST",
    "KeyRecord",
    "SQLiteStore",
    "SchemaError",
    "Store",
    "UsageRow",
    "data_dir",
    "database_url",
    "default_database",
    "open_store",
    "sqlite_path",
]

Store = StoreBase


def data_dir() -> Path:
    """The user's data folder for the router: `$XDG_DATA_HOME/router`, by default `~/.local/share/router`."""
    base = os.environ.get("XDG_DATA_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "router"


def default_database(demo: bool) -> str:
    """Where the database lives when neither ROUTER_DB nor the config's `database:` says: the user's data folder,
    so every command finds it from any working directory. The bundled demo config keeps its own file, so
    `router demo --fresh` can never delete the database of a real config."""
    return str(data_dir() / ("demo.db" if demo else "router.db"))


def database_url(configured: str | None = None, config: str | os.PathLike[str] | None = None) -> str:
    """ROUTER_DB, else the config's `database:` (a relative path is relative to the config file's folder),
    else `default_database`. `config`: the config file given on the command line (resolved as `load_config`
    does: the flag, then ROUTER_CONFIG, then the bundled demo config)."""
    if os.environ.get("ROUTER_DB"):
        return os.environ["ROUTER_DB"]
    file = config_path(config).resolve()
    if configured:
        if configured == ":memory:" or "://" in configured:
            return configured
        return str(file.parent / Path(configured).expanduser())
    return default_database(demo=file == DEFAULT_CONFIG.resolve())


def sqlite_path(url: str) -> Path | None:
    """The SQLite file of a database URL (None for an in-memory or a server database)."""
    if url == ":memory:" or url.startswith(("postgres://", "postgresql://")):
        return None
    return Path(url.removeprefix("sqlite:///")).absolute()


def open_store(url: str, announce: bool = False, migrate: bool | None = None, signal: Signal | None = None) -> Store:
    """Open the database, and migrate it or check its schema. `migrate`: None is each engine's default: SQLite
    migrates (an embedded file follows the code that opens it); PostgreSQL, shared by hosts that may run
    different versions during a rollout, only checks and refuses an older schema (`router db upgrade` or
    `serve --migrate` applies it). A schema newer than the code is refused on both. `announce`: a
    command-line caller says where it created a new SQLite file, so a database made in an unexpected place
    is never silent. `signal`: the change epoch to bump and read (None: the file beside the database, or
    among a PostgreSQL database's local files)."""
    if url.startswith(("postgres://", "postgresql://")):
        from .postgres import PostgresStore, StoreUnavailable

        try:
            pg = PostgresStore(url, signal=signal)
        except StoreUnavailable as exc:
            raise ConfigError(f"ROUTER_DB: {exc}") from None
        try:
            if migrate:
                pg.migrate()
            else:
                pg.check_schema(migrate=False)
        except BaseException:
            pg.close()
            raise
        return pg
    if url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite:///")
    path = sqlite_path(url)
    new = path is not None and not path.exists()
    store = SQLiteStore(url if url == ":memory:" else str(Path(url)), signal)
    try:
        if migrate is False:
            store.check_schema(migrate=False)
        else:
            store.migrate()
    except BaseException:
        store.close()
        raise
    if announce and new:
        print(f"router: created a new database at {path}", file=sys.stderr, flush=True)
    return store

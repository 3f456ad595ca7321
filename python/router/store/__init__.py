"""Storage behind one interface: keys, the usage log, and change epochs.

`open_store` picks the backend from ROUTER_DB (or the config's `database`): a file path means SQLite,
the embedded default. A PostgreSQL URL is reserved for the multi-instance backend, which mirrors the same
migrations and methods.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .records import KeyRecord, UsageRow
from .sqlite import SQLiteStore

__all__ = ["DEFAULT_DB", "KeyRecord", "SQLiteStore", "Store", "UsageRow", "database_url", "open_store"]

DEFAULT_DB = ".router/router.db"

Store = SQLiteStore


def database_url(configured: str | None = None) -> str:
    return os.environ.get("ROUTER_DB") or configured or DEFAULT_DB


def open_store(url: str) -> Store:
    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigError(f"ROUTER_DB: PostgreSQL ({url.split('@')[-1]}) is not supported yet; use a SQLite file path")
    if url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite:///")
    store = SQLiteStore(url if url == ":memory:" else str(Path(url)))
    store.migrate()
    return store

"""The embedded SQLite backend: one file, nothing to start.

WAL mode lets the usage writer's thread commit while request handlers read keys on another connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from . import sketch
from .base import StoreBase
from .signal import ChangeSignal, Signal

# Python's sqlite3 binds str, int, float and bytes directly, but sends every other value (None and bool
# included) through its adapter protocol, which without a registered adapter ends by looking up
# `PrepareProtocol.__adapt__` on a type object: an AttributeError formatted and discarded per value. A usage
# row has a dozen NULLs and three booleans, so that was ~4 µs of the usage writer's CPU per row (a third of its
# insert, benches/test_spool_bench.py). These adapters bind exactly what the default path binds (NULL; 0 or
# 1), found with one dictionary lookup and a C call. They apply to every connection of the process (the
# registry is the sqlite3 module's), which is harmless for that reason.
sqlite3.register_adapter(type(None), {}.get)  # {}.get(None) is None: bound as NULL
sqlite3.register_adapter(bool, int)


class SQLiteStore(StoreBase):
    engine = "SQLite"

    def __init__(self, path: str, signal: Signal | None = None) -> None:
        """`signal`: the change epoch shared with other processes; None: the memory-mapped file beside the
        database (another one, e.g. Redis for several hosts, is owned and closed by whoever passes it)."""
        self.path = path
        self._memory = path == ":memory:"
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Keys' digests, usage and audit data: owner-only, like the ledger and signal files. Created here,
            # empty, before SQLite opens it, because SQLite gives the -wal and -shm files the database's mode.
            # Only when missing: closing a descriptor of a database this process has open would drop SQLite's
            # POSIX locks on it (they are per process), and another connection could then corrupt it.
            if not os.path.exists(path):
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        # The rollups' latency sketches merge in SQL (upserts, reports, rebuilds).
        sketch.register(self._conn)
        if not self._memory:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._owns_signal = signal is None
        self._signal: Signal | None = signal
        if signal is None and not self._memory:
            self._signal = ChangeSignal(path + "-signal")
        self._local_epoch = 0
        self._depth = 0

    def clone(self) -> SQLiteStore:
        """A second connection to the same database, for another thread."""
        if self._memory:
            return self
        return SQLiteStore(self.path, None if self._owns_signal else self._signal)

    def close(self) -> None:
        if self._signal is not None and self._owns_signal:
            self._signal.close()
        self._conn.close()

    def _streaming_conn(self) -> sqlite3.Connection:
        """A connection for one long read (an export), so it never holds the shared one's cursor."""
        return self._conn if self._memory else sqlite3.connect(self.path, check_same_thread=False)

    def _has_table(self, name: str) -> bool:
        return (
            self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
            is not None
        )

    def _migration_lock(self) -> contextlib.AbstractContextManager[None]:
        # BEGIN IMMEDIATE around each version serialises processes; nothing more to hold.
        return contextlib.nullcontext()

    def _begin_write(self, replay: bool) -> None:
        # A replay reads which rows are committed, then writes: the write lock from the start, so another
        # process replaying the same spool cannot commit the same rows in between.
        self._conn.execute("BEGIN IMMEDIATE" if replay else "BEGIN")

    def ping(self) -> None:
        self._conn.execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchone()

    def _after_commit(self) -> None:
        self._local_epoch += 1
        if self._signal is not None:
            self._signal.bump()

    def keys_epoch(self) -> int:
        """A number that changes whenever a cached key may have become invalid, in any process."""
        if self._signal is None:
            return self._local_epoch
        return self._signal.read()

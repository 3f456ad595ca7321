"""A change counter shared by every process that opens the same database.

Workers cache keys in memory; when any process (another worker, the CLI) revokes a key, the very next
request everywhere must see it. Reading an 8-byte counter from a memory-mapped file costs a fraction of a
microsecond, where asking SQLite whether anything changed costs several, so the hot path reads this and
only goes to the database when the number moved. The database stays the source of truth.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from typing import Protocol

_U64 = struct.Struct("<Q")


class Signal(Protocol):
    """What the store needs of a change signal: this file, or Redis for replicas on several hosts
    (`shared.signal.RedisSignal`). `read` is on the hot path: it must not leave the process."""

    def read(self) -> int: ...
    def bump(self) -> None: ...
    def close(self) -> None: ...


class ChangeSignal:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _U64.size:
                os.ftruncate(fd, _U64.size)
            self._map = mmap.mmap(fd, _U64.size)
        finally:
            os.close(fd)
        self._path = path

    def read(self) -> int:
        return _U64.unpack_from(self._map)[0]

    def bump(self) -> None:
        # flock serialises bumps from several processes; readers never block.
        with open(self._path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _U64.pack_into(self._map, 0, self.read() + 1)
            self._map.flush()

    def close(self) -> None:
        self._map.close()

"""The usage spool: each worker's usage rows on disk from before their answer leaves until they are committed.

The usage writer batches rows in memory and commits them a fraction of a second later, so a worker killed
with SIGKILL (or a crash) would lose the rows of requests it had already answered. Each row is therefore also
appended to the worker's spool file before the answer's last bytes are handed to granian: one `write()` of a
few hundred bytes (a 4-byte length, then the row in MessagePack) to an `O_APPEND` file descriptor, no fsync.
The kernel keeps written pages when the process dies, so only power loss or a kernel crash can lose them.

Files live in `<db>-spool/` (0700), one at a time per worker, named `<pid>-<random>-<seq>.spool` (0600). A
worker holds an exclusive `flock` on its file for as long as the file has rows not yet committed; the
writer starts a new file when it takes a batch and deletes the old one once that batch is committed. A file
nobody holds a lock on belongs to a process that died: `replay` commits its rows (those the dead process had
not committed itself; the usage log's key, request id and attempt, tells) and deletes it. `router serve`
replays before its workers start, and every worker again on start, which covers a respawned worker.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from pathlib import Path

import msgspec

from .records import UsageRow
from .sqlite import SQLiteStore

log = logging.getLogger("router.usage")

SUFFIX = ".spool"
# Each record: its length (little-endian u32), then the row as MessagePack (an array, in column order).
_LENGTH = struct.Struct("<I")
_decoder = msgspec.msgpack.Decoder(UsageRow)


def spool_dir(db_path: str) -> str | None:
    """Where the spool of the database at `db_path` lives (None for an in-memory database)."""
    return None if db_path == ":memory:" else str(Path(db_path)) + "-spool"


# A file whose rows are all in one batch the writer is committing: (descriptor holding the lock, path).
Sealed = tuple[int, str]


class Spool:
    """One worker's spool: `append` on the event loop thread, `seal` when a batch is taken, `release` once it
    is committed."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self._stem = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._seq = 0
        self._fd = -1
        self._path = ""
        self._buffer = bytearray()
        self._encode_into = msgspec.msgpack.Encoder().encode_into
        self._failing = False

    def append(self, row: UsageRow) -> None:
        """Write one row (before its answer is sent). A failing disk is logged, not raised: the row still
        reaches the database through the writer's memory, it just is not crash-safe meanwhile."""
        buffer = self._buffer
        self._encode_into(row, buffer, _LENGTH.size)
        _LENGTH.pack_into(buffer, 0, len(buffer) - _LENGTH.size)
        try:
            fd = self._fd if self._fd >= 0 else self._open()
            if os.write(fd, buffer) != len(buffer):
                raise OSError("short write to the usage spool")
            self._failing = False
        except OSError:
            if not self._failing:
                log.exception("usage spool write failed in %s; rows are kept in memory only", self.directory)
            self._failing = True

    def _open(self) -> int:
        while True:
            self._seq += 1
            path = os.path.join(self.directory, f"{self._stem}-{self._seq}{SUFFIX}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # A replaying process took the new, empty file for an orphan before we locked it; it removes it.
                os.close(fd)
                continue
            if os.fstat(fd).st_nlink == 0:  # ... or already removed it
                os.close(fd)
                continue
            self._fd, self._path = fd, path
            return fd

    def seal(self) -> Sealed | None:
        """The current file, closed to new rows: every row in it is in the batch being taken now."""
        if self._fd < 0:
            return None
        sealed = (self._fd, self._path)
        self._fd, self._path = -1, ""
        return sealed

    @staticmethod
    def release(sealed: list[Sealed]) -> None:
        """Delete files whose rows are committed. Unlinked before the lock goes, so no replay reads them."""
        for fd, path in sealed:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                # Harmless when left: a replay finds every row of it committed already.
                log.exception("could not remove the committed usage spool file %s", path)
            finally:
                os.close(fd)

    @staticmethod
    def abandon(sealed: list[Sealed]) -> None:
        """Let go of files without deleting them (their rows could not be committed): the next start replays them."""
        for fd, _ in sealed:
            os.close(fd)


def read_rows(data: bytes, path: str) -> list[UsageRow]:
    rows = []
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        end = offset + _LENGTH.size
        if end <= len(data):
            end += _LENGTH.unpack_from(data, offset)[0]
        if end > len(data):
            # Only the last record can be torn (a write cut short by the crash); its answer never left.
            log.warning("skipped a torn record at the end of the usage spool %s", path)
            break
        try:
            rows.append(_decoder.decode(view[offset + _LENGTH.size : end]))
        except msgspec.DecodeError:
            log.warning("skipped an unreadable record in the usage spool %s", path)
        offset = end
    return rows


def replay(directory: str | None, store: SQLiteStore) -> int:
    """Commit the rows of every spool file left by a process that died, exactly once; returns how many rows
    were in those files (already committed ones included)."""
    if directory is None or not os.path.isdir(directory):
        return 0
    total = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(SUFFIX):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a living worker's
            if os.fstat(fd).st_nlink == 0:
                continue  # committed and removed by its owner while we opened it
            with open(fd, "rb", closefd=False) as f:
                rows = read_rows(f.read(), path)
            if rows:
                store.write_usage(rows, replay=True)
                log.warning("replayed %d usage rows from %s, left by a process that stopped abruptly", len(rows), path)
            total += len(rows)
            os.unlink(path)
        finally:
            os.close(fd)
    return total

"""The usage log's background batch writer (it also carries hot-path audit events: denials, expiries).

Request handlers append a row and move on; a task flushes batches to the database from a dedicated
thread, so the hot path never waits on disk. `close()` drains everything, which the server calls on
graceful shutdown (SIGTERM) so no row is lost. With a spool (`spool.py`), each row is also appended to the
worker's spool file as it is added, so a worker killed before its next flush loses none either: the spool
file of a batch is deleted once the batch is committed, and a file left behind is replayed on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from ..errors import DatabaseUnavailable
from .records import AuditEvent, UsageRow
from .spool import Sealed, Spool
from .sqlite import SQLiteStore

log = logging.getLogger("router.usage")


class UsageWriter:
    def __init__(
        self, store: SQLiteStore, *, flush_interval: float = 0.5, batch_size: int = 512, spool: Spool | None = None
    ) -> None:
        # The writer's own connection: SQLite connections must not be shared across threads mid-transaction.
        self._store = store.clone()
        self._owns_store = self._store is not store
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._pending: list[UsageRow] = []
        self._audit: list[AuditEvent] = []
        self._spool = spool
        # Spool files whose rows are all in `_pending` (a failed flush puts its files back here).
        self._sealed: list[Sealed] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-writer")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The last flush failed because the database could not be reached.
        self._unavailable = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-writer")

    def add(self, row: UsageRow) -> None:
        if self._spool is not None:
            self._spool.append(row)
        self._pending.append(row)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def audit(self, event: AuditEvent) -> None:
        # Batched like usage rows: a guardrail trigger on every request must not cost a commit per request.
        self._audit.append(event)
        if len(self._audit) >= self._batch_size:
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            if not self._pending and not self._audit:
                continue
            batch, self._pending = self._pending, []
            events, self._audit = self._audit, []
            sealed = self._seal()
            try:
                await loop.run_in_executor(self._executor, self._commit, batch, events, sealed)
            except Exception as exc:
                # Keep the rows for the next attempt (e.g. the database was locked for too long).
                if isinstance(exc, DatabaseUnavailable):
                    # An outage: said once, not with a traceback per flush; the rows wait in memory and the spool.
                    if not self._unavailable:
                        log.warning("usage log flush failed: %s; %d rows kept for retry", exc, len(batch))
                    self._unavailable = True
                else:
                    log.exception("usage log flush failed; %d rows kept for retry", len(batch))
                self._pending[:0] = batch
                self._audit[:0] = events
                self._sealed[:0] = sealed
            else:
                if self._unavailable:
                    log.warning("usage log flushed again: %d rows written", len(batch))
                    self._unavailable = False

    def _seal(self, everything: bool = False) -> list[Sealed]:
        """The spool files to delete once the rows being taken from `_pending` now are committed (on the loop
        thread, so no row is appended in between): every row in them is in the batch.

        After a failed flush, the current file is not sealed but keeps collecting rows until a flush succeeds:
        a database that stays locked then costs two open files, not one per attempt. (A file may also hold rows
        that are committed already; a replay skips those.)"""
        sealed, self._sealed = self._sealed, []
        if self._spool is not None and (everything or not sealed):
            current = self._spool.seal()
            if current is not None:
                sealed.append(current)
        return sealed

    def _commit(self, batch: list[UsageRow], events: list[AuditEvent], sealed: list[Sealed]) -> None:
        self._store.write_usage(batch, events)
        Spool.release(sealed)

    async def close(self) -> None:
        """Stop the flusher and write every row still held (graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending or self._audit:
            # Queued behind any in-flight write on the same thread, so rows stay in order.
            batch, self._pending = self._pending, []
            events, self._audit = self._audit, []
            sealed = self._seal(everything=True)
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._commit, batch, events, sealed)
            except BaseException:
                # Left on disk, unlocked: the next start replays them.
                Spool.abandon(sealed)
                raise
        else:
            # Only rows committed already can be left in the current file (after a failed flush).
            Spool.release(self._seal(everything=True))
        self._executor.shutdown(wait=True)
        if self._owns_store:
            self._store.close()

"""Multi-row INSERTs for the background writer.

`executemany` steps its statement once per row, and Python's sqlite3 releases the GIL around every step. Under
load the request thread is always waiting for the GIL, so a batch of a thousand rows handed it back and forth
a thousand times, each handoff a pair of thread switches on both cores: the usage writer cost several times
its own work. One INSERT with many VALUES tuples is one step per chunk of rows instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain

# SQLite's default bound-parameter limit is 32,766 (since 3.32). Binding a chunk's values holds the GIL, so
# chunks stay small: a request thread waits for at most one chunk, and 64 rows still cut the handoffs 64-fold.
_MAX_PARAMS = 32_000
_MAX_ROWS = 64


class BulkInsert:
    """`INSERT INTO table (columns) VALUES (…), (…), … [tail]` over rows of `width` values."""

    def __init__(self, head: str, width: int, tail: str = "") -> None:
        self.head = head
        self.tail = f" {tail}" if tail else ""
        self.row = f"({', '.join('?' * width)})"
        self.per_chunk = max(1, min(_MAX_ROWS, _MAX_PARAMS // width))
        # The statement of a full chunk, built once (most chunks of a large batch are full).
        self.full = self._sql(self.per_chunk)

    def _sql(self, rows: int) -> str:
        return f"{self.head} VALUES {', '.join([self.row] * rows)}{self.tail}"

    def __call__(self, conn: sqlite3.Connection, rows: Sequence[Sequence[object]]) -> None:
        for start in range(0, len(rows), self.per_chunk):
            chunk = rows[start : start + self.per_chunk]
            sql = self.full if len(chunk) == self.per_chunk else self._sql(len(chunk))
            # Flattened in C (a comprehension costs ~25 ns a value, ~1 µs for a usage row of 35).
            conn.execute(sql, list(chain.from_iterable(chunk)))

"""Usage rollups: sums and latency histograms, folded in by the usage writer with each batch of rows.

Two tables, so each question reads the fewest rows that can answer it:
- `usage_daily`  per day, model, provider and endpoint: organisation-wide reports (a month is at most
  days x models rows, whatever the traffic);
- `usage_hourly` per hour, key, user, model, provider and endpoint: reports filtered or grouped by key or
  user, and hour buckets.
Anything else (tags, traces, end users, status codes, metadata fields) reads raw rows. Percentiles from a
rollup come from its latency sketches (`sketch.py`: within 1% of the exact value); rows folded before the
sketches existed fall back to the fixed histogram buckets. Raw-row percentiles are exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from operator import attrgetter

import msgspec

from . import sketch
from .bulk import BulkInsert
from .records import UsageRow

# Upper bounds in milliseconds; the last bucket is everything above.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
HIST = len(LATENCY_BUCKETS_MS) + 1
# The columns the tables were created with (migration 3), then those added since (migration 7): reasoning
# tokens, and the part of `cost` paid with the organisation's own provider keys (BYOK).
CREATED_SUMS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost", "cache_savings",
    *(f"l{i}" for i in range(HIST)), *(f"t{i}" for i in range(HIST)),
)  # fmt: skip
ADDED_SUMS = ("reasoning_tokens", "byok_cost")
# Added by migration 11, for averages and the error breakdown by status class; with the three sketches.
# (An average divides a sum by its sketch's count: every value folded since has its sketch entry.)
TIMING_SUMS = ("latency_sum", "ttft_sum", "overhead_sum", "errors_4xx", "errors_5xx")
SKETCHES = ("latency_sketch", "ttft_sketch", "overhead_sketch")
SUMS = CREATED_SUMS + ADDED_SUMS + TIMING_SUMS
_FLOAT_SUMS = ("cost", "cache_savings", "byok_cost", "latency_sum", "ttft_sum", "overhead_sum")
# Where the added sums sit in a fold cell (after the two histograms).
_REASONING, _BYOK_COST = len(CREATED_SUMS), len(CREATED_SUMS) + 1
_LAT_SUM = len(CREATED_SUMS) + len(ADDED_SUMS)
_TTFT_SUM, _OVH_SUM, _E4, _E5 = range(_LAT_SUM + 1, _LAT_SUM + 5)


# A rollup's cells while folding: (slot, dimension values) → the sums, and the three latency sketches.
Cells = dict[tuple[int, tuple[object, ...]], list[float]]
Sketches = dict[tuple[int, tuple[object, ...]], tuple[dict[int, int], dict[int, int], dict[int, int]]]


def sum_sql(name: str) -> str:
    return f"{name} {'DOUBLE PRECISION' if name in _FLOAT_SUMS else 'INTEGER'} NOT NULL DEFAULT 0"


class Rollup(msgspec.Struct, frozen=True):
    table: str
    seconds: int  # the time granularity: 3600 or 86400
    dimensions: tuple[str, ...]  # usage_log columns kept besides time

    @property
    def columns(self) -> tuple[str, ...]:
        return ("slot", *self.dimensions)

    def create_sql(self) -> str:
        """The table as migration 3 created it; `add_columns_sql` brings it up to date."""
        dims = ",\n                ".join(f"{d} TEXT NOT NULL" for d in self.dimensions)
        sums = ",\n                ".join(sum_sql(s) for s in CREATED_SUMS)
        return f"""CREATE TABLE {self.table} (
                slot INTEGER NOT NULL,
                {dims},
                {sums},
                PRIMARY KEY ({", ".join(self.columns)})
            )"""

    def add_columns_sql(self) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMN {sum_sql(s)}" for s in ADDED_SUMS]

    def add_timing_columns_sql(self) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMN {sum_sql(s)}" for s in TIMING_SUMS] + [
            f"ALTER TABLE {self.table} ADD COLUMN {s} BLOB" for s in SKETCHES
        ]

    def upsert(self) -> BulkInsert:
        names = (*self.columns, *SUMS, *SKETCHES)
        return BulkInsert(
            f"INSERT INTO {self.table} ({', '.join(names)})",
            len(names),
            f"ON CONFLICT ({', '.join(self.columns)}) DO UPDATE SET "
            + ", ".join(
                [f"{s} = {self.table}.{s} + excluded.{s}" for s in SUMS]
                + [f"{s} = sketch_merge({self.table}.{s}, excluded.{s})" for s in SKETCHES]
            ),
        )

    def fold(self, rows: Iterable[UsageRow]) -> list[tuple[object, ...]]:
        """Rows → one upsert tuple per cell of this rollup touched by the batch."""
        return self._tuples(*self._fold(rows))

    def _fold(self, rows: Iterable[UsageRow]) -> tuple[Cells, Sketches]:
        """Rows → this rollup's cells (the usage writer's inner loop: one C-level attribute fetch per row for the
        key, bisect for the histogram buckets)."""
        cells: Cells = {}
        sketches: Sketches = {}
        seconds, dims, add = self.seconds, attrgetter(*self.dimensions), sketch.add
        for r in rows:
            key = (int(r.ts // seconds), dims(r))
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = [0] * len(SUMS)
                sketches[key] = ({}, {}, {})
            latency, ttft, overhead = sketches[key]
            cell[0] += 1
            cell[1] += r.status >= 400
            cell[2] += r.prompt_tokens or 0
            cell[3] += r.completion_tokens or 0
            cell[4] += r.cached_tokens or 0
            cell[5] += r.cost or 0.0
            cell[6] += r.cache_savings or 0.0
            cell[7 + bisect_left(LATENCY_BUCKETS_MS, r.latency_ms)] += 1
            cell[_LAT_SUM] += r.latency_ms
            add(latency, r.latency_ms)
            if r.ttft_ms is not None:
                cell[7 + HIST + bisect_left(LATENCY_BUCKETS_MS, r.ttft_ms)] += 1
                cell[_TTFT_SUM] += r.ttft_ms
                add(ttft, r.ttft_ms)
            if r.overhead_ms is not None:
                cell[_OVH_SUM] += r.overhead_ms
                add(overhead, r.overhead_ms)
            if r.status >= 500:
                cell[_E5] += 1
            elif r.status >= 400:
                cell[_E4] += 1
            cell[_REASONING] += r.reasoning_tokens or 0
            if r.byok:
                cell[_BYOK_COST] += r.cost or 0.0
        return cells, sketches

    def _coarsen(self, finer: Rollup, cells: Cells, sketches: Sketches) -> tuple[Cells, Sketches]:
        """This rollup's cells from the cells of a finer one (a multiple of its time slot, a superset of its
        dimensions): cell by cell, not row by row, so a batch is walked once for both tables."""
        ratio = self.seconds // finer.seconds
        assert ratio * finer.seconds == self.seconds
        pick = [finer.dimensions.index(d) for d in self.dimensions]
        coarse: Cells = {}
        coarse_sketches: Sketches = {}
        for (slot, values), sums in cells.items():
            key = (slot // ratio, tuple([values[i] for i in pick]))
            cell = coarse.get(key)
            if cell is None:
                coarse[key] = list(sums)
                latency, ttft, overhead = sketches[(slot, values)]
                coarse_sketches[key] = (dict(latency), dict(ttft), dict(overhead))
                continue
            for i, value in enumerate(sums):
                cell[i] += value
            for into, more in zip(coarse_sketches[key], sketches[(slot, values)], strict=True):
                for bucket, count in more.items():
                    into[bucket] = into.get(bucket, 0) + count
        return coarse, coarse_sketches

    def _tuples(self, cells: Cells, sketches: Sketches) -> list[tuple[object, ...]]:
        encode = sketch.encode
        return [
            (slot, *(d or "" for d in values), *sums, *(encode(s) for s in sketches[(slot, values)]))
            for (slot, values), sums in cells.items()
        ]

    def rebuild_sql(self) -> str:
        """Recompute the whole table from usage_log in one statement (bucket indexes computed once per row)."""
        dims = ", ".join(self.dimensions)
        inner = ", ".join(f"COALESCE({d}, '') AS {d}" for d in self.dimensions)
        hist = ", ".join([f"SUM(lb = {i})" for i in range(HIST)] + [f"SUM(tb = {i})" for i in range(HIST)])
        return (
            f"INSERT INTO {self.table} SELECT slot, {dims}, COUNT(*), SUM(status >= 400), "
            "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0), "
            f"COALESCE(SUM(cost), 0), COALESCE(SUM(cache_savings), 0), {hist}, "
            "COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(CASE WHEN byok = 1 THEN cost ELSE 0 END), 0), "
            "SUM(latency_ms), COALESCE(SUM(ttft_ms), 0), COALESCE(SUM(overhead_ms), 0), "
            "SUM(status >= 400 AND status < 500), SUM(status >= 500), "
            "sketch_of(latency_ms), sketch_of(ttft_ms), sketch_of(overhead_ms) "
            f"FROM (SELECT CAST(ts / {self.seconds} AS INTEGER) AS slot, {inner}, status, prompt_tokens, "
            "completion_tokens, cached_tokens, cost, cache_savings, reasoning_tokens, byok, latency_ms, ttft_ms, "
            "overhead_ms, "
            f"{_bucket_case('latency_ms')} AS lb, {_bucket_case('ttft_ms')} AS tb FROM usage_log) AS raw "
            f"GROUP BY slot, {dims}"
        )


def _bucket_case(column: str) -> str:
    arms = " ".join(f"WHEN {column} <= {bound} THEN {i}" for i, bound in enumerate(LATENCY_BUCKETS_MS))
    return f"CASE WHEN {column} IS NULL THEN -1 {arms} ELSE {HIST - 1} END"


DAILY = Rollup("usage_daily", 86400, ("model", "provider", "endpoint"))
HOURLY = Rollup("usage_hourly", 3600, ("key_id", "user_id", "model", "provider", "endpoint"))
ROLLUPS = (DAILY, HOURLY)


def fold_all(rows: Sequence[UsageRow]) -> list[list[tuple[object, ...]]]:
    """The upsert tuples of every rollup (in `ROLLUPS` order) for a batch: the rows are folded into the hourly
    cells only, and the daily cells summed from those (a batch touches a handful of cells), which halves the
    usage writer's per-row work."""
    hourly = HOURLY._fold(rows)
    return [DAILY._tuples(*DAILY._coarsen(HOURLY, *hourly)), HOURLY._tuples(*hourly)]


def percentile(histogram: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of a bucketed histogram, linearly interpolated within its bucket."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = LATENCY_BUCKETS_MS[i - 1] if i else 0.0
            high = LATENCY_BUCKETS_MS[i] if i < len(LATENCY_BUCKETS_MS) else LATENCY_BUCKETS_MS[-1] * 2
            return low + (high - low) * ((rank - seen) / count)
        seen += count
    return float(LATENCY_BUCKETS_MS[-1])

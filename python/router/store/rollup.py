"""The hourly usage rollup: per hour, key, user, model, provider and endpoint, sums and latency histograms.

Batches of usage rows are folded into it by the usage writer in the same transaction as the rows, so a
month of analytics reads at most hours times combinations rows instead of every request. Percentiles from the
rollup are interpolated within histogram buckets (exact ones come from raw rows, for narrow filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .records import UsageRow

# Upper bounds in milliseconds; the last bucket is everything above.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
_N = len(LATENCY_BUCKETS_MS) + 1
SUMS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost", "cache_savings",
    *(f"l{i}" for i in range(_N)), *(f"t{i}" for i in range(_N)),
)  # fmt: skip
ROLLUP_SUMS_SQL = ",\n                ".join(
    f"{name} {'DOUBLE PRECISION' if name in ('cost', 'cache_savings') else 'INTEGER'} NOT NULL DEFAULT 0"
    for name in SUMS
)
_DIMENSIONS = ("hour", "key_id", "user_id", "model", "provider", "endpoint")
UPSERT_SQL = (
    f"INSERT INTO usage_hourly ({', '.join((*_DIMENSIONS, *SUMS))}) "
    f"VALUES ({', '.join('?' * (len(_DIMENSIONS) + len(SUMS)))}) "
    f"ON CONFLICT ({', '.join(_DIMENSIONS)}) DO UPDATE SET "
    + ", ".join(f"{name} = {name} + excluded.{name}" for name in SUMS)
)


def bucket(ms: float) -> int:
    for i, bound in enumerate(LATENCY_BUCKETS_MS):
        if ms <= bound:
            return i
    return _N - 1


def fold(rows: Iterable[UsageRow]) -> list[tuple[object, ...]]:
    """Rows → one upsert tuple per (hour, key, user, model, provider, endpoint) in the batch."""
    cells: dict[tuple[object, ...], list[float]] = {}
    for r in rows:
        key = (int(r.ts // 3600), r.key_id or "", r.user_id or "", r.model or "", r.provider or "", r.endpoint)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0] * len(SUMS)
        cell[0] += 1
        cell[1] += r.status >= 400
        cell[2] += r.prompt_tokens or 0
        cell[3] += r.completion_tokens or 0
        cell[4] += r.cached_tokens or 0
        cell[5] += r.cost or 0.0
        cell[6] += r.cache_savings or 0.0
        cell[7 + bucket(r.latency_ms)] += 1
        if r.ttft_ms is not None:
            cell[7 + _N + bucket(r.ttft_ms)] += 1
    return [(*k, *v) for k, v in cells.items()]


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

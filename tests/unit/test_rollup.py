"""The hourly rollup written with each batch equals one rebuilt from the raw rows, and reports agree."""

from __future__ import annotations

import random

import pytest

from router.store import UsageRow, open_store, sketch
from router.store.analytics import Filters
from router.store.rollup import DAILY, HOURLY, LATENCY_BUCKETS_MS, fold_all, percentile

T0 = 1_795_000_000.0


def rows(n: int) -> list[UsageRow]:
    rnd = random.Random(7)
    return [
        UsageRow(
            request_id=f"req_{i}",
            ts=T0 + rnd.uniform(0, 3 * 86400),
            key_id=rnd.choice(["key_a", "key_b", None]),
            endpoint="chat",
            model=rnd.choice(["m/x", "m/y"]),
            provider="m",
            status=rnd.choice([200, 200, 200, 429, 500]),
            prompt_tokens=rnd.randint(1, 500),
            completion_tokens=rnd.randint(1, 200),
            cached_tokens=rnd.randint(0, 1),
            latency_ms=rnd.expovariate(1 / 300),
            ttft_ms=rnd.choice([None, rnd.uniform(10, 900)]),
            overhead_ms=rnd.lognormvariate(-1, 0.8),
            cost=rnd.uniform(0, 0.01),
            tags='["a"]' if i % 3 else None,
            reasoning_tokens=rnd.choice([None, rnd.randint(0, 100)]),
            byok=rnd.random() < 0.3,
        )
        for i in range(n)
    ]


def test_rollup_from_batches_equals_rebuild_and_matches_raw_sums(tmp_path, db_url) -> None:
    store = open_store(db_url)
    data = rows(3000)
    for start in range(0, len(data), 250):
        store.write_usage(data[start : start + 250])
    tables = {"usage_hourly": "1, 2, 3, 4, 5, 6", "usage_daily": "1, 2, 3, 4"}
    incremental = {t: store._conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in tables.items()}
    store.rebuild_rollup()
    for table, order in tables.items():
        rebuilt = store._conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        assert len(incremental[table]) == len(rebuilt) > 0
        for a, b in zip(incremental[table], rebuilt, strict=True):
            for x, y in zip(a, b, strict=True):
                assert x == (pytest.approx(y) if isinstance(y, float) else y)

    f = Filters(start=T0 - 3600, end=T0 + 4 * 86400)
    rolled, source = store.usage_report(f, ["model"], "day")
    assert source == "usage_daily"
    f_raw = Filters(start=T0 - 3600, end=T0 + 4 * 86400, status="ok")
    raw_ok, raw_source = store.usage_report(f_raw, ["model"], "day")
    assert raw_source == "usage_log"
    by_key, key_source = store.usage_report(Filters(start=f.start, end=f.end, keys=["key_a"]), [], None)
    assert key_source == "usage_hourly"
    assert by_key[0]["requests"] == sum(1 for r in data if r.key_id == "key_a")
    total = sum(r["requests"] for r in rolled)
    assert total == len(data)
    assert sum(r["errors"] for r in rolled) == sum(1 for r in data if r.status >= 400)
    assert sum(r["requests"] for r in raw_ok) == sum(1 for r in data if r.status < 400)
    assert sum(r["cost"] for r in rolled) == pytest.approx(sum(r.cost for r in data))
    assert sum(r["reasoning_tokens"] for r in rolled) == sum(r.reasoning_tokens or 0 for r in data)
    # The BYOK split: what the org's own provider keys paid, and the rest, from the rollup and from raw rows.
    byok = sum(r.cost for r in data if r.byok)
    assert sum(r["byok_cost"] for r in rolled) == pytest.approx(byok)
    assert sum(r["gateway_cost"] for r in rolled) == pytest.approx(sum(r.cost for r in data) - byok)
    assert sum(r["byok_cost"] for r in raw_ok) == pytest.approx(sum(r.cost for r in data if r.byok and r.status < 400))
    store.close()


def test_bucketed_percentiles_are_close_to_exact() -> None:
    rnd = random.Random(3)
    values = sorted(rnd.expovariate(1 / 300) for _ in range(20_000))
    histogram = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for v in values:
        histogram[next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if v <= b), len(LATENCY_BUCKETS_MS))] += 1
    for q in (0.5, 0.95):
        exact = values[int(q * len(values))]
        estimate = percentile(histogram, q)
        assert estimate is not None
        # Within the width of the bucket holding the exact value.
        i = next(i for i, b in enumerate(LATENCY_BUCKETS_MS) if exact <= b)
        width = LATENCY_BUCKETS_MS[i] - (LATENCY_BUCKETS_MS[i - 1] if i else 0)
        assert abs(estimate - exact) <= width
    assert percentile([0] * len(histogram), 0.5) is None


def _exact(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@pytest.mark.parametrize("source", ["usage_daily", "usage_hourly"])
def test_rollup_percentiles_are_within_the_sketch_error_of_the_exact_ones(tmp_path, source: str, db_url) -> None:
    store = open_store(db_url)
    data = rows(6000)
    for start in range(0, len(data), 500):
        store.write_usage(data[start : start + 500])
    f = Filters(start=T0 - 3600, end=T0 + 4 * 86400, keys=["key_a", "key_b"] if source == "usage_hourly" else None)
    report, used = store.usage_report(f, ["model"], None)
    assert used == source
    for entry in report:
        mine = [r for r in data if r.model == entry["model"] and (f.keys is None or r.key_id in f.keys)]
        for field, values in (
            ("latency_ms", [r.latency_ms for r in mine]),
            ("ttft_ms", [r.ttft_ms for r in mine if r.ttft_ms is not None]),
            ("overhead_ms", [r.overhead_ms for r in mine if r.overhead_ms is not None]),
        ):
            got = entry[field]
            assert got["avg"] == pytest.approx(sum(values) / len(values))
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
                exact = _exact(values, q)
                assert abs(got[name] - exact) <= sketch.ALPHA * exact * (1 + 1e-9), (field, name, got[name], exact)
        assert entry["errors_by_class"] == {
            "4xx": sum(1 for r in mine if 400 <= r.status < 500),
            "5xx": sum(1 for r in mine if r.status >= 500),
        }
    store.close()


def test_sketch_quantiles_of_a_known_distribution() -> None:
    # 1..10,000 ms once each: the value at rank int(q * n) is q * n + 1 exactly.
    found = sketch.of(float(v) for v in range(1, 10_001))
    for q, exact in ((0.5, 5001.0), (0.9, 9001.0), (0.99, 9901.0)):
        (got,) = sketch.quantiles(found, [q])
        assert got is not None and abs(got - exact) <= sketch.ALPHA * exact
    # Merging sketches is adding counts: the same as one sketch of all the values.
    halves = sketch.of(float(v) for v in range(1, 5001))
    sketch.merge_into(halves, sketch.of(float(v) for v in range(5001, 10_001)))
    assert halves == found
    assert sketch.quantiles({}, [0.5]) == [None]


def test_daily_cells_summed_from_hourly_ones_equal_folding_every_row() -> None:
    """The usage writer folds a batch into hourly cells only and sums those into the daily ones
    (`rollup.fold_all`): the same cells, counts and sketches as folding every row into each table."""
    data = rows(2000)
    daily, hourly = fold_all(data)
    for table, got in ((DAILY, daily), (HOURLY, hourly)):
        want = {row[: 1 + len(table.dimensions)]: row for row in table.fold(data)}
        assert len(got) == len(want) > 1
        for row in got:
            expected = want[row[: 1 + len(table.dimensions)]]
            assert len(row) == len(expected)
            for x, y in zip(row, expected, strict=True):
                assert x == (pytest.approx(y) if isinstance(y, float) else y)
    assert len(daily) < len(hourly)
    assert sum(row[len(DAILY.columns)] for row in daily) == len(data)

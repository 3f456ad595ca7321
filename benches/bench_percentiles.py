"""Latency percentiles over the rollups: a month of traffic, reported by day x model.

Builds the daily rollup of N synthetic requests (default 10 million: 30 days, 20 models, log-normal latencies),
then times `usage_report(month, group_by=model, bucket=day)`, which merges the latency, TTFT and overhead
sketches of every cell and reads avg/p50/p90/p95/p99 from them. The report's cost depends on the cells and
their sketches, not on how they were written, so by default each cell is built at once from its share of the
values (`--fold` sends UsageRows through the usage writer's fold and upsert instead: the same table, slower to
build). Raw rows are not stored: the report never reads them.

    .venv/bin/python benches/bench_percentiles.py [--rows 10000000] [--repeat 5] [--fold] [--db URL]

`--db postgresql://…` runs it on PostgreSQL (an empty database: the bench migrates it and fills the rollup);
`--db postgresql` starts a throwaway server for the run (tests/pg.py, PostgreSQL 15 binaries).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from router.store import UsageRow, open_store, sketch
from router.store.analytics import Filters
from router.store.rollup import DAILY, SUMS

T0 = 1_793_491_200.0  # a day boundary
DAYS = 30
MODELS = [f"provider/model-{i}" for i in range(20)]


def batch(rnd: random.Random, start: int, n: int) -> list[UsageRow]:
    out = []
    for i in range(start, start + n):
        latency = rnd.lognormvariate(6.0, 0.9)  # median ~400 ms
        out.append(
            UsageRow(
                request_id=f"req_{i}",
                ts=T0 + rnd.random() * DAYS * 86400,
                key_id=None,
                endpoint="chat",
                model=MODELS[i % len(MODELS)],
                provider="provider",
                status=200 if rnd.random() > 0.02 else 500,
                latency_ms=latency,
                ttft_ms=latency * 0.3,
                overhead_ms=rnd.lognormvariate(-1.5, 0.5),
            )
        )
    return out


def cells(rnd: random.Random, rows: int) -> list[tuple[object, ...]]:
    """The daily rollup's rows for `rows` requests spread evenly over the days and models, built per cell."""
    out = []
    per_cell = rows // (DAYS * len(MODELS))
    for day in range(DAYS):
        for model in MODELS:
            latencies = [rnd.lognormvariate(6.0, 0.9) for _ in range(per_cell)]
            overheads = [rnd.lognormvariate(-1.5, 0.5) for _ in range(per_cell)]
            sums = dict.fromkeys(SUMS, 0)
            sums["requests"] = per_cell
            sums["latency_sum"] = sum(latencies)
            sums["ttft_sum"] = sum(latencies) * 0.3
            sums["overhead_sum"] = sum(overheads)
            sketches = (sketch.of(latencies), sketch.of(v * 0.3 for v in latencies), sketch.of(overheads))
            out.append(
                (int(T0 // 86400) + day, model, "provider", "chat", *sums.values(), *map(sketch.encode, sketches))
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fold", action="store_true", help="build the rollup through the usage writer's fold")
    parser.add_argument("--db", help="a PostgreSQL URL, or 'postgresql' for a throwaway server (default: SQLite)")
    args = parser.parse_args()
    rnd = random.Random(1)
    if args.db == "postgresql":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import pg

        args.db = pg.server().fresh(migrated=False)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(args.db or str(Path(tmp) / "bench.db"), migrate=True)
        print(f"engine: {store.engine}")
        upsert = DAILY.upsert()
        started = time.perf_counter()
        store._conn.execute("BEGIN")
        if args.fold:
            step = 100_000
            for start in range(0, args.rows, step):
                upsert(store._conn, DAILY.fold(batch(rnd, start, min(step, args.rows - start))))
        else:
            upsert(store._conn, cells(rnd, args.rows))
        store._conn.execute("COMMIT")
        folded = time.perf_counter() - started
        n_cells = store._conn.execute("SELECT COUNT(*) FROM usage_daily").fetchone()[0]
        f = Filters(start=T0, end=T0 + DAYS * 86400)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            report, source = store.usage_report(f, ["model"], "day")
            times.append(time.perf_counter() - t)
        assert source == "usage_daily"
        rows = sum(r["requests"] for r in report)
        sample = report[0]
        print(f"requests in the rollup: {rows:,} (built in {folded:.1f} s); daily rollup cells: {n_cells:,}")
        print(f"report rows (day x model): {len(report)}")
        print(
            f"month by day x model, avg/p50/p90/p95/p99 of latency, TTFT and overhead: "
            f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms ({args.repeat} runs)"
        )
        print(f"one cell: {sample['bucket']} {sample['model']} latency_ms={sample['latency_ms']}")
        store.close()


if __name__ == "__main__":
    main()

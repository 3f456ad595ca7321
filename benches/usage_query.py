"""Usage query benchmark: a month of 10 million usage rows in SQLite, grouped by day and model.

Generates the rows with one SQL statement (100 keys, 20 models, 30 days), builds the hourly rollup the
usage writer maintains, then times `GET /v1/manage/usage?bucket=day&group_by=model` for the month both
ways, side by side: through the rollup (what the gateway does) and straight over the raw rows (the
baseline, with the (ts) index). The bar: under 1 s.

    python benches/usage_query.py [--rows 10000000] [--db path]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from router.store import open_store
from router.store.analytics import Filters

START = 1_793_491_200.0  # 2026-11-01T00:00:00Z
DAYS = 30


def generate(store, rows: int) -> None:
    conn = store._conn
    conn.execute("BEGIN")
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1})
        INSERT INTO usage_log (request_id, ts, key_id, endpoint, model, provider, status, prompt_tokens,
                               completion_tokens, cached_tokens, latency_ms, ttft_ms, stream, cost, user_id)
        SELECT 'req_' || i, {START} + (i * {DAYS * 86400.0 / rows}), 'key_' || (i % 100), 'chat',
               'p/model-' || ((i / 7) % 20), 'p', CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END,
               100 + i % 900, 20 + i % 300, i % 64, 50 + (i * 7919) % 3000, 20 + (i * 104729) % 800, i % 2,
               (100 + i % 900 + 4 * (20 + i % 300)) / 1e6, 'usr_' || (i % 25)
        FROM n
        """
    )
    conn.execute("COMMIT")


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", help="reuse (or create) this database file")
    args = parser.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="router-usage-")) / "usage.db"
    fresh = not path.exists()
    store = open_store(str(path))
    if fresh:
        t = time.perf_counter()
        generate(store, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        store.rebuild_rollup()
        print(f"built the hourly rollup in {time.perf_counter() - t:.0f} s")
    count = store._conn.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0]
    hourly = store._conn.execute("SELECT COUNT(*) FROM usage_hourly").fetchone()[0]
    month = Filters(start=START, end=START + DAYS * 86400)

    rollup_s, (rows, source) = timed(lambda: store.usage_report(month, ["model"], "day"))
    assert source == "usage_daily"
    one_key = Filters(start=START, end=START + DAYS * 86400, keys=["key_7"])
    key_s, (key_rows, key_source) = timed(lambda: store.usage_report(one_key, ["model"], "day"))
    assert key_source == "usage_hourly"
    raw_sql = (
        "SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS day, model, COUNT(*), SUM(prompt_tokens), "
        "SUM(completion_tokens), SUM(cost) FROM usage_log WHERE ts >= ? AND ts < ? GROUP BY day, model"
    )
    raw_s, raw_rows = timed(lambda: store._conn.execute(raw_sql, (month.start, month.end)).fetchall(), repeat=1)
    assert sum(r["requests"] for r in rows) == sum(r[2] for r in raw_rows) == count
    print(f"\nUsage query over {count:,} rows ({hourly:,} rows in the hourly rollup): a month by day x model\n")
    print("| path | median time | groups |")
    print("|---|---|---|")
    print(f"| {source} rollup (the gateway, with p50/p95) | {rollup_s * 1000:,.0f} ms | {len(rows)} |")
    print(f"| one key's month, {key_source} rollup (with p50/p95) | {key_s * 1000:,.0f} ms | {len(key_rows)} |")
    print(f"| raw rows, GROUP BY over the (ts) index (sums only) | {raw_s * 1000:,.0f} ms | {len(raw_rows)} |")
    store.close()


if __name__ == "__main__":
    main()

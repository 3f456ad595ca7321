"""Dashboard load benchmark: how long the dashboard's pages take to become usable in headless Chromium, on a
database with 10,000 keys and 1 million usage rows (the issue's bar: the first page interactive in under 1 s on
loopback).

Builds the database (keys through the store, usage rows with one SQL statement spread over the last 30 days,
then the rollups the usage writer maintains), starts the mock and the gateway, signs in once, then times each
page from navigation to its content rendered (the overview's tiles, the keys table, the usage breakdown):
median of 5 loads. Needs Playwright (dev extra) and Debian's Chromium.

    python benches/dashboard_load.py [--keys 10000] [--rows 1000000] [--db path]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from router.governance.keys import hash_key, mint_key
from router.store import open_store

from servers import ADMIN_KEY, gateway_env, start_gateway, start_mock

DAYS = 30


def build(path: Path, keys: int, rows: int) -> None:
    store = open_store(str(path))
    t = time.perf_counter()
    with store.transaction():
        for i in range(keys):
            record, secret = mint_key(f"key-{i:05d}", labels={"team": f"t{i % 40}"})
            store.insert_key(record, hash_key(secret))
    ids = [r[0] for r in store._conn.execute("SELECT id FROM api_keys ORDER BY id")]
    print(f"{keys:,} keys in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    start = time.time() - DAYS * 86400
    conn = store._conn
    conn.execute("CREATE TEMP TABLE k (n INTEGER PRIMARY KEY, id TEXT)")
    conn.executemany("INSERT INTO k VALUES (?, ?)", list(enumerate(ids)))
    conn.execute("BEGIN")
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1})
        INSERT INTO usage_log (request_id, ts, key_id, endpoint, model, provider, status, prompt_tokens,
                               completion_tokens, cached_tokens, latency_ms, ttft_ms, stream, cost)
        SELECT 'req_' || i, {start} + (i * {DAYS * 86400.0 / rows}), (SELECT id FROM k WHERE n = i % {len(ids)}),
               'chat', 'mock/model-' || ((i / 7) % 20), 'mock', CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END,
               100 + i % 900, 20 + i % 300, i % 64, 50 + (i * 7919) % 3000, 20 + (i * 104729) % 800, i % 2,
               (100 + i % 900 + 4 * (20 + i % 300)) / 1e6
        FROM n
        """
    )
    conn.execute("COMMIT")
    print(f"{rows:,} usage rows in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    store.rebuild_rollup()
    print(f"rollups in {time.perf_counter() - t:.1f} s")
    store.close()


def timed(page, url: str, ready: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(ready, timeout=30_000)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="reuse (or create) this database file")
    args = parser.parse_args()
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="router-dashboard-")) / "router.db"
    if not db.exists():
        build(db, args.keys, args.rows)
    mock = start_mock()
    gateway = start_gateway(gateway_env(db, mock.base))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{gateway.base}/ui/")
            page.get_by_label("API key", exact=True).fill(ADMIN_KEY)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("nav.side")
            base = f"{gateway.base}/ui/#/"
            results = {
                "overview (org, month's usage)": timed(page, base + "overview", "dd:near(dt:text('Spend this month'))"),
                "API keys (first page of 50)": timed(page, base + "keys", "main tbody tr"),
                "usage (7 days: series, totals, breakdown, budgets)": timed(page, base + "usage", "main table caption"),
                "audit log (first page)": timed(page, base + "audit", "main .list >> text=/No audit|Time/"),
            }
            browser.close()
    finally:
        gateway.stop()
        mock.stop()
    print(f"\n{args.keys:,} keys, {args.rows:,} usage rows; median of 5 loads, navigation to content rendered:")
    for name, seconds in results.items():
        print(f"  {name:<52} {seconds * 1000:7.0f} ms")


if __name__ == "__main__":
    main()

"""The usage writer's CPU per row: `write_usage` of a 512-row batch (the writer's default batch size) on SQLite,
rows shaped like the everything-on case of `benches/load_pinned.py` (budgets, metadata, a guardrail trigger,
a session; a dozen NULL columns). It runs on the worker's own core, in its own thread: every µs here is a µs
the requests of that worker do not get. The rows insert into the usage log (6 indexes), fold into the hourly
and daily rollups and add to the spend table. Divide the median by 512 for the cost per row.

    pytest benches/test_usage_write_bench.py --benchmark-only
"""

from __future__ import annotations

import itertools
import random
import time

from router.store import UsageRow, open_store

BATCH = 512


def _batch(counter: itertools.count, rnd: random.Random) -> list[UsageRow]:
    now = time.time()
    # fmt: off
    return [
        UsageRow(
            f"req_{next(counter):024x}", now, "key_0123456789abcdef", "chat", "bench/gpt-4o", "bench", 200,
            12, 9, None, 0.4 + rnd.random(), None, False, None, 0.000123, False, None, 202612,
            "key:key_0123456789abcdef org", None, "end-user-1", "trace-1", '["bench","load"]', None, 1, False,
            None, None, None, '[["request","pii","email","mask",1]]', None, 0.1 + rnd.random() / 20, "ses_1", 0,
            None,
        )
        for _ in range(BATCH)
    ]
    # fmt: on


def test_usage_write_batch(benchmark, tmp_path) -> None:
    store = open_store(str(tmp_path / "bench.db"))
    counter, rnd = itertools.count(), random.Random(1)
    for _ in range(20):  # a table that is not empty
        store.write_usage(_batch(counter, rnd))
    benchmark.pedantic(store.write_usage, setup=lambda: ((_batch(counter, rnd),), {}), rounds=40)
    store.close()

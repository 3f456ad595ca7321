"""Per-request cost of the usage spool on the hot path: `UsageWriter.add` of one row with the spool (MessagePack
encode + one `write()` to the worker's file) vs without (an in-memory append), side by side. The writer's
flusher is not started, so only the request thread's share is timed; the file is rotated every 100,000 rows
as the flusher would (every flush interval) so it stays small."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.store import UsageRow, open_store
from router.store.spool import Spool, spool_dir
from router.store.usage_writer import UsageWriter

ROW = UsageRow(
    request_id="req_16e6b810b86800000001", ts=time.time(), key_id="key_abcdef012345", endpoint="chat",
    model="up/gpt-4o", provider="up", status=200, prompt_tokens=12, completion_tokens=16, cached_tokens=0,
    latency_ms=3.2, stream=False, cost=0.00019, period=202612, budgets="key:key_abcdef012345 org",
)  # fmt: skip


@pytest.mark.parametrize("spool", ["off", "on"])
def test_usage_row_add(benchmark, tmp_path, spool) -> None:
    path = str(tmp_path / "bench.db")
    store = open_store(path)
    loop = asyncio.new_event_loop()  # the writer makes its wake-up event on one
    asyncio.set_event_loop(loop)
    the_spool = Spool(spool_dir(path) or "") if spool == "on" else None
    writer = UsageWriter(store, flush_interval=3600, batch_size=10**9, spool=the_spool)
    count = 0

    def add() -> None:
        nonlocal count
        writer.add(ROW)
        count += 1
        if count % 100_000 == 0:
            writer._pending.clear()
            sealed = writer._seal()
            Spool.release(sealed)

    benchmark(add)
    writer._pending.clear()
    Spool.release(writer._seal())
    loop.run_until_complete(writer.close())
    loop.close()
    asyncio.set_event_loop(None)
    store.close()

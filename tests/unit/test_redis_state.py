"""The Redis change signal and budget ledger against a real, throwaway redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from router.config import RedisConfig
from router.shared.ledger import LEASE_MS, PREFIX, LedgerUnavailable, RedisLedger, raise_to
from router.shared.signal import EPOCH, RedisSignal

PERIOD = 202612
# Keeps Redis busy for 0.4 s, as a stalled or overloaded server would be.
STALL = """
local s = redis.call('TIME')
repeat local t = redis.call('TIME') until (t[1] - s[1]) * 1000000 + (t[2] - s[2]) > 400000
return 1
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path)
    yield s
    s.stop()


def settings(server: RedisServer, **kw: object) -> RedisConfig:
    return RedisConfig(url=server.url, check_interval=0.2, **kw)  # type: ignore[arg-type]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_bump_in_one_process_moves_every_subscriber(server: RedisServer) -> None:
    a, b = RedisSignal(settings(server)), RedisSignal(settings(server))
    b.start()
    try:
        wait_for(lambda: b.connected)
        seen = b.read()
        a.bump()
        assert a.read() == 1  # the writer sees its own change without waiting for Redis
        wait_for(lambda: b.read() != seen)
        assert b.gaps == 0
    finally:
        a.close()
        b.close()


def test_a_missed_message_is_caught_by_the_periodic_read(server: RedisServer) -> None:
    signal = RedisSignal(settings(server))
    signal.start()
    try:
        wait_for(lambda: signal.connected)
        seen = signal.read()
        server.client().incr(EPOCH)  # a change whose message never came
        wait_for(lambda: signal.read() != seen, timeout=2.0)
        assert signal.gaps == 1
    finally:
        signal.close()


def test_a_redis_restart_moves_the_epoch_and_a_failed_bump_is_published_on_reconnection(server: RedisServer) -> None:
    writer, reader = RedisSignal(settings(server)), RedisSignal(settings(server))
    writer.start()
    reader.start()
    try:
        wait_for(lambda: writer.connected and reader.connected)
        server.stop()
        wait_for(lambda: not reader.connected)
        seen = reader.read()
        writer.bump()  # committed to the database while Redis is down: published once it is back
        server.start()
        wait_for(lambda: reader.connected and reader.read() != seen)
        wait_for(lambda: int(server.client().get(EPOCH) or 0) >= 1)
    finally:
        writer.close()
        reader.close()


async def _ledger(
    server: RedisServer, committed: list[tuple[str, int, int]] | None = None, **kw: object
) -> RedisLedger:
    ledger = RedisLedger(settings(server, **kw), lambda period: committed or [], lambda: PERIOD)
    ledger.start()
    return ledger


def test_reservations_of_a_dead_worker_come_back_when_its_lease_expires(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [])
        dead, alive = await _ledger(server), await _ledger(server)
        budgets = dead.prepare([("key:k", 100, 2**63 - 1, "key 'k'")], [0], PERIOD)
        assert await dead.reserve(budgets, 60) is None
        refused = await alive.reserve(alive.prepare([("key:k", 100, 2**63 - 1, "k")], [0], PERIOD), 60)
        assert refused == (0, 0, 60)
        # The dead worker's heartbeat stops and its lease runs out: the next reap returns its 60.
        for task in dead._tasks:
            task.cancel()
        # Wait for them to be gone: a heartbeat already on its way to Redis would renew the lease after us.
        await asyncio.wait(dead._tasks, timeout=5)
        server.client().pexpire(PREFIX + "lease:" + dead.lane, 1)
        await asyncio.sleep(0.05)
        await alive._reap(keys=[PREFIX + "lanes"], args=[PREFIX])
        assert server.client().hget(PREFIX + f"{PERIOD}:key:k", "r") == b"0"
        assert await alive.reserve(alive.prepare([("key:k", 100, 2**63 - 1, "k")], [0], PERIOD), 60) is None
        await alive.close()
        await dead.close()

    asyncio.run(asyncio.wait_for(main(), 20))
    assert LEASE_MS >= 5000  # several heartbeats fit in a lease


def test_settlement_replaces_the_reservation_by_the_actual_cost(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [("key:k", PERIOD, 10)])
        ledger = await _ledger(server)
        settled: list[tuple[list[int], int]] = []
        ledger.on_settled = lambda budgets, committed, actual: settled.append((list(committed), actual))
        budgets = ledger.prepare([("key:k", 100, 0, "k"), ("org", 1000, 0, "org")], [0, 5], PERIOD)
        assert await ledger.reserve(budgets, 50) is None
        ledger.settle(budgets, 50, 7)
        for _ in range(100):
            if settled:
                break
            await asyncio.sleep(0.01)
        assert settled == [([17, 12], 7)]  # key: 10 from the database + 7; org: seeded 5 + 7
        assert ledger.usage("key:k", PERIOD) == (17, 0)
        await ledger.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_an_emptied_redis_is_rebuilt_from_the_database_before_reserving(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [])
        ledger = await _ledger(server, committed=[("key:k", PERIOD, 90)])
        server.client().flushall()  # a restart without persistence
        refused = await ledger.reserve(ledger.prepare([("key:k", 100, 2**63 - 1, "k")], [0], PERIOD), 20)
        assert refused == (0, 90, 0)  # counted from the database's 90, not from zero
        await ledger.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_raise_to_never_lowers_a_count(server: RedisServer) -> None:
    raise_to(settings(server), [("key:k", PERIOD, 50)])
    raise_to(settings(server), [("key:k", PERIOD, 30)])  # a replica starting with an older database view
    assert server.client().hget(PREFIX + f"{PERIOD}:key:k", "c") == b"50"


def test_the_request_path_connection_reloads_its_script_and_reconnects(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [])
        ledger = await _ledger(server)
        budgets = ledger.prepare([("key:k", 1000, 2**63 - 1, "k")], [0], PERIOD)
        assert await ledger.reserve(budgets, 1) is None
        server.client().script_flush()  # NOSCRIPT on the next call: loaded and sent again
        assert await ledger.reserve(budgets, 1) is None
        server.stop()
        with pytest.raises(LedgerUnavailable):
            await ledger.reserve(budgets, 1)
        server.start()  # empty: the connection is new, the script and the ledger are rebuilt
        deadline = time.monotonic() + 5
        while True:
            try:
                assert await ledger.reserve(budgets, 1) is None
                break
            except LedgerUnavailable:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert ledger.usage("key:k", PERIOD) == (0, 1)
        await ledger.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_reservation_whose_reply_was_lost_is_returned_by_reconciliation(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [])
        ledger = await _ledger(server, timeout=0.1)
        for task in ledger._tasks:  # reconciled by hand here, not by the heartbeat
            task.cancel()
        budgets = ledger.prepare([("key:k", 1000, 2**63 - 1, "k"), ("org", 5000, 2**63 - 1, "org")], [0, 0], PERIOD)
        assert await ledger.reserve(budgets, 100) is None  # held, and known to be held
        # Redis stalls past the timeout with the next reservation already sent: it runs the script later, and
        # the reply never reaches the worker.
        stall = asyncio.get_running_loop().run_in_executor(None, server.client().eval, STALL, 0)
        await asyncio.sleep(0.05)
        with pytest.raises(LedgerUnavailable):
            await ledger.reserve(budgets, 300)
        await stall
        client = server.client()
        assert client.hget(PREFIX + f"{PERIOD}:key:k", "r") == b"400"  # the lost one was counted
        # Reconciliation gives back exactly what leaked, never the reservation the worker holds.
        assert await ledger.reconcile() == 300 * 2
        assert client.hget(PREFIX + f"{PERIOD}:key:k", "r") == b"100"
        assert client.hget(PREFIX + f"{PERIOD}:org", "r") == b"100"
        assert await ledger.reconcile() == 0
        ledger.settle(budgets, 100, 40)
        await ledger._flush()
        assert client.hmget(PREFIX + f"{PERIOD}:key:k", "c", "r") == [b"40", b"0"]
        assert await ledger.reconcile() == 0
        await ledger.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_reconciliation_never_returns_a_reservation_sent_before_it(server: RedisServer) -> None:
    async def main() -> None:
        raise_to(settings(server), [])
        ledger = await _ledger(server)
        budgets = ledger.prepare([("key:k", 10**9, 2**63 - 1, "k")], [0], PERIOD)
        # Reservations and reconciliations interleaved on the one connection: nothing is ever returned.
        calls = [ledger.reserve(budgets, 7) for _ in range(50)]
        calls += [ledger.reconcile() for _ in range(5)]
        calls += [ledger.reserve(budgets, 7) for _ in range(50)]
        results = await asyncio.gather(*calls)
        assert results[50:55] == [0] * 5
        assert server.client().hget(PREFIX + f"{PERIOD}:key:k", "r") == str(7 * 100).encode()
        await ledger.close()

    asyncio.run(asyncio.wait_for(main(), 20))

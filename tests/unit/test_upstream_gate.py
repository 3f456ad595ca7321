"""The per-provider gate: counts requests in flight, and with a cap queues for a bounded wait, then refuses."""

from __future__ import annotations

import asyncio

import pytest

from router.errors import UpstreamError
from router.providers.transport import Gate


def test_without_a_cap_it_only_counts() -> None:
    async def run() -> None:
        gate = Gate("p", None, 1.0)
        for _ in range(10_000):
            await gate.enter()
        assert (gate.in_flight, gate.queued) == (10_000, 0)
        for _ in range(10_000):
            gate.leave()
        assert gate.in_flight == 0

    asyncio.run(run())


def test_a_capped_gate_queues_first_come_first_served_then_refuses() -> None:
    async def run() -> None:
        gate = Gate("p", 2, 0.3)
        await gate.enter()
        await gate.enter()
        order: list[str] = []

        async def waiter(name: str) -> None:
            await gate.enter()
            order.append(name)

        first = asyncio.create_task(waiter("first"))
        second = asyncio.create_task(waiter("second"))
        await asyncio.sleep(0.01)
        assert (gate.in_flight, gate.queued) == (2, 2)
        gate.leave()
        await first
        gate.leave()
        await second
        assert order == ["first", "second"] and (gate.in_flight, gate.queued) == (2, 0)
        # Both slots held and nobody leaves: the next request waits `wait` seconds, then is refused.
        with pytest.raises(UpstreamError) as refused:
            await gate.enter()
        error = refused.value
        assert error.status == 503 and error.code == "upstream_overloaded"
        assert ("retry-after", "1") in error.headers
        assert (gate.in_flight, gate.queued) == (2, 0)
        gate.leave()
        gate.leave()
        assert gate.in_flight == 0

    asyncio.run(run())

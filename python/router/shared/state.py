"""One worker's link to Redis: the change signal and the budget ledger, started and stopped together."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..config import RedisConfig
from .ledger import RedisLedger
from .signal import RedisSignal


class SharedState:
    def __init__(self, settings: RedisConfig) -> None:
        self.settings = settings
        self.signal = RedisSignal(settings)
        self.ledger: RedisLedger | None = None

    def make_ledger(
        self, committed: Callable[[int], Sequence[tuple[str, int, int]]], current_period: Callable[[], int]
    ) -> RedisLedger:
        self.ledger = RedisLedger(self.settings, committed, current_period)
        return self.ledger

    def start(self) -> None:
        """In the worker's running loop."""
        self.signal.start()
        if self.ledger is not None:
            self.ledger.start()

    async def ping(self) -> bool:
        """Whether Redis answers now (readiness); the ledger also stops failing fast when it does."""
        if self.ledger is not None:
            return await self.ledger.ping()
        return self.signal.connected

    async def close(self) -> None:
        if self.ledger is not None:
            await self.ledger.close()
        self.signal.close()

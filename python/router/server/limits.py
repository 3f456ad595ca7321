"""Per-worker defences against clients that hold resources or guess keys: a deadline and a cap on unfinished
request bodies, and a failure budget for authentication per client address.

Both are per worker process (no shared state to lock); with N workers a client can reach up to N times the
numbers configured, which still bounds it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from ..config import AuthFailuresConfig
from ..errors import GatewayError
from .exchange import Exchange


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"


# How many times `max_pending_bodies` a burst of bodies still within their grace may reach.
BURST = 16


class BodyReads:
    """Request bodies being read: each must arrive whole within `timeout` seconds, and at most `cap` may be
    unfinished for longer than `grace` seconds at once; beyond that a request is refused (503, retry-after) before
    its body is read.

    The grace (the sweep interval: at most a second) is what a burst needs: a thousand clients that send their
    small bodies at once are all "being read" until the busy event loop gets round to each, and would be refused by
    the hundred without it. Bodies younger than the grace count only against `BURST * cap`.

    The hot path pays a dict insert and delete; one background sweep per worker cancels the reads past their
    deadline (at most `timeout / 4`, and never more than a second, late), instead of a timer per request.
    """

    def __init__(self, timeout: float, cap: int) -> None:
        self.timeout = timeout
        self.cap = cap
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self.sweep_interval = min(1.0, timeout / 4)
        self.grace = self.sweep_interval

    @property
    def pending(self) -> int:
        return len(self._deadlines)

    async def read(self, ex: Exchange, limit: int) -> bytes:
        """`ex.read_json_body(limit)` under the deadline and the cap."""
        if len(self._deadlines) >= self.cap and self._full():
            raise GatewayError(
                f"Too many request bodies are being received at once (limit {self.cap} per worker); retry shortly.",
                status=503,
                type="overloaded_error",
                code="too_many_pending_bodies",
                headers=[("retry-after", "1")],
            )
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = time.monotonic() + self.timeout
        try:
            return await ex.read_json_body(limit)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout:g} seconds.", code="request_timeout"
            ) from None
        finally:
            del self._deadlines[task]

    def _full(self) -> bool:
        """Whether `cap` reads are past the grace, or the burst allowance is spent too."""
        deadlines = self._deadlines
        if len(deadlines) >= BURST * self.cap:
            return True
        # Reads are in start order (a dict keeps insertion order), so the old ones are a prefix: at most `cap`
        # are looked at, and one when the oldest is still young.
        young = time.monotonic() + self.timeout - self.grace
        for seen, deadline in enumerate(deadlines.values(), 1):
            if deadline > young:
                return False
            if seen >= self.cap:
                return True
        return False

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()


def client_address(client: str) -> str:
    """The address part of RSGI's `scope.client` ("1.2.3.4:5678", "[::1]:5678" or "::1:5678")."""
    host, sep, port = client.rpartition(":")
    if not sep or not port.isdigit():
        return client
    return host.strip("[]")


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "localhost") or address.startswith("::ffff:127.")


class AuthFailures:
    """A failure budget for authentication per client address, touched only when authentication fails.

        `max_failures` failures within `window` seconds of each other spend the budget: the address is then
        refused (429, retry-after) for `backoff_initial` seconds, and each further failure within the window after
        that doubles the wait, up to `backoff_max`. An address quiet for `window` seconds (after its last failure
    and the end of its last block) starts afresh. At most
        `max_tracked` addresses are remembered (the least recently failing are forgotten first).
    """

    def __init__(self, config: AuthFailuresConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        # address → refused until (monotonic); empty unless someone spent their budget, so the check before
        # authentication costs a successful request one truthiness test.
        self.blocked: dict[str, float] = {}

    def check(self, client: str) -> None:
        """Refuse an address still serving its backoff (only called while `blocked` is not empty)."""
        address = client_address(client)
        until = self.blocked.get(address)
        if until is None:
            return
        remaining = until - self.clock()
        if remaining <= 0:
            del self.blocked[address]
            return
        raise GatewayError(
            "Too many failed authentication attempts from this address; retry later.",
            status=429,
            type="rate_limit_error",
            code="too_many_auth_failures",
            headers=[("retry-after", str(math.ceil(remaining)))],
        )

    def failed(self, client: str) -> None:
        config = self.config
        if not config.enabled:
            return
        address = client_address(client)
        if config.exempt_loopback and is_loopback(address):
            return
        now = self.clock()
        entry = self._failures.pop(address, None)  # re-inserted last: the dict's order is least recent first
        # [failures in the current run, time of the last one, blocks so far, end of the last block]
        if entry is None or now - max(entry[1], entry[3]) > config.window:
            entry = [0.0, now, 0.0, 0.0]
        entry[0] += 1
        entry[1] = now
        if entry[0] >= config.max_failures:
            entry[2] += 1
            entry[3] = self.blocked[address] = now + min(
                config.backoff_initial * 2 ** (entry[2] - 1), config.backoff_max
            )
        self._failures[address] = entry
        while len(self._failures) > config.max_tracked:
            oldest = next(iter(self._failures))
            del self._failures[oldest]
            self.blocked.pop(oldest, None)

    def prune(self) -> None:
        """Forget blocks that are over, so successful requests stop paying for the check."""
        now = self.clock()
        for address in [a for a, until in self.blocked.items() if until <= now]:
            del self.blocked[address]

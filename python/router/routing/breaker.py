"""The circuit breaker: a target that keeps failing is skipped for a cooldown, so a dead provider does not
add its timeout or error round trip to every request of a policy.

Per target: closed (calls go through) → open after `failures` retryable failures in a row, for
`cooldown` seconds or the upstream's retry-after if longer → half-open when that ends: one request probes
the target while the others keep skipping it; a success closes the circuit, a failure opens it again.
State is per worker, like every other piece of App state. It is a Prometheus collector too: the gauge
`router_circuit_state` shows each target that is not closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger("router.routing")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_STATE_VALUE = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


class _Circuit:
    __slots__ = ("failures", "open_until", "probing")

    def __init__(self) -> None:
        self.failures = 0
        self.open_until: float | None = None
        self.probing = False


class Breaker:
    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        # Only targets with recent failures have an entry: the common case is one failed dict lookup.
        self._circuits: dict[str, _Circuit] = {}
        self.opened = 0

    def state(self, target: str) -> str:
        circuit = self._circuits.get(target)
        if circuit is None or circuit.open_until is None:
            return CLOSED
        return OPEN if self.clock() < circuit.open_until else HALF_OPEN

    def available(self, target: str) -> bool:
        """May a request call `target` now? In half-open state only the first caller may (it probes)."""
        circuit = self._circuits.get(target)
        if circuit is None or circuit.open_until is None:
            return True
        if self.clock() < circuit.open_until or circuit.probing:
            return False
        circuit.probing = True
        return True

    def succeeded(self, target: str) -> None:
        if target in self._circuits:
            del self._circuits[target]
            log.info("circuit of %s closed", target)

    def failed(self, target: str, retry_after: float | None = None) -> None:
        circuit = self._circuits.get(target)
        if circuit is None:
            circuit = self._circuits[target] = _Circuit()
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self.failures:
            cooldown = max(self.cooldown, retry_after or 0.0)
            circuit.open_until = self.clock() + cooldown
            circuit.probing = False
            self.opened += 1
            log.warning("circuit of %s open for %.1f s after %d failures", target, cooldown, circuit.failures)

    def released(self, target: str) -> None:
        """An attempt ended without an outcome (the client left): let another request probe."""
        circuit = self._circuits.get(target)
        if circuit is not None:
            circuit.probing = False

    def retry_in(self, target: str) -> float:
        """Seconds until `target` may be probed again (0 when it may be called now)."""
        circuit = self._circuits.get(target)
        if circuit is None or circuit.open_until is None:
            return 0.0
        return max(circuit.open_until - self.clock(), 0.0)

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "router_circuit_state",
            "Circuit breaker state of routing targets that are not closed, in the worker answering the scrape "
            "(1 open: skipped while cooling down, 2 half-open: one probe allowed).",
            labels=("model",),
        )
        for target in sorted(self._circuits):
            value = _STATE_VALUE[self.state(target)]
            if value:
                gauge.add_metric((target,), value)
        yield gauge

"""Alerts: budget thresholds, error rate and latency, delivered to signed webhooks and to the log.

The hot path only notices (a threshold crossed after a request settles, or a request refused for a budget)
and queues; a background task claims each alert in the database (so it fires once per threshold and period,
however many workers notice) and delivers it to every webhook, retrying with exponential backoff and
recording each attempt. Webhook bodies are JSON, signed with HMAC-SHA256 over `<timestamp>.<body>`:

    x-router-timestamp: 1764000000
    x-router-signature: sha256=<hex>

Delivery uses the upstream transport (pyreqwest), a runtime dependency already: an install without extras
can deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from .config import AlertsConfig, Timeouts, Webhook
from .governance.keys import iso_time
from .providers.transport import Transport, TransportFailure
from .store import Store

log = logging.getLogger("router.alerts")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Alert(msgspec.Struct, frozen=True):
    id: str  # unique per threshold (or window) and period: the claim key
    kind: str  # budget | error_rate | latency
    time: str
    message: str
    detail: dict[str, Any]


class Alerts:
    def __init__(self, config: AlertsConfig, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        # Alerts this worker already queued, so the hot path queues each at most once.
        self._noticed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Transport | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # A webhook gets 10 s per attempt; a slow receiver must not hold the retries back.
        self._client = Transport(Timeouts(connect=5.0, first_byte=10.0, idle_read=10.0, total=10.0), 4, {})
        self._tasks.append(loop.create_task(self._deliver_forever()))
        if self.config.error_rate is not None or self.config.latency_p95_ms is not None:
            self._tasks.append(loop.create_task(self._watch_rates()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.close()

    # -- noticing (hot path) ----------------------------------------------------------------------

    def budget(self, budget: str, label: str, period: int, limit: int, used: int, refused: bool = False) -> None:
        """Called after a request settles against a limited budget (or is refused by it)."""
        if limit <= 0:
            return
        percent = 100.0 if refused else used * 100.0 / limit
        for threshold in self.config.budget_thresholds:
            if percent < threshold:
                continue
            alert_id = f"budget:{budget}:{period}:{threshold:g}"
            if alert_id in self._noticed:
                continue
            self._noticed.add(alert_id)
            spent = "refused a request" if refused else f"is at {percent:.0f}%"
            self._queue.put_nowait(
                Alert(
                    alert_id,
                    "budget",
                    iso_time(self.clock()),
                    f"The monthly budget of {label} {spent} (threshold {threshold:g}%).",
                    {
                        "budget": budget,
                        "label": label,
                        "period": period,
                        "threshold_percent": threshold,
                        "limit_usd": limit / 1e6,
                        "used_usd": used / 1e6,
                        "refused": refused,
                    },
                )
            )

    # -- background -------------------------------------------------------------------------------

    async def _watch_rates(self) -> None:
        loop = asyncio.get_running_loop()
        reader = self.store.clone()
        try:
            while True:
                await asyncio.sleep(self.config.check_interval)
                for kind, rule in (("error_rate", self.config.error_rate), ("latency", self.config.latency_p95_ms)):
                    if rule is None:
                        continue
                    window = rule.window_minutes * 60
                    now = self.clock()
                    count, errors, p95 = await loop.run_in_executor(None, reader.window_stats, now - window)
                    if count < rule.min_requests:
                        continue
                    value = errors / count if kind == "error_rate" else (p95 or 0.0)
                    if value < rule.threshold:
                        continue
                    alert_id = f"{kind}:{int(now // window)}"
                    if alert_id in self._noticed:
                        continue
                    self._noticed.add(alert_id)
                    what = f"error rate {value:.1%}" if kind == "error_rate" else f"p95 latency {value:.0f} ms"
                    self._queue.put_nowait(
                        Alert(
                            alert_id,
                            kind,
                            iso_time(now),
                            f"{what} over the last {rule.window_minutes} min (threshold {rule.threshold:g}).",
                            {
                                "value": value,
                                "threshold": rule.threshold,
                                "requests": count,
                                "window_minutes": rule.window_minutes,
                            },
                        )
                    )
        finally:
            if reader is not self.store:
                reader.close()

    async def _deliver_forever(self) -> None:
        while True:
            alert = await self._queue.get()
            body = msgspec.json.encode(alert)
            try:
                if not self.store.claim_alert(alert.id, self.clock(), body.decode()):
                    continue  # another worker fired it
            except Exception:
                log.exception("could not record alert %s; it is dropped", alert.id)
                continue
            log.warning("alert %s: %s", alert.id, alert.message)
            hooks = [h for h in self.config.webhooks if not h.kinds or alert.kind in h.kinds]
            await asyncio.gather(*(self._deliver(alert, hook, body) for hook in hooks))

    async def _deliver(self, alert: Alert, hook: Webhook, body: bytes) -> None:
        assert self._client is not None
        delay = self.config.retry_base_seconds
        for attempt in range(1, self.config.retries + 2):
            timestamp = str(int(self.clock()))
            headers = {
                "content-type": "application/json",
                "x-router-timestamp": timestamp,
                "x-router-signature": signature(hook.secret, timestamp, body),
                "x-router-alert": alert.id,
            }
            status, error = None, None
            try:
                response, _ = await self._client.post(hook.url, headers, body)
                status = response.status
            except (TransportFailure, TimeoutError, ValueError) as exc:
                error = type(exc).__name__
            with contextlib.suppress(Exception):
                self.store.log_delivery(alert.id, hook.url, attempt, self.clock(), status, error)
            if status is not None and 200 <= status < 300:
                return
            if attempt <= self.config.retries:
                await asyncio.sleep(delay)
                delay *= 2
        log.error("alert %s: delivery to %s failed after %d attempts", alert.id, hook.url, self.config.retries + 1)

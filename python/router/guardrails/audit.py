"""Guardrail triggers in the audit log: one event per request, category, type, direction and action, with a
count. Never the matched value: the scanner's findings carry only (category, type), and that is all an event
is built from.

Counts are summed over the whole request (a stream finds values chunk by chunk) and queued to the usage
log's background writer when the request is accounted for, so a trigger costs the hot path a dict update.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store.records import AuditEvent

ACTION = "guardrail.triggered"


class Triggers:
    __slots__ = ("clock", "counts", "enqueue", "key_id", "request_id")

    def __init__(
        self, request_id: str, key_id: str, clock: Callable[[], float], enqueue: Callable[[AuditEvent], None]
    ) -> None:
        self.request_id = request_id
        self.key_id = key_id
        self.clock = clock
        self.enqueue = enqueue
        self.counts: dict[tuple[str, str, str, str], int] = {}

    def add(self, direction: str, category: str, kind: str, action: str, n: int) -> None:
        """`n` more values of this category and type found in one direction, and what was done with them."""
        key = (direction, category, kind, action)
        self.counts[key] = self.counts.get(key, 0) + n

    def flush(self) -> None:
        """One event per direction, category, type and action found in the request so far."""
        if not self.counts:
            return
        now = self.clock()
        for (direction, category, kind, action), n in self.counts.items():
            self.enqueue(
                AuditEvent(
                    ts=now,
                    actor=f"key:{self.key_id}",
                    action=ACTION,
                    target_type="request",
                    target_id=self.request_id,
                    detail={
                        "request_id": self.request_id,
                        "key_id": self.key_id,
                        "category": category,
                        "type": kind,
                        "direction": direction,
                        "action": action,
                        "count": n,
                    },
                )
            )
        self.counts.clear()

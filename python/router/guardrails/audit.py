"""Guardrail triggers in the audit log: one event per request, category, type, direction and action, with a
count. Never the matched value: the scanner's findings carry only (category, type), and that is all an event
is built from.

Events are queued to the usage log's background writer, so a trigger costs the hot path a list append.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..store.records import AuditEvent

ACTION = "guardrail.triggered"


class Triggers:
    __slots__ = ("clock", "enqueue", "key_id", "request_id")

    def __init__(
        self, request_id: str, key_id: str, clock: Callable[[], float], enqueue: Callable[[AuditEvent], None]
    ) -> None:
        self.request_id = request_id
        self.key_id = key_id
        self.clock = clock
        self.enqueue = enqueue

    def report(self, direction: str, counts: Mapping[tuple[str, str, str], int]) -> None:
        """`counts`: (category, type, action) → how many values of that type were found."""
        now = self.clock()
        for (category, kind, action), n in counts.items():
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

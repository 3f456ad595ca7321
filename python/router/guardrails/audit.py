"""Guardrail triggers in the audit log: one event per request, category, type, direction and action, with a
count. Never the matched value: the scanner's findings carry only (category, type), and that is all an event
is built from.

Counts are summed over the whole request (a stream finds values chunk by chunk) and written with the
request's usage row (its `guardrails` column), which the background writer inserts anyway: a masked request
then costs no audit row and no index entries of its own, only a short JSON text. The audit log reads them
back as `guardrail.triggered` events (`store.governance.query_audit`), next to the events of `audit_log`.
"""

from __future__ import annotations

import msgspec

_encode = msgspec.json.encode


class Triggers:
    """What one request's guardrails found so far."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str], int] = {}

    def add(self, direction: str, category: str, kind: str, action: str, n: int) -> None:
        """`n` more values of this category and type found in one direction, and what was done with them."""
        key = (direction, category, kind, action)
        self.counts[key] = self.counts.get(key, 0) + n

    def encoded(self) -> str | None:
        """The usage row's `guardrails` text: `[[direction, category, type, action, count], ...]`, or None when
        nothing was found."""
        if not self.counts:
            return None
        return _encode([(*key, n) for key, n in self.counts.items()]).decode()

"""Key expiry as people write it: a duration from now (`90d`, `12h`, `30m`, `2w`) or an absolute time."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(value: str | float | int, now: float) -> float:
    """Seconds since the epoch; ValueError (with the accepted forms) for anything else or a time not in the future."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '90d' or an ISO 8601 time")
    if isinstance(value, int | float):
        at = float(value)
    else:
        match = _DURATION.match(value)
        if match:
            amount = int(match.group(1))
            if amount == 0:
                raise ValueError("a duration must be positive")
            return now + amount * _SECONDS[match.group(2)]
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'{value}' is neither a duration (90d, 12h, 30m, 2w) nor an ISO 8601 time (2026-12-31T00:00:00Z)"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        at = parsed.timestamp()
    if at <= now:
        raise ValueError("the expiry time is in the past; keys can only be set to expire in the future")
    return at

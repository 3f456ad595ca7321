"""Money in messages: exact dollars from micro-dollars, never rounded away."""

from __future__ import annotations

import pytest

from router.spend.cost import format_usd


@pytest.mark.parametrize(
    ("micro", "shown"),
    [
        (0, "$0.00"),
        (42, "$0.000042"),
        (8_100, "$0.0081"),
        (10_000, "$0.01"),
        (123_456, "$0.123456"),
        (12_500_000, "$12.50"),
        (1_000_042, "$1.000042"),
        (1_234_567_890_000, "$1,234,567.89"),
        (-8_100, "-$0.0081"),
    ],
)
def test_format_usd_keeps_every_digit_of_small_amounts(micro: int, shown: str) -> None:
    assert format_usd(micro) == shown

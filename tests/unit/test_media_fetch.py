"""Which addresses a fetch on a caller's behalf may reach, and per-image prices."""

from __future__ import annotations

import pytest

from router.config import Prices
from router.providers.fetch import forbidden
from router.spend.cost import image_price, images_worst_case_micro


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "fe80::1%eth0",
    ],
)  # fmt: skip
def test_private_loopback_link_local_and_reserved_are_forbidden(address: str) -> None:
    assert forbidden(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden(address)


PRICES = Prices(images={"1024x1024/low": 0.011, "1024x1024/high": 0.167, "1536x1024/high": 0.25})


def test_image_price_lookup_and_auto_takes_the_most() -> None:
    assert image_price(PRICES, "1024x1024", "low") == 0.011
    assert image_price(PRICES, "1024x1024", "auto") == 0.167
    assert image_price(PRICES, "auto", "high") == 0.25
    assert image_price(PRICES, "auto", "auto") == 0.25
    assert image_price(PRICES, "512x512", "low") is None
    assert image_price(Prices(images={"*": 0.04}), "512x512", "hd") == 0.04
    assert image_price(Prices(), "1024x1024", "low") is None


def test_worst_case_counts_every_image_or_their_output_tokens() -> None:
    assert images_worst_case_micro(PRICES, "1024x1024", "high", 3) == 3 * 167_000
    # Token-priced (Gemini): 6,240 output tokens per image at $30 per million.
    assert images_worst_case_micro(Prices(output=30.0), "auto", "auto", 2) == round(2 * 6240 * 30.0)

"""What a request costs: catalog prices x tokens, and the worst case reserved before it is forwarded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec
import yaml

from ..config import Prices
from ..errors import ConfigError

SHIPPED_PRICES = Path(__file__).with_name("prices.yaml")
# Costs are kept in micro-dollars (integers) so that sums never drift by float rounding.
MICRO = 1_000_000


def format_usd(micro: int) -> str:
    """An amount in micro-dollars as exact dollars: cents at least, and every non-zero digit below them.

    ``8_100`` → ``$0.0081``, ``42`` → ``$0.000042``, ``12_500_000`` → ``$12.50``: a small budget is never shown
    as ``$0.00``.
    """
    sign = "-" if micro < 0 else ""
    dollars, fraction = divmod(abs(micro), MICRO)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${dollars:,}.{digits}"


# When neither the request nor the catalog bounds the output, assume this many tokens for the reservation.
DEFAULT_MAX_OUTPUT = 4096


def load_prices(path: str | Path | None = None) -> dict[str, Prices]:
    file = Path(path) if path else SHIPPED_PRICES
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        return msgspec.convert(raw, dict[str, Prices], str_keys=True)
    except (OSError, yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{file}: cannot read prices: {exc}") from None


def price_for(configured: Prices | None, upstream_model: str, shipped: Mapping[str, Prices]) -> Prices | None:
    return configured if configured is not None else shipped.get(upstream_model)


def cost_micro(
    prices: Prices,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> int:
    """Micro-dollars for one request. OpenAI counts cached tokens inside prompt_tokens; they are billed at the
    cached rate instead of the input rate. Reasoning tokens are inside completion_tokens, billed as output."""
    if cached_tokens or cache_write_tokens:
        cached = min(cached_tokens, prompt_tokens)
        cached_rate = prices.cached_input if prices.cached_input is not None else prices.input
        write_rate = prices.cache_write if prices.cache_write is not None else prices.input
        per_million = (
            (prompt_tokens - cached) * prices.input
            + cached * cached_rate
            + cache_write_tokens * write_rate
            + completion_tokens * prices.output
        )
    else:  # most answers: the same sum without its zero terms
        per_million = prompt_tokens * prices.input + completion_tokens * prices.output
    # Per-million prices x tokens is already micro-dollars per token count; most models have no per-request fee.
    if prices.per_request:
        return round(per_million) + round(prices.per_request * MICRO)
    return round(per_million)


def worst_case_micro(prices: Prices, body_bytes: int, max_output: int) -> int:
    """An upper bound for a request not yet sent. A text token spans at least one byte, so the body's size
    bounds the prompt's tokens; the output is bounded by max_tokens or the model's limit. (`cost_micro` with
    nothing cached, spelled out: this runs once per candidate model on every limited request.)"""
    if prices.per_request:
        return round(body_bytes * prices.input + max_output * prices.output) + round(prices.per_request * MICRO)
    return round(body_bytes * prices.input + max_output * prices.output)


def image_price(prices: Prices, size: str, quality: str) -> float | None:
    """USD for one image of `size` and `quality` (`auto` when the caller left them to the model), or None when
    the model has no per-image price.

    Looked up as `<size>/<quality>`, then `<size>/*`, `*/<quality>`, `*`. A size or quality of `auto` without
    its own entry costs the most any matching entry costs: the gateway cannot know what the model will pick,
    and a budget must never be under-reserved."""
    table = prices.images
    if not table:
        return None
    for key in (f"{size}/{quality}", f"{size}/*", f"*/{quality}", "*"):
        price = table.get(key)
        if price is not None:
            return price
    matching = [
        price
        for key, price in table.items()
        if _matches(key.partition("/")[0], size) and _matches(key.partition("/")[2] or "*", quality)
    ]
    return max(matching) if matching else None


def _matches(pattern: str, value: str) -> bool:
    return pattern == "*" or value == "auto" or pattern == value


# Output tokens one image can take on a token-priced image model (gpt-image-1 at high quality, 1536x1024, is
# 6,240; Gemini's are 1,290): the reservation for a model without a per-image price.
IMAGE_OUTPUT_TOKENS = 6_240


def images_worst_case_micro(prices: Prices, size: str, quality: str, count: int) -> int:
    """The most `count` images can cost on top of the prompt: per-image price, else output tokens."""
    price = image_price(prices, size, quality)
    if price is not None:
        return round(price * MICRO) * count
    return round(IMAGE_OUTPUT_TOKENS * count * prices.output)


def images_fee_micro(prices: Prices, size: str, quality: str, count: int) -> int:
    """What `count` generated images cost besides tokens: their per-image price (0 for a token-priced model)."""
    price = image_price(prices, size, quality)
    return 0 if price is None else round(price * MICRO) * count

"""Guardrails: find and mask PII, card, banking, financial and secret values, in requests and responses.

The detection engine is Rust (`rust/src/scan`); this package is its Python face:

- ``scan(text, categories=None) -> list[Finding]`` (``category``, ``type``, ``start``, ``end`` as
  Python string indices),
- ``mask(text, categories=None) -> str`` with typed numbered placeholders (``[EMAIL_1]``, ``[CARD_1]``),
- ``stream(categories=None)`` -> a ``StreamScanner`` with ``feed(text) -> str`` and ``finish() -> str``.

``categories=None`` means every category but the opt-in ``names``. The module-level functions use the
built-in rules; a ``Guardrails`` object adds custom patterns (``Guardrails([("EMPLOYEE_ID", r"EMP-\\d{6}")])``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from .._core import Finding, Guardrails, Masker, StreamScanner

__all__ = ["CATEGORIES", "Finding", "Guardrails", "Masker", "StreamScanner", "default", "mask", "scan", "stream"]

CATEGORIES: tuple[str, ...] = tuple(Guardrails.categories())


@cache
def default() -> Guardrails:
    """The engine with the built-in rules only (compiled once, immutable)."""
    return Guardrails()


def scan(text: str, categories: Sequence[str] | None = None) -> list[Finding]:
    return default().scan(text, list(categories) if categories is not None else None)


def mask(text: str, categories: Sequence[str] | None = None) -> str:
    return default().mask(text, list(categories) if categories is not None else None)


def stream(categories: Sequence[str] | None = None) -> StreamScanner:
    return default().stream(list(categories) if categories is not None else None)

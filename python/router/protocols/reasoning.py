"""Reasoning effort ↔ thinking budget, per the tables in Requesty's reasoning docs.

Callers may send an effort (``none|min|minimal|low|medium|high|max``) or a numeric budget (``"10000"``).
OpenAI-style upstreams take an effort; Anthropic takes a budget, which must stay below ``max_tokens``.
"""

from __future__ import annotations

import msgspec

# Anthropic's budget for each effort; "max" is the model's output limit minus one.
_BUDGETS = {"none": 1024, "min": 1024, "minimal": 1024, "low": 1024, "medium": 8192, "high": 16384}
# Anthropic refuses smaller budgets.
MIN_BUDGET = 1024
DEFAULT_MAX_OUTPUT = 64000


def parse(value: object) -> str | int | None:
    """An effort name, a budget in tokens, or None when reasoning was not asked for."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    return text


def to_effort(value: str | int) -> str:
    """The effort an OpenAI upstream understands: low, medium or high."""
    if isinstance(value, int):
        return "low" if value <= 1024 else "medium" if value <= 8192 else "high"
    if value in ("low", "medium", "high"):
        return value
    return "high" if value in ("max", "xhigh") else "low"


def to_budget(value: str | int, max_tokens: int, model_max_output: int | None) -> int | None:
    """Anthropic's thinking budget, clamped below ``max_tokens``; None when no valid budget fits."""
    if isinstance(value, int):
        budget = value
    elif value in ("max", "xhigh"):
        budget = (model_max_output or DEFAULT_MAX_OUTPUT) - 1
    else:
        budget = _BUDGETS.get(value, _BUDGETS["medium"])
    budget = min(budget, max_tokens - 1)
    return budget if budget >= MIN_BUDGET else None


_OPENAI_EFFORTS = {name: msgspec.Raw(msgspec.json.encode(name)) for name in ("low", "medium", "high")}


def openai_effort_field(raw: msgspec.Raw) -> msgspec.Raw:
    """A chat request's raw ``reasoning_effort`` as an OpenAI-style upstream accepts it (the value unchanged
    when it already is one)."""
    try:
        value = parse(msgspec.json.decode(raw))
    except msgspec.MsgspecError:
        return raw
    if value is None:
        return raw
    return _OPENAI_EFFORTS[to_effort(value)]

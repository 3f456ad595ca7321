"""Reasoning effort ↔ thinking budget, per the tables in Requesty's reasoning docs.

Callers may send an effort (``none|min|minimal|low|medium|high|max``) or a numeric budget (``"10000"``).
OpenAI-style upstreams take an effort; Anthropic takes a budget, which must stay below ``max_tokens``.
"""

from __future__ import annotations

import msgspec

from ..errors import InvalidRequest

# Every effort a caller may send, on every endpoint.
EFFORTS = frozenset({"none", "min", "minimal", "low", "medium", "high", "xhigh", "max"})
# A numeric budget above this is a mistake, not a request (no model thinks for a million tokens).
MAX_BUDGET = 1_000_000

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


def check(value: object, param: str) -> str | int | None:
    """The caller's effort or budget, parsed; a 400 naming `param` for anything else."""
    if value is None:
        return None
    parsed = parse(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if isinstance(parsed, int):
        if isinstance(value, int) and value < 0:
            raise InvalidRequest(f"{param}: a reasoning budget cannot be negative.", param=param)
        if parsed > MAX_BUDGET:
            raise InvalidRequest(f"{param}: a reasoning budget is at most {MAX_BUDGET} tokens.", param=param)
        return parsed
    if parsed not in EFFORTS:
        allowed = ", ".join(sorted(EFFORTS))
        raise InvalidRequest(
            f"{param}: expected a reasoning effort ({allowed}) or a budget in tokens, got {value!r}.", param=param
        )
    return parsed


def wanted_budget(value: str | int, model_max_output: int | None) -> int | None:
    """The budget the caller asked for before any clamping (None: reasoning off)."""
    if value == "none":
        return None
    if isinstance(value, int):
        return value
    if value in ("max", "xhigh"):
        return (model_max_output or DEFAULT_MAX_OUTPUT) - 1
    return _BUDGETS.get(value, _BUDGETS["medium"])


def to_effort(value: str | int) -> str:
    """The effort an OpenAI upstream understands: low, medium or high."""
    if isinstance(value, int):
        return "low" if value <= 1024 else "medium" if value <= 8192 else "high"
    if value in ("low", "medium", "high"):
        return value
    return "high" if value in ("max", "xhigh") else "low"


def to_budget(value: str | int, max_tokens: int, model_max_output: int | None) -> int | None:
    """Anthropic's thinking budget, clamped below ``max_tokens``; None when reasoning is off ("none") or no
    valid budget fits."""
    budget = wanted_budget(value, model_max_output)
    if budget is None:
        return None
    budget = min(budget, max_tokens - 1)
    return budget if budget >= MIN_BUDGET else None


def room_for(value: str | int, model_max_output: int | None, default_max_tokens: int) -> int:
    """``max_tokens`` for a caller that set none: the budget asked for plus room for the answer, within the
    model's output limit."""
    budget = wanted_budget(value, model_max_output)
    if budget is None or budget < default_max_tokens:
        return default_max_tokens
    return min(budget + default_max_tokens, model_max_output or DEFAULT_MAX_OUTPUT)


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


def openai_reasoning_field(raw: msgspec.Raw) -> msgspec.Raw:
    """A Responses request's raw ``reasoning`` object with its effort as an OpenAI Responses upstream accepts it."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw
    if not isinstance(value, dict) or value.get("effort") is None:
        return raw
    effort = parse(value["effort"])
    if effort is None or effort in ("none", "minimal", "low", "medium", "high", "xhigh"):
        return raw  # OpenAI's own values go through as sent
    return msgspec.Raw(msgspec.json.encode({**value, "effort": to_effort(effort)}))

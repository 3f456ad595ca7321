"""The documented range of every numeric request parameter, per API, and the checks that hold a request to them.

A request's body is forwarded as it came (only `model` is rewritten), so a value out of range would reach the
upstream, and one the gateway itself reads (`max_tokens`, `n`) would skew the spend reservation. Only the fields a
request carries are looked at: a top-level field present in the table is decoded on its own (a few hundred
nanoseconds), every other field costs one set lookup.

The tables are the contract documented in docs/request-limits.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import msgspec

from ..errors import InvalidRequest

# 64-bit signed: what OpenAI's `seed` takes.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Token counts (max_tokens and its kin, embedding dimensions) fit a signed 32-bit integer on every upstream.
TOKENS_MAX = 2**31 - 1


class Range(NamedTuple):
    """`kind` is "int" (a JSON integer: never a boolean, never 1.0), "number" (integer or fraction, never a
    boolean), "bool", "effort" (a reasoning effort name, or a budget in tokens) or "choice" (one of `choices`).
    `low`/`high` are inclusive."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


_PROBABILITY = Range("number", 0, 1)
_PENALTY = Range("number", -2, 2)
_LOGPROBS = Range("int", 0, 20)
_TOKENS = Range("int", 1, TOKENS_MAX)

# POST /v1/chat/completions (top_k is not OpenAI's, but OpenAI-compatible servers take it: 0 means no limit).
CHAT: Mapping[str, Range] = {
    "max_tokens": _TOKENS,
    "max_completion_tokens": _TOKENS,
    "n": Range("int", 1, 128),
    "temperature": Range("number", 0, 2),
    "top_p": _PROBABILITY,
    "top_k": Range("int", 0, TOKENS_MAX),
    "frequency_penalty": _PENALTY,
    "presence_penalty": _PENALTY,
    "logprobs": Range("bool"),
    "top_logprobs": _LOGPROBS,
    "seed": Range("int", INT64_MIN, INT64_MAX),
    "reasoning_effort": Range("effort", 0, TOKENS_MAX),
}
# POST /v1/messages (`thinking.budget_tokens` is checked with the decoded request: it depends on max_tokens).
MESSAGES: Mapping[str, Range] = {
    "max_tokens": _TOKENS,
    "temperature": Range("number", 0, 1),
    "top_p": _PROBABILITY,
    "top_k": Range("int", 0, TOKENS_MAX),
}
# POST /v1/messages/count_tokens takes none of the sampling parameters; its thinking budget is checked decoded.
COUNT_TOKENS: Mapping[str, Range] = {}
# POST /v1/responses
RESPONSES: Mapping[str, Range] = {
    "max_output_tokens": _TOKENS,
    "max_tool_calls": _TOKENS,
    "temperature": Range("number", 0, 2),
    "top_p": _PROBABILITY,
    "top_logprobs": _LOGPROBS,
}
# POST /v1/embeddings
EMBEDDINGS: Mapping[str, Range] = {
    "dimensions": _TOKENS,
    "encoding_format": Range("choice", choices=("float", "base64")),
}
# POST /v1/images/generations (https://platform.openai.com/docs/api-reference/images/create)
IMAGE_SIZES = ("auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")
IMAGES_MAX_N = 10
IMAGES: Mapping[str, Range] = {
    "n": Range("int", 1, IMAGES_MAX_N),
    "size": Range("choice", choices=IMAGE_SIZES),
    "quality": Range("choice", choices=("auto", "standard", "hd", "low", "medium", "high")),
    "response_format": Range("choice", choices=("url", "b64_json")),
    "background": Range("choice", choices=("auto", "transparent", "opaque")),
    "output_format": Range("choice", choices=("png", "jpeg", "webp")),
    "output_compression": Range("int", 0, 100),
    "moderation": Range("choice", choices=("auto", "low")),
    "style": Range("choice", choices=("vivid", "natural")),
    "stream": Range("bool"),
}

_KINDS = {
    "int": "an integer",
    "number": "a number",
    "bool": "a boolean",
    "effort": "an effort name or a budget",
    "choice": "one of",
}


def _bounds(spec: Range) -> str:
    if spec.low is not None and spec.high is not None:
        return f"between {_num(spec.low)} and {_num(spec.high)}"
    return f"at least {_num(spec.low)}" if spec.low is not None else f"at most {_num(spec.high)}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _refuse(name: str, spec: Range, got: str) -> InvalidRequest:
    want = _KINDS[spec.kind]
    if spec.choices:
        want += " " + ", ".join(f"'{c}'" for c in spec.choices)
    elif spec.kind != "bool" and (spec.low is not None or spec.high is not None):
        want += " " + _bounds(spec)
    return InvalidRequest(f"Invalid '{name}': expected {want}, got {got}.", param=name, code="invalid_value")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 32 else text[:29] + "..."
    if isinstance(value, str):
        return "a string"
    return {list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def check_value(name: str, spec: Range, value: object) -> None:
    """Refuse (400, naming `name`) a value outside `spec`; null means "the default" and passes."""
    if value is None:
        return
    kind = spec.kind
    if kind == "choice":
        if value not in spec.choices:
            raise _refuse(name, spec, repr(value)[:32] if isinstance(value, str) else _describe(value))
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise _refuse(name, spec, _describe(value))
        return
    if kind == "effort" and isinstance(value, str):
        # An effort name or a budget spelled as a string ("10000"), as Requesty takes it.
        text = value.strip()
        if not text.isdigit():
            return
        value = int(text)
    number_ok = type(value) is int or (kind == "number" and type(value) is float)
    if not number_ok:
        raise _refuse(name, spec, _describe(value))
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise _refuse(name, spec, _describe(value))


def check_fields(fields: Mapping[str, msgspec.Raw], table: Mapping[str, Range]) -> None:
    """Check each top-level parameter of `table` the request carries."""
    for name in fields.keys() & table.keys():
        try:
            value = msgspec.json.decode(fields[name])
        except msgspec.MsgspecError:
            # The body passed `validation.check_json`, so only a number out of float range gets here.
            raise _refuse(name, table[name], "a number out of range") from None
        check_value(name, table[name], value)


def check_output_limit(requested: int | None, param: str, limits: Iterable[int | None]) -> None:
    """Refuse a requested output length no model that may serve the request can produce.

    `limits` are the catalog `max_output_tokens` of those models (None: unknown, which never refuses). The
    gateway refuses rather than clamps, as OpenAI and Anthropic do, so a client never silently gets less than it
    asked for; with a policy, the request is refused only when it exceeds every target's limit, and the
    reservation counts each target at its own limit."""
    if requested is None:
        return
    known = []
    for limit in limits:
        if limit is None:
            return
        known.append(limit)
    if known and requested > max(known):
        raise InvalidRequest(
            f"Invalid '{param}': {requested} is more than the model can produce; the limit is {max(known)} tokens.",
            param=param,
            code="invalid_value",
        )

"""Dedicated `coding/<model>` models: the same upstream model, with prompt caching always placed and the
parameters reasoning models refuse taken care of (docs/coding-models.md).

- Anthropic upstreams get `requesty.auto_cache` breakpoints (`protocols.caching`) unless the request itself
  says `auto_cache: false`. OpenAI-compatible upstreams (OpenAI, DeepSeek, Gemini's OpenAI endpoint) cache
  prefixes by themselves.
- OpenAI reasoning models (o1, o3, o4-mini, gpt-5...) refuse sampling parameters and `max_tokens`: the
  sampling ones are dropped, `max_tokens` becomes `max_completion_tokens`, and `system` messages are sent as
  `developer` messages, which is what those models take.
- DeepSeek's reasoner refuses `logprobs` and a `reasoning_content` field in the history (its own earlier
  reasoning, which chat clients echo back): both are removed, the sampling parameters it ignores too.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

PREFIX = "coding/"
Family = Literal["openai-reasoning", "deepseek-reasoning", "other"]

_OPENAI_REASONING = re.compile(r"^(o\d|gpt-5)")
_DEEPSEEK_REASONING = re.compile(r"deepseek-(reasoner|r1)")
# Parameters the reasoning models reject (OpenAI: 400 "unsupported_parameter") or ignore (DeepSeek).
_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias")


def family(upstream_name: str) -> Family:
    name = upstream_name.rpartition("/")[2].lower()
    if _OPENAI_REASONING.match(name):
        return "openai-reasoning"
    if _DEEPSEEK_REASONING.search(name):
        return "deepseek-reasoning"
    return "other"


def _decoded(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value


def _fix_messages(value: Any, kind: Family) -> Any:
    """The history with `reasoning_content` removed, and (OpenAI reasoning) system messages as developer ones;
    `value` is returned as it came (raw or decoded) when nothing needs changing."""
    if isinstance(value, msgspec.Raw):
        raw = bytes(value)
        if b"reasoning_content" not in raw and (kind != "openai-reasoning" or b'"system"' not in raw):
            return value
    messages = _decoded(value)
    if not isinstance(messages, list):
        return value
    for message in messages:
        if not isinstance(message, dict):
            continue
        message.pop("reasoning_content", None)
        if kind == "openai-reasoning" and message.get("role") == "system":
            message["role"] = "developer"
    return msgspec.Raw(msgspec.json.encode(messages)) if isinstance(value, msgspec.Raw) else messages


def prepare(kind: Family, api: str, body: dict[str, Any]) -> None:
    """Adjust an upstream request `body` (top-level values raw or decoded) for the model family, in place."""
    if kind == "other":
        return
    for name in _SAMPLING:
        body.pop(name, None)
    if api == "chat":
        if "max_tokens" in body:
            limit = body.pop("max_tokens")
            if kind == "openai-reasoning":
                body.setdefault("max_completion_tokens", limit)
            else:
                body["max_tokens"] = limit
        if "messages" in body:
            body["messages"] = _fix_messages(body["messages"], kind)

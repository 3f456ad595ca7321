"""OpenAI Responses requests: the shape the gateway validates before anything goes upstream.

Input items may omit ``type`` (a bare ``{role, content}`` is a message), which a msgspec tagged union cannot
express, so items are checked here field by field with errors naming the path.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..errors import InvalidRequest
from . import reasoning
from .validation import validate

ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning", "item_reference"})
PART_TYPES = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal", "summary_text"})
ROLES = frozenset({"user", "assistant", "system", "developer"})


class Reasoning(msgspec.Struct):
    # OpenAI's efforts, plus the gateway's ("min", "max") and budgets in tokens ("10000" or 10000): see
    # protocols.reasoning. An OpenAI Responses upstream gets the nearest effort it knows.
    effort: str | int | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class TextFormat(msgspec.Struct):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class Text(msgspec.Struct):
    format: TextFormat | None = None


class Tool(msgspec.Struct):
    type: str
    name: str | None = None
    parameters: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponsesRequest(msgspec.Struct):
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning: Reasoning | None = None
    text: Text | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool | None = None


_decoder = msgspec.json.Decoder(ResponsesRequest)


def _bad(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{path}': {message}", param=path, code="invalid_value")


def _check_item(i: int, item: dict[str, Any]) -> None:
    path = f"input[{i}]"
    kind = item.get("type", "message")
    if kind not in ITEM_TYPES:
        raise _bad(f"{path}.type", f"unknown item type {kind!r}; expected one of {', '.join(sorted(ITEM_TYPES))}.")
    if kind == "message":
        if item.get("role") not in ROLES:
            raise _bad(f"{path}.role", f"expected one of {', '.join(sorted(ROLES))}.")
        content = item.get("content")
        if isinstance(content, str):
            return
        if not isinstance(content, list):
            raise _bad(f"{path}.content", "expected a string or a list of content parts.")
        for j, part in enumerate(content):
            part_type = part.get("type") if isinstance(part, dict) else None
            if part_type not in PART_TYPES:
                raise _bad(f"{path}.content[{j}].type", f"unknown content part type {part_type!r}.")
    elif kind == "function_call":
        for field in ("call_id", "name", "arguments"):
            if not isinstance(item.get(field), str):
                raise _bad(f"{path}.{field}", "expected a string.")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise _bad(f"{path}.call_id", "expected a string.")
        if not isinstance(item.get("output"), str | list):
            raise _bad(f"{path}.output", "expected a string or a list of content parts.")


def validate_responses(body: bytes) -> ResponsesRequest:
    request = validate(_decoder, body)
    if not request.model:
        raise _bad("model", "it must be a non-empty string.")
    if isinstance(request.input, list):
        if not request.input:
            raise _bad("input", "it must contain at least one item.")
        for i, item in enumerate(request.input):
            _check_item(i, item)
    for i, tool in enumerate(request.tools or ()):
        if tool.type == "function":
            if not tool.name:
                raise _bad(f"tools[{i}].name", "a function tool needs a name.")
            if tool.parameters is not None and tool.parameters.get("type") != "object":
                raise _bad(f"tools[{i}].parameters", 'must be a JSON schema with "type": "object".')
    if request.max_output_tokens is not None and request.max_output_tokens < 1:
        raise _bad("max_output_tokens", "must be at least 1.")
    if request.reasoning is not None:
        reasoning.check(request.reasoning.effort, "reasoning.effort")
    return request

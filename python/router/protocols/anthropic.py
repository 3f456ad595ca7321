"""Anthropic Messages requests: the shape the gateway validates before anything goes upstream, and the token
estimate behind ``/v1/messages/count_tokens`` and ``message_start``.

Block types are a closed tagged union, so an unknown ``type`` is a 400 naming the path; unknown *fields* are
accepted (Anthropic adds them often) and forwarded untouched to Anthropic upstreams.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Literal

import msgspec

from ..errors import InvalidRequest
from .validation import validate

CacheControl = dict[str, Any]


class TextBlock(msgspec.Struct, tag_field="type", tag="text"):
    text: str
    cache_control: CacheControl | None = None
    citations: list[Any] | None = None


class Source(msgspec.Struct):
    type: Literal["base64", "url", "text", "file", "content"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None


class ImageBlock(msgspec.Struct, tag_field="type", tag="image"):
    source: Source
    cache_control: CacheControl | None = None


class DocumentBlock(msgspec.Struct, tag_field="type", tag="document"):
    source: Source
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl | None = None


class ToolUseBlock(msgspec.Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]
    cache_control: CacheControl | None = None


ResultPart = TextBlock | ImageBlock | DocumentBlock


class ToolResultBlock(msgspec.Struct, tag_field="type", tag="tool_result"):
    tool_use_id: str
    content: str | list[ResultPart] = ""
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlock(msgspec.Struct, tag_field="type", tag="thinking"):
    thinking: str
    signature: str


class RedactedThinkingBlock(msgspec.Struct, tag_field="type", tag="redacted_thinking"):
    data: str


# Anthropic's server-side tool blocks (web search, code execution, MCP, …) appear in the history clients such
# as Claude Code send back. Only Anthropic upstreams can take them, so they are accepted as they are and
# forwarded untouched there; their fields are Anthropic's business.
SERVER_BLOCK_TYPES = (
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
    "mcp_tool_result", "container_upload", "search_result", "tool_reference",
)  # fmt: skip
_SERVER_BLOCKS = [
    msgspec.defstruct(f"ServerBlock_{kind}", [], tag_field="type", tag=kind) for kind in SERVER_BLOCK_TYPES
]

Block = functools.reduce(
    operator.or_,
    [TextBlock, ImageBlock, DocumentBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock,
     *_SERVER_BLOCKS],
)  # fmt: skip


class Message(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(msgspec.Struct):
    name: str
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    # Server tools (web_search_20250305, …) carry a type and no schema.
    type: str | None = None
    cache_control: CacheControl | None = None


class ToolChoice(msgspec.Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(msgspec.Struct):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None


class MessagesRequest(msgspec.Struct):
    model: str
    max_tokens: int
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    stream: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None


class CountTokensRequest(msgspec.Struct):
    model: str
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    thinking: Thinking | None = None


_messages_decoder = msgspec.json.Decoder(MessagesRequest)
_count_decoder = msgspec.json.Decoder(CountTokensRequest)


def _check_common(request: MessagesRequest | CountTokensRequest) -> None:
    if not request.model:
        raise InvalidRequest("model: must be a non-empty string.", param="model")
    if not request.messages:
        raise InvalidRequest("messages: at least one message is required.", param="messages")
    for i, tool in enumerate(request.tools or ()):
        if tool.type is not None and tool.type != "custom":
            continue
        schema = tool.input_schema
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequest(
                f'tools.{i}.input_schema: must be a JSON schema object with "type": "object".',
                param=f"tools.{i}.input_schema",
            )
    thinking = request.thinking
    if thinking is not None and thinking.type == "enabled":
        budget = thinking.budget_tokens
        if budget is None or budget < 1024:
            raise InvalidRequest("thinking.budget_tokens: must be at least 1024.", param="thinking.budget_tokens")
    for i, message in enumerate(request.messages):
        if message.role == "user" and not isinstance(message.content, str):
            for j, block in enumerate(message.content):
                if isinstance(block, ThinkingBlock | RedactedThinkingBlock | ToolUseBlock):
                    kind = type(block).__struct_config__.tag
                    raise InvalidRequest(
                        f"messages.{i}.content.{j}: '{kind}' blocks are only allowed in assistant messages.",
                        param=f"messages.{i}.content.{j}.type",
                    )


def validate_messages(body: bytes) -> MessagesRequest:
    request = validate(_messages_decoder, body)
    _check_common(request)
    if request.max_tokens < 1:
        raise InvalidRequest("max_tokens: must be at least 1.", param="max_tokens")
    thinking = request.thinking
    if thinking is not None and thinking.type == "enabled":
        budget = thinking.budget_tokens
        if budget is not None and budget >= request.max_tokens:
            raise InvalidRequest(
                "thinking.budget_tokens: must be less than max_tokens.", param="thinking.budget_tokens"
            )
    return request


def validate_count_tokens(body: bytes) -> CountTokensRequest:
    request = validate(_count_decoder, body)
    _check_common(request)
    return request


# --- token estimate ---

# Anthropic bills an image by its pixels (about width*height/750); without decoding it we assume a typical
# ~1.1-megapixel image. A PDF page costs roughly as much, and we cannot count pages without parsing it.
IMAGE_TOKENS = 1600
CHARS_PER_TOKEN = 4
# Fixed cost of the tool-use system prompt Anthropic adds when tools are given.
TOOLS_OVERHEAD = 300


def _block_chars(block: Block | ResultPart) -> tuple[int, int]:
    """(characters of text, number of images/documents)."""
    if isinstance(block, TextBlock):
        return len(block.text), 0
    if isinstance(block, ThinkingBlock):
        return len(block.thinking), 0
    if isinstance(block, ToolUseBlock):
        return len(block.name) + len(msgspec.json.encode(block.input)), 0
    if isinstance(block, ToolResultBlock):
        if isinstance(block.content, str):
            return len(block.content), 0
        chars = media = 0
        for part in block.content:
            c, m = _block_chars(part)
            chars, media = chars + c, media + m
        return chars, media
    if isinstance(block, DocumentBlock) and block.source.type == "text":
        return len(block.source.data or ""), 0
    if isinstance(block, ImageBlock | DocumentBlock):
        return 0, 1
    return 0, 0


def estimate_input_tokens(request: MessagesRequest | CountTokensRequest) -> int:
    """Characters / 4 over every text (system, messages, tool calls and results, tool definitions), plus
    ``IMAGE_TOKENS`` per image or document and ``TOOLS_OVERHEAD`` when tools are defined. At least 1."""
    chars = media = 0
    system = request.system
    if isinstance(system, str):
        chars += len(system)
    elif system:
        chars += sum(len(b.text) for b in system)
    for message in request.messages:
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for block in message.content:
            c, m = _block_chars(block)
            chars, media = chars + c, media + m
    tokens = chars // CHARS_PER_TOKEN + media * IMAGE_TOKENS
    if request.tools:
        tools_chars = sum(len(t.name) + len(t.description or "") + len(msgspec.json.encode(t.input_schema or {}))
                          for t in request.tools)  # fmt: skip
        tokens += tools_chars // CHARS_PER_TOKEN + TOOLS_OVERHEAD
    return max(tokens, 1)


_encode_event = msgspec.json.encode


def output_schema(req: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a Messages request asks the answer to follow: `output_config.format` or the beta's
    `output_format`, `{"type": "json_schema", "schema": {…}}`
    (https://docs.claude.com/en/docs/build-with-claude/structured-outputs); None without one."""
    config = req.get("output_config")
    found = config.get("format") if isinstance(config, dict) else None
    param = "output_config.format"
    if found is None:
        found, param = req.get("output_format"), "output_format"
    if found is None:
        return None
    if not isinstance(found, dict) or found.get("type") != "json_schema" or not isinstance(found.get("schema"), dict):
        expected = '{"type": "json_schema", "schema": {…}}'
        raise InvalidRequest(f"Invalid '{param}': expected {expected}.", param=param, code="invalid_value")
    return found["schema"]


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    """One Messages stream event as Anthropic sends it: `event: <name>` and its data with `"type": <name>`."""
    return b"event: " + name.encode() + b"\ndata: " + _encode_event({"type": name, **data}) + b"\n\n"

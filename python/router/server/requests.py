"""The request shapes the gateway validates before anything goes upstream.

Only the fields the gateway acts on are declared; everything else in the body (tools, response_format,
provider-specific extensions) is forwarded byte for byte and never decoded.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import InvalidRequest
from ..protocols.validation import check_json
from ..protocols.validation import validate as _validate

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(msgspec.Struct):
    role: Role
    # Content parts (text, images, audio, files) are the provider's business: kept raw, never materialised.
    content: str | list[msgspec.Raw] | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class Metadata(msgspec.Struct):
    """Request metadata, Requesty-compatible: the body's `requesty` field or the `x-router-metadata` header,
    decoded once per request for everything that reads it (usage rows, the auto-cache setting)."""

    tags: list[str] = []
    user_id: str | None = None
    trace_id: str | None = None
    # The client's own session id; without one (and without a trace id) sessions are reconstructed.
    session_id: str | None = None
    extra: dict[str, str] = {}
    # Prompt-cache breakpoints for Anthropic upstreams (`protocols.caching`); None: the key's or org's default.
    auto_cache: bool | None = None


class FunctionDef(msgspec.Struct):
    name: str
    # A JSON schema object: only its top level is decoded, to check it describes an object.
    parameters: dict[str, msgspec.Raw] | None = None


class Tool(msgspec.Struct):
    type: str
    function: FunctionDef | None = None


class ChatRequest(msgspec.Struct):
    model: str
    messages: list[Message]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    user: str | None = None
    tools: list[Tool] | None = None


class EmbeddingsRequest(msgspec.Struct):
    model: str
    # OpenAI also accepts token arrays (lists of ints, or lists of them).
    input: str | list[str | int | list[int]]
    user: str | None = None


_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_chat_decoder = msgspec.json.Decoder(ChatRequest)
_embeddings_decoder = msgspec.json.Decoder(EmbeddingsRequest)
_encoder = msgspec.json.Encoder()


def decode_fields(body: bytes) -> dict[str, msgspec.Raw]:
    """The top-level fields of a JSON object body, each still raw bytes (the whole body checked first: UTF-8,
    nesting depth, see `protocols.validation.check_json`)."""
    if not body:
        raise InvalidRequest("The request body is empty: send a JSON object.", code="invalid_json")
    check_json(body)
    try:
        return _fields_decoder.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


def validate_chat(body: bytes) -> ChatRequest:
    request = _validate(_chat_decoder, body)
    if not request.messages:
        raise InvalidRequest(
            "Invalid 'messages': it must contain at least one message.", param="messages", code="empty_array"
        )
    if not request.model:
        raise InvalidRequest("Invalid 'model': it must be a non-empty string.", param="model", code="invalid_value")
    for i, tool in enumerate(request.tools or ()):
        if tool.type != "function":
            continue
        if tool.function is None:
            raise InvalidRequest(
                f"Missing required parameter: 'tools[{i}].function'.",
                param=f"tools[{i}].function",
                code="missing_required_parameter",
            )
        schema_type = (tool.function.parameters or {}).get("type")
        if schema_type is not None and bytes(schema_type) != b'"object"':
            raise InvalidRequest(
                f"Invalid schema for function '{tool.function.name}': schema must be a JSON Schema of 'type: "
                f"\"object\"', got 'type: {bytes(schema_type).decode()}'.",
                param=f"tools[{i}].function.parameters",
                code="invalid_function_parameters",
            )
    return request


_metadata_decoder = msgspec.json.Decoder(Metadata)


def request_metadata(body: msgspec.Raw | None, header: str | None, limit: int) -> Metadata | None:
    """The body's `requesty` metadata, else the header's; refused (400) when malformed or over `limit` bytes."""
    if body is None and header is None:
        return None
    raw, source = (body, "requesty") if body is not None else ((header or "").encode(), "x-router-metadata")
    size = len(raw)
    try:
        metadata = _metadata_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRequest(
            f"Invalid '{source}': {exc}; expected a JSON object with tags, user_id, trace_id, session_id, extra, "
            "auto_cache.",
            param=source,
            code="invalid_metadata",
        ) from None
    if size > limit:
        raise InvalidRequest(
            f"Request metadata ('{source}') is {size} bytes; the limit is {limit} bytes.",
            param=source,
            code="metadata_too_large",
        )
    return metadata


def chat_output(request: ChatRequest) -> tuple[str, int | None]:
    """The parameter bounding a chat answer and its value: `max_completion_tokens` (OpenAI's current name)
    over `max_tokens` when both are set, as OpenAI reads them."""
    if request.max_completion_tokens is not None:
        return "max_completion_tokens", request.max_completion_tokens
    return "max_tokens", request.max_tokens


def validate_embeddings(body: bytes) -> EmbeddingsRequest:
    request = _validate(_embeddings_decoder, body)
    if not request.model:
        raise InvalidRequest("Invalid 'model': it must be a non-empty string.", param="model", code="invalid_value")
    if request.input == "" or request.input == []:
        raise InvalidRequest("Invalid 'input': it must not be empty.", param="input", code="invalid_value")
    return request


class ImagesRequest(msgspec.Struct):
    model: str
    prompt: str
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: str | None = None
    background: str | None = None
    output_format: str | None = None
    stream: bool | None = None
    user: str | None = None


_images_decoder = msgspec.json.Decoder(ImagesRequest)
# gpt-image-1's documented limit; DALL-E models take less and say so themselves.
IMAGE_PROMPT_MAX_CHARS = 32_000


def validate_images(body: bytes) -> ImagesRequest:
    """`POST /v1/images/generations`: the fields the gateway prices, routes and translates (ranges are checked
    by `limits.IMAGES`)."""
    request = _validate(_images_decoder, body)
    if not request.model:
        raise InvalidRequest("Invalid 'model': it must be a non-empty string.", param="model", code="invalid_value")
    if not request.prompt.strip():
        raise InvalidRequest("Invalid 'prompt': it must not be empty.", param="prompt", code="invalid_value")
    if len(request.prompt) > IMAGE_PROMPT_MAX_CHARS:
        raise InvalidRequest(
            f"Invalid 'prompt': {len(request.prompt)} characters; the limit is {IMAGE_PROMPT_MAX_CHARS}.",
            param="prompt",
            code="string_above_max_length",
        )
    if request.stream:
        raise InvalidRequest(
            "Streaming image generation ('stream': true) is not supported; leave 'stream' out.",
            param="stream",
            code="unsupported_value",
        )
    return request


def encode_fields(fields: dict[str, msgspec.Raw | object]) -> bytes:
    return _encoder.encode(fields)


INCLUDE_USAGE = msgspec.Raw(b'{"include_usage":true}')


def with_usage_requested(fields: dict[str, msgspec.Raw], options: StreamOptions | None) -> None:
    """Ask the upstream for the usage chunk, keeping any other stream option the client set."""
    if options is None:
        fields["stream_options"] = INCLUDE_USAGE
        return
    merged = msgspec.json.decode(fields["stream_options"])
    merged["include_usage"] = True
    fields["stream_options"] = msgspec.Raw(_encoder.encode(merged))

"""Amazon Bedrock Converse and ConverseStream, authenticated the way Bedrock does it.

Every request must carry a SigV4 signature made with the mock's test credentials (recomputed here, so a signing
bug fails a test with the 403 AWS would send) or the mock's Bedrock API key as a bearer token. Replies are
planned like Anthropic Messages replies (same tool, echo, thinking and cache behaviour) and shaped as Converse:

- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html (request, response, errors)
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html (stream events)
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html (signature errors)

Streams are AWS event-stream framed (`router._core.encode_event_stream_message`).
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import datetime
import hmac
import re
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import msgspec

from .._core import encode_event_stream_message
from ..providers.sigv4 import Credentials, SigV4Signer, payload_hash
from . import anthropic_messages as messages
from . import openai_chat as chat
from .content import thinking_signature
from .knobs import KnobError

if TYPE_CHECKING:
    from .app import MockApp

# The mock's test credentials (AWS's documentation example key pair) and Bedrock API key.
ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
API_KEY = "bedrock-api-key-mock"
# SigV4 requests older or newer than this are refused ("Signature expired").
MAX_SKEW_SECONDS = 15 * 60

PATH_RE = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")
INVOKE_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)
EVENT_STREAM_HEADERS = [("content-type", "application/vnd.amazon.eventstream")]
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _error(proto: Any, status: int, name: str, message: str) -> None:
    headers = [("content-type", "application/json"), ("x-amzn-errortype", f"{name}:http://internal.amazon.com/coral/")]
    proto.response_bytes(status, headers, msgspec.json.encode({"message": message}))


# Mock fault knob → the Bedrock exception a real endpoint answers with.
FAULTS: Mapping[str, tuple[int, str, str]] = {
    "400": (400, "ValidationException", "Malformed input request (mock)."),
    "401": (403, "UnrecognizedClientException", "The security token included in the request is invalid (mock)."),
    "403": (403, "AccessDeniedException", "You don't have access to the model with the specified model ID (mock)."),
    "429": (429, "ThrottlingException", "Too many requests, please wait before trying again (mock)."),
    "500": (500, "InternalServerException", "Internal server error (mock)."),
    "503": (503, "ServiceUnavailableException", "Service unavailable (mock)."),
    "529": (429, "ModelNotReadyException", "Model is not ready to serve inference requests (mock)."),
}


_AMZ_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


def _epoch(amz_date: str) -> float | None:
    """Seconds since the epoch of an `X-Amz-Date` (strptime would cost more than the whole signature check)."""
    match = _AMZ_DATE.match(amz_date)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        return calendar.timegm(datetime.datetime(year, month, day, hour, minute, second).timetuple())
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _signer(region: str, service: str) -> SigV4Signer:
    # One per credential scope: each caches its signing key for the day.
    return SigV4Signer(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), region, service)


def verify(scope: Any, body: bytes, now: float | None = None) -> tuple[int, str, str] | None:
    """None when the request is authenticated; else (status, exception, message) as Bedrock answers."""
    headers = scope.headers
    auth = headers.get("authorization") or ""
    if auth.startswith("Bearer "):
        if hmac.compare_digest(auth[7:].encode(), API_KEY.encode()):
            return None
        return 403, "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix"
    match = _AUTH_RE.match(auth)
    if match is None:
        return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
    access_key, date, region, service, signed, signature = match.groups()
    if not hmac.compare_digest(access_key.encode(), ACCESS_KEY_ID.encode()):
        return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date") or ""
    when = _epoch(amz_date)
    if when is None:
        return 403, "IncompleteSignatureException", "Missing or malformed X-Amz-Date."
    if abs((now or time.time()) - when) > MAX_SKEW_SECONDS or amz_date[:8] != date:
        return 403, "InvalidSignatureException", "Signature expired or not yet valid."
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        return 403, "IncompleteSignatureException", "Host and X-Amz-Date must be signed."
    signer = _signer(region, service)
    signed_headers = [(n, headers.get(n) or "") for n in names]
    canonical, _ = signer.canonical_request(
        scope.method, _raw_path(scope), scope.query_string, signed_headers, payload_hash(body)
    )
    expected = hmac.digest(signer.signing_key(date), signer.string_to_sign(amz_date, canonical).encode(), "sha256")
    if not hmac.compare_digest(expected.hex().encode(), signature.encode()):
        return (
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method.",
        )
    return None


def _raw_path(scope: Any) -> str:
    # The signature covers the path as sent; granian hands it over percent-decoded, and every Converse path
    # segment but the model id is plain, so re-encoding the model id restores the wire form.
    match = PATH_RE.match(scope.path)
    if match is None:
        return scope.path
    return f"/model/{quote(unquote(match.group(1)), safe='')}/{match.group(2)}"


# --- Converse request → the Messages request the reply planner knows ---


def _block(block: dict[str, Any]) -> dict[str, Any] | None:
    if "text" in block:
        return {"type": "text", "text": block["text"]}
    if "toolResult" in block:
        result = block["toolResult"]
        texts = [c.get("text", "") for c in result.get("content") or () if isinstance(c, dict) and "text" in c]
        return {"type": "tool_result", "content": [{"type": "text", "text": t} for t in texts]}
    return None  # images, documents, tool uses and reasoning carry no prompt text for the planner


def _blocks(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for block in content:
        if "cachePoint" in block and out:
            out[-1]["cache_control"] = {"type": "ephemeral"}
            continue
        converted = _block(block)
        if converted is not None:
            out.append(converted)
    return out


class InvalidConverse(ValueError):
    pass


def as_messages_request(body: dict[str, Any], model: str) -> messages.MessagesRequest:
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidConverse("The messages field is required and must not be empty.")
    turns = []
    previous = None
    for i, m in enumerate(body["messages"]):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or not isinstance(m.get("content"), list):
            raise InvalidConverse(f"messages.{i}: expected a role (user or assistant) and a content list.")
        if role == previous:
            raise InvalidConverse("A conversation must alternate between user and assistant roles.")
        previous = role
        turns.append(messages.Message(role=role, content=_blocks(m["content"])))
    if turns[0].role != "user":
        raise InvalidConverse("A conversation must start with a user message.")
    tools = []
    choice = None
    config = body.get("toolConfig")
    if isinstance(config, dict):
        for t in config.get("tools") or ():
            spec = t.get("toolSpec") if isinstance(t, dict) else None
            if spec:
                tools.append(
                    messages.Tool(name=spec.get("name", ""), input_schema=(spec.get("inputSchema") or {}).get("json"))
                )
        c = config.get("toolChoice") or {}
        if "any" in c:
            choice = messages.ToolChoice(type="any")
        elif "tool" in c:
            choice = messages.ToolChoice(type="tool", name=c["tool"].get("name"))
    thinking = ((body.get("additionalModelRequestFields") or {}).get("thinking")) or None
    max_tokens = (body.get("inferenceConfig") or {}).get("maxTokens") or 4096
    return messages.MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        messages=turns,
        system=_blocks(body.get("system") or []) or None,
        tools=tools or None,
        tool_choice=choice,
        thinking=messages.Thinking(type=thinking.get("type", "disabled"), budget_tokens=thinking.get("budget_tokens"))
        if isinstance(thinking, dict)
        else None,
    )


# --- replies ---


def _usage(request: messages.MessagesRequest, output: int) -> dict[str, int]:
    uncached, cached = messages.prompt_usage(request)
    return {
        "inputTokens": uncached,
        "outputTokens": output,
        "totalTokens": uncached + cached + output,
        "cacheReadInputTokens": cached,
        "cacheWriteInputTokens": 0,
    }


def converse_body(request: messages.MessagesRequest, plan: chat.ReplyPlan) -> bytes:
    thinking = messages.thinking_tokens(request)
    content: list[dict[str, Any]] = []
    if thinking:
        text = "".join(thinking)
        content.append({"reasoningContent": {"reasoningText": {"text": text, "signature": thinking_signature(text)}}})
    if plan.tokens or not plan.tool_calls:
        content.append({"text": "".join(plan.tokens)})
    content.extend(
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": msgspec.json.decode(c.arguments)}}
        for c in plan.tool_calls
    )
    return msgspec.json.encode(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _STOP[plan.finish_reason],
            "usage": _usage(request, plan.completion_tokens + len(thinking)),
            "metrics": {"latencyMs": 1},
        }
    )


def _event(kind: str, body: dict[str, Any], payload: bytes | None = None) -> bytes:
    headers: dict[str, str | bytes | bool | int] = {
        ":event-type": kind,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_event_stream_message(headers, msgspec.json.encode(body) if payload is None else payload)


def stream_events(request: messages.MessagesRequest, plan: chat.ReplyPlan) -> chat.StreamEvents:
    """``head``: messageStart; ``tokens``: every block event; ``tail``: messageStop and metadata."""
    thinking = messages.thinking_tokens(request)
    tokens: list[bytes] = []
    index = 0
    if thinking:
        tokens.extend(
            _event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": t}}})
            for t in thinking
        )
        signature = thinking_signature("".join(thinking))
        tokens.append(
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": signature}}},
            )
        )
        tokens.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if plan.tokens or not plan.tool_calls:
        tokens.extend(
            _event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": t}}) for t in plan.tokens
        )
        tokens.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call in plan.tool_calls:
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        tokens.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        tokens.extend(
            _event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": f}}})
            for f in call.fragments
        )
        tokens.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    usage = _usage(request, plan.completion_tokens + len(thinking))
    tail = _event("messageStop", {"stopReason": _STOP[plan.finish_reason]}) + _event(
        "metadata", {"usage": usage, "metrics": {"latencyMs": 1}}
    )
    return chat.StreamEvents(head=_event("messageStart", {"role": "assistant"}), tokens=tokens, tail=tail)


async def handle(app: MockApp, scope: Any, proto: Any) -> None:
    """`POST /model/{modelId}/converse` and `/converse-stream`."""
    match = PATH_RE.match(scope.path)
    if match is None or scope.method != "POST":
        return _error(proto, 404, "UnknownOperationException", f"Unknown operation {scope.method} {scope.path}.")
    body = await proto()
    model_id, operation = unquote(match.group(1)), match.group(2)
    stream = operation in ("converse-stream", "invoke-with-response-stream")
    app._record(scope, model_id, stream, body)
    denied = verify(scope, body)
    if denied is not None:
        return _error(proto, *denied)
    if operation.startswith("invoke"):
        return await _invoke(app, scope, proto, body, model_id, stream)
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise InvalidConverse("The request body must be a JSON object.")
        model, knobs = app._resolve(scope.headers, None, model_id)
        request = as_messages_request(decoded, model)
    except (msgspec.DecodeError, InvalidConverse, KnobError, AttributeError, TypeError) as exc:
        return _error(proto, 400, "ValidationException", f"Malformed input request: {exc}")
    fail = app._failure(knobs, model_id)
    if await app._before_reply(proto, knobs, fail, {}):
        return None
    fault = FAULTS.get(fail)
    if fault is not None:
        return _error(proto, *fault)
    plan = messages.plan_reply(request, knobs)
    if stream:
        events = stream_events(request, plan)
        return await app._counted_stream(scope, proto, events, knobs, fail, EVENT_STREAM_HEADERS)
    if knobs.token_delay_ms:
        await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
    await app._send_json(scope, proto, converse_body(request, plan), fail)


def _chunks(sse: bytes) -> bytes:
    """Anthropic SSE events as InvokeModelWithResponseStream sends them: each event's JSON, base64-encoded,
    in a `chunk` event."""
    out = b""
    for block in sse.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                payload = msgspec.json.encode({"bytes": base64.b64encode(line[6:]).decode()})
                out += _event("chunk", {}, payload)
    return out


async def _invoke(app: MockApp, scope: Any, proto: Any, body: bytes, model_id: str, stream: bool) -> None:
    """InvokeModel / InvokeModelWithResponseStream for Anthropic models (their Messages body)."""
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise ValueError("the body must be a JSON object")
        if decoded.get("anthropic_version") != INVOKE_ANTHROPIC_VERSION:
            raise ValueError(f"anthropic_version: expected {INVOKE_ANTHROPIC_VERSION!r}")
        if "model" in decoded:
            raise ValueError("extraneous key [model] is not permitted")
        decoded["model"] = model_id
        request = messages.REQUEST_DECODER.decode(msgspec.json.encode(decoded))
        model, knobs = app._resolve(scope.headers, request.mock, model_id)
    except (msgspec.DecodeError, ValueError, KnobError) as exc:
        return _error(proto, 400, "ValidationException", f"Malformed input request: {exc}")
    fail = app._failure(knobs, model_id)
    if await app._before_reply(proto, knobs, fail, {}):
        return None
    fault = FAULTS.get(fail)
    if fault is not None:
        return _error(proto, *fault)
    plan = messages.plan_reply(request, knobs)
    message_id = app._new_id("msg_bdrk_")
    if stream:
        events = messages.stream_events(request, plan, message_id, model)
        framed = chat.StreamEvents(
            head=_chunks(events.head), tokens=[_chunks(t) for t in events.tokens], tail=_chunks(events.tail)
        )
        return await app._counted_stream(scope, proto, framed, knobs, fail, EVENT_STREAM_HEADERS)
    await app._send_json(scope, proto, messages.message_body(request, plan, message_id, model), fail)


__all__ = ["ACCESS_KEY_ID", "API_KEY", "SECRET_ACCESS_KEY", "handle", "verify"]

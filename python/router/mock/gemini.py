"""Google Gemini `generateContent` and `streamGenerateContent?alt=sse` (AI Studio paths), API key checked.

Replies are planned like Anthropic Messages replies (tools, echo, thinking) and shaped as Gemini's
GenerateContentResponse (https://ai.google.dev/api/generate-content). A request without the mock's API key gets
what Google sends: 403 PERMISSION_DENIED without a key, 400 INVALID_ARGUMENT (API_KEY_INVALID) with a wrong one.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import msgspec

from . import anthropic_messages as messages
from . import openai_chat as chat
from . import web_search
from .knobs import KnobError
from .openai_images import image_b64

if TYPE_CHECKING:
    from .app import MockApp

API_KEY = "gemini-api-key-mock"
PATH_RE = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|predict)$")
JSON_HEADERS = [("content-type", "application/json; charset=UTF-8")]
SSE_HEADERS = [("content-type", "text/event-stream")]
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def error_body(code: int, status: str, message: str, reason: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return msgspec.json.encode({"error": error})


def _error(proto: Any, code: int, status: str, message: str, reason: str | None = None) -> None:
    proto.response_bytes(code, JSON_HEADERS, error_body(code, status, message, reason))


# Mock fault knob → Google's error for it.
FAULTS: Mapping[str, tuple[int, str, str]] = {
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument (mock)."),
    "401": (401, "UNAUTHENTICATED", "Request had invalid authentication credentials (mock)."),
    "403": (403, "PERMISSION_DENIED", "The caller does not have permission (mock)."),
    "429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota) (mock)."),
    "500": (500, "INTERNAL", "An internal error has occurred (mock)."),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later (mock)."),
    "529": (503, "UNAVAILABLE", "The model is overloaded. Please try again later (mock)."),
}


def api_key_problem(scope: Any) -> tuple[int, str, str, str | None] | None:
    key = scope.headers.get("x-goog-api-key")
    if key is None:
        key = (parse_qs(scope.query_string).get("key") or [None])[0]
    if not key:
        return 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", None
    if not hmac.compare_digest(key.encode(), API_KEY.encode()):
        return 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
    return None


class InvalidGemini(ValueError):
    pass


def _texts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for part in parts:
        if "text" in part and not part.get("thought"):
            out.append({"type": "text", "text": part["text"]})
        elif "functionResponse" in part:
            response = part["functionResponse"].get("response") or {}
            text = msgspec.json.encode(response).decode()
            out.append({"type": "tool_result", "content": [{"type": "text", "text": text}]})
    return out


def as_messages_request(body: dict[str, Any], model: str) -> messages.MessagesRequest:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidGemini("* GenerateContentRequest.contents: contents is not specified")
    turns = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list) or not content["parts"]:
            raise InvalidGemini(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise InvalidGemini(f"Please use a valid role: user, model. (contents[{i}].role: {role})")
        turns.append(
            messages.Message(role="assistant" if role == "model" else "user", content=_texts(content["parts"]))
        )
    tools = [
        messages.Tool(name=d.get("name", ""), input_schema=d.get("parametersJsonSchema") or d.get("parameters"))
        for t in body.get("tools") or ()
        for d in t.get("functionDeclarations") or ()
    ]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    allowed = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("allowedFunctionNames")
    choice = None
    if mode == "ANY" and allowed and len(allowed) == 1:
        choice = messages.ToolChoice(type="tool", name=allowed[0])
    elif mode in ("ANY", "NONE"):
        choice = messages.ToolChoice(type={"ANY": "any", "NONE": "none"}[mode])
    generation = body.get("generationConfig") or {}
    budget = (generation.get("thinkingConfig") or {}).get("thinkingBudget")
    system = (body.get("systemInstruction") or {}).get("parts")
    return messages.MessagesRequest(
        model=model,
        max_tokens=generation.get("maxOutputTokens") or 8192,
        messages=turns,
        system=_texts(system) if system else None,
        tools=tools or None,
        tool_choice=choice,
        thinking=messages.Thinking(type="enabled", budget_tokens=budget) if budget else None,
    )


def _usage(request: messages.MessagesRequest, plan: chat.ReplyPlan, thoughts: int) -> dict[str, int]:
    uncached, cached = messages.prompt_usage(request)
    usage = {
        "promptTokenCount": uncached + cached,
        "candidatesTokenCount": plan.completion_tokens,
        "totalTokenCount": uncached + cached + plan.completion_tokens + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    return usage


def _response(
    candidate_parts: list[dict[str, Any]], finish: str | None, usage: dict[str, int] | None, model: str
) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": candidate_parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if usage:
        body["usageMetadata"] = usage
    return body


def _function_parts(plan: chat.ReplyPlan) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c.name, "args": msgspec.json.decode(c.arguments)}} for c in plan.tool_calls]


def reply_body(request: messages.MessagesRequest, plan: chat.ReplyPlan, model: str) -> bytes:
    thinking = messages.thinking_tokens(request)
    parts: list[dict[str, Any]] = []
    if thinking:
        parts.append({"text": "".join(thinking), "thought": True})
    if plan.tokens or not plan.tool_calls:
        parts.append({"text": "".join(plan.tokens)})
    parts.extend(_function_parts(plan))
    usage = _usage(request, plan, len(thinking))
    return msgspec.json.encode(_response(parts, _FINISH[plan.finish_reason], usage, model) | {"responseId": "mockresp"})


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(body) + b"\r\n\r\n"


def stream_events(request: messages.MessagesRequest, plan: chat.ReplyPlan, model: str) -> chat.StreamEvents:
    """One chunk per token (thoughts first); the last chunk carries finishReason and usageMetadata."""
    thinking = messages.thinking_tokens(request)
    chunks = [_sse(_response([{"text": t, "thought": True}], None, None, model)) for t in thinking]
    chunks.extend(_sse(_response([{"text": t}], None, None, model)) for t in plan.tokens)
    usage = _usage(request, plan, len(thinking))
    tail = _sse(_response(_function_parts(plan) or [{"text": ""}], _FINISH[plan.finish_reason], usage, model))
    head, tokens = (chunks[0], chunks[1:]) if chunks else (b"", [])
    return chat.StreamEvents(head=head, tokens=tokens, tail=tail)


def grounded(decoded: dict[str, Any]) -> bool:
    return any(
        isinstance(t, dict) and ("google_search" in t or "googleSearch" in t) for t in decoded.get("tools") or ()
    )


def grounded_reply(decoded: dict[str, Any], model: str, stream: bool) -> tuple[bytes, list[bytes], bytes] | bytes:
    """A Google Search grounded answer: whole, or as (head, tokens, tail) SSE chunks whose last carries the
    groundingMetadata, as Gemini streams it."""
    query = " ".join(p.get("text", "") for p in ((decoded.get("contents") or [{}])[-1].get("parts") or ()))
    usage = {"promptTokenCount": max(1, len(query) // 4), "candidatesTokenCount": 12, "totalTokenCount": 0}
    usage["totalTokenCount"] = usage["promptTokenCount"] + 12
    metadata = web_search.gemini_grounding(query)
    if not stream:
        body = _response([{"text": web_search.ANSWER}], "STOP", usage, model)
        body["candidates"][0]["groundingMetadata"] = metadata
        return msgspec.json.encode(body)
    head = _sse(_response([{"text": web_search.LEAD}], None, None, model))
    last = _response([{"text": web_search.CITED}], "STOP", usage, model)
    last["candidates"][0]["groundingMetadata"] = metadata
    return head, [], _sse(last)


def image_reply(decoded: dict[str, Any], model: str) -> tuple[int, bytes] | None:
    """The answer to a request for `responseModalities` with IMAGE (None: an ordinary text request): an image
    model returns one inline PNG per call; other models refuse the modality, as Gemini does.
    https://ai.google.dev/gemini-api/docs/image-generation"""
    modalities = [str(m).upper() for m in (decoded.get("generationConfig") or {}).get("responseModalities") or ()]
    if "IMAGE" not in modalities:
        return None
    if "image" not in model:
        message = "Model does not support the requested response modality: IMAGE"
        return 400, error_body(400, "INVALID_ARGUMENT", message)
    prompt = " ".join(p.get("text", "") for c in decoded.get("contents") or () for p in c.get("parts") or ())
    parts: list[dict[str, Any]] = [{"inlineData": {"mimeType": "image/png", "data": image_b64(prompt, 0)}}]
    if "TEXT" in modalities:
        parts.insert(0, {"text": "Here is your image."})
    usage = {"promptTokenCount": max(1, len(prompt) // 4), "candidatesTokenCount": 1290}
    usage["totalTokenCount"] = usage["promptTokenCount"] + 1290
    body = _response(parts, "STOP", usage, model) | {"responseId": "mockimage"}
    if "refuse" in prompt:
        body = _response([], "IMAGE_SAFETY", usage, model)
    return 200, msgspec.json.encode(body)


IMAGEN_RATIOS = frozenset({"1:1", "3:4", "4:3", "9:16", "16:9"})
IMAGEN_MAX_SAMPLES = 4


def imagen_reply(decoded: dict[str, Any], model: str, vertex: bool) -> tuple[int, bytes]:
    """Imagen's `:predict`: one image per sample, checked as Google checks the body. A prompt with "refuse" is
    filtered (`raiFilteredReason` when `includeRaiReason`, else no prediction at all).
    https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api
    https://ai.google.dev/gemini-api/docs/imagen"""
    if not model.startswith("imagen"):
        return 400, error_body(400, "INVALID_ARGUMENT", f"{model} does not support the predict method.")
    instances = decoded.get("instances")
    parameters = decoded.get("parameters") or {}
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0].get("prompt"), str):
        return 400, error_body(400, "INVALID_ARGUMENT", "instances: exactly one instance with a prompt is required.")
    count = parameters.get("sampleCount", IMAGEN_MAX_SAMPLES)
    if not isinstance(count, int) or not 1 <= count <= IMAGEN_MAX_SAMPLES:
        return 400, error_body(400, "INVALID_ARGUMENT", f"sampleCount must be between 1 and {IMAGEN_MAX_SAMPLES}.")
    ratio = parameters.get("aspectRatio", "1:1")
    if ratio not in IMAGEN_RATIOS:
        return 400, error_body(400, "INVALID_ARGUMENT", f"Unsupported aspect ratio: {ratio}.")
    mime = (parameters.get("outputOptions") or {}).get("mimeType", "image/png")
    if "outputOptions" in parameters and not vertex:
        return 400, error_body(400, "INVALID_ARGUMENT", "outputOptions parameter is not supported in Gemini API.")
    if mime not in ("image/png", "image/jpeg"):
        return 400, error_body(400, "INVALID_ARGUMENT", f"Unsupported mime type: {mime}.")
    prompt = instances[0]["prompt"]
    if "refuse" in prompt:
        reason = "Your current safety filter threshold filtered out 1 generated images. Support codes: 58061214."
        predictions = [{"raiFilteredReason": reason}] if parameters.get("includeRaiReason") else []
        return 200, msgspec.json.encode({"predictions": predictions} if predictions else {})
    predictions = [{"bytesBase64Encoded": image_b64(prompt, i), "mimeType": mime} for i in range(count)]
    return 200, msgspec.json.encode({"predictions": predictions})


async def handle(app: MockApp, scope: Any, proto: Any) -> None:
    """`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and `:predict`."""
    match = PATH_RE.match(scope.path)
    if match is None or scope.method != "POST":
        return _error(proto, 404, "NOT_FOUND", f"Unknown request URL: {scope.method} {scope.path}.")
    body = await proto()
    model_name, stream = unquote(match.group(1)), match.group(2) == "streamGenerateContent"
    app._record(scope, model_name, stream, body)
    problem = api_key_problem(scope)
    if problem is not None:
        return _error(proto, *problem)
    if match.group(2) == "predict":
        return await predict(app, scope, proto, body, model_name, vertex=False)
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise InvalidGemini("Invalid JSON payload received.")
        model, knobs = app._resolve(scope.headers, None, model_name)
        request = as_messages_request(decoded, model)
    except (msgspec.DecodeError, InvalidGemini, KnobError, AttributeError, TypeError) as exc:
        return _error(proto, 400, "INVALID_ARGUMENT", str(exc))
    fail = app._failure(knobs, model_name)
    if await app._before_reply(proto, knobs, fail, {}):
        return None
    fault = FAULTS.get(fail)
    if fault is not None:
        return _error(proto, *fault)
    image = image_reply(decoded, model)
    if image is not None:
        return proto.response_bytes(image[0], JSON_HEADERS, image[1])
    if grounded(decoded):
        return await send_grounded(app, scope, proto, decoded, model, stream, knobs, fail)
    plan = messages.plan_reply(request, knobs)
    if stream:
        return await app._counted_stream(scope, proto, stream_events(request, plan, model), knobs, fail, SSE_HEADERS)
    if knobs.token_delay_ms:
        await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
    await app._send_json(scope, proto, reply_body(request, plan, model), fail)


async def predict(app: MockApp, scope: Any, proto: Any, body: bytes, model_name: str, vertex: bool) -> None:
    """`:predict` (Imagen), authenticated by the caller, with the model's fault knobs."""
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise InvalidGemini("Invalid JSON payload received.")
        model, knobs = app._resolve(scope.headers, None, model_name)
    except (msgspec.DecodeError, InvalidGemini, KnobError) as exc:
        return _error(proto, 400, "INVALID_ARGUMENT", str(exc))
    fail = app._failure(knobs, model_name)
    if await app._before_reply(proto, knobs, fail, {}):
        return None
    fault = FAULTS.get(fail)
    if fault is not None:
        return _error(proto, *fault)
    status, reply = imagen_reply(decoded, model, vertex)
    proto.response_bytes(status, JSON_HEADERS, reply)


async def send_grounded(
    app: MockApp, scope: Any, proto: Any, decoded: dict[str, Any], model: str, stream: bool, knobs: Any, fail: str
) -> None:
    reply = grounded_reply(decoded, model, stream)
    if isinstance(reply, bytes):
        return await app._send_json(scope, proto, reply, fail)
    head, tokens, tail = reply
    events = chat.StreamEvents(head=head, tokens=tokens, tail=tail)
    return await app._counted_stream(scope, proto, events, knobs, fail, SSE_HEADERS)

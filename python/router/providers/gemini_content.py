"""Anthropic Messages ↔ Gemini `generateContent`: request, whole reply, and `streamGenerateContent?alt=sse` chunks.

Like Bedrock, the Gemini adapters speak Anthropic Messages to the gateway, so every client endpoint reaches them
through the existing translations. Wire shapes from the Gemini API reference:

- https://ai.google.dev/api/generate-content (request, GenerateContentResponse, FinishReason, UsageMetadata)
- https://ai.google.dev/api/caching#Content (Content, Part: text, inlineData, functionCall, functionResponse)
- https://ai.google.dev/gemini-api/docs/thinking (thinkingConfig.thinkingBudget, includeThoughts, thought parts)
- https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import InvalidRequest
from ..protocols import web_search
from ..protocols.anthropic import output_schema, sse_event
from ..protocols.to_upstream import JSON_TOOL

Json = dict[str, Any]

# Why a candidate stopped → Anthropic's stop_reason (which the chat hub turns into finish_reason).
_STOP = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    # Blocked for safety, recitation, a blocklist, prohibited content or personal data: the caller sees
    # content_filter (chat) / refusal (Messages) / incomplete (Responses).
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "LANGUAGE": "refusal",
}
_JSON_TOOL_DESCRIPTION = "Give the answer as JSON."


def _thinking_floor(model: str) -> int:
    # Gemini 2.5 Pro cannot turn thinking off (its minimum budget is 128); Flash and Flash-Lite take 0.
    return 128 if "pro" in model else 0


def _inline(source: Json, where: str, what: str) -> Json:
    kind = source.get("type")
    if kind == "base64":
        return {"inlineData": {"mimeType": source.get("media_type", ""), "data": source.get("data", "")}}
    if kind == "text":
        return {"text": source.get("data", "")}
    raise InvalidRequest(
        f"{where}: Gemini takes {what}s as base64 data only; send the {what} inline (a data: URL or file_data).",
        param=where,
    )


def _parts(content: Any, where: str, tool_names: dict[str, str]) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[Json] = []
    for j, block in enumerate(content or ()):
        at = f"{where}[{j}]"
        kind = block.get("type")
        if kind == "text":
            out.append({"text": block.get("text", "")})
        elif kind == "image":
            out.append(_inline(block.get("source") or {}, at, "image"))
        elif kind == "document":
            out.append(_inline(block.get("source") or {}, at, "document"))
        elif kind == "tool_use":
            tool_names[block.get("id", "")] = block.get("name", "")
            call = {"name": block.get("name", ""), "args": block.get("input") or {}}
            out.append({"functionCall": call})
        elif kind == "tool_result":
            use_id = block.get("tool_use_id", "")
            name = tool_names.get(use_id)
            if name is None:
                raise InvalidRequest(f"{at}: no earlier tool call has id {use_id!r}.", param=at)
            result = block.get("content")
            if not isinstance(result, str):
                result = "".join(b.get("text", "") for b in result or () if b.get("type") == "text")
            response = {"error": result} if block.get("is_error") else {"result": result}
            out.append({"functionResponse": {"name": name, "response": response}})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # Gemini's thoughts are not replayed
        else:
            raise InvalidRequest(f"{at}: content blocks of type {kind!r} are not supported by Gemini.", param=at)
    return out


def messages_to_gemini(req: Json, model: str) -> Json:
    """An (already validated) Anthropic Messages request as a generateContent body (the model is in the URL)."""
    out: Json = {}
    tool_names: dict[str, str] = {}
    system = req.get("system")
    if system:
        out["systemInstruction"] = {"parts": _parts(system, "system", tool_names)}
    contents: list[Json] = []
    for i, message in enumerate(req.get("messages") or ()):
        role = "model" if message.get("role") == "assistant" else "user"
        parts = _parts(message.get("content"), f"messages[{i}].content", tool_names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    out["contents"] = contents

    generation: Json = {"maxOutputTokens": req.get("max_tokens")}
    for key, name in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if req.get(key) is not None:
            generation[name] = req[key]
    if req.get("stop_sequences"):
        generation["stopSequences"] = req["stop_sequences"]
    thinking = req.get("thinking") or {}
    if thinking.get("type") == "enabled":
        generation["thinkingConfig"] = {"thinkingBudget": thinking.get("budget_tokens"), "includeThoughts": True}
    elif thinking.get("type") == "disabled":
        generation["thinkingConfig"] = {"thinkingBudget": _thinking_floor(model)}

    tools = list(req.get("tools") or ())
    choice = req.get("tool_choice") or {}
    # The chat hub's structured output is a forced `json_response` tool: Gemini has native JSON schema output.
    json_tool = next((t for t in tools if t.get("name") == JSON_TOOL), None)
    if (
        json_tool is not None
        and json_tool.get("description") == _JSON_TOOL_DESCRIPTION
        and choice.get("name") == JSON_TOOL
    ):
        tools.remove(json_tool)
        choice = {}
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = json_tool.get("input_schema") or {"type": "object"}
    schema = output_schema(req)  # a Messages caller's own structured output
    if schema is not None:
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = schema
    if "-image" in model:
        # Gemini's image models (gemini-2.5-flash-image…) answer chat with text and images; the images reach chat
        # callers as `message.images`. https://ai.google.dev/gemini-api/docs/image-generation
        generation["responseModalities"] = ["TEXT", "IMAGE"]
    declarations = []
    search = False
    for j, tool in enumerate(tools):
        if web_search.is_search_tool(tool):
            search = True  # Google Search grounding: https://ai.google.dev/gemini-api/docs/google-search
            continue
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            where = f"tools[{j}]"
            name = tool.get("type") or tool.get("name")
            raise InvalidRequest(f"{where}: server tool {name!r} is not available on Gemini.", param=where)
        declaration: Json = {"name": tool.get("name", ""), "parametersJsonSchema": tool.get("input_schema") or {}}
        if tool.get("description"):
            declaration["description"] = tool["description"]
        declarations.append(declaration)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        kind = choice.get("type", "auto")
        config: Json = {"mode": {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}.get(kind, "AUTO")}
        if kind == "tool":
            config["allowedFunctionNames"] = [choice.get("name", "")]
        out["toolConfig"] = {"functionCallingConfig": config}
    if search:
        out.setdefault("tools", []).append({"google_search": {}})
    out["generationConfig"] = generation
    return out


# --- generateContent reply → Messages reply ---


def _usage(u: Json) -> Json:
    # promptTokenCount includes the cached part; Anthropic's input_tokens does not. Thoughts are output.
    cached = u.get("cachedContentTokenCount") or 0
    return {
        "input_tokens": max((u.get("promptTokenCount") or 0) - cached, 0),
        "output_tokens": (u.get("candidatesTokenCount") or 0) + (u.get("thoughtsTokenCount") or 0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _stop(candidate: Json, called: bool) -> str:
    reason = candidate.get("finishReason") or "STOP"
    stop = _STOP.get(reason, "end_turn")
    return "tool_use" if called and stop == "end_turn" else stop


def gemini_to_messages(body: Json, model: str, message_id: str) -> Json:
    candidates = body.get("candidates") or []
    content: list[Json] = []
    stop = "refusal"  # no candidate at all: the prompt itself was blocked (promptFeedback.blockReason)
    if candidates:
        candidate = candidates[0]
        calls = 0
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                call = part["functionCall"]
                calls += 1
                tool_id = call.get("id") or f"toolu_gemini_{message_id[-8:]}_{calls}"
                content.append(
                    {"type": "tool_use", "id": tool_id, "name": call.get("name", ""), "input": call.get("args") or {}}
                )
            elif part.get("thought"):
                content.append(
                    {
                        "type": "thinking",
                        "thinking": part.get("text", ""),
                        "signature": part.get("thoughtSignature", ""),
                    }
                )
            elif "text" in part:
                content.append({"type": "text", "text": part["text"]})
            elif "inlineData" in part:  # a generated image
                inline = part["inlineData"]
                source = {"type": "base64", "media_type": inline.get("mimeType", ""), "data": inline.get("data", "")}
                content.append({"type": "image", "source": source})
        stop = _stop(candidate, calls > 0)
        grounding = candidate.get("groundingMetadata")
        if grounding:
            content = _grounded(content, grounding, message_id)
    usage = _usage(body.get("usageMetadata") or {})
    if candidates and (candidates[0].get("groundingMetadata") or {}).get("webSearchQueries"):
        # Gemini 2.5 bills grounding per prompt that searched, whatever the number of queries.
        usage["server_tool_use"] = {"web_search_requests": 1}
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("modelVersion") or model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def _grounded(content: list[Json], grounding: Json, message_id: str) -> list[Json]:
    """A grounded answer as Anthropic reports a web search: the search and its results, then the text cut into
    cited spans (`groundingSupports` segments, located by their text) with `web_search_result_location`s."""
    chunks = [c.get("web") or {} for c in grounding.get("groundingChunks") or ()]
    text = "".join(b["text"] for b in content if b.get("type") == "text")
    annotations: list[Json] = []
    at = 0
    for support in grounding.get("groundingSupports") or ():
        segment = support.get("segment") or {}
        piece = segment.get("text") or ""
        start = text.find(piece, at) if piece else -1
        if start < 0:
            continue
        at = start + len(piece)
        for index in support.get("groundingChunkIndices") or ():
            if isinstance(index, int) and 0 <= index < len(chunks) and chunks[index].get("uri"):
                chunk = chunks[index]
                annotations.append(web_search.url_citation(chunk["uri"], chunk.get("title"), start, at))
    tool_id = f"srvtoolu_{message_id}"
    query = " | ".join(grounding.get("webSearchQueries") or ())
    results = [
        {"type": "web_search_result", "url": c["uri"], "title": c.get("title") or c["uri"], "encrypted_content": ""}
        for c in chunks
        if c.get("uri")
    ]
    head = [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
    ]
    others = [b for b in content if b.get("type") != "text"]
    thinking = [b for b in others if b.get("type") == "thinking"]
    rest = [b for b in others if b.get("type") != "thinking"]
    body = web_search.anthropic_text_blocks(text, annotations) if text else []
    return [*thinking, *head, *body, *rest]


# --- streamGenerateContent chunks → Messages SSE ---

_encode = msgspec.json.encode
_decode = msgspec.json.decode
# Most of a stream is text deltas: their Messages event is written from fixed pieces around the index and the
# text, not built as a dict and encoded (a third of the cost per chunk).
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'


def _delta(index: int, kind: bytes, field: bytes, value: str) -> bytes:
    """`content_block_delta` of block `index` with `{"type": kind, field: value}`, as `sse_event` writes it."""
    return _DELTA % (index, kind, field) + _encode(value) + b"}}\n\n"


class StreamTranslator:
    """Gemini SSE chunks (each a partial GenerateContentResponse) → Anthropic Messages SSE bytes.

    Gemini has no block boundaries and no end event: a block closes when a part of another kind arrives, and
    the message ends (`message_delta` with the last usage, then `message_stop`) when the upstream body does,
    provided a chunk carried a finishReason.
    """

    __slots__ = (
        "_block", "_calls", "_index", "_message_id", "_model", "_searched", "_started", "_stop", "_text", "_usage",
    )  # fmt: skip

    def __init__(self, model: str, message_id: str) -> None:
        self._model = model
        self._message_id = message_id
        self._block: str | None = None
        self._index = -1
        self._calls = 0
        self._started = False
        self._stop: str | None = None
        self._usage: Json = {}
        self._text = ""  # the answer so far: grounding segments are found in it
        self._searched = False

    def _open(self, kind: str, block: Json) -> bytes:
        out = self._close()
        self._index += 1
        self._block = kind
        return out + sse_event("content_block_start", {"index": self._index, "content_block": block})

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        self._block = None
        return sse_event("content_block_stop", {"index": self._index})

    def chunk(self, data: str) -> bytes:
        body: Json = _decode(data)
        out = b""
        if not self._started:
            self._started = True
            message: Json = {
                "id": self._message_id,
                "type": "message",
                "role": "assistant",
                "model": body.get("modelVersion") or self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            out += sse_event("message_start", {"message": message})
        if body.get("usageMetadata"):
            self._usage = body["usageMetadata"]
        candidates = body.get("candidates") or []
        if not candidates:
            if (body.get("promptFeedback") or {}).get("blockReason"):
                self._stop = "refusal"
            return out
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                call = part["functionCall"]
                self._calls += 1
                tool_id = call.get("id") or f"toolu_gemini_{self._message_id[-8:]}_{self._calls}"
                start = {"type": "tool_use", "id": tool_id, "name": call.get("name", ""), "input": {}}
                out += self._open("tool_use", start)
                partial = _encode(call.get("args") or {}).decode()
                delta = {"type": "input_json_delta", "partial_json": partial}
                out += sse_event("content_block_delta", {"index": self._index, "delta": delta})
                out += self._close()
            elif part.get("thought"):
                if self._block != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                if part.get("text"):
                    out += _delta(self._index, b"thinking_delta", b"thinking", part["text"])
                if part.get("thoughtSignature"):
                    out += _delta(self._index, b"signature_delta", b"signature", part["thoughtSignature"])
            elif "text" in part:
                if self._block != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                text = part["text"]
                self._text += text
                out += _delta(self._index, b"text_delta", b"text", text)
        grounding = candidate.get("groundingMetadata")
        if grounding and grounding.get("webSearchQueries") and not self._searched:
            self._searched = True
            out += self._grounding(grounding)
        if candidate.get("finishReason"):
            self._stop = _stop(candidate, self._calls > 0)
        return out

    def _grounding(self, grounding: Json) -> bytes:
        """Grounding arrives after the text it supports: the search as Anthropic streams one (server tool blocks),
        then an empty text block whose `citations_delta`s quote the supported segments (`cited_text`)."""
        blocks = _grounded([{"type": "text", "text": self._text}], grounding, self._message_id)
        out = b""
        for block in blocks:
            if block["type"] == "server_tool_use":
                out += self._open("server_tool_use", {**block, "input": {}})
                partial = _encode(block["input"]).decode()
                delta = {"type": "input_json_delta", "partial_json": partial}
                out += sse_event("content_block_delta", {"index": self._index, "delta": delta})
            elif block["type"] == "web_search_tool_result":
                out += self._open("web_search_tool_result", block)
        citations = [(c, b["text"]) for b in blocks if b["type"] == "text" for c in b.get("citations") or ()]
        if citations:
            out += self._open("citations", {"type": "text", "text": "", "citations": []})
            for citation, text in citations:
                delta = {"type": "citations_delta", "citation": {**citation, "cited_text": text}}
                out += sse_event("content_block_delta", {"index": self._index, "delta": delta})
        return out + self._close()

    def finish(self) -> bytes:
        """The closing events, or b"" when no chunk said why the answer stopped (an incomplete stream)."""
        if self._stop is None or not self._started:
            return b""
        usage = _usage(self._usage)
        if self._searched:
            usage["server_tool_use"] = {"web_search_requests": 1}
        delta = {"delta": {"stop_reason": self._stop, "stop_sequence": None}, "usage": usage}
        return self._close() + sse_event("message_delta", delta) + sse_event("message_stop", {})

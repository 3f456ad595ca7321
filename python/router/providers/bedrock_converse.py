"""Anthropic Messages ↔ Amazon Bedrock Converse: request and whole reply (ConverseStream events are translated in
Rust, `router._core.ConverseStreamTranslator`).

The Bedrock adapter speaks Anthropic Messages to the rest of the gateway (its `api` is "messages"): Converse's
content model (text, image, document, toolUse, toolResult, reasoningContent, cachePoint blocks; system apart;
strict user/assistant turns) is Messages' with other names, so every client endpoint reaches Bedrock through
the existing translations, thinking signatures and cache breakpoints included.

Wire shapes from the Bedrock API reference:
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..protocols.anthropic import output_schema

Json = dict[str, Any]

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "text/markdown": "md",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_FROM_CONVERSE_STOP = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "model_context_window_exceeded",
    # A Bedrock guardrail or the model's own filter stopped the answer: the caller sees content_filter.
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}
_CACHE_POINT: Json = {"cachePoint": {"type": "default"}}


def is_anthropic(model_id: str) -> bool:
    """Anthropic models on Bedrock (`anthropic.claude-…`, or a cross-region profile `eu.anthropic.claude-…`)."""
    return "anthropic." in model_id or model_id.startswith("claude")


# --- Messages request → Converse request ---


def _image(source: Json, where: str) -> Json:
    if source.get("type") != "base64":
        raise InvalidRequest(
            f"{where}: Bedrock takes images as base64 data only; send the image inline (a data: URL).", param=where
        )
    media = source.get("media_type", "")
    fmt = _IMAGE_FORMATS.get(media)
    if fmt is None:
        raise InvalidRequest(f"{where}: image type {media!r} is not supported by Bedrock.", param=where)
    return {"image": {"format": fmt, "source": {"bytes": source.get("data", "")}}}


def _document(block: Json, where: str, index: int) -> Json:
    source = block.get("source") or {}
    kind = source.get("type")
    # Bedrock document names allow only letters, digits, spaces, hyphens, parentheses and brackets.
    name = "".join(c for c in str(block.get("title") or f"document {index}") if c.isalnum() or c in " -()[]")
    name = " ".join(name.split())[:200] or f"document {index}"
    if kind == "base64":
        media = source.get("media_type", "")
        fmt = _DOCUMENT_FORMATS.get(media)
        if fmt is None:
            raise InvalidRequest(f"{where}: document type {media!r} is not supported by Bedrock.", param=where)
        return {"document": {"format": fmt, "name": name, "source": {"bytes": source.get("data", "")}}}
    if kind == "text":
        return {"document": {"format": "txt", "name": name, "source": {"text": source.get("data", "")}}}
    raise InvalidRequest(
        f"{where}: Bedrock takes documents as base64 data only; send the file inline (file_data).", param=where
    )


def _tool_result_content(content: Any, where: str) -> list[Json]:
    if content is None or content == "":
        return [{"text": ""}]
    if isinstance(content, str):
        return [{"text": content}]
    out: list[Json] = []
    for j, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            out.append({"text": block.get("text", "")})
        elif kind == "image":
            out.append(_image(block.get("source") or {}, f"{where}[{j}]"))
        elif kind == "document":
            out.append(_document(block, f"{where}[{j}]", j + 1))
        else:
            raise InvalidRequest(f"{where}[{j}]: tool result blocks of type {kind!r} are not supported by Bedrock.")
    return out or [{"text": ""}]


def _blocks(content: Any, where: str, anthropic: bool) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[Json] = []
    documents = 0
    for j, block in enumerate(content or ()):
        at = f"{where}[{j}]"
        kind = block.get("type")
        if kind == "text":
            out.append({"text": block.get("text", "")})
        elif kind == "image":
            out.append(_image(block.get("source") or {}, at))
        elif kind == "document":
            documents += 1
            out.append(_document(block, at, documents))
        elif kind == "tool_use":
            out.append(
                {
                    "toolUse": {
                        "toolUseId": block.get("id", ""),
                        "name": block.get("name", ""),
                        "input": block.get("input") or {},
                    }
                }
            )
        elif kind == "tool_result":
            result: Json = {
                "toolUseId": block.get("tool_use_id", ""),
                "content": _tool_result_content(block.get("content"), f"{at}.content"),
            }
            if block.get("is_error"):
                result["status"] = "error"
            out.append({"toolResult": result})
        elif kind == "thinking":
            if not anthropic or not block.get("signature"):
                continue  # only Anthropic models replay thinking, and only signed
            text = {"text": block.get("thinking", ""), "signature": block["signature"]}
            out.append({"reasoningContent": {"reasoningText": text}})
        elif kind == "redacted_thinking":
            if anthropic:
                out.append({"reasoningContent": {"redactedContent": block.get("data", "")}})
        else:
            raise InvalidRequest(f"{at}: content blocks of type {kind!r} are not supported by Bedrock.", param=at)
        if block.get("cache_control") and kind not in ("thinking", "redacted_thinking"):
            out.append(dict(_CACHE_POINT))
    return out


def messages_to_converse(req: Json, model_id: str) -> Json:
    """An (already validated) Anthropic Messages request as a Converse request body (the model is in the URL)."""
    anthropic = is_anthropic(model_id)
    out: Json = {}
    system = req.get("system")
    if system:
        out["system"] = _blocks(system, "system", anthropic)
    messages: list[Json] = []
    for i, message in enumerate(req.get("messages") or ()):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages[{i}].role: expected user or assistant.", param=f"messages[{i}].role")
        blocks = _blocks(message.get("content"), f"messages[{i}].content", anthropic)
        if not blocks:
            continue
        # Converse wants strict turns: consecutive same-role messages become one.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    out["messages"] = messages

    inference: Json = {"maxTokens": req.get("max_tokens")}
    if req.get("temperature") is not None:
        inference["temperature"] = req["temperature"]
    if req.get("top_p") is not None:
        inference["topP"] = req["top_p"]
    if req.get("stop_sequences"):
        inference["stopSequences"] = req["stop_sequences"]
    out["inferenceConfig"] = inference

    additional: Json = {}
    thinking = req.get("thinking")
    if anthropic and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        additional["thinking"] = {"type": "enabled", "budget_tokens": thinking.get("budget_tokens")}
    if anthropic and req.get("top_k") is not None:
        additional["top_k"] = req["top_k"]
    if additional:
        out["additionalModelRequestFields"] = additional

    if output_schema(req) is not None:
        raise InvalidRequest(
            f"The model '{model_id}' on Bedrock Converse cannot take 'output_format': send the schema as a chat "
            "'response_format' or a Responses 'text.format' instead.",
            param="output_format",
            code="unsupported_parameter",
        )
    tools: list[Json] = []
    for j, tool in enumerate(req.get("tools") or ()):
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            where = f"tools[{j}]"
            raise InvalidRequest(
                f"{where}: server tool {tool.get('type') or tool.get('name')!r} is not available on Bedrock.",
                param=where,
            )
        spec: Json = {"name": tool.get("name", ""), "inputSchema": {"json": tool.get("input_schema") or {}}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        tools.append({"toolSpec": spec})
        if tool.get("cache_control"):
            tools.append(dict(_CACHE_POINT))
    choice = req.get("tool_choice") or {}
    kind = choice.get("type", "auto")
    uses_tools = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    # Converse has no "none": without tools the model cannot call one, unless the history has tool blocks,
    # which Bedrock only accepts with a toolConfig; then the tools stay and the choice is left to the model.
    if tools and (kind != "none" or uses_tools):
        config: Json = {"tools": tools}
        if kind == "any":
            config["toolChoice"] = {"any": {}}
        elif kind == "tool":
            config["toolChoice"] = {"tool": {"name": choice.get("name", "")}}
        elif kind == "auto":
            config["toolChoice"] = {"auto": {}}
        out["toolConfig"] = config
    return out


# --- Converse reply → Messages reply ---


def _usage(u: Json) -> Json:
    # Converse's inputTokens, like Anthropic's input_tokens, excludes cache reads and writes.
    return {
        "input_tokens": u.get("inputTokens") or 0,
        "output_tokens": u.get("outputTokens") or 0,
        "cache_read_input_tokens": u.get("cacheReadInputTokens") or 0,
        "cache_creation_input_tokens": u.get("cacheWriteInputTokens") or 0,
    }


def converse_to_messages(body: Json, model_id: str, message_id: str) -> Json:
    content: list[Json] = []
    message = (body.get("output") or {}).get("message") or {}
    for block in message.get("content") or ():
        if "text" in block:
            content.append({"type": "text", "text": block["text"]})
        elif "toolUse" in block:
            use = block["toolUse"]
            content.append(
                {
                    "type": "tool_use",
                    "id": use.get("toolUseId", ""),
                    "name": use.get("name", ""),
                    "input": use.get("input") or {},
                }
            )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "reasoningText" in reasoning:
                text = reasoning["reasoningText"]
                content.append(
                    {"type": "thinking", "thinking": text.get("text", ""), "signature": text.get("signature", "")}
                )
            elif "redactedContent" in reasoning:
                content.append({"type": "redacted_thinking", "data": reasoning["redactedContent"]})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": content,
        "stop_reason": _FROM_CONVERSE_STOP.get(body.get("stopReason") or "end_turn", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(body.get("usage") or {}),
    }

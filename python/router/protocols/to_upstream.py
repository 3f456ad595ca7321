"""Request translation between the three APIs, through OpenAI chat as the hub.

A Messages or Responses request is first expressed as a chat request, then as the upstream's. The hub carries
two extensions that plain chat lacks, so nothing the client must replay is lost on the way: assistant
``thinking_blocks`` (Anthropic thinking with its ``signature``, or a Responses reasoning item with its
``encrypted_content`` as the signature) and ``cache_control`` on text parts. Both are dropped for chat upstreams.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import InvalidRequest
from . import reasoning, web_search
from .anthropic import output_schema

Json = dict[str, Any]

# The forced tool that carries structured output on Anthropic upstreams; its input becomes the reply text.
JSON_TOOL = "json_response"
DEFAULT_MAX_TOKENS = 4096


class Plan(msgspec.Struct):
    """What the reply translation must know about how the request was rewritten."""

    # Name of the forced tool whose input is the JSON answer (Anthropic upstreams with response_format).
    json_tool: str | None = None


def assistant_blocks_to_chat(blocks: Any, json_tool: str | None = None, **head: Any) -> tuple[Json, bool]:
    """Anthropic assistant content blocks as one chat assistant message (`head` keys follow `content`).

    Text joins into `content`; tool uses become `tool_calls`, except the forced structured-output tool
    (`json_tool`), whose input is the answer's text; thinking blocks are kept whole, signatures included.
    Also says whether that forced tool answered."""
    texts: list[str] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    annotations: list[Json] = []
    images: list[Json] = []
    answered = False
    at = 0
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text", "")
            # Web search citations (a document's citations carry no URL).
            annotations.extend(
                web_search.url_citation(cite["url"], cite.get("title"), at, at + len(text))
                for cite in block.get("citations") or ()
                if cite.get("url")
            )
            texts.append(text)
            at += len(text)
        elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
            texts.append(msgspec.json.encode(block.get("input") or {}).decode())
            answered = True
        elif kind == "tool_use":
            arguments = msgspec.json.encode(block.get("input") or {}).decode()
            calls.append(
                {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}
            )
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
        elif kind == "image" and (block.get("source") or {}).get("type") == "base64":
            # An image the model generated (Gemini image models): chat's `message.images`, as Requesty answers.
            source = block["source"]
            url = _data_url(source.get("media_type", ""), source.get("data", ""))
            images.append({"type": "image_url", "image_url": {"url": url}})
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None, **head}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        message["thinking_blocks"] = thinking
    if annotations:
        message["annotations"] = annotations
    if images:
        message["images"] = images
    return message, answered


def _data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def _split_data_url(url: str) -> tuple[str, str] | None:
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head.removesuffix(";base64"), data


# --- Anthropic → chat ---


def _anthropic_part_to_chat(block: Json, where: str) -> Json:
    kind = block["type"]
    if kind == "text":
        part: Json = {"type": "text", "text": block["text"]}
        if block.get("cache_control"):
            part["cache_control"] = block["cache_control"]
        return part
    source = block.get("source") or {}
    if kind == "image":
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url") or ""}}
        if source.get("type") == "base64" and source.get("data"):
            url = _data_url(source.get("media_type") or "image/png", source["data"])
            return {"type": "image_url", "image_url": {"url": url}}
        raise InvalidRequest(
            f"{where}: this model's provider takes images as base64 data or URLs, not '{source.get('type')}' sources.",
            param=where,
        )
    if kind == "document":
        if source.get("type") == "text":
            return {"type": "text", "text": source.get("data", "")}
        if source.get("type") == "base64":
            media = source.get("media_type") or "application/pdf"
            name = block.get("title") or "document.pdf"
            return {"type": "file", "file": {"filename": name, "file_data": _data_url(media, source["data"])}}
        raise InvalidRequest(
            f"{where}: this model's provider takes documents as base64 data only, not '{source.get('type')}' sources.",
            param=where,
        )
    raise InvalidRequest(f"{where}: '{kind}' blocks are not supported here.", param=where)


def _tool_result_content(content: Any, where: str) -> str | list[Json]:
    if isinstance(content, str):
        return content
    parts = [_anthropic_part_to_chat(b, where) for b in content]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def anthropic_to_chat(req: Json) -> Json:
    messages: list[Json] = []
    system = req.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif system:
        messages.append({"role": "system", "content": [_anthropic_part_to_chat(b, "system") for b in system]})
    for i, message in enumerate(req["messages"]):
        role, content = message["role"], message["content"]
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        if role == "user":
            parts = []
            for j, block in enumerate(content):
                where = f"messages.{i}.content.{j}"
                if block["type"] == "tool_result":
                    result = _tool_result_content(block.get("content", ""), where)
                    if block.get("is_error") and isinstance(result, str):
                        result = f"Error: {result}"
                    messages.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": result})
                else:
                    parts.append(_anthropic_part_to_chat(block, where))
            if parts:
                messages.append({"role": "user", "content": parts})
            continue
        messages.append(assistant_blocks_to_chat(content)[0])

    chat: Json = {"model": req["model"], "messages": messages, "max_tokens": req["max_tokens"]}
    tools = []
    for i, tool in enumerate(req.get("tools") or ()):
        if web_search.is_search_tool(tool):
            tools.append(web_search.to_hub(tool))
            continue
        if tool.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"tools.{i}: the server tool '{tool['type']}' is only available on Anthropic models.",
                param=f"tools.{i}.type",
            )
        function: Json = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    if tools:
        chat["tools"] = tools
    choice = req.get("tool_choice")
    if choice:
        kind = choice["type"]
        if kind == "tool":
            chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
        else:
            chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use"):
            chat["parallel_tool_calls"] = False
    thinking = req.get("thinking")
    if thinking and thinking.get("type") == "enabled":
        chat["reasoning_effort"] = str(thinking.get("budget_tokens") or reasoning.MIN_BUDGET)
    elif thinking and thinking.get("type") == "adaptive":
        chat["reasoning_effort"] = "medium"
    schema = output_schema(req)
    if schema is not None:
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    if req.get("stop_sequences"):
        chat["stop"] = req["stop_sequences"]
    for key in ("temperature", "top_p", "stream"):
        if req.get(key) is not None:
            chat[key] = req[key]
    user = (req.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    return chat


# --- Responses → chat ---


def _responses_part_to_chat(part: Json, where: str) -> Json:
    kind = part["type"]
    if kind in ("input_text", "output_text", "summary_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise InvalidRequest(f"{where}: only image_url images can be sent to this model.", param=where)
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    # input_file
    file: Json = {}
    if part.get("file_data"):
        data = part["file_data"]
        file["file_data"] = data if data.startswith("data:") else _data_url("application/pdf", data)
        file["filename"] = part.get("filename") or "document.pdf"
    elif part.get("file_url"):
        file["file_url"] = part["file_url"]
    elif part.get("file_id"):
        file["file_id"] = part["file_id"]
    return {"type": "file", "file": file}


def responses_to_chat(req: Json) -> Json:
    messages: list[Json] = []
    if req.get("instructions"):
        messages.append({"role": "system", "content": req["instructions"]})
    items = req["input"]
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    pending_thinking: list[Json] = []

    def assistant() -> Json:
        # Consecutive assistant output (text, calls) is one chat turn.
        if messages and messages[-1]["role"] == "assistant":
            return messages[-1]
        turn: Json = {"role": "assistant", "content": None}
        messages.append(turn)
        return turn

    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "reasoning":
            text = "".join(p.get("text", "") for p in item.get("summary") or ())
            pending_thinking.append(
                {"type": "thinking", "thinking": text, "signature": item.get("encrypted_content") or ""}
            )
            continue
        if kind == "function_call":
            turn = assistant()
            turn.setdefault("tool_calls", []).append(
                {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
            )
        elif kind == "function_call_output":
            output = item["output"]
            if isinstance(output, list):
                output = "".join(p.get("text", "") for p in output if isinstance(p, dict))
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
            continue
        elif kind == "message":
            role, content = item["role"], item["content"]
            if role == "assistant":
                turn = assistant()
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                turn["content"] = (turn["content"] or "") + text
            else:
                if not isinstance(content, str):
                    content = [_responses_part_to_chat(p, f"input[{i}].content[{j}]") for j, p in enumerate(content)]
                messages.append({"role": role, "content": content})
                continue
        else:
            continue
        if pending_thinking and messages[-1]["role"] == "assistant":
            messages[-1]["thinking_blocks"] = pending_thinking
            messages[-1]["reasoning_content"] = "".join(b["thinking"] for b in pending_thinking)
            pending_thinking = []

    chat: Json = {"model": req["model"], "messages": messages}
    tools = []
    for i, tool in enumerate(req.get("tools") or ()):
        if web_search.is_search_tool(tool):
            tools.append(web_search.to_hub(tool))
            continue
        if tool.get("type") != "function":
            raise InvalidRequest(
                f"tools[{i}]: the built-in tool '{tool.get('type')}' is only available on OpenAI Responses models.",
                param=f"tools[{i}].type",
            )
        function: Json = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
        for key in ("description", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        tools.append({"type": "function", "function": function})
    if tools:
        chat["tools"] = tools
    choice = req.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    text_format = (req.get("text") or {}).get("format") or {}
    if text_format.get("type") == "json_schema":
        schema = {"name": text_format.get("name") or "response", "schema": text_format.get("schema") or {}}
        if text_format.get("strict") is not None:
            schema["strict"] = text_format["strict"]
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif text_format.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    effort = (req.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    if req.get("max_output_tokens") is not None:
        chat["max_tokens"] = req["max_output_tokens"]
    for key in ("temperature", "top_p", "stream", "parallel_tool_calls"):
        if req.get(key) is not None:
            chat[key] = req[key]
    return chat


# --- chat → Anthropic ---


def _chat_part_to_anthropic(part: Json, where: str) -> Json:
    kind = part.get("type")
    if kind == "input_file":
        # The Responses-style file part, as clients also send it on chat: the same as a chat `file` part.
        part, kind = _responses_part_to_chat(part, where), "file"
    if kind == "text":
        block: Json = {"type": "text", "text": part.get("text", "")}
        if part.get("cache_control"):
            block["cache_control"] = part["cache_control"]
        return block
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        split = _split_data_url(url)
        if split:
            return {"type": "image", "source": {"type": "base64", "media_type": split[0], "data": split[1]}}
        return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "file":
        file = part.get("file") or {}
        split = _split_data_url(file.get("file_data") or "")
        if split:
            return {"type": "document", "source": {"type": "base64", "media_type": split[0], "data": split[1]}}
        if file.get("file_url"):
            return {"type": "document", "source": {"type": "url", "url": file["file_url"]}}
        raise InvalidRequest(f"{where}: files must be sent as base64 file_data for this model.", param=where)
    raise InvalidRequest(f"{where}: content parts of type '{kind}' are not supported by this model.", param=where)


def _chat_content_to_blocks(content: Any, where: str) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [_chat_part_to_anthropic(p, f"{where}[{j}]") for j, p in enumerate(content)]


def _arguments(call: Json, where: str) -> Json:
    raw = (call.get("function") or {}).get("arguments") or "{}"
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest(f"{where}: tool call arguments are not valid JSON.", param=where) from None
    return value if isinstance(value, dict) else {"value": value}


def chat_to_anthropic(chat: Json, model_max_output: int | None) -> tuple[Json, Plan]:
    plan = Plan()
    system: list[Json] = []
    messages: list[Json] = []
    for i, message in enumerate(chat["messages"]):
        role = message.get("role")
        where = f"messages[{i}].content"
        if role in ("system", "developer"):
            system.extend(_chat_content_to_blocks(message.get("content"), where))
        elif role == "user":
            blocks = _chat_content_to_blocks(message.get("content"), where)
            content: str | list[Json] = message["content"] if isinstance(message.get("content"), str) else blocks
            messages.append({"role": "user", "content": content})
        elif role == "assistant":
            blocks = [
                b for b in message.get("thinking_blocks") or () if b.get("signature") or b.get("type") != "thinking"
            ]
            blocks.extend(_chat_content_to_blocks(message.get("content"), where))
            for j, call in enumerate(message.get("tool_calls") or ()):
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": (call.get("function") or {}).get("name", ""),
                        "input": _arguments(call, f"messages[{i}].tool_calls[{j}].function.arguments"),
                    }
                )
            if blocks:
                messages.append({"role": "assistant", "content": blocks})
        elif role in ("tool", "function"):
            content = message.get("content") or ""
            result: Json = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": content if isinstance(content, str) else _chat_content_to_blocks(content, where),
            }
            previous = messages[-1] if messages else None
            # Consecutive tool answers are one user turn with several results.
            if (
                previous
                and previous["role"] == "user"
                and isinstance(previous["content"], list)
                and previous["content"]
                and previous["content"][-1].get("type") == "tool_result"
            ):
                previous["content"].append(result)
            else:
                messages.append({"role": "user", "content": [result]})

    effort = reasoning.parse(chat.get("reasoning_effort"))
    max_tokens = chat.get("max_completion_tokens") or chat.get("max_tokens")
    if max_tokens is None:
        max_tokens = model_max_output or DEFAULT_MAX_TOKENS
        if effort is not None:
            # A budget the caller asked for is kept: max_tokens (theirs to set, but unset) makes room for it.
            max_tokens = max(max_tokens, reasoning.room_for(effort, model_max_output, DEFAULT_MAX_TOKENS))
    out: Json = {"model": chat["model"], "max_tokens": max_tokens, "messages": messages}
    if system:
        plain = all(set(b) == {"type", "text"} for b in system)
        out["system"] = "\n\n".join(b["text"] for b in system) if plain else system

    budget = reasoning.to_budget(effort, max_tokens, model_max_output) if effort is not None else None
    thinking = budget is not None
    if thinking:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        if effort == "none":
            # Said explicitly, so providers that think by default (Gemini) turn it off too.
            out["thinking"] = {"type": "disabled"}
        for key in ("temperature", "top_p"):
            if chat.get(key) is not None:
                out[key] = chat[key]

    tools = []
    for tool in chat.get("tools") or ():
        if web_search.is_search_tool(tool):
            tools.append(web_search.to_anthropic(tool))
            continue
        function = tool.get("function") or {}
        definition: Json = {
            "name": function.get("name", ""),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            definition["description"] = function["description"]
        tools.append(definition)
    choice_in = chat.get("tool_choice")
    choice: Json | None = None
    if isinstance(choice_in, dict):
        choice = {"type": "tool", "name": (choice_in.get("function") or {}).get("name", "")}
    elif isinstance(choice_in, str):
        choice = {"type": {"auto": "auto", "required": "any", "none": "none"}.get(choice_in, "auto")}

    response_format = chat.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        if thinking:
            # Anthropic refuses a forced tool while thinking: ask in the prompt instead.
            instruction = "Respond with only a JSON value, no prose, matching this JSON schema: " + (
                msgspec.json.encode(schema).decode()
            )
            system_text = out.get("system")
            if isinstance(system_text, list):
                system_text.append({"type": "text", "text": instruction})
            else:
                out["system"] = f"{system_text}\n\n{instruction}" if system_text else instruction
        else:
            if schema.get("type") != "object":
                schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
            tools.append({"name": JSON_TOOL, "description": "Give the answer as JSON.", "input_schema": schema})
            choice = {"type": "tool", "name": JSON_TOOL}
            plan.json_tool = JSON_TOOL
    if tools:
        out["tools"] = tools
    if choice is not None and tools:
        if thinking and choice["type"] in ("tool", "any"):
            choice = {"type": "auto"}  # a forced tool with thinking on is an Anthropic error
        if chat.get("parallel_tool_calls") is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        out["tool_choice"] = choice
    stop = chat.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if chat.get("user"):
        out["metadata"] = {"user_id": chat["user"]}
    if chat.get("stream"):
        out["stream"] = True
    return out, plan


# --- chat → Responses ---


def _chat_part_to_responses(part: Json, role: str) -> Json:
    kind = part.get("type")
    if kind == "text":
        return {"type": "output_text" if role == "assistant" else "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        return {"type": "input_image", "image_url": (part.get("image_url") or {}).get("url", ""), "detail": "auto"}
    if kind == "input_file":
        return {k: v for k, v in part.items() if k in ("type", "file_data", "file_id", "filename", "file_url")}
    if kind == "file":
        file = part.get("file") or {}
        out: Json = {"type": "input_file"}
        for key in ("file_data", "file_id", "filename", "file_url"):
            if file.get(key):
                out[key] = file[key]
        return out
    raise InvalidRequest(f"content parts of type '{kind}' are not supported by this model.", param="messages")


def chat_to_responses(chat: Json) -> Json:
    instructions: list[str] = []
    items: list[Json] = []
    for message in chat["messages"]:
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer") and isinstance(content, str):
            instructions.append(content)
        elif role in ("system", "developer", "user"):
            if isinstance(content, list):
                content = [_chat_part_to_responses(p, role) for p in content]
            items.append({"role": role, "content": content or ""})
        elif role == "assistant":
            if content:
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                items.append({"role": "assistant", "content": [{"type": "output_text", "text": text}]})
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "arguments": function.get("arguments") or "{}",
                    }
                )
        elif role in ("tool", "function"):
            output = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or ())
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id", ""), "output": output})

    out: Json = {"model": chat["model"], "input": items}
    if instructions:
        out["instructions"] = "\n\n".join(instructions)
    tools = []
    for tool in chat.get("tools") or ():
        if web_search.is_search_tool(tool):
            tools.append(web_search.to_responses(tool))
            continue
        function = tool.get("function") or {}
        flat: Json = {"type": "function", "name": function.get("name", "")}
        flat["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
        for key in ("description", "strict"):
            if function.get(key) is not None:
                flat[key] = function[key]
        tools.append(flat)
    if tools:
        out["tools"] = tools
    choice = chat.get("tool_choice")
    if isinstance(choice, str):
        out["tool_choice"] = choice
    elif isinstance(choice, dict):
        out["tool_choice"] = {"type": "function", "name": (choice.get("function") or {}).get("name", "")}
    response_format = chat.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema") or {}
        text_format: Json = {"type": "json_schema", "name": schema.get("name") or "response"}
        text_format["schema"] = schema.get("schema") or {}
        if schema.get("strict") is not None:
            text_format["strict"] = schema["strict"]
        out["text"] = {"format": text_format}
    elif response_format.get("type") == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    effort = reasoning.parse(chat.get("reasoning_effort"))
    if effort is not None:
        out["reasoning"] = {"effort": reasoning.to_effort(effort), "summary": "auto"}
    max_tokens = chat.get("max_completion_tokens") or chat.get("max_tokens")
    if max_tokens:
        out["max_output_tokens"] = max_tokens
    for key in ("temperature", "top_p", "stream", "parallel_tool_calls"):
        if chat.get(key) is not None:
            out[key] = chat[key]
    return out


# --- hub → chat upstream ---


def chat_for_upstream(chat: Json, reasoning_model: bool = False) -> Json:
    """Remove the hub's extensions and map reasoning effort to what OpenAI-style upstreams accept.

    OpenAI's reasoning models refuse ``max_tokens`` and want ``max_completion_tokens``; other OpenAI-compatible
    servers do not all know the newer name, so it is used only for models configured with ``reasoning``.
    """
    web_search.chat_upstream(chat)
    for message in chat["messages"]:
        message.pop("thinking_blocks", None)
        message.pop("reasoning_content", None)
        message.pop("annotations", None)
        message.pop("images", None)
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                part.pop("cache_control", None)
    effort = reasoning.parse(chat.get("reasoning_effort"))
    if effort is not None:
        chat["reasoning_effort"] = reasoning.to_effort(effort)
    if reasoning_model and "max_tokens" in chat:
        chat["max_completion_tokens"] = chat.pop("max_tokens")
    return chat


def translate_request(
    req: Json, caller: str, upstream: str, model_max_output: int | None, reasoning_model: bool = False
) -> tuple[Json, Plan]:
    """``req`` (already validated, in the caller's API) as the upstream's request body."""
    if caller == upstream:
        return req, Plan()
    chat = req if caller == "chat" else anthropic_to_chat(req) if caller == "messages" else responses_to_chat(req)
    if upstream == "messages":
        return chat_to_anthropic(chat, model_max_output)
    if upstream == "responses":
        return chat_to_responses(chat), Plan()
    return chat_for_upstream(chat, reasoning_model), Plan()

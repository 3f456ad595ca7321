"""Whole-answer translation between the three APIs, through an OpenAI chat completion as the hub.

Usage is the usual trap: Anthropic's ``input_tokens`` excludes cache reads and writes, OpenAI's ``prompt_tokens``
(and Responses' ``input_tokens``) include them. In the hub, ``prompt_tokens`` includes them and
``prompt_tokens_details`` names both parts (``cache_creation_tokens`` is our extension).
"""

from __future__ import annotations

import time

import msgspec

from . import web_search
from .to_upstream import Json, Plan, assistant_blocks_to_chat

_FROM_ANTHROPIC_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_TO_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def _usage(prompt: int, completion: int, cached: int, cache_creation: int, reasoning: int) -> Json:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_creation_tokens": cache_creation},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _completion(response_id: str, model: str, message: Json, finish: str, usage: Json) -> Json:
    return {
        "id": response_id if response_id.startswith("chatcmpl") else f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


# --- upstream → hub ---


def anthropic_to_chat(body: Json, model: str, plan: Plan) -> Json:
    message, answered = assistant_blocks_to_chat(body.get("content") or (), plan.json_tool, refusal=None)
    finish = "stop" if answered else _FROM_ANTHROPIC_STOP.get(body.get("stop_reason") or "end_turn", "stop")
    u = body.get("usage") or {}
    cache_read = u.get("cache_read_input_tokens") or 0
    cache_write = u.get("cache_creation_input_tokens") or 0
    prompt = (u.get("input_tokens") or 0) + cache_read + cache_write
    usage = _usage(prompt, u.get("output_tokens") or 0, cache_read, cache_write, 0)
    _searched(usage, web_search.searches_of(body, "messages"))
    return _completion(body.get("id", ""), model, message, finish, usage)


def _searched(usage: Json, searches: int) -> None:
    """The hub's extension carrying the searches a provider ran (Anthropic's usage field name)."""
    if searches:
        usage["server_tool_use"] = {"web_search_requests": searches}


def responses_to_chat(body: Json, model: str) -> Json:
    texts: list[str] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    annotations: list[Json] = []
    for item in body.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                offset = sum(map(len, texts))
                for note in part.get("annotations") or ():
                    if note.get("type") == "url_citation" and note.get("url"):
                        start, end = note.get("start_index") or 0, note.get("end_index") or 0
                        annotations.append(
                            web_search.url_citation(note["url"], note.get("title"), offset + start, offset + end)
                        )
                texts.append(part.get("text") or part.get("refusal") or "")
        elif kind == "function_call":
            calls.append(
                {
                    "id": item.get("call_id", ""),
                    "type": "function",
                    "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")},
                }
            )
        elif kind == "reasoning":
            text = "".join(p.get("text", "") for p in item.get("summary") or ())
            thinking.append({"type": "thinking", "thinking": text, "signature": item.get("encrypted_content") or ""})
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(b["thinking"] for b in thinking)
        message["thinking_blocks"] = thinking
    if annotations:
        message["annotations"] = annotations
    reason = (body.get("incomplete_details") or {}).get("reason")
    finish = (
        "content_filter" if reason == "content_filter" else "length" if reason else "tool_calls" if calls else "stop"
    )
    u = body.get("usage") or {}
    cached = (u.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    usage = _usage(u.get("input_tokens") or 0, u.get("output_tokens") or 0, cached, 0, reasoning)
    _searched(usage, web_search.searches_of(body, "responses"))
    return _completion(body.get("id", ""), model, message, finish, usage)


# --- hub → caller ---


def chat_to_anthropic(completion: Json, model: str) -> Json:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[Json] = []
    blocks = message.get("thinking_blocks")
    if blocks:
        content.extend(blocks)
    elif message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    annotations = message.get("annotations") or []
    if annotations:
        content.extend(web_search.search_result_blocks(annotations, f"srvtoolu_{completion.get('id', '')}"))
    if message.get("content"):
        if annotations:
            content.extend(web_search.anthropic_text_blocks(message["content"], annotations))
        else:
            content.append({"type": "text", "text": message["content"]})
    for image in message.get("images") or ():
        split = (image.get("image_url") or {}).get("url", "").removeprefix("data:").partition(";base64,")
        content.append({"type": "image", "source": {"type": "base64", "media_type": split[0], "data": split[2]}})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = msgspec.json.decode(function.get("arguments") or "{}")
        except msgspec.DecodeError:
            arguments = {}
        name = function.get("name", "")
        content.append({"type": "tool_use", "id": call.get("id", ""), "name": name, "input": arguments})
    u = completion.get("usage") or {}
    details = u.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    created = details.get("cache_creation_tokens") or 0
    message_id = completion.get("id", "")
    return {
        "id": message_id if message_id.startswith("msg_") else f"msg_{message_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _TO_ANTHROPIC_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": max((u.get("prompt_tokens") or 0) - cached - created, 0),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": cached,
            "output_tokens": u.get("completion_tokens") or 0,
            **({"server_tool_use": u["server_tool_use"]} if u.get("server_tool_use") else {}),
        },
    }


def chat_to_responses(completion: Json, model: str) -> Json:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    base = completion.get("id", "")
    response_id = base if base.startswith("resp_") else f"resp_{base}"
    output: list[Json] = []
    for block in message.get("thinking_blocks") or (
        [{"thinking": message["reasoning_content"]}] if message.get("reasoning_content") else []
    ):
        item: Json = {"type": "reasoning", "id": f"rs_{base}_{len(output)}", "summary": []}
        if block.get("thinking"):
            item["summary"] = [{"type": "summary_text", "text": block["thinking"]}]
        if block.get("signature") or block.get("data"):
            item["encrypted_content"] = block.get("signature") or block.get("data")
        output.append(item)
    annotations = message.get("annotations") or []
    searches = web_search.searches_of(completion, "chat") or (1 if annotations else 0)
    output.extend(
        {"type": "web_search_call", "id": f"ws_{base}_{i}", "status": "completed", "action": {"type": "search"}}
        for i in range(searches)
    )
    if message.get("content"):
        notes = [
            {
                "type": "url_citation",
                "start_index": (a.get("url_citation") or {}).get("start_index", 0),
                "end_index": (a.get("url_citation") or {}).get("end_index", 0),
                "url": (a.get("url_citation") or {}).get("url", ""),
                "title": (a.get("url_citation") or {}).get("title", ""),
            }
            for a in annotations
        ]
        part = {"type": "output_text", "text": message["content"], "annotations": notes, "logprobs": []}
        output.append(
            {"type": "message", "id": f"msg_{base}", "status": "completed", "role": "assistant", "content": [part]}
        )
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{base}_{len(output)}",
                "call_id": call.get("id", ""),
                "name": function.get("name", ""),
                "arguments": function.get("arguments", ""),
                "status": "completed",
            }
        )
    finish = choice.get("finish_reason")
    incomplete = finish in ("length", "content_filter")
    u = completion.get("usage") or {}
    prompt, output_tokens = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
    usage: Json = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        },
        "total_tokens": prompt + output_tokens,
    }
    return {
        "id": response_id,
        "object": "response",
        "created_at": completion.get("created") or int(time.time()),
        "status": "incomplete" if incomplete else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens" if finish == "length" else "content_filter"}
        if incomplete
        else None,
        "instructions": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "metadata": {},
        "usage": usage,
    }


def translate_reply(body: Json, upstream: str, caller: str, model: str, plan: Plan) -> Json:
    """An upstream's whole answer in the caller's API."""
    if upstream == "messages":
        chat = anthropic_to_chat(body, model, plan)
    elif upstream == "responses":
        chat = responses_to_chat(body, model)
    else:
        chat = body
        chat["model"] = model
    if caller == "messages":
        return chat_to_anthropic(chat, model)
    if caller == "responses":
        return chat_to_responses(chat, model)
    # Chat callers keep `thinking_blocks`: sending them back lets the signatures reach Anthropic again.
    return chat


def usage_of(reply: Json, caller: str) -> tuple[int | None, int | None, int | None, int | None]:
    """(prompt tokens including cache, completion tokens, cached tokens, reasoning tokens) of a reply in
    ``caller``'s API. Anthropic does not report thinking tokens apart from output tokens: None."""
    u = reply.get("usage") or {}
    if caller == "messages":
        cached = u.get("cache_read_input_tokens") or 0
        prompt = (u.get("input_tokens") or 0) + cached + (u.get("cache_creation_input_tokens") or 0)
        return prompt, u.get("output_tokens"), cached, None
    if caller == "responses":
        cached = (u.get("input_tokens_details") or {}).get("cached_tokens")
        reasoning = (u.get("output_tokens_details") or {}).get("reasoning_tokens")
        return u.get("input_tokens"), u.get("output_tokens"), cached, reasoning
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return u.get("prompt_tokens"), u.get("completion_tokens"), cached, reasoning

"""OpenAI Responses: request shape, reply planning (shared with chat), and body / named SSE event builders.

Reasoning: with ``reasoning.effort`` set (and not "none"/"minimal") the reply reports the thinking text's tokens as
``reasoning_tokens``, and with ``reasoning.summary`` set it also returns a reasoning item carrying that text as
its summary. Prompt tokens follow :mod:`.content` (nothing is cached).
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import openai_chat as chat
from . import web_search
from .content import THINKING_TEXT, prompt_tokens, text_tokens
from .knobs import Knobs, Resolved


class Tool(msgspec.Struct):
    type: str = "function"
    name: str = ""
    parameters: dict[str, Any] | None = None


class NamedChoice(msgspec.Struct):
    type: str = "function"
    name: str | None = None


class Reasoning(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(msgspec.Struct):
    model: str
    input: str | list[dict[str, Any]] = ""
    instructions: str | None = None
    stream: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: str | NamedChoice | None = None
    max_output_tokens: int | None = None
    reasoning: Reasoning | None = None
    mock: Knobs | None = None


REQUEST_DECODER = msgspec.json.Decoder(ResponsesRequest)


def _item_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    return ""


def _item_role(item: dict[str, Any]) -> str:
    """The chat role of an input item: a message's own role, the model's calls as ``assistant``, outputs as ``tool``."""
    role = item.get("role")
    if isinstance(role, str):
        return role
    return "assistant" if item.get("type") in ("function_call", "reasoning") else "tool"


def as_chat_request(request: ResponsesRequest) -> chat.ChatRequest:
    messages = [chat.Message(role="system", content=request.instructions)] if request.instructions else []
    if isinstance(request.input, str):
        messages.append(chat.Message(role="user", content=request.input))
    else:
        messages.extend(chat.Message(role=_item_role(i), content=_item_text(i)) for i in request.input)
    tools = [
        chat.ToolDef(function=chat.FunctionDef(name=t.name, parameters=t.parameters))
        for t in request.tools or ()
        if t.type == "function"
    ]
    choice: str | chat.NamedToolChoice | None
    if isinstance(request.tool_choice, NamedChoice) and request.tool_choice.name:
        choice = chat.NamedToolChoice(function=chat.NamedFunction(name=request.tool_choice.name))
    else:
        choice = request.tool_choice if isinstance(request.tool_choice, str) else None
    return chat.ChatRequest(
        model=request.model, messages=messages, tools=tools or None, tool_choice=choice,
        max_tokens=request.max_output_tokens,
    )  # fmt: skip


def plan_reply(request: ResponsesRequest, knobs: Resolved) -> chat.ReplyPlan:
    return chat.plan_reply(as_chat_request(request), knobs)


def _reasoning(request: ResponsesRequest) -> tuple[tuple[str, ...], bool]:
    """(thinking tokens, whether a summary item is returned)."""
    reasoning = request.reasoning
    if reasoning is None or reasoning.effort in (None, "none", "minimal"):
        return (), False
    return text_tokens(THINKING_TEXT), reasoning.summary is not None


def _usage(request: ResponsesRequest, plan: chat.ReplyPlan, reasoning: int) -> dict[str, Any]:
    prompt = prompt_tokens(chat.prompt_chars(as_chat_request(request).messages))
    output = plan.completion_tokens + reasoning
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


def _items(request: ResponsesRequest, plan: chat.ReplyPlan, response_id: str) -> list[dict[str, Any]]:
    thinking, summary = _reasoning(request)
    items: list[dict[str, Any]] = []
    if thinking:
        parts = [{"type": "summary_text", "text": "".join(thinking)}] if summary else []
        items.append({"type": "reasoning", "id": f"rs_{response_id}", "summary": parts})
    if web_search.wanted([{"type": t.type} for t in request.tools or ()]):
        query = request.input if isinstance(request.input, str) else _item_text(request.input[-1])
        items.extend(web_search.responses_items(query, response_id))
    elif plan.tokens or not plan.tool_calls:
        part = {"type": "output_text", "text": "".join(plan.tokens), "annotations": [], "logprobs": []}
        items.append(
            {
                "type": "message",
                "id": f"msg_{response_id}",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    items.extend(
        {
            "type": "function_call",
            "id": f"fc_{response_id}_{i}",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.arguments,
            "status": "completed",
        }
        for i, c in enumerate(plan.tool_calls)
    )
    return items


def response_object(
    request: ResponsesRequest, plan: chat.ReplyPlan, response_id: str, created: int, model: str, final: bool
) -> dict[str, Any]:
    thinking, _ = _reasoning(request)
    incomplete = plan.finish_reason == "length"
    status = ("incomplete" if incomplete else "completed") if final else "in_progress"
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if final and incomplete else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": _items(request, plan, response_id) if final else [],
        "parallel_tool_calls": True,
        "reasoning": {"effort": request.reasoning.effort if request.reasoning else None, "summary": None},
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(request, plan, len(thinking)) if final else None,
        "metadata": {},
    }


def response_body(request: ResponsesRequest, plan: chat.ReplyPlan, response_id: str, created: int, model: str) -> bytes:
    return msgspec.json.encode(response_object(request, plan, response_id, created, model, final=True))


def stream_events(
    request: ResponsesRequest, plan: chat.ReplyPlan, response_id: str, created: int, model: str
) -> chat.StreamEvents:
    """``head``: created + in_progress; ``tokens``: the item events; ``tail``: completed (or incomplete)."""
    seq = 0

    def event(name: str, data: dict[str, Any]) -> bytes:
        nonlocal seq
        body = msgspec.json.encode({"type": name, **data, "sequence_number": seq})
        seq += 1
        return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"

    start = response_object(request, plan, response_id, created, model, final=False)
    head = event("response.created", {"response": start}) + event("response.in_progress", {"response": start})
    thinking, _ = _reasoning(request)
    tokens: list[bytes] = []
    for index, item in enumerate(_items(request, plan, response_id)):
        at = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "message":
            tokens.append(event("response.output_item.added", {"output_index": index, "item": {**item, "content": []}}))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            tokens.append(event("response.content_part.added", {**at, "content_index": 0, "part": part}))
            text = item["content"][0]["text"]
            deltas = plan.tokens if "".join(plan.tokens) == text else (text,)
            tokens.extend(
                event("response.output_text.delta", {**at, "content_index": 0, "delta": t, "logprobs": []})
                for t in deltas
            )
            tokens.extend(
                event(
                    "response.output_text.annotation.added",
                    {**at, "content_index": 0, "annotation_index": i, "annotation": note},
                )
                for i, note in enumerate(item["content"][0]["annotations"])
            )
            tokens.append(event("response.output_text.done", {**at, "content_index": 0, "text": text, "logprobs": []}))
            tokens.append(event("response.content_part.done", {**at, "content_index": 0, "part": item["content"][0]}))
        elif kind == "function_call":
            tokens.append(
                event("response.output_item.added", {"output_index": index, "item": {**item, "arguments": ""}})
            )
            call = plan.tool_calls[int(item["id"].rpartition("_")[2])]
            tokens.extend(event("response.function_call_arguments.delta", {**at, "delta": f}) for f in call.fragments)
            tokens.append(event("response.function_call_arguments.done", {**at, "arguments": item["arguments"]}))
        elif kind == "web_search_call":
            tokens.append(
                event("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress"}})
            )
            tokens.extend(
                event(f"response.web_search_call.{stage}", at) for stage in ("in_progress", "searching", "completed")
            )
        else:
            tokens.append(event("response.output_item.added", {"output_index": index, "item": {**item, "summary": []}}))
            for summary_index, part in enumerate(item["summary"]):
                at_part = {**at, "summary_index": summary_index}
                tokens.append(event("response.reasoning_summary_part.added", {**at_part, "part": {**part, "text": ""}}))
                tokens.extend(event("response.reasoning_summary_text.delta", {**at_part, "delta": t}) for t in thinking)
                tokens.append(event("response.reasoning_summary_text.done", {**at_part, "text": part["text"]}))
                tokens.append(event("response.reasoning_summary_part.done", {**at_part, "part": part}))
        tokens.append(event("response.output_item.done", {"output_index": index, "item": item}))
    final = response_object(request, plan, response_id, created, model, final=True)
    terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    return chat.StreamEvents(head=head, tokens=tokens, tail=event(terminal, {"response": final}))

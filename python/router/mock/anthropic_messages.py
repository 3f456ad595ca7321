"""Anthropic Messages: request shape, reply planning (shared with chat), and body / SSE event builders.

Usage rules on top of :mod:`.content`: the prompt's text up to the last ``cache_control`` breakpoint counts as a
cache read (the mock's cache is always warm), and ``input_tokens`` is the rest, as Anthropic reports it (input
excludes cached tokens). Thinking (``thinking.type == "enabled"``) adds one thinking block whose tokens count as
output tokens.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import openai_chat as chat
from . import web_search
from .content import THINKING_TEXT, prompt_tokens, text_tokens, thinking_signature
from .knobs import Knobs, Resolved

# --- request (lenient: the gateway validates; the mock reads what it needs) ---


class Tool(msgspec.Struct):
    name: str = ""
    input_schema: dict[str, Any] | None = None
    # Set for server tools (`web_search_20250305`); None or "custom" for client tools.
    type: str | None = None

    @property
    def is_server(self) -> bool:
        return self.type not in (None, "custom")


class ToolChoice(msgspec.Struct):
    type: str = "auto"
    name: str | None = None


class Thinking(msgspec.Struct):
    type: str = "disabled"
    budget_tokens: int | None = None


class Message(msgspec.Struct):
    role: str = "user"
    content: str | list[dict[str, Any]] = ""


class MessagesRequest(msgspec.Struct):
    model: str
    max_tokens: int
    messages: list[Message] = []
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    mock: Knobs | None = None


REQUEST_DECODER = msgspec.json.Decoder(MessagesRequest)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        content = block.get("content")
        return content if isinstance(content, str) else "".join(_block_text(b) for b in content or ())
    return ""


def _texts(request: MessagesRequest) -> list[tuple[str, bool]]:
    """Every prompt text in order, each with whether a ``cache_control`` breakpoint follows it."""
    out: list[tuple[str, bool]] = []
    system = request.system
    if isinstance(system, str):
        out.append((system, False))
    elif system:
        out.extend((_block_text(b), "cache_control" in b) for b in system)
    for message in request.messages:
        if isinstance(message.content, str):
            out.append((message.content, False))
        else:
            out.extend((_block_text(b), "cache_control" in b) for b in message.content)
    return out


def prompt_usage(request: MessagesRequest) -> tuple[int, int]:
    """(input_tokens excluding the cache, cache_read_input_tokens)."""
    texts = _texts(request)
    total = sum(len(t) for t, _ in texts)
    last_breakpoint = max((i for i, (_, bp) in enumerate(texts) if bp), default=-1)
    cached_chars = sum(len(t) for t, _ in texts[: last_breakpoint + 1])
    cached = cached_chars // 4 if last_breakpoint >= 0 else 0
    return max(prompt_tokens(total) - cached, 1), cached


def _chat_messages(message: Message) -> list[chat.Message]:
    """One Messages turn in chat terms: a user turn's tool results become ``tool`` messages, as in chat.

    They go last, after the turn's other text: a turn that brings tool results (agents such as Claude Code add
    text blocks beside them) ends the conversation with tool results, whatever else it carries.
    """
    if isinstance(message.content, str):
        return [chat.Message(role=message.role, content=message.content)]
    blocks = message.content
    results = [chat.Message(role="tool", content=_block_text(b)) for b in blocks if b.get("type") == "tool_result"]
    rest = "".join(_block_text(b) for b in blocks if b.get("type") != "tool_result")
    return [chat.Message(role=message.role, content=rest), *results] if rest or not results else results


def as_chat_request(request: MessagesRequest) -> chat.ChatRequest:
    """The same request in chat terms, so reply planning (tools, echo, limits) is shared with chat."""
    messages = [turn for m in request.messages for turn in _chat_messages(m)]
    tools = [
        chat.ToolDef(function=chat.FunctionDef(name=t.name, parameters=t.input_schema))
        for t in request.tools or ()
        if not t.is_server
    ]
    choice: str | chat.NamedToolChoice | None = None
    if request.tool_choice is not None:
        kind = request.tool_choice.type
        if kind == "tool" and request.tool_choice.name:
            choice = chat.NamedToolChoice(function=chat.NamedFunction(name=request.tool_choice.name))
        else:
            choice = {"any": "required", "none": "none"}.get(kind, "auto")
    return chat.ChatRequest(
        model=request.model, messages=messages, tools=tools or None, tool_choice=choice, max_tokens=request.max_tokens
    )


def searches(request: MessagesRequest) -> bool:
    """Whether the request gives the web search server tool (answered with `web_search.RESULTS`)."""
    return any(t.is_server and (t.type or "").startswith("web_search_") for t in request.tools or ())


def search_query(request: MessagesRequest) -> str:
    last = request.messages[-1].content if request.messages else ""
    return last if isinstance(last, str) else " ".join(_block_text(b) for b in last)


def thinking_tokens(request: MessagesRequest) -> tuple[str, ...]:
    if request.thinking is None or request.thinking.type != "enabled":
        return ()
    return text_tokens(THINKING_TEXT)


def plan_reply(request: MessagesRequest, knobs: Resolved) -> chat.ReplyPlan:
    plan = chat.plan_reply(as_chat_request(request), knobs)
    # Anthropic tool ids look like toolu_…; kept deterministic so streamed and whole answers match.
    calls = tuple(msgspec.structs.replace(c, id=f"toolu_mock{i}") for i, c in enumerate(plan.tool_calls))
    return msgspec.structs.replace(plan, tool_calls=calls)


# --- replies ---


def _usage(request: MessagesRequest, output_tokens: int) -> dict[str, int]:
    uncached, cached = prompt_usage(request)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": output_tokens,
    }


def _output_tokens(plan: chat.ReplyPlan, thinking: tuple[str, ...]) -> int:
    return plan.completion_tokens + len(thinking)


def message_body(request: MessagesRequest, plan: chat.ReplyPlan, message_id: str, model: str) -> bytes:
    thinking = thinking_tokens(request)
    content: list[dict[str, Any]] = []
    if thinking:
        text = "".join(thinking)
        content.append({"type": "thinking", "thinking": text, "signature": thinking_signature(text)})
    usage: dict[str, Any] = _usage(request, _output_tokens(plan, thinking))
    if searches(request):
        content.extend(web_search.anthropic_blocks(search_query(request), f"srvtoolu_{message_id}"))
        usage["server_tool_use"] = {"web_search_requests": 1}
    elif plan.tokens or not plan.tool_calls:
        content.append({"type": "text", "text": "".join(plan.tokens)})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": msgspec.json.decode(c.arguments)}
        for c in plan.tool_calls
    )
    return msgspec.json.encode(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": _STOP_REASONS[plan.finish_reason],
            "stop_sequence": None,
            "usage": usage,
        }
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode({"type": name, **data}) + b"\n\n"


def stream_events(request: MessagesRequest, plan: chat.ReplyPlan, message_id: str, model: str) -> chat.StreamEvents:
    """``head``: message_start and a ping; ``tokens``: every block event; ``tail``: message_delta, message_stop."""
    thinking = thinking_tokens(request)
    start_usage = _usage(request, 1)
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    head = _event("message_start", {"message": message}) + _event("ping", {})
    tokens: list[bytes] = []
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        tokens.append(_event("content_block_start", {"index": index, "content_block": start}))
        tokens.extend(_event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
        tokens.append(_event("content_block_stop", {"index": index}))
        index += 1

    if thinking:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in thinking]
        deltas.append({"type": "signature_delta", "signature": thinking_signature("".join(thinking))})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    final_usage: dict[str, Any] = _usage(request, _output_tokens(plan, thinking))
    if searches(request):
        # Streamed as Anthropic does: the query as input_json_delta, the results whole, citations_delta
        # before each cited text.
        final_usage["server_tool_use"] = {"web_search_requests": 1}
        for found in web_search.anthropic_blocks(search_query(request), f"srvtoolu_{message_id}"):
            if found["type"] == "server_tool_use":
                query = msgspec.json.encode(found["input"]).decode()
                block({**found, "input": {}}, [{"type": "input_json_delta", "partial_json": query}])
            elif found["type"] == "web_search_tool_result":
                block(found, [])
            else:
                deltas = [{"type": "citations_delta", "citation": c} for c in found.get("citations", ())]
                deltas.append({"type": "text_delta", "text": found["text"]})
                block({"type": "text", "text": "", **({"citations": []} if "citations" in found else {})}, deltas)
    elif plan.tokens or not plan.tool_calls:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in plan.tokens])
    for call in plan.tool_calls:
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in call.fragments]
        block({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, deltas)
    tail = _event(
        "message_delta",
        {"delta": {"stop_reason": _STOP_REASONS[plan.finish_reason], "stop_sequence": None}, "usage": final_usage},
    ) + _event("message_stop", {})
    return chat.StreamEvents(head=head, tokens=tokens, tail=tail)

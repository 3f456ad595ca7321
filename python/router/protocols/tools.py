"""Tool-call analytics: the tools an answer called, and the tool results a request sent back.

Streams are observed in Rust (`StreamTap.tool_names`, `Transcoder.tool_names`); whole answers here, from the
reply the gateway decodes anyway. A request's results are the ones new in it: the trailing tool messages
(chat), the tool_result blocks of the last user turn (Anthropic) or the trailing function_call_output items
(Responses), each named by matching its call id against the calls earlier in the same request. Only Anthropic
marks a result as failed (`is_error`); a result whose call is not in the request (Responses with
`previous_response_id`) cannot be named and is not counted.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import anthropic as anthropic_shapes

Result = tuple[str, bool]  # (tool name, reported as an error)


# -- answers ----------------------------------------------------------------------------------------------


class _Function(msgspec.Struct):
    name: str | None = None


class _Call(msgspec.Struct):
    id: str | None = None
    function: _Function | None = None


class _ChatMessage(msgspec.Struct):
    tool_calls: list[_Call] | None = None


class ChatChoice(msgspec.Struct):
    """What a chat completion's choice says about tool calls; decoded with the answer's usage, in one pass."""

    message: _ChatMessage | None = None


def chat_calls(choices: list[ChatChoice] | None) -> list[str] | None:
    """Tool names in a chat completion's choices, in order."""
    names = [
        c.function.name
        for choice in choices or ()
        if choice.message is not None
        for c in choice.message.tool_calls or ()
        if c.function is not None and c.function.name
    ]
    return names or None


def _named(items: Any, kind: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [
        i["name"] for i in items if isinstance(i, dict) and i.get("type") == kind and isinstance(i.get("name"), str)
    ]


def _chat_named(choices: Any) -> list[str]:
    names: list[str] = []
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name:
                names.append(name)
    return names


def called(reply: dict[str, Any], api: str) -> list[str] | None:
    """Tool names a whole answer in ``api``'s shape called, in order (whatever the upstream sent: never raises)."""
    if api == "chat":
        names = _chat_named(reply.get("choices"))
    elif api == "messages":
        names = _named(reply.get("content"), "tool_use")
    else:
        names = _named(reply.get("output"), "function_call")
    return names or None


# -- requests -----------------------------------------------------------------------------------------


class _ToolTurn(msgspec.Struct):
    role: str
    tool_call_id: str | None = None
    tool_calls: list[_Call] | None = None


class _ToolTurns(msgspec.Struct):
    messages: list[_ToolTurn]


_tool_turns = msgspec.json.Decoder(_ToolTurns)


def chat_results(body: bytes, last_role: str) -> list[Result] | None:
    """The trailing `role: tool` messages of a chat request; the body is decoded again only when there are some."""
    if last_role != "tool":
        return None
    try:
        messages = _tool_turns.decode(body).messages
    except msgspec.DecodeError:  # e.g. a non-string tool_call_id: the upstream's to judge, not the analytics'
        return None
    names = {c.id: c.function.name for m in messages for c in m.tool_calls or () if c.function and c.function.name}
    results: list[Result] = []
    for m in reversed(messages):
        if m.role != "tool":
            break
        name = names.get(m.tool_call_id)
        if name:
            results.append((name, False))
    results.reverse()
    return results or None


def messages_results(request: anthropic_shapes.MessagesRequest) -> list[Result] | None:
    """The tool_result blocks of the last user turn, with Anthropic's `is_error`."""
    last = request.messages[-1] if request.messages else None
    if last is None or last.role != "user" or isinstance(last.content, str):
        return None
    if not any(isinstance(b, anthropic_shapes.ToolResultBlock) for b in last.content):
        return None
    names = {
        b.id: b.name
        for m in request.messages
        if m.role == "assistant" and not isinstance(m.content, str)
        for b in m.content
        if isinstance(b, anthropic_shapes.ToolUseBlock)
    }
    results = [
        (names[b.tool_use_id], bool(b.is_error))
        for b in last.content
        if isinstance(b, anthropic_shapes.ToolResultBlock) and b.tool_use_id in names
    ]
    return results or None


def responses_results(items: str | list[dict[str, Any]]) -> list[Result] | None:
    """The trailing function_call_output items of a Responses request's input."""
    if isinstance(items, str) or not items or items[-1].get("type") != "function_call_output":
        return None
    names = {
        i["call_id"]: i["name"]
        for i in items
        if i.get("type") == "function_call" and isinstance(i.get("call_id"), str) and isinstance(i.get("name"), str)
    }
    results: list[Result] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        call_id = item.get("call_id")
        name = names.get(call_id) if isinstance(call_id, str) else None
        if name:
            results.append((name, False))
    results.reverse()
    return results or None


def results_json(results: list[Result] | None) -> str | None:
    """The usage row's `tool_results` column: a JSON list of {"name", "is_error"}."""
    if not results:
        return None
    return msgspec.json.encode([{"name": n, "is_error": e} for n, e in results]).decode()

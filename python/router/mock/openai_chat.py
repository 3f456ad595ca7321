"""OpenAI Chat Completions: request shape, reply planning, and body / SSE chunk builders.

Everything here is pure: the app decides knobs and faults, these functions only turn a plan into bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .content import THINKING_TEXT, canned_tokens, fragments, text_tokens
from .knobs import Knobs, Resolved

# --- request (only the fields the mock reads; everything else is ignored by msgspec) ---


class ContentPart(msgspec.Struct):
    type: str = "text"
    text: str | None = None


class Message(msgspec.Struct):
    role: str = "user"
    content: str | list[ContentPart] | None = None


class FunctionDef(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None


class ToolDef(msgspec.Struct):
    type: str = "function"
    function: FunctionDef | None = None


class NamedFunction(msgspec.Struct):
    name: str


class NamedToolChoice(msgspec.Struct):
    type: str = "function"
    function: NamedFunction | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct):
    model: str
    messages: list[Message] = []
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | NamedToolChoice | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    # Any effort but none/minimal makes the reply "think" (DeepSeek-style `reasoning_content`).
    reasoning_effort: str | None = None
    mock: Knobs | None = None


REQUEST_DECODER = msgspec.json.Decoder(ChatRequest)


def message_text(message: Message) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if part.text)


def prompt_chars(messages: list[Message]) -> int:
    return sum(len(message_text(m)) for m in messages)


def last_user_text(messages: list[Message]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.role == "user"), "")


# --- reply plan ---


class PlannedToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str
    fragments: tuple[str, ...]


class ReplyPlan(msgspec.Struct, frozen=True):
    tokens: tuple[str, ...]
    tool_calls: tuple[PlannedToolCall, ...]
    finish_reason: str
    reasoning: tuple[str, ...] = ()

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens) + sum(len(call.fragments) for call in self.tool_calls) + len(self.reasoning)


_EXAMPLE_VALUES: dict[str, Any] = {
    "string": "mock",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


def example_arguments(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A deterministic argument object for a tool's JSON schema: one placeholder value per top-level property.

    string → "mock", integer → 1, number → 1.5, boolean → true, array → [], object → {}; an ``enum`` gives its
    first value.
    """
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return {}
    out: dict[str, Any] = {}
    for name, schema in properties.items():
        if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
            out[name] = schema["enum"][0]  # "mock" would not validate against an enum
            continue
        kind = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(kind, list):  # e.g. ["string", "null"]: the first non-null type is the interesting one
            kind = next((k for k in kind if k != "null"), "null")
        value = _EXAMPLE_VALUES.get(kind) if isinstance(kind, str) else None
        # Fresh containers per call: the shared table must never be mutated through a caller's result.
        out[name] = list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
    return out


def answers_tool_results(messages: list[Message]) -> bool:
    """Whether the conversation ends with tool results rather than a user turn.

    An agent loop sends the results of the calls the model made; the model then answers in text.
    """
    last = next((m.role for m in reversed(messages) if m.role not in ("system", "developer")), None)
    return last in ("tool", "function")


def selected_tools(request: ChatRequest, count_override: int | None) -> list[FunctionDef]:
    """Which functions the reply calls, in order (empty: a text reply).

    ``tool_choice`` "none" → none; "required" → every tool once; a named function → that one; "auto" or absent →
    the first tool when the conversation ends with a user turn, none once the tool results are in (as a model in
    an agent loop does, so the loop ends). ``count_override`` (the ``tool_calls`` knob) replaces the count,
    cycling through the candidates, whatever the conversation.
    """
    tools = [t.function for t in request.tools or () if t.type == "function" and t.function is not None]
    choice = request.tool_choice
    if not tools or choice == "none":
        return []
    if isinstance(choice, NamedToolChoice) and choice.function is not None:
        name = choice.function.name
        candidates = [t for t in tools if t.name == name] or [FunctionDef(name=name)]
        count = 1
    elif choice == "required":
        candidates, count = tools, len(tools)
    else:
        candidates, count = tools, 0 if answers_tool_results(request.messages) else 1
    if count_override is not None:
        count = count_override
    return [candidates[i % len(candidates)] for i in range(count)]


def token_limit(request: ChatRequest, tokens: int) -> tuple[int, str]:
    """Apply ``max_completion_tokens``/``max_tokens`` like a real model: truncate and report ``length``."""
    limit = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if limit is not None and limit < tokens:
        return max(limit, 0), "length"
    return tokens, "stop"


def plan_reply(request: ChatRequest, knobs: Resolved) -> ReplyPlan:
    plan = _plan_answer(request, knobs)
    if request.reasoning_effort not in (None, "none", "minimal"):
        return msgspec.structs.replace(plan, reasoning=text_tokens(THINKING_TEXT))
    return plan


def _plan_answer(request: ChatRequest, knobs: Resolved) -> ReplyPlan:
    functions = selected_tools(request, knobs.tool_calls)
    if functions:
        calls = []
        for index, function in enumerate(functions):
            arguments = msgspec.json.encode(example_arguments(function.parameters)).decode()
            calls.append(PlannedToolCall(f"call_{index}", function.name, arguments, tuple(fragments(arguments))))
        return ReplyPlan(tokens=(), tool_calls=tuple(calls), finish_reason="tool_calls")
    if knobs.echo:
        tokens = text_tokens(last_user_text(request.messages))
        count, finish = token_limit(request, len(tokens))
        return ReplyPlan(tokens=tokens[:count], tool_calls=(), finish_reason=finish)
    count, finish = token_limit(request, knobs.tokens)
    return ReplyPlan(tokens=canned_tokens(count), tool_calls=(), finish_reason=finish)


# --- response shapes ---


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: FunctionCall


class AssistantMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    content: str | None
    refusal: None = None
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class Choice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = msgspec.field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = msgspec.field(default_factory=CompletionTokensDetails)


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str = "fp_mock"


class FunctionDelta(msgspec.Struct, kw_only=True):
    name: str | UnsetType = UNSET
    arguments: str


class ToolCallDelta(msgspec.Struct, kw_only=True):
    index: int
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: FunctionDelta


class Delta(msgspec.Struct):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str = "fp_mock"
    choices: list[ChunkChoice]
    # UNSET (omitted) without include_usage, null on content chunks with it, like OpenAI.
    usage: Usage | UnsetType | None = UNSET


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> Usage:
    details = CompletionTokensDetails(reasoning_tokens)
    return Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens, completion_tokens_details=details)


def reply_message(plan: ReplyPlan) -> AssistantMessage:
    reasoning = "".join(plan.reasoning) if plan.reasoning else UNSET
    if plan.tool_calls:
        calls = [ToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)) for c in plan.tool_calls]
        return AssistantMessage(content=None, reasoning_content=reasoning, tool_calls=calls)
    return AssistantMessage(content="".join(plan.tokens), reasoning_content=reasoning)


def _literal(data: bytes) -> bytes:
    """Escape bytes for use as literal text in a bytes ``%`` template (model names may contain ``%``)."""
    return data.replace(b"%", b"%%")


class CompletionTemplate:
    """A non-streaming body with holes for the per-response id, timestamp and prompt size.

    The app caches one per (model, reply) so the common request costs a dict hit and one bytes ``%`` format
    instead of building and encoding the whole response.
    """

    __slots__ = ("_template", "completion_tokens")

    def __init__(self, model: str, plan: ReplyPlan) -> None:
        encode = msgspec.json.encode
        choice = Choice(index=0, message=reply_message(plan), finish_reason=plan.finish_reason)
        # Everything after the three token counts, minus the closing brace of "usage".
        usage_tail = encode(usage(0, 0, len(plan.reasoning)))
        usage_tail = usage_tail[usage_tail.index(b',"prompt_tokens_details"') : -1]
        # Field order matches ChatCompletion's encoding; the tests check both stay byte-identical.
        self.completion_tokens = plan.completion_tokens
        self._template = (
            b'{"id":"%b","object":"chat.completion","created":%d,"model":'
            + _literal(encode(model))
            + b',"choices":'
            + _literal(encode([choice]))
            + b',"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d'
            + _literal(usage_tail)
            + b'},"system_fingerprint":"fp_mock"}'
        )

    def render(self, response_id: bytes, created: int, prompt_tokens: int) -> bytes:
        completion = self.completion_tokens
        return self._template % (response_id, created, prompt_tokens, completion, prompt_tokens + completion)


def completion_body(plan: ReplyPlan, response_id: str, created: int, model: str, prompt_tokens: int) -> bytes:
    """The full non-streaming body, built the plain way (reference for the template; used by tests)."""
    choice = Choice(index=0, message=reply_message(plan), finish_reason=plan.finish_reason)
    return msgspec.json.encode(
        ChatCompletion(
            id=response_id,
            created=created,
            model=model,
            choices=[choice],
            usage=usage(prompt_tokens, plan.completion_tokens, len(plan.reasoning)),
        )
    )


class StreamEvents(msgspec.Struct, frozen=True):
    """SSE events of one streamed reply, split so the app can pace and break the token part.

    ``head``: the role chunk; ``tokens``: one event per output token (content word or argument fragment, plus
    each tool call's opening fragment); ``tail``: finish chunk, optional usage chunk, ``[DONE]``.
    """

    head: bytes
    tokens: list[bytes]
    tail: bytes


DONE_EVENT = b"data: [DONE]\n\n"


def stream_events(
    plan: ReplyPlan, response_id: str, created: int, model: str, prompt_tokens: int, include_usage: bool
) -> StreamEvents:
    encode = msgspec.json.encode
    null_usage: UnsetType | None = None if include_usage else UNSET

    def event(choices: list[ChunkChoice], chunk_usage: Usage | UnsetType | None = null_usage) -> bytes:
        chunk = ChatCompletionChunk(id=response_id, created=created, model=model, choices=choices, usage=chunk_usage)
        return b"data: " + encode(chunk) + b"\n\n"

    head = event([ChunkChoice(delta=Delta(role="assistant", content=None if plan.tool_calls else ""))])
    tokens = [event([ChunkChoice(delta=Delta(reasoning_content=token))]) for token in plan.reasoning]
    tokens += [event([ChunkChoice(delta=Delta(content=token))]) for token in plan.tokens]
    for index, call in enumerate(plan.tool_calls):
        opening = ToolCallDelta(
            index=index, id=call.id, type="function", function=FunctionDelta(name=call.name, arguments="")
        )
        tokens.append(event([ChunkChoice(delta=Delta(tool_calls=[opening]))]))
        tokens.extend(
            event(
                [
                    ChunkChoice(
                        delta=Delta(tool_calls=[ToolCallDelta(index=index, function=FunctionDelta(arguments=fragment))])
                    )
                ]
            )
            for fragment in call.fragments
        )
    tail = event([ChunkChoice(delta=Delta(), finish_reason=plan.finish_reason)])
    if include_usage:
        tail += event([], usage(prompt_tokens, plan.completion_tokens, len(plan.reasoning)))
    return StreamEvents(head=head, tokens=tokens, tail=tail + DONE_EVENT)

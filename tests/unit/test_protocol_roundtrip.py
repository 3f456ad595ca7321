"""Property: a chat conversation translated to Anthropic Messages or Responses and back is unchanged."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from router.protocols import to_upstream
from router.protocols.to_upstream import chat_to_anthropic, chat_to_responses, responses_to_chat

text = st.text(min_size=1, max_size=12)
arguments = st.dictionaries(st.text(min_size=1, max_size=4), st.integers() | st.text(max_size=4), max_size=3)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": draw(text)}]
    call_number = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(text)})
        content = draw(st.none() | text)
        calls = []
        for _ in range(draw(st.integers(0 if content else 1, 3))):
            call_number += 1
            encoded = msgspec.json.encode(draw(arguments)).decode()
            calls.append(
                {
                    "id": f"call_{call_number}",
                    "type": "function",
                    "function": {"name": draw(text), "arguments": encoded},
                }
            )
        assistant: dict = {"role": "assistant", "content": content}
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        messages.extend({"role": "tool", "tool_call_id": c["id"], "content": draw(text)} for c in calls)
    return messages


@settings(max_examples=100, deadline=None)
@given(conversations())
def test_chat_through_anthropic_and_back(messages: list[dict]) -> None:
    body, _ = chat_to_anthropic({"model": "m", "messages": messages}, None)
    # Anthropic turns alternate: tool results are user turns, several results share one.
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])
    assert to_upstream.anthropic_to_chat(body)["messages"] == messages


@settings(max_examples=100, deadline=None)
@given(conversations())
def test_chat_through_responses_and_back(messages: list[dict]) -> None:
    body = chat_to_responses({"model": "m", "messages": messages})
    assert responses_to_chat(body)["messages"] == messages

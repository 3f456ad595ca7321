"""An agent loop through the gateway to completion, with the official SDKs: the model calls a tool, the agent
sends the result, the model answers in text. The bundled mock behaves like a model in that loop."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from servers import Server

MAX_TURNS = 5
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def weather(city: str) -> str:
    return json.dumps({"city": city, "sky": "sunny"})


@pytest.mark.parametrize("model", ["mock/gpt-4o", "anthropic/claude-sonnet-4-5", "openai-responses/gpt-4o"])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_agent_loop_finishes(client: openai.OpenAI, model: str, stream: bool) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list = [{"role": "user", "content": "What is the weather in Oslo?"}]
    calls = 0
    for _ in range(MAX_TURNS):
        if stream:
            with client.chat.completions.stream(model=model, messages=messages, tools=tools) as events:
                message = events.get_final_completion().choices[0].message
        else:
            message = client.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
        if not message.tool_calls:
            break
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            calls += 1
            result = weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    else:
        pytest.fail(f"no final answer after {MAX_TURNS} turns")
    assert calls == 1 and message.content


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "mock/gpt-4o", "openai-responses/gpt-4o"])
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_agent_loop_finishes(gateway: Server, api_key: str, model: str, stream: bool) -> None:
    claude = anthropic.Anthropic(base_url=gateway.base, api_key=api_key, max_retries=0)
    tools = [{"name": "get_weather", "description": "Weather now", "input_schema": WEATHER}]
    messages: list = [{"role": "user", "content": "What is the weather in Oslo?"}]
    calls = 0
    for _ in range(MAX_TURNS):
        kwargs = {"model": model, "max_tokens": 300, "messages": messages, "tools": tools}
        if stream:
            with claude.messages.stream(**kwargs) as events:
                reply = events.get_final_message()
        else:
            reply = claude.messages.create(**kwargs)
        if reply.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        results = []
        for block in reply.content:
            if block.type == "tool_use":
                calls += 1
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": weather(**block.input)})
        messages.append({"role": "user", "content": results})
    else:
        pytest.fail(f"no final answer after {MAX_TURNS} turns")
    assert calls == 1 and reply.stop_reason == "end_turn"
    assert [b.type for b in reply.content] == ["text"] and reply.content[0].text


def test_responses_agent_loop_finishes(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
    items: list = [{"role": "user", "content": "What is the weather in Oslo?"}]
    for _ in range(MAX_TURNS):
        response = client.responses.create(model="openai-responses/gpt-4o", input=items, tools=tools)
        calls = [i for i in response.output if i.type == "function_call"]
        if not calls:
            break
        for call in calls:
            items.append({"type": "function_call", "call_id": call.call_id, "name": call.name,
                          "arguments": call.arguments})  # fmt: skip
            items.append({"type": "function_call_output", "call_id": call.call_id,
                          "output": weather(**json.loads(call.arguments))})  # fmt: skip
    else:
        pytest.fail(f"no final answer after {MAX_TURNS} turns")
    assert response.output_text and len(items) == 3


def test_a_one_shot_messages_prompt_without_tools_answers(gateway: Server, api_key: str) -> None:
    # What `claude -p "Say hello"` sends with tools switched off.
    claude = anthropic.Anthropic(base_url=gateway.base, api_key=api_key, max_retries=0)
    reply = claude.messages.create(
        model="anthropic/claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert reply.stop_reason in ("end_turn", "max_tokens") and reply.content[0].text

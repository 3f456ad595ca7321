"""The mock's Anthropic Messages and OpenAI Responses formats, driven by the official SDKs and raw HTTP."""

from __future__ import annotations

import anthropic
import openai
import pytest

from router.mock.errors import ANTHROPIC_FAULT_RESPONSES, FAULT_RESPONSES

from mock_harness import MockServer

HELLO = [{"role": "user", "content": "Say something deterministic, please."}]
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]


@pytest.fixture
def claude(mock: MockServer):
    with anthropic.Anthropic(base_url=f"http://127.0.0.1:{mock.port}", api_key="sk-ant-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def client(mock: MockServer):
    with openai.OpenAI(base_url=mock.base_url, api_key="sk-test-0123456789", max_retries=0) as sdk:
        yield sdk


def test_messages_stream_equals_create_with_thinking_and_tools(claude: anthropic.Anthropic) -> None:
    kwargs = {
        "model": "claude-mock",
        "max_tokens": 4096,
        "messages": HELLO,
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    message = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        events = list(stream)
        streamed = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in message.content]
    assert streamed.usage == message.usage and message.stop_reason == "tool_use"
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert any(e.type == "content_block_delta" and e.delta.type == "signature_delta" for e in events)


def test_messages_cache_breakpoint_counts_as_cache_read(claude: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "r" * 4000, "cache_control": {"type": "ephemeral"}}]
    message = claude.messages.create(model="claude", max_tokens=10, system=system, messages=HELLO)
    # Anthropic's input_tokens excludes what the cache served.
    assert message.usage.cache_read_input_tokens == 1000
    assert message.usage.input_tokens == (4000 + len(HELLO[0]["content"])) // 4 - 1000


@pytest.mark.parametrize(
    ("fail", "error"),
    [("529", anthropic.OverloadedError), ("429", anthropic.RateLimitError), ("500", anthropic.InternalServerError)],
)
def test_messages_faults_in_anthropic_shape(claude: anthropic.Anthropic, fail: str, error: type) -> None:
    with pytest.raises(error) as raised:
        claude.messages.create(model=f"claude@fail={fail}", max_tokens=10, messages=HELLO)
    assert raised.value.body["type"] == "error"


def test_messages_bad_body_is_an_anthropic_400(mock: MockServer) -> None:
    response = mock.request("POST", "/v1/messages", {"model": "claude", "messages": HELLO})
    assert response.status == 400
    assert response.json()["type"] == "error" and "max_tokens" in response.json()["error"]["message"]


def test_responses_stream_equals_create(client: openai.OpenAI) -> None:
    kwargs = {
        "model": "gpt-4o",
        "input": HELLO,
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 5,
    }
    response = client.responses.create(**kwargs)
    with client.responses.stream(**kwargs) as stream:
        events = list(stream)
    # Cut short by max_output_tokens: the stream ends with response.incomplete carrying the whole answer.
    assert events[0].type == "response.created" and events[-1].type == "response.incomplete"
    final = events[-1].response
    assert response.status == final.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == response.output_text == "The quick brown fox jumps"
    assert response.usage.output_tokens_details.reasoning_tokens > 0
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_responses_tool_calls_stream(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": t["name"], "parameters": t["input_schema"]} for t in TOOLS]
    with client.responses.stream(model="gpt-4o", input="x", tools=tools, tool_choice="required") as stream:
        final = stream.get_final_response()
    assert [(i.name, i.arguments) for i in final.output] == [
        ("get_weather", '{"city":"mock"}'),
        ("get_time", '{"zone":"mock"}'),
    ]


def test_messages_agent_loop_ends_with_text_after_tool_results(claude: anthropic.Anthropic) -> None:
    messages: list = [{"role": "user", "content": "Weather in Oslo?"}]
    first = claude.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=messages, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                *({"type": "tool_result", "tool_use_id": c.id, "content": "Sunny"} for c in calls),
                # Agents such as Claude Code add text beside the results; the turn still brings tool results.
                {"type": "text", "text": "<system-reminder>keep going</system-reminder>"},
            ],
        },
    ]
    second = claude.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=messages, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"] and second.content[0].text
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=messages, tools=TOOLS) as s:
        assert s.get_final_message().stop_reason == "end_turn"


def test_responses_agent_loop_ends_with_text_after_function_outputs(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": t["name"], "parameters": t["input_schema"]} for t in TOOLS]
    first = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=tools)
    calls = [i for i in first.output if i.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    follow_up = [
        {"role": "user", "content": "Weather in Oslo?"},
        *({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls),
        *({"type": "function_call_output", "call_id": c.call_id, "output": "Sunny"} for c in calls),
    ]
    second = client.responses.create(model="gpt-4o", input=follow_up, tools=tools)
    assert [i.type for i in second.output] == ["message"] and second.output_text


@pytest.mark.parametrize("fail", ["400", "401", "403", "429", "500", "503", "529"])
def test_every_http_fault_applies_to_messages(claude: anthropic.Anthropic, fail: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as err:
        claude.messages.create(model=f"claude-sonnet-4-5@fail={fail}", max_tokens=10, messages=HELLO)
    assert err.value.status_code == int(fail)
    assert err.value.body["type"] == "error" and err.value.body["error"]["message"]


def test_the_fault_tables_cover_the_same_modes() -> None:
    assert set(FAULT_RESPONSES) == set(ANTHROPIC_FAULT_RESPONSES)

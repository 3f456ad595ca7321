"""/v1/responses, and /v1/chat/completions on translated upstreams, with the official openai SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest

MODELS = ["anthropic/claude-sonnet-4-5", "mock/gpt-4o", "openai-responses/gpt-4o"]
TRANSLATED = ["anthropic/claude-sonnet-4-5", "openai-responses/gpt-4o"]
FLAT_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
]
CHAT_TOOLS = [{"type": "function", "function": {"name": t["name"], "parameters": t["parameters"]}} for t in FLAT_TOOLS]
HELLO = [{"role": "user", "content": "Say hello"}]


# Item ids carry the upstream's response id, which differs between calls; the stream helper adds `parsed*`.
_VOLATILE = {"id", "parsed", "parsed_arguments"}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _dump(items) -> list[dict]:
    return [_clean(item.model_dump()) for item in items]


@pytest.mark.parametrize("model", MODELS)
def test_responses_create_and_stream_agree(client: openai.OpenAI, model: str, mock) -> None:
    response = client.responses.create(model=model, instructions="Be brief.", input="Say hello")
    assert response.status == "completed"
    # A translated answer names the gateway's model; a Responses upstream's answer comes back as it was sent.
    assert response.model == ("gpt-4o" if model.startswith("openai-responses/") else model)
    assert response.output_text.startswith("The quick brown fox")
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    with client.responses.stream(model=model, instructions="Be brief.", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == response.output_text
    assert _dump(final.output) == _dump(response.output)
    assert final.usage.output_tokens == usage.output_tokens and final.usage.input_tokens == usage.input_tokens


@pytest.mark.parametrize("model", MODELS)
def test_responses_tool_calls_and_outputs(client: openai.OpenAI, model: str, mock) -> None:
    kwargs = {"model": model, "input": "Weather?", "tools": FLAT_TOOLS, "tool_choice": "required"}
    response = client.responses.create(**kwargs)
    with client.responses.stream(**kwargs) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", '{"city":"mock"}'),
        ("get_time", '{"zone":"mock"}'),
    ]
    assert _dump(final.output) == _dump(response.output)
    mock.reset()
    follow_up = [
        {"role": "user", "content": "Weather?"},
        *[{"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls],
        *[{"type": "function_call_output", "call_id": c.call_id, "output": "Sunny"} for c in calls],
    ]
    answer = client.responses.create(model=model, input=follow_up, tools=FLAT_TOOLS, tool_choice="none")
    assert answer.output_text
    (seen,) = mock.requests()
    if seen["path"] == "/v1/messages":
        results = seen["body"]["messages"][2]["content"]
        assert [r["type"] for r in results] == ["tool_result", "tool_result"]  # merged into one user turn
        assert results[0]["tool_use_id"] == calls[0].call_id
    elif seen["path"] == "/v1/chat/completions":
        assert seen["body"]["messages"][2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "Sunny"}


def test_responses_reasoning_on_a_responses_upstream(client: openai.OpenAI) -> None:
    kwargs = {"model": "openai-responses/gpt-4o", "input": "Think", "reasoning": {"effort": "low", "summary": "auto"}}
    response = client.responses.create(**kwargs)
    with client.responses.stream(**kwargs) as stream:
        deltas = [e.delta for e in stream if e.type == "response.reasoning_summary_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output[0].summary[0].text
    assert (
        final.usage.output_tokens_details.reasoning_tokens == response.usage.output_tokens_details.reasoning_tokens > 0
    )


def test_responses_reasoning_effort_becomes_an_anthropic_budget(client: openai.OpenAI, mock) -> None:
    response = client.responses.create(
        model="anthropic/claude-sonnet-4-5", input="Think", reasoning={"effort": "high"}, max_output_tokens=20000
    )
    (seen,) = mock.requests()
    assert seen["body"]["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    reasoning = response.output[0]
    # Anthropic's signature travels as the reasoning item's encrypted_content, so it can be replayed.
    assert reasoning.type == "reasoning" and reasoning.encrypted_content.startswith("mocksig_")


# The demo's prices (USD per million input / output tokens) for each model.
PRICES = {
    "anthropic/claude-sonnet-4-5": (3.0, 15.0),
    "mock/gpt-4o": (2.5, 10.0),
    "openai-responses/gpt-4o": (2.5, 10.0),
}


@pytest.mark.parametrize("model", MODELS)
def test_responses_usage_cost_extension(client: openai.OpenAI, model: str) -> None:
    usage = client.responses.create(model=model, input="Say hello").usage
    input_price, output_price = PRICES[model]
    assert usage.cost == pytest.approx((usage.input_tokens * input_price + usage.output_tokens * output_price) / 1e6)
    if model.startswith("openai-responses/"):
        return  # a same-API stream comes back exactly as the upstream sent it
    with client.responses.stream(model=model, input="Say hello") as stream:
        streamed = stream.get_final_response().usage
    assert streamed.cost == pytest.approx(usage.cost)


@pytest.mark.parametrize("model", TRANSLATED)
def test_chat_on_translated_upstreams(client: openai.OpenAI, model: str) -> None:
    kwargs = {"model": model, "messages": HELLO, "tools": CHAT_TOOLS, "tool_choice": "required"}
    completion = client.chat.completions.create(**kwargs)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert calls == [("get_weather", '{"city":"mock"}'), ("get_time", '{"zone":"mock"}')]
    with client.chat.completions.stream(**kwargs) as stream:
        final = stream.get_final_completion()
    streamed = [(c.function.name, c.function.arguments) for c in final.choices[0].message.tool_calls]
    assert streamed == calls and final.choices[0].finish_reason == "tool_calls"
    text = client.chat.completions.create(
        model=model, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(text)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    whole = client.chat.completions.create(model=model, messages=HELLO)
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_chat_response_format_reaches_a_responses_upstream_as_text_format(client: openai.OpenAI, mock) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    client.chat.completions.create(
        model="openai-responses/gpt-4o",
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "numbers", "schema": schema, "strict": True}},
    )
    (seen,) = mock.requests()
    assert seen["body"]["text"] == {
        "format": {"type": "json_schema", "name": "numbers", "schema": schema, "strict": True}
    }


# Responses upstreams return reasoning only as a summary when asked for one (translated requests ask).
@pytest.mark.parametrize("model", MODELS)
def test_chat_reasoning_content_streams_like_the_whole_answer(client: openai.OpenAI, model: str) -> None:
    kwargs = {"model": model, "messages": HELLO, "reasoning_effort": "low", "max_tokens": 4000}
    whole = client.chat.completions.create(**kwargs).choices[0].message
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    streamed = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert streamed == whole.reasoning_content  # type: ignore[attr-defined]
    assert whole.reasoning_content.startswith("The user wants")  # type: ignore[attr-defined]


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_structured_output_on_an_anthropic_upstream(client: openai.OpenAI, mock) -> None:
    parsed = client.beta.chat.completions.parse(
        model="anthropic/claude-sonnet-4-5", messages=HELLO, response_format=Person
    )
    assert parsed.choices[0].message.parsed == Person(name="mock", age=1)
    assert parsed.choices[0].finish_reason == "stop"
    (seen,) = mock.requests()
    # A forced tool carries the schema; its input comes back as the JSON content.
    assert seen["body"]["tool_choice"] == {"type": "tool", "name": "json_response"}
    with client.chat.completions.stream(
        model="anthropic/claude-sonnet-4-5", messages=HELLO, response_format=Person
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Person(name="mock", age=1)
    assert final.choices[0].finish_reason == "stop"


BAD_RESPONSES = [
    ({"model": "mock/gpt-4o"}, "input"),
    ({"model": "mock/gpt-4o", "input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"model": "mock/gpt-4o", "input": [{"type": "hologram"}]}, "input[0].type"),
    (
        {"model": "mock/gpt-4o", "input": [{"role": "user", "content": [{"type": "input_smell", "text": "x"}]}]},
        "input[0].content[0].type",
    ),
    ({"model": "mock/gpt-4o", "input": "x", "tools": [{"type": "function", "parameters": {"type": "object"}}]}, "name"),
    ({"model": "mock/gpt-4o", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
]


@pytest.mark.parametrize(("body", "where"), BAD_RESPONSES)
def test_bad_responses_input_is_an_openai_400(gateway, api_key, mock, body, where) -> None:
    response = httpx.post(f"{gateway.base}/v1/responses", json=body, headers={"authorization": f"Bearer {api_key}"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert where in error["message"]
    assert mock.count() == 0


def test_chat_with_unsupported_parts_for_anthropic_is_a_400(client: openai.OpenAI, mock) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5",
            messages=[
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}
            ],
        )
    assert "input_audio" in err.value.message
    assert mock.count() == 0


@pytest.mark.parametrize(("effort", "sent"), [("max", "high"), ("min", "low"), ("10000", "high"), ("medium", "medium")])
def test_chat_reasoning_effort_is_mapped_for_openai_upstreams(client: openai.OpenAI, mock, effort, sent) -> None:
    client.chat.completions.create(model="mock/o3-mini", messages=HELLO, reasoning_effort=effort)
    (seen,) = mock.requests()
    assert seen["body"]["reasoning_effort"] == sent


def test_odd_chat_content_for_a_translated_upstream_is_a_400(client: openai.OpenAI, mock) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": [5]}])
    assert "anthropic/claude-sonnet-4-5" in err.value.message
    assert mock.count() == 0


@pytest.mark.parametrize("model", MODELS)
def test_malformed_chat_tool_schema_is_a_400_for_every_upstream(client: openai.OpenAI, mock, model: str) -> None:
    bad = [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=model, messages=HELLO, tools=bad)
    assert err.value.param == "tools[0].function.parameters"
    assert mock.count() == 0


@pytest.mark.parametrize("drop_after", [1, 2, 3, 4, 5, 6])
def test_a_stream_cut_upstream_ends_with_the_next_sequence_number(gateway, api_key: str, drop_after: int) -> None:
    # A Responses upstream's events pass through with its numbering; the error the gateway adds continues it.
    # (The `mock` knobs reach only this passed-through upstream: translation builds a new body.)
    knobs = {"fail": "drop", "drop_after": drop_after}
    body = {"model": "openai-responses/gpt-4o", "input": "Hi", "stream": True, "mock": knobs}
    headers = {"authorization": f"Bearer {api_key}"}
    response = httpx.post(f"{gateway.base}/v1/responses", json=body, headers=headers, timeout=30)
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error", events
    numbers = [e["sequence_number"] for e in events]
    assert numbers == list(range(len(events))), numbers

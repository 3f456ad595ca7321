"""Reply planning and the chat / embeddings body and stream builders (no server)."""

from __future__ import annotations

import base64
import json
import math
import struct

import msgspec
import pytest

from router.mock import openai_chat as chat
from router.mock.catalog import find_model, model_list_body
from router.mock.content import canned_tokens, fragments, prompt_tokens, text_tokens
from router.mock.knobs import Resolved
from router.mock.openai_embeddings import EmbeddingInputError, EmbeddingRequest, embeddings_body, normalize_inputs

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "temp": {"type": "number"},
                "metric": {"type": "boolean"},
                "tags": {"type": "array"},
                "extra": {"type": "object"},
                "note": {"type": ["string", "null"]},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def request(**fields) -> chat.ChatRequest:
    fields.setdefault("model", "gpt-4o")
    fields.setdefault("messages", [{"role": "user", "content": "hello mock"}])
    return chat.REQUEST_DECODER.decode(json.dumps(fields).encode())


def parse_sse(data: bytes) -> list[str]:
    assert data.endswith(b"\n\n")
    events = data.decode().split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    return [e.removeprefix("data: ") for e in events]


def test_canned_tokens_are_deterministic_words():
    tokens = canned_tokens(40)
    assert tokens[:3] == ("The", " quick", " brown")
    assert all(t.count(" ") == (0 if i == 0 else 1) for i, t in enumerate(tokens))
    assert canned_tokens(40) == tokens
    assert canned_tokens(0) == ()


def test_text_tokens_round_trip():
    text = "  hello,\n big  world "
    assert "".join(text_tokens(text)) == text
    assert len(text_tokens(text)) == 3
    assert text_tokens("   ") == ()


def test_prompt_tokens_estimate():
    assert prompt_tokens(0) == 1
    assert prompt_tokens(41) == 10
    req = request(
        messages=[
            {"role": "system", "content": "abcd"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "efgh"}, {"type": "image_url", "image_url": {"url": "x"}}],
            },
        ]
    )
    assert chat.prompt_chars(req.messages) == 8


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 25, 100])
def test_fragments_cover_arguments(size):
    arguments = "x" * size
    parts = fragments(arguments)
    assert "".join(parts) == arguments
    assert len(parts) >= min(3, max(size, 1))


def test_example_arguments_follow_schema_types():
    args = chat.example_arguments(WEATHER_TOOL["function"]["parameters"])
    assert args == {
        "city": "mock",
        "days": 1,
        "temp": 1.5,
        "metric": True,
        "tags": [],
        "extra": {},
        "note": "mock",
        "unit": "c",
    }
    assert chat.example_arguments(None) == {}


@pytest.mark.parametrize(
    ("tool_choice", "override", "expected"),
    [
        (None, None, ["get_weather"]),
        ("auto", None, ["get_weather"]),
        ("none", None, []),
        ("none", 3, []),
        ("required", None, ["get_weather", "get_time"]),
        ({"type": "function", "function": {"name": "get_time"}}, None, ["get_time"]),
        ({"type": "function", "function": {"name": "missing"}}, None, ["missing"]),
        ("auto", 3, ["get_weather", "get_time", "get_weather"]),
        ("required", 0, []),
    ],
)
def test_tool_selection(tool_choice, override, expected):
    fields = {"tools": [WEATHER_TOOL, TIME_TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    assert [f.name for f in chat.selected_tools(request(**fields), override)] == expected


def test_no_tools_means_text_even_with_override():
    plan = chat.plan_reply(request(), Resolved(tool_calls=2))
    assert plan.tool_calls == ()
    assert len(plan.tokens) == 16


def test_plan_echo_and_limits():
    plan = chat.plan_reply(request(messages=[{"role": "user", "content": "one two three"}]), Resolved(echo=True))
    assert "".join(plan.tokens) == "one two three"
    assert plan.finish_reason == "stop"
    plan = chat.plan_reply(request(max_tokens=4), Resolved(tokens=10))
    assert (len(plan.tokens), plan.finish_reason) == (4, "length")
    plan = chat.plan_reply(request(max_completion_tokens=2, max_tokens=50), Resolved(tokens=10))
    assert (len(plan.tokens), plan.finish_reason) == (2, "length")


@pytest.mark.parametrize(
    "plan",
    [
        chat.plan_reply(request(), Resolved(tokens=5)),
        chat.plan_reply(request(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"), Resolved()),
        chat.ReplyPlan(tokens=("100%", " %d", " %s"), tool_calls=(), finish_reason="stop"),
    ],
)
def test_template_matches_struct_encoding(plan):
    model = 'weird%model"name'
    template = chat.CompletionTemplate(model, plan)
    rendered = template.render(b"chatcmpl-1", 1700000000, 42)
    assert rendered == chat.completion_body(plan, "chatcmpl-1", 1700000000, model, 42)
    body = json.loads(rendered)
    assert body["usage"]["total_tokens"] == 42 + plan.completion_tokens


def test_non_streaming_tool_call_body():
    plan = chat.plan_reply(request(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"), Resolved())
    body = json.loads(chat.completion_body(plan, "id", 1, "gpt-4o", 3))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["function"]["arguments"]) == {}
    assert body["usage"]["completion_tokens"] == sum(len(fragments(c["function"]["arguments"])) for c in calls)


@pytest.mark.parametrize("include_usage", [False, True])
def test_text_stream_shape(include_usage):
    plan = chat.plan_reply(request(), Resolved(tokens=4))
    events = chat.stream_events(plan, "chatcmpl-x", 5, "gpt-4o", 7, include_usage)
    data = parse_sse(events.head + b"".join(events.tokens) + events.tail)
    assert data[-1] == "[DONE]"
    assert data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    for chunk in chunks:
        assert (chunk["id"], chunk["object"], chunk["created"], chunk["model"]) == (
            "chatcmpl-x",
            "chat.completion.chunk",
            5,
            "gpt-4o",
        )
        if include_usage:
            assert "usage" in chunk
        else:
            assert "usage" not in chunk
    choice_chunks = [c for c in chunks if c["choices"]]
    assert choice_chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for chunk in choice_chunks:
        (choice,) = chunk["choices"]
        assert choice["index"] == 0
        assert choice["logprobs"] is None
    assert [c["choices"][0]["delta"].get("content") for c in choice_chunks[1:-1]] == list(canned_tokens(4))
    assert choice_chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in choice_chunks[:-1])
    if include_usage:
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"] == {
            "prompt_tokens": 7,
            "completion_tokens": 4,
            "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        assert all(c["usage"] is None for c in chunks[:-1])
    else:
        assert len(choice_chunks) == len(chunks)


def test_tool_call_stream_shape():
    plan = chat.plan_reply(request(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"), Resolved())
    events = chat.stream_events(plan, "id", 1, "gpt-4o", 3, True)
    chunks = [json.loads(d) for d in parse_sse(events.head + b"".join(events.tokens) + events.tail)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": None}
    assert sum("role" in d for d in deltas) == 1
    fragments_by_index: dict[int, list[dict]] = {}
    for delta in deltas[1:-1]:
        (call,) = delta["tool_calls"]
        fragments_by_index.setdefault(call["index"], []).append(call)
    assert sorted(fragments_by_index) == [0, 1]
    for index, name in ((0, "get_weather"), (1, "get_time")):
        first, *rest = fragments_by_index[index]
        assert first == {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        assert len(rest) >= 2  # "{}" has only two characters to split
        assert all(set(r) == {"index", "function"} and set(r["function"]) == {"arguments"} for r in rest)
        arguments = "".join(r["function"]["arguments"] for r in rest)
        assert arguments == plan.tool_calls[index].arguments
    assert len(fragments_by_index[0]) - 1 >= 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == plan.completion_tokens


def embed(**fields) -> dict:
    fields.setdefault("model", "text-embedding-3-small")
    req = msgspec.json.decode(json.dumps(fields).encode(), type=EmbeddingRequest)
    return json.loads(embeddings_body(req, req.model))


def test_embeddings_inputs_and_vectors():
    one = embed(input="hello")
    assert one["object"] == "list"
    (item,) = one["data"]
    assert (item["object"], item["index"], len(item["embedding"])) == ("embedding", 0, 8)
    assert math.isclose(math.fsum(v * v for v in item["embedding"]), 1.0, rel_tol=1e-6)
    many = embed(input=["hello", "world"], dimensions=16)
    assert [len(d["embedding"]) for d in many["data"]] == [16, 16]
    assert embed(input=["hello"])["data"][0]["embedding"] == item["embedding"]
    assert many["data"][0]["embedding"] != many["data"][1]["embedding"]
    tokens = embed(input=[1, 2, 3])
    assert len(tokens["data"]) == 1
    assert tokens["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert len(embed(input=[[1, 2], [3]])["data"]) == 2
    assert embed(input="a" * 40)["usage"]["prompt_tokens"] == 10


def test_embeddings_base64_is_little_endian_float32_of_the_float_vector():
    floats = embed(input="hello", dimensions=12)["data"][0]["embedding"]
    encoded = embed(input="hello", dimensions=12, encoding_format="base64")["data"][0]["embedding"]
    assert list(struct.unpack("<12f", base64.b64decode(encoded))) == floats


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": [1, "a"]}, "input"),
        ({"input": None}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_embeddings_bad_input(fields, param):
    with pytest.raises(EmbeddingInputError) as info:
        embed(**fields)
    assert info.value.param == param


def test_normalize_inputs_distinguishes_text_and_tokens():
    assert normalize_inputs("1")[0][0] != normalize_inputs([1])[0][0]


def test_catalog():
    ids = [m["id"] for m in json.loads(model_list_body())["data"]]
    assert {"gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"} <= set(ids)
    assert find_model("gpt-4o").object == "model"
    assert find_model("nope") is None


AFTER_TOOL = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_weather"}}]},
    {"role": "tool", "tool_call_id": "call_0", "content": "Sunny"},
]


@pytest.mark.parametrize(
    ("tool_choice", "override", "expected"),
    [
        (None, None, []),  # the results are in: a model answers in text
        ("auto", None, []),
        ("required", None, ["get_weather", "get_time"]),  # forced by the caller, as a real API does
        ({"type": "function", "function": {"name": "get_time"}}, None, ["get_time"]),
        ("auto", 1, ["get_weather"]),  # the knob still forces calls
    ],
)
def test_after_tool_results_the_reply_is_text_unless_forced(tool_choice, override, expected):
    fields = {"tools": [WEATHER_TOOL, TIME_TOOL], "messages": AFTER_TOOL}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    assert [f.name for f in chat.selected_tools(request(**fields), override)] == expected


def test_a_new_user_turn_after_tool_results_calls_a_tool_again():
    messages = [*AFTER_TOOL, {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "And Rome?"}]
    assert [f.name for f in chat.selected_tools(request(tools=[WEATHER_TOOL], messages=messages), None)] == [
        "get_weather"
    ]

"""Translation between chat, Anthropic Messages and Responses: the rules other gateways got wrong."""

from __future__ import annotations

import msgspec
import pytest

from router.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, Unauthorized
from router.protocols import anthropic, reasoning
from router.protocols.errors import error_body, error_status
from router.protocols.to_caller import anthropic_to_chat, chat_to_anthropic, responses_to_chat
from router.protocols.to_upstream import JSON_TOOL, Plan, translate_request

# --- usage: Anthropic input excludes the cache, OpenAI prompt_tokens includes it ---


def test_anthropic_usage_becomes_openai_usage_including_cache() -> None:
    body = {
        "id": "msg_1",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "max_tokens",
        "usage": {
            "input_tokens": 35,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 10,
            "output_tokens": 7,
        },
    }
    chat = anthropic_to_chat(body, "gw/model", Plan())
    assert chat["usage"]["prompt_tokens"] == 50
    assert chat["usage"]["prompt_tokens_details"] == {"cached_tokens": 10, "cache_creation_tokens": 5}
    assert chat["choices"][0]["finish_reason"] == "length"
    back = chat_to_anthropic(chat, "gw/model")
    assert back["usage"] == body["usage"]
    assert back["stop_reason"] == "max_tokens"


def test_openai_usage_becomes_anthropic_usage_excluding_cache() -> None:
    chat = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": "x"}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 60}},
    }
    message = chat_to_anthropic(chat, "m")
    assert message["usage"]["input_tokens"] == 40 and message["usage"]["cache_read_input_tokens"] == 60
    assert message["stop_reason"] == "tool_use"


def test_responses_reply_to_chat() -> None:
    body = {
        "id": "resp_1",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": "blob"},
            {"type": "message", "content": [{"type": "output_text", "text": "Hel"}]},
        ],
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 9,
            "output_tokens_details": {"reasoning_tokens": 6},
        },
    }
    chat = responses_to_chat(body, "m")
    message = chat["choices"][0]["message"]
    assert message["content"] == "Hel" and message["reasoning_content"] == "hmm"
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "hmm", "signature": "blob"}]
    assert chat["choices"][0]["finish_reason"] == "length"
    assert chat["usage"]["prompt_tokens"] == 20 and chat["usage"]["completion_tokens_details"]["reasoning_tokens"] == 6


# --- reasoning effort ↔ budget (features_reasoning.txt) ---


@pytest.mark.parametrize(
    ("value", "effort"),
    [("none", "low"), ("min", "low"), ("low", "low"), ("medium", "medium"), ("high", "high"), ("max", "high"),
     (1024, "low"), (1025, "medium"), (8192, "medium"), (8193, "high")],
)  # fmt: skip
def test_effort_for_openai_upstreams(value: str | int, effort: str) -> None:
    assert reasoning.to_effort(reasoning.parse(value)) == effort


@pytest.mark.parametrize(
    ("value", "max_tokens", "budget"),
    [("low", 32000, 1024), ("medium", 32000, 8192), ("high", 32000, 16384), ("max", 100000, 63999),
     ("high", 10000, 9999), ("10000", 50000, 10000), ("min", 1000, None)],
)  # fmt: skip
def test_budget_for_anthropic_upstreams_stays_below_max_tokens(value: str, max_tokens: int, budget: int | None) -> None:
    assert reasoning.to_budget(reasoning.parse(value), max_tokens, 64000) == budget


def test_chat_to_anthropic_maps_thinking_and_disables_forced_tools() -> None:
    chat = {
        "model": "m",
        "max_tokens": 4000,
        "reasoning_effort": "high",
        "temperature": 0.2,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
    }
    body, _ = translate_request(chat, "chat", "messages", 64000)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 3999}
    assert body["tool_choice"] == {"type": "auto"}  # a forced tool with thinking on is an Anthropic error
    assert "temperature" not in body


# --- request shapes ---


def test_chat_to_anthropic_messages_system_images_pdfs_and_tool_results() -> None:
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "tools": [
            {"type": "function", "function": {"name": "f", "description": "F", "parameters": {"type": "object"}}}
        ],
        "stop": "END",
    }
    body, _ = translate_request(chat, "chat", "messages", None)
    assert body["max_tokens"] == 4096
    # A cache breakpoint on the system prompt survives.
    assert body["system"] == [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]
    user = body["messages"][0]["content"]
    assert user[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
    assert user[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    assert user[3]["type"] == "document" and user[3]["source"]["media_type"] == "application/pdf"
    assert body["messages"][1]["content"][0] == {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}
    # Consecutive tool messages become one user turn with two results.
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "two"},
        ],
    }
    assert body["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}, "description": "F"}]
    assert body["stop_sequences"] == ["END"]


def test_response_format_becomes_a_forced_tool_or_a_prompt_instruction() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    body, plan = translate_request(dict(chat), "chat", "messages", None)
    assert plan.json_tool == JSON_TOOL
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert body["tools"][-1]["input_schema"] == schema
    reply = {
        "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"n": 3}}],
        "stop_reason": "tool_use",
    }
    message = anthropic_to_chat(reply, "m", plan)["choices"][0]
    assert message["message"]["content"] == '{"n":3}' and message["finish_reason"] == "stop"
    body, plan = translate_request({**chat, "reasoning_effort": "low", "max_tokens": 4000}, "chat", "messages", None)
    assert plan.json_tool is None and "tools" not in body
    assert "JSON schema" in body["system"]


def test_anthropic_to_responses_keeps_thinking_signature_and_tools() -> None:
    request = {
        "model": "m",
        "max_tokens": 9000,
        "system": "Rules",
        "thinking": {"type": "enabled", "budget_tokens": 9000 - 1},
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
    }
    body, _ = translate_request(request, "messages", "responses", None)
    assert body["instructions"] == "Rules"
    assert body["reasoning"]["effort"] == "high"  # a budget of 8999 is above 8192
    assert body["input"][1] == {"type": "function_call", "call_id": "t1", "name": "f", "arguments": "{}"}
    assert body["input"][2] == {"type": "function_call_output", "call_id": "t1", "output": "r"}
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    assert body["tool_choice"] == "required"
    assert body["max_output_tokens"] == 9000


# --- validation and error shapes ---


def test_messages_validation_names_the_field() -> None:
    with pytest.raises(InvalidRequest) as err:
        anthropic.validate_messages(b'{"model":"m","messages":[{"role":"user","content":"x"}]}')
    assert err.value.param == "max_tokens"
    with pytest.raises(InvalidRequest) as err:
        anthropic.validate_messages(
            b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"thinking","thinking":"a",'
            b'"signature":"s"}]}]}'
        )
    assert "assistant" in err.value.message


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (Unauthorized("who"), 401, "authentication_error"),
        (PermissionDenied("model not allowed", code="model_not_allowed"), 403, "permission_error"),
        (NotFound("nope"), 404, "not_found_error"),
        (GatewayError("slow", status=429, type="rate_limit_error"), 429, "rate_limit_error"),
        (GatewayError("busy", status=503, type="overloaded_error"), 529, "overloaded_error"),
        (GatewayError("boom", status=502, type="upstream_error"), 502, "api_error"),
    ],
)
def test_any_gateway_error_in_anthropic_shape(error: GatewayError, status: int, kind: str) -> None:
    body = msgspec.json.decode(error_body(error, "anthropic", "req_1"))
    assert body == {"type": "error", "error": {"type": kind, "message": error.message}, "request_id": "req_1"}
    assert error_status(error, "anthropic") == status
    openai_body = msgspec.json.decode(error_body(error))
    assert set(openai_body["error"]) == {"message", "type", "param", "code"}
    assert error_status(error, "openai") == (503 if kind == "overloaded_error" else status)


def test_count_tokens_estimate() -> None:
    request = anthropic.validate_count_tokens(
        b'{"model":"m","system":"' + b"s" * 400 + b'","messages":[{"role":"user","content":['
        b'{"type":"text","text":"' + b"t" * 40 + b'"},'
        b'{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}'
    )
    assert anthropic.estimate_input_tokens(request) == (400 + 40) // 4 + anthropic.IMAGE_TOKENS

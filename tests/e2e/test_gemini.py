"""Google Gemini (`kind: gemini`, AI Studio) end to end: the official SDKs → gateway → the mock's generateContent.

The mock checks the API key as Google does, so a missing or wrong key fails these tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from router.mock import gemini as mock_gemini

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = f"""
providers:
  google:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
  badkey:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: wrong-key
models:
  - id: google/gemini-2.5-pro
    capabilities: [streaming, tools, vision, reasoning, json_mode]
  - id: google/gemini-2.5-flash
  - id: google/throttled
    upstream_model: gemini-2.5-flash@fail=429
  - id: google/overloaded
    upstream_model: gemini-2.5-flash@fail=503
  - id: google/broken-stream
    upstream_model: gemini-2.5-flash@fail=malformed
  - id: badkey/gemini-2.5-flash
"""
PRO = "google/gemini-2.5-pro"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def gemini_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("gemini")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["TEST_GEMINI_URL"] = f"{mock_server.base}/v1beta"
    server = start_gateway(env)
    server.key = create_key(server.env, "gemini")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(gemini_gateway: Server) -> Iterator[openai.OpenAI]:
    key = gemini_gateway.key  # type: ignore[attr-defined]
    with openai.OpenAI(base_url=f"{gemini_gateway.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude(gemini_gateway: Server) -> Iterator[anthropic.Anthropic]:
    key = gemini_gateway.key  # type: ignore[attr-defined]
    with anthropic.Anthropic(base_url=gemini_gateway.base, api_key=key, max_retries=0, timeout=20) as client:
        yield client


def _last(mock: MockControl) -> tuple[dict, dict]:
    record = [r for r in mock.requests() if r["path"].startswith("/v1beta/")][-1]
    return record, record["body"]


def test_chat_unary(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(
        model=PRO,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=100,
        temperature=0.3,
    )
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    record, body = _last(mock)
    assert record["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert body["generationConfig"] == {"maxOutputTokens": 100, "temperature": 0.3}


def test_chat_stream(oai: openai.OpenAI, mock: MockControl) -> None:
    stream = oai.chat.completions.create(
        model=PRO, messages=[{"role": "user", "content": "Story"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    record, _ = _last(mock)
    assert record["path"].endswith(":streamGenerateContent")


def test_tools_unary_stream_and_results(oai: openai.OpenAI, mock: MockControl) -> None:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    reply = oai.chat.completions.create(model=PRO, messages=messages, tools=[TOOL], tool_choice="required")
    calls = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls and calls[0].function.name == "get_weather" and "city" in json.loads(calls[0].function.arguments)
    _, body = _last(mock)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == TOOL["function"]["parameters"]

    stream = oai.chat.completions.create(model=PRO, messages=messages, tools=[TOOL], stream=True)
    names, arguments, finish = [], "", None
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            names += [call.function.name] if call.function and call.function.name else []
            arguments += call.function.arguments or "" if call.function else ""
        finish = (chunk.choices[0].finish_reason if chunk.choices else None) or finish
    assert names == ["get_weather"] and "city" in json.loads(arguments) and finish == "tool_calls"

    follow = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18 degrees"},
    ]
    oai.chat.completions.create(model=PRO, messages=follow, tools=[TOOL])
    _, body = _last(mock)
    assert body["contents"][1]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert body["contents"][2]["parts"][0] == {
        "functionResponse": {"name": "get_weather", "response": {"result": "18 degrees"}}
    }


def test_image_json_schema_and_thinking(oai: openai.OpenAI, mock: MockControl) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    content = [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    reply = oai.chat.completions.create(
        model=PRO, messages=[{"role": "user", "content": content}], response_format=response_format
    )
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    _, body = _last(mock)
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": png}}
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"] == schema
    assert "tools" not in body
    # Streamed, the JSON text arrives as content too.
    stream = oai.chat.completions.create(
        model=PRO, messages=[{"role": "user", "content": "JSON"}], response_format=response_format, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    reply = oai.chat.completions.create(
        model=PRO, messages=[{"role": "user", "content": "Think"}], reasoning_effort="3000"
    )
    _, body = _last(mock)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 3000, "includeThoughts": True}
    assert reply.choices[0].message.model_dump().get("reasoning_content")
    oai.chat.completions.create(
        model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "Quick"}], reasoning_effort="none"
    )
    _, body = _last(mock)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_messages_and_responses(claude: anthropic.Anthropic, oai: openai.OpenAI) -> None:
    message = claude.messages.create(model=PRO, max_tokens=100, messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"
    with claude.messages.stream(model=PRO, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as stream:
        assert "".join(stream.text_stream)
    assert oai.responses.create(model=PRO, input="Hello").output_text
    with oai.responses.stream(model=PRO, input="Hello") as stream:
        list(stream)
        assert stream.get_final_response().output_text


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("google/throttled", openai.RateLimitError, 429),
        ("google/overloaded", openai.InternalServerError, 502),
        ("badkey/gemini-2.5-flash", openai.InternalServerError, 502),
    ],
)
def test_errors(oai: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int) -> None:
    with pytest.raises(error) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status


def test_a_malformed_stream_ends_with_an_error(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="google/broken-stream", messages=[{"role": "user", "content": "Story"}], stream=True
    )
    with stream, pytest.raises(openai.APIError, match="malformed"):
        list(stream)

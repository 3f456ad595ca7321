"""Amazon Bedrock (`kind: bedrock`) end to end: the official SDKs → gateway → the mock's Converse endpoints.

The mock recomputes every SigV4 signature with its test credentials, so these tests fail on a signing bug.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import unquote

import anthropic
import httpx
import openai
import pytest

from router.mock import bedrock as mock_bedrock

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CLAUDE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
CONFIG = f"""
providers:
  bedrock:
    kind: bedrock
    base_url: env:TEST_BEDROCK_URL
    region: us-west-2
    aws_access_key_id: env:TEST_AWS_ACCESS_KEY_ID
    aws_secret_access_key: env:TEST_AWS_SECRET_ACCESS_KEY
    aws_session_token: session-token-example
  bedrockkey:
    kind: bedrock
    base_url: env:TEST_BEDROCK_URL
    api_key: {mock_bedrock.API_KEY}
  bedrockinvoke:
    kind: bedrock
    bedrock_api: invoke
    base_url: env:TEST_BEDROCK_URL
    region: eu-west-3
    aws_access_key_id: env:TEST_AWS_ACCESS_KEY_ID
    aws_secret_access_key: env:TEST_AWS_SECRET_ACCESS_KEY
  bedrockbad:
    kind: bedrock
    base_url: env:TEST_BEDROCK_URL
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: not-the-secret
models:
  - id: bedrock/claude-sonnet-4-5-v2@eu-central-1
    upstream_model: {CLAUDE}@eu-central-1
    capabilities: [streaming, tools, vision, reasoning]
    max_output_tokens: 64000
  - id: bedrock/claude-us
    upstream_model: us.anthropic.claude-sonnet-4-5-20250929-v1:0@us-east-1
  - id: bedrock/default-region
    upstream_model: meta.llama3-70b-instruct-v1:0
  - id: bedrock/throttled
    upstream_model: anthropic.claude-3-5-haiku@fail=429
  - id: bedrock/unavailable
    upstream_model: anthropic.claude-3-5-haiku@fail=503
  - id: bedrock/not-ready
    upstream_model: anthropic.claude-3-5-haiku@fail=529
  - id: bedrock/invalid
    upstream_model: anthropic.claude-3-5-haiku@fail=400
  - id: bedrock/denied
    upstream_model: anthropic.claude-3-5-haiku@fail=403
  - id: bedrock/corrupt
    upstream_model: anthropic.claude-3-5-haiku@fail=malformed
  - id: bedrockkey/claude
    upstream_model: anthropic.claude-3-5-haiku@eu-west-1
  - id: bedrockbad/claude
    upstream_model: anthropic.claude-3-5-haiku
  - id: bedrockinvoke/claude
    upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0
"""
EU = "bedrock/claude-sonnet-4-5-v2@eu-central-1"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


@pytest.fixture(scope="module")
def bedrock_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("bedrock")
    config = root / "bedrock.yaml"
    config.write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, config)
    env |= {
        "TEST_BEDROCK_URL": mock_server.base,
        "TEST_AWS_ACCESS_KEY_ID": mock_bedrock.ACCESS_KEY_ID,
        "TEST_AWS_SECRET_ACCESS_KEY": mock_bedrock.SECRET_ACCESS_KEY,
    }
    server = start_gateway(env)
    server.key = create_key(server.env, "bedrock")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(bedrock_gateway: Server) -> Iterator[openai.OpenAI]:
    key = bedrock_gateway.key  # type: ignore[attr-defined]
    with openai.OpenAI(base_url=f"{bedrock_gateway.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude(bedrock_gateway: Server) -> Iterator[anthropic.Anthropic]:
    key = bedrock_gateway.key  # type: ignore[attr-defined]
    with anthropic.Anthropic(base_url=bedrock_gateway.base, api_key=key, max_retries=0, timeout=20) as client:
        yield client


def _converse_requests(mock: MockControl) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith("/model/")]


def _last_converse(mock: MockControl) -> tuple[dict, dict]:
    record = _converse_requests(mock)[-1]
    return record, record["body"]


def _header(record: dict, name: str) -> str:
    return record["headers"].get(name, "")


def test_chat_unary_is_signed_for_the_model_region(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(
        model=EU,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        max_tokens=50,
        temperature=0.2,
        stop=["END"],
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    record, body = _last_converse(mock)
    assert unquote(record["path"]) == f"/model/{CLAUDE}/converse"
    auth = _header(record, "authorization")
    assert "/eu-central-1/bedrock/aws4_request" in auth and "x-amz-security-token" in auth
    assert _header(record, "x-amz-security-token") == "session-token-example"
    assert body["system"] == [{"text": "Be brief."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hello there"}]}]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]}


def test_region_defaults_to_the_provider_region(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.chat.completions.create(model="bedrock/default-region", messages=[{"role": "user", "content": "hi"}])
    record, body = _last_converse(mock)
    assert "/us-west-2/bedrock/aws4_request" in _header(record, "authorization")
    assert "additionalModelRequestFields" not in body


def test_chat_stream_with_usage(oai: openai.OpenAI, mock: MockControl) -> None:
    stream = oai.chat.completions.create(
        model=EU,
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    record, _ = _last_converse(mock)
    assert record["path"].endswith("/converse-stream")


def test_chat_tools_unary_and_stream(oai: openai.OpenAI, mock: MockControl) -> None:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    reply = oai.chat.completions.create(model=EU, messages=messages, tools=[TOOL], tool_choice="required")
    calls = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)
    _, body = _last_converse(mock)
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == TOOL["function"]["parameters"]

    stream = oai.chat.completions.create(model=EU, messages=messages, tools=[TOOL], stream=True)
    arguments = ""
    names = []
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or ():
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                arguments += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_weather"] and "city" in json.loads(arguments) and finish == "tool_calls"

    # The tool's answer goes back as a toolResult in a user turn.
    call = calls[0]
    follow = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"},
    ]
    oai.chat.completions.create(model=EU, messages=follow, tools=[TOOL])
    _, body = _last_converse(mock)
    assert body["messages"][1]["content"][0]["toolUse"]["toolUseId"] == call.id
    result = body["messages"][2]["content"][0]["toolResult"]
    assert result == {"toolUseId": call.id, "content": [{"text": "18 degrees"}]}


def test_image_goes_as_bytes(oai: openai.OpenAI, mock: MockControl) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    oai.chat.completions.create(model=EU, messages=[{"role": "user", "content": content}])
    _, body = _last_converse(mock)
    assert body["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": PNG}}}


def test_pdf_as_file_or_input_file_part(oai: openai.OpenAI, mock: MockControl) -> None:
    pdf = base64.b64encode(b"%PDF-1.4 mock").decode()
    data = f"data:application/pdf;base64,{pdf}"
    parts = [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": data}},
        {"type": "input_file", "filename": "report.pdf", "file_data": data},
    ]
    for part in parts:
        content = [{"type": "text", "text": "Summarise"}, part]
        oai.chat.completions.create(model=EU, messages=[{"role": "user", "content": content}])  # type: ignore[misc, list-item]
        _, body = _last_converse(mock)
        document = body["messages"][0]["content"][1]["document"]
        assert document["format"] == "pdf" and document["source"] == {"bytes": pdf}


def test_image_url_to_a_private_address_is_a_400_naming_the_part(oai: openai.OpenAI, mock: MockControl) -> None:
    # URL images are fetched by the gateway (tests/e2e/test_media_urls.py), never from a private address.
    content = [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model=EU, messages=[{"role": "user", "content": content}])
    assert "private" in str(info.value) and "messages[0].content[0]" in str(info.value)
    assert not _converse_requests(mock)


def test_reasoning_effort_becomes_a_thinking_budget(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(
        model=EU, messages=[{"role": "user", "content": "Think"}], reasoning_effort="medium", max_tokens=20000
    )
    _, body = _last_converse(mock)
    assert body["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    message = reply.choices[0].message.model_dump()
    assert message.get("reasoning_content")


def test_messages_unary_stream_and_tools(claude: anthropic.Anthropic, mock: MockControl) -> None:
    message = claude.messages.create(
        model=EU, max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0

    with claude.messages.stream(model=EU, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.stop_reason == "end_turn"

    tool = {"name": "get_weather", "input_schema": TOOL["function"]["parameters"]}
    message = claude.messages.create(
        model=EU, max_tokens=100, tools=[tool], messages=[{"role": "user", "content": "Weather in Paris?"}]
    )
    assert message.stop_reason == "tool_use"
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input


def test_messages_thinking_round_trips_with_its_signature(claude: anthropic.Anthropic, mock: MockControl) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    first = claude.messages.create(
        model=EU, max_tokens=4096, thinking=thinking, messages=[{"role": "user", "content": "Think"}]
    )
    block = next(b for b in first.content if b.type == "thinking")
    assert block.thinking and block.signature
    _, body = _last_converse(mock)
    assert body["additionalModelRequestFields"]["thinking"] == thinking
    claude.messages.create(
        model=EU,
        max_tokens=4096,
        thinking=thinking,
        messages=[
            {"role": "user", "content": "Think"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": "Again"},
        ],
    )
    _, body = _last_converse(mock)
    replayed = body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]
    assert replayed == {"text": block.thinking, "signature": block.signature}


def test_responses_unary_and_stream(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model=EU, input="Hello")
    assert reply.output_text
    with oai.responses.stream(model=EU, input="Hello") as stream:
        events = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.output_text.delta" in events and final.output_text


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("bedrock/throttled", openai.RateLimitError, 429),
        ("bedrock/unavailable", openai.InternalServerError, 503),
        ("bedrock/not-ready", openai.InternalServerError, 503),
        ("bedrock/invalid", openai.BadRequestError, 400),
        ("bedrock/denied", openai.InternalServerError, 502),
        ("bedrockbad/claude", openai.InternalServerError, 502),
    ],
)
def test_bedrock_errors_map_to_the_callers_shape(
    oai: openai.OpenAI, mock: MockControl, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status


def test_a_wrong_secret_fails_the_mocks_signature_check(oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="bedrockbad/claude", messages=[{"role": "user", "content": "hi"}])
    assert "rejected the gateway's credentials" in str(info.value) or "upstream_auth_failed" in str(info.value)


def test_anthropic_callers_see_overloaded_for_service_unavailable(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(model="bedrock/unavailable", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code in (503, 529)
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_bearer_api_key_replaces_sigv4(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.chat.completions.create(model="bedrockkey/claude", messages=[{"role": "user", "content": "hi"}])
    record, _ = _last_converse(mock)
    assert _header(record, "authorization").startswith("Bearer ")
    assert "x-amz-date" not in record["headers"]


def test_a_corrupt_event_stream_ends_with_an_error(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="bedrock/corrupt", messages=[{"role": "user", "content": "Tell me a story"}], stream=True
    )
    with stream, pytest.raises(openai.APIError, match="malformed event stream"):
        list(stream)


def test_models_list_carries_the_region(bedrock_gateway: Server) -> None:
    key = bedrock_gateway.key  # type: ignore[attr-defined]
    models = httpx.get(f"{bedrock_gateway.base}/v1/models", headers={"authorization": f"Bearer {key}"}).json()
    regions = {m["id"]: m["region"] for m in models["data"]}
    assert regions[EU] == "eu-central-1"
    assert regions["bedrock/claude-us"] == "us-east-1"
    assert regions["bedrock/default-region"] == "us-west-2"
    assert regions["bedrockkey/claude"] == "eu-west-1"


def test_invoke_model_takes_the_messages_body(
    claude: anthropic.Anthropic, oai: openai.OpenAI, mock: MockControl
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    message = claude.messages.create(
        model="bedrockinvoke/claude",
        max_tokens=4096,
        thinking=thinking,  # type: ignore[arg-type]
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert [b.type for b in message.content][:1] == ["thinking"] and message.stop_reason == "end_turn"
    record, body = _last_converse(mock)
    assert unquote(record["path"]) == "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"
    assert "/eu-west-3/bedrock/aws4_request" in _header(record, "authorization")
    assert body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in body
    assert body["thinking"] == thinking and body["system"][0]["cache_control"] == {"type": "ephemeral"}

    with claude.messages.stream(
        model="bedrockinvoke/claude", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert "".join(stream.text_stream)
    record, _ = _last_converse(mock)
    assert record["path"].endswith("/invoke-with-response-stream")
    chat_stream = oai.chat.completions.create(
        model="bedrockinvoke/claude", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in chat_stream if c.choices)

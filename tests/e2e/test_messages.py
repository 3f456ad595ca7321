"""/v1/messages and /v1/messages/count_tokens with the official anthropic SDK, against every upstream kind."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from servers import Server, create_key, gateway_env, start_gateway, usage_rows

# One model per upstream wire format, all served by the mock (see python/router/demo.yaml).
MODELS = ["anthropic/claude-sonnet-4-5", "mock/gpt-4o", "openai-responses/gpt-4o"]
HELLO = [{"role": "user", "content": "Say hello to the gateway"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    },
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]
THINKING = {"type": "enabled", "budget_tokens": 1024}

FAULTS_CONFIG = """
providers:
  anthropic:
    kind: anthropic
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
models:
  - id: anthropic/overloaded
    upstream_model: claude@fail=529
  - id: anthropic/limited
    upstream_model: claude@fail=429@retry_after=7
  - id: mock/overloaded
    upstream_model: gpt-4o@fail=503
  - id: anthropic/cut
    upstream_model: claude@fail=drop
"""


@pytest.fixture
def claude(gateway: Server, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.base, api_key=api_key, max_retries=0, timeout=20) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def faults_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("faults")
    config = root / "faults.yaml"
    config.write_text(FAULTS_CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config))
    server.key = create_key(server.env, "faults")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


def _blocks(message: anthropic.types.Message) -> list[dict]:
    return [block.model_dump() for block in message.content]


@pytest.mark.parametrize("model", MODELS)
def test_create_and_stream_agree(claude: anthropic.Anthropic, model: str, mock) -> None:
    message = claude.messages.create(model=model, max_tokens=500, system="Be brief.", messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    # A translated answer names the gateway's model; an Anthropic upstream's answer comes back as it was sent.
    assert message.model == ("claude-sonnet-4-5" if model.startswith("anthropic/") else model)
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("The quick brown fox")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with claude.messages.stream(model=model, max_tokens=500, system="Be brief.", messages=HELLO) as stream:
        texts = list(stream.text_stream)
        streamed = stream.get_final_message()
    assert len(texts) > 1, "the answer arrives token by token"
    assert _blocks(streamed) == _blocks(message)
    assert streamed.stop_reason == message.stop_reason
    assert streamed.usage.output_tokens == message.usage.output_tokens
    assert streamed.usage.input_tokens == message.usage.input_tokens
    # The system prompt reached the upstream in its own format.
    seen = [r for r in mock.requests() if r["path"] in ("/v1/messages", "/v1/chat/completions", "/v1/responses")]
    assert len(seen) == 2
    body = seen[0]["body"]
    if seen[0]["path"] == "/v1/messages":
        assert body["system"] == "Be brief." and seen[0]["headers"]["x-api-key"].startswith("mock-ups")
        assert seen[0]["headers"]["anthropic-version"]
    elif seen[0]["path"] == "/v1/chat/completions":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert body["instructions"] == "Be brief."


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use_with_several_tools(claude: anthropic.Anthropic, model: str) -> None:
    kwargs = {"model": model, "max_tokens": 500, "messages": HELLO, "tools": TOOLS, "tool_choice": {"type": "any"}}
    with claude.messages.stream(**kwargs) as stream:
        events = list(stream)
        streamed = stream.get_final_message()
    message = claude.messages.create(**kwargs)
    assert streamed.stop_reason == message.stop_reason == "tool_use"
    uses = [b for b in streamed.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [
        ("get_weather", {"city": "mock", "days": 1}),
        ("get_time", {"zone": "mock"}),
    ]
    assert _blocks(streamed) == _blocks(message)
    # Arguments arrive as input_json_delta on sequential, distinct block indices.
    starts = [e.index for e in events if e.type == "content_block_start"]
    assert starts == list(range(len(starts)))
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)


@pytest.mark.parametrize("model", MODELS)
def test_thinking_streams_with_its_signature(claude: anthropic.Anthropic, model: str, mock) -> None:
    kwargs = {"model": model, "max_tokens": 2048, "messages": HELLO, "thinking": THINKING}
    message = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        thinking_deltas = [e for e in stream if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]
        streamed = stream.get_final_message()
    assert thinking_deltas
    assert [b.type for b in streamed.content] == ["thinking", "text"]
    assert _blocks(streamed) == _blocks(message)
    if model.startswith("anthropic/"):
        # The provider's signature arrives byte for byte; it is what the client must send back.
        assert streamed.content[0].signature.startswith("mocksig_")
        mock.reset()
        follow_up = [
            *HELLO,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in streamed.content]},
            {"role": "user", "content": "And again?"},
        ]
        claude.messages.create(model=model, max_tokens=2048, messages=follow_up, thinking=THINKING)
        (seen,) = mock.requests()
        assert seen["body"]["messages"][1]["content"][0]["signature"] == streamed.content[0].signature
    elif model.startswith("openai-responses/"):
        upstream = mock.requests()[0]
        assert upstream["body"]["reasoning"]["effort"] == "low"  # budget 1024 → "low" per the reasoning table
    else:
        # A chat upstream reasons in `reasoning_content` (DeepSeek style), which has no signature to keep.
        upstream = mock.requests()[0]
        assert upstream["body"]["reasoning_effort"] == "low"
        assert streamed.content[0].signature == ""


def test_tool_results_round_trip_to_an_openai_upstream(claude: anthropic.Anthropic, mock) -> None:
    messages = [
        *HELLO,
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"zone": "CET"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "12:00"}]},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
    ]
    claude.messages.create(model="mock/gpt-4o", max_tokens=100, messages=messages, tools=TOOLS)
    (seen,) = mock.requests()
    sent = seen["body"]["messages"]
    assert sent[1]["tool_calls"][1] == {
        "id": "toolu_2",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"zone":"CET"}'},
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"}
    assert sent[3] == {"role": "tool", "tool_call_id": "toolu_2", "content": "12:00"}
    assert sent[4]["content"][0]["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo="
    assert seen["body"]["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]


def test_count_tokens_is_an_estimate_and_never_goes_upstream(claude: anthropic.Anthropic, mock) -> None:
    short = claude.messages.count_tokens(model="anthropic/claude-sonnet-4-5", messages=HELLO)
    longer = claude.messages.count_tokens(
        model="anthropic/claude-sonnet-4-5", messages=HELLO, system="x" * 4000, tools=TOOLS
    )
    assert short.input_tokens == len(HELLO[0]["content"]) // 4
    assert longer.input_tokens > short.input_tokens + 1000
    assert mock.count() == 0


def test_streamed_message_start_carries_an_input_estimate(claude: anthropic.Anthropic) -> None:
    # A chat upstream reports input tokens only at the end; Claude Code reads message_start.
    with claude.messages.stream(model="mock/gpt-4o", max_tokens=100, messages=HELLO) as stream:
        start = next(e for e in stream if e.type == "message_start")
        final = stream.get_final_message()
    assert start.message.usage.input_tokens > 0
    assert final.usage.input_tokens > 0


def test_usage_is_logged_for_messages(claude: anthropic.Anthropic, gateway: Server) -> None:
    raw = claude.messages.with_raw_response.create(model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=HELLO)
    message = raw.parse()
    request_id = raw.headers["x-request-id"]
    (row,) = usage_rows(gateway, f"request_id = '{request_id}'")
    assert row["endpoint"] == "messages" and row["model"] == "anthropic/claude-sonnet-4-5"
    assert row["completion_tokens"] == message.usage.output_tokens
    assert row["prompt_tokens"] == message.usage.input_tokens


# --- errors: the SDK's classes, Anthropic's body shape, nothing forwarded ---


def _anthropic_error(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body["error"]


BAD_BODIES = [
    ({"model": "anthropic/claude-sonnet-4-5", "messages": HELLO}, "max_tokens"),
    (
        {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
        "role",
    ),
    (
        {
            "model": "anthropic/claude-sonnet-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": [{"type": "hologram", "text": "x"}]}],
        },
        "messages[0].content",
    ),
    (
        {
            "model": "mock/gpt-4o",
            "max_tokens": 10,
            "messages": HELLO,
            "tools": [{"name": "t", "input_schema": {"type": "string"}}],
        },
        "tools.0.input_schema",
    ),
    (
        {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 1000, "messages": HELLO, "thinking": THINKING},
        "budget_tokens",
    ),
]


@pytest.mark.parametrize(("body", "where"), BAD_BODIES)
def test_bad_input_gets_an_anthropic_400_and_never_reaches_upstream(gateway, api_key, mock, body, where) -> None:
    response = httpx.post(f"{gateway.base}/v1/messages", json=body, headers={"x-api-key": api_key})
    error = _anthropic_error(response, 400, "invalid_request_error")
    assert where in error["message"]
    assert mock.count() == 0


def test_sdk_error_classes(gateway, api_key, faults_gateway, mock) -> None:
    bad_key = anthropic.Anthropic(base_url=gateway.base, api_key="rk-" + "x" * 43, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=10, messages=HELLO)
    # Bearer works as well as x-api-key.
    response = httpx.post(
        f"{gateway.base}/v1/messages",
        json={"model": "nope/nope", "max_tokens": 10, "messages": HELLO},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert "nope/nope" in _anthropic_error(response, 404, "not_found_error")["message"]
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(base_url=gateway.base, api_key=api_key, max_retries=0).messages.count_tokens(
            model="nope/nope", messages=HELLO
        )
    client = anthropic.Anthropic(base_url=faults_gateway.base, api_key=faults_gateway.key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="anthropic/limited", max_tokens=10, messages=HELLO)
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="anthropic/overloaded", max_tokens=10, messages=HELLO)
    # A stream that fails before its first byte is a JSON error with the real status, not a 200 stream.
    with (
        pytest.raises(anthropic.OverloadedError),
        client.messages.stream(model="anthropic/overloaded", max_tokens=10, messages=HELLO) as stream,
    ):
        list(stream)
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="mock/overloaded", max_tokens=10, messages=HELLO)
    assert failed.value.body["type"] == "error"


def test_upstream_overload_is_503_for_openai_callers(faults_gateway) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{faults_gateway.base}/v1", api_key=faults_gateway.key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="anthropic/overloaded", messages=HELLO)
    assert err.value.status_code == 503
    assert err.value.body["type"] == "overloaded_error"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="anthropic/limited", messages=HELLO)


def test_a_stream_cut_upstream_ends_with_an_anthropic_error_event(faults_gateway) -> None:
    client = anthropic.Anthropic(base_url=faults_gateway.base, api_key=faults_gateway.key, max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        client.messages.stream(model="anthropic/cut", max_tokens=50, messages=HELLO) as stream,
    ):
        list(stream)
    # The SDK raised from the `event: error` frame (an unnamed frame would have been dropped silently).
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "api_error"
    assert "Upstream provider 'anthropic'" in err.value.body["error"]["message"]


def test_anthropic_beta_header_reaches_anthropic_upstreams_only(claude: anthropic.Anthropic, mock) -> None:
    beta = {"anthropic-beta": "interleaved-thinking-2025-05-14", "anthropic-version": "2023-06-01"}
    for model in ("anthropic/claude-sonnet-4-5", "mock/gpt-4o"):
        claude.messages.create(model=model, max_tokens=10, messages=HELLO, extra_headers=beta)
    anthropic_seen, openai_seen = mock.requests()
    assert anthropic_seen["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert anthropic_seen["headers"]["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in openai_seen["headers"]


LONG_SYSTEM = "You are a careful assistant. " * 200  # ~5,800 characters: above Anthropic's cacheable minimum


def test_auto_cache_adds_breakpoints_and_reports_cache_reads(claude: anthropic.Anthropic, mock) -> None:
    kwargs = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 10, "system": LONG_SYSTEM, "messages": HELLO}
    cached = claude.messages.create(**kwargs, extra_body={"requesty": {"auto_cache": True}})
    plain = claude.messages.create(**kwargs, extra_body={"requesty": {"auto_cache": False}})
    with_cache, without = mock.requests()
    assert with_cache["body"]["system"] == [
        {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    assert with_cache["body"]["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "requesty" not in with_cache["body"] and "requesty" not in without["body"]
    assert without["body"]["system"] == LONG_SYSTEM  # false never adds breakpoints
    assert cached.usage.cache_read_input_tokens > 1000 and plain.usage.cache_read_input_tokens == 0
    # Same prompt either way: what the cache served is no longer in input_tokens (the mock bills at least 1).
    total = cached.usage.input_tokens + cached.usage.cache_read_input_tokens
    assert plain.usage.input_tokens <= total <= plain.usage.input_tokens + 1


def test_auto_cache_from_an_openai_caller(client, mock) -> None:
    completion = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "system", "content": LONG_SYSTEM}, *HELLO],
        extra_body={"requesty": {"auto_cache": True}},
    )
    (seen,) = mock.requests()
    assert seen["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    cached = completion.usage.prompt_tokens_details.cached_tokens
    assert cached > 1000 and completion.usage.prompt_tokens > cached  # prompt_tokens includes the cached part


def test_an_embeddings_model_on_messages_is_a_400(gateway, api_key, mock) -> None:
    body = {"model": "mock/text-embedding-3-small", "max_tokens": 10, "messages": HELLO}
    response = httpx.post(f"{gateway.base}/v1/messages", json=body, headers={"x-api-key": api_key})
    assert "/v1/messages" in _anthropic_error(response, 400, "invalid_request_error")["message"]
    assert mock.count() == 0


def test_server_tool_history_reaches_anthropic_untouched(claude: anthropic.Anthropic, mock) -> None:
    # What Claude Code sends back after a web search: server-side blocks the gateway must not reject or rewrite.
    history = [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [{"type": "web_search_result", "url": "https://example.com", "title": "Weather"}],
        },
        {"type": "text", "text": "It is sunny."},
    ]
    messages = [*HELLO, {"role": "assistant", "content": history}, {"role": "user", "content": "Thanks"}]
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]
    claude.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=10, messages=messages, tools=tools)
    (seen,) = mock.requests()
    assert seen["body"]["messages"][1]["content"] == history
    assert seen["body"]["tools"] == tools


def test_reasoning_models_get_max_completion_tokens(claude: anthropic.Anthropic, mock) -> None:
    # OpenAI's reasoning models refuse max_tokens; mock/o3-mini is configured with the reasoning capability.
    claude.messages.create(model="mock/o3-mini", max_tokens=300, messages=HELLO)
    claude.messages.create(model="mock/gpt-4o", max_tokens=300, messages=HELLO)
    reasoning, plain = mock.requests()
    assert reasoning["body"]["max_completion_tokens"] == 300 and "max_tokens" not in reasoning["body"]
    assert plain["body"]["max_tokens"] == 300

"""The mock as a real server: ``python -m router.mock`` driven by the official openai SDK and raw HTTP."""

from __future__ import annotations

import base64
import json
import socket
import struct
import time

import openai
import pytest

from mock_harness import MockServer, parse_response, raw_request, run_mock

MESSAGES = [{"role": "user", "content": "Say something deterministic, please."}]
CHAT = "/v1/chat/completions"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture
def client(mock: MockServer):
    with openai.OpenAI(base_url=mock.base_url, api_key="sk-test-0123456789", max_retries=0) as sdk:
        yield sdk


def sse_data(body: bytes) -> list[str]:
    assert body.endswith(b"\n\n")
    return [e.removeprefix("data: ") for e in body.decode().split("\n\n")[:-1]]


# --- happy paths through the SDK ---


def test_chat_non_streaming(client):
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    message = completion.choices[0].message
    assert message.role == "assistant"
    assert message.content.startswith("The quick brown fox")
    assert len(message.content.split()) == 16
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 16, 25)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    again = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert again.id != completion.id
    assert again.choices[0].message.content == message.content


def test_chat_streaming_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4o@tokens=5", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert {c.model for c in chunks} == {"gpt-4o"}
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The quick brown fox jumps"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_helper_accumulates_tool_calls(client):
    with client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, tool_choice="required"
    ) as stream:
        for _event in stream:
            pass
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.id, c.function.name) for c in calls] == [("call_0", "get_weather"), ("call_1", "get_time")]
    assert json.loads(calls[0].function.arguments) == {"city": "mock", "days": 1}
    assert json.loads(calls[1].function.arguments) == {}


def test_tool_calls_non_streaming_named_and_knob(client):
    named = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_time"]
    assert named.choices[0].message.content is None
    three = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, extra_headers={"x-mock-tool-calls": "3"}
    )
    assert [c.id for c in three.choices[0].message.tool_calls] == ["call_0", "call_1", "call_2"]
    disabled = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, extra_body={"mock": {"tool_calls": 0}}
    )
    assert disabled.choices[0].message.tool_calls is None
    assert disabled.choices[0].finish_reason == "stop"


def test_echo_and_precedence(client):
    echoed = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "repeat after me"}], extra_headers={"x-mock-echo": "1"}
    )
    assert echoed.choices[0].message.content == "repeat after me"
    assert echoed.usage.completion_tokens == 3
    # header beats body beats model name
    reply = client.chat.completions.create(
        model="gpt-4o@tokens=7",
        messages=MESSAGES,
        extra_body={"mock": {"tokens": 5}},
        extra_headers={"x-mock-tokens": "2"},
    )
    assert reply.usage.completion_tokens == 2
    reply = client.chat.completions.create(
        model="gpt-4o@tokens=7", messages=MESSAGES, extra_body={"mock": {"tokens": 5}}
    )
    assert reply.usage.completion_tokens == 5
    reply = client.chat.completions.create(model="gpt-4o@tokens=7", messages=MESSAGES, max_tokens=3)
    assert (reply.usage.completion_tokens, reply.choices[0].finish_reason) == (3, "length")


def test_embeddings_float_and_base64(client):
    floats = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float")
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    assert floats.usage.prompt_tokens == 2
    # The SDK asks for base64 by default and decodes it itself.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=8)
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]], dimensions=4)
    assert [len(d.embedding) for d in tokens.data] == [4, 4]
    assert tokens.usage.total_tokens == 4


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_unknown_model_is_served(client):
    assert client.chat.completions.create(model="made-up", messages=MESSAGES).model == "made-up"


# --- HTTP error faults ---


def test_429_through_sdk_and_retries(mock, client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-fail": "429"})
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.body == {
        "message": "Rate limit reached for requests (mock). Please try again later.",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    mock.reset()
    with (
        openai.OpenAI(base_url=mock.base_url, api_key="sk-x", max_retries=2) as retrying,
        pytest.raises(openai.RateLimitError),
    ):
        retrying.chat.completions.create(model="gpt-4o@fail=429@retry-after=0", messages=MESSAGES)
    assert len(mock.recorded()) == 3


@pytest.mark.parametrize(("fail", "status"), [("429", 429), ("500", 500), ("503", 503)])
@pytest.mark.parametrize("stream", [False, True])
def test_error_statuses_raw(mock, fail, status, stream):
    response = mock.request(
        "POST",
        CHAT,
        {"model": "gpt-4o", "messages": MESSAGES, "stream": stream},
        {"x-mock-fail": fail, "x-mock-retry-after": "3"},
    )
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ("rate_limit_error" if status == 429 else "server_error")
    assert ("retry-after" in response.headers) == (status == 429)
    if status == 429:
        assert response.headers["retry-after"] == "3"


def test_embeddings_fail(mock):
    response = mock.request("POST", "/v1/embeddings", {"model": "e@fail=503", "input": "x"})
    assert response.status == 503


# --- connection-level faults, checked on the wire ---


def test_drop_streaming_cuts_the_transfer(mock, client):
    raw = raw_request(
        mock.port, "POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES, "stream": True}, {"x-mock-fail": "drop"}
    )
    response = parse_response(raw)
    assert response.status == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert not response.complete, "the chunked body must end without its terminating chunk"
    assert not raw.endswith(b"0\r\n\r\n")
    events = sse_data(response.body)
    assert len(events) == 3  # role chunk + two tokens
    assert "[DONE]" not in events
    assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events)
    with pytest.raises(openai.APIConnectionError):
        for _chunk in client.chat.completions.create(model="gpt-4o@fail=drop", messages=MESSAGES, stream=True):
            pass


def test_drop_non_streaming_closes_without_response(mock, client):
    assert (
        raw_request(mock.port, "POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES}, {"x-mock-fail": "drop"}) == b""
    )
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_body={"mock": {"fail": "drop"}})
    # the worker is unharmed
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_malformed_streaming(mock, client):
    response = mock.request(
        "POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES, "stream": True}, {"x-mock-fail": "malformed"}
    )
    assert response.status == 200
    assert response.complete
    events = sse_data(response.body)
    assert events.count("{not json") == 1
    assert events.index("{not json") not in (0, len(events) - 1)
    assert events[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        for _chunk in client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-mock-fail": "malformed"}
        ):
            pass


def test_malformed_non_streaming(mock):
    response = mock.request("POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES}, {"x-mock-fail": "malformed"})
    assert response.status == 200
    assert response.complete
    assert response.body.startswith(b'{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize("stream", [False, True])
def test_hang_until_client_leaves(mock, stream):
    body = json.dumps({"model": "gpt-4o@fail=hang", "messages": MESSAGES, "stream": stream}).encode()
    with socket.create_connection(("127.0.0.1", mock.port), timeout=0.5) as sock:
        sock.sendall(b"POST %b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (CHAT.encode(), len(body), body))
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert mock.recorded()[-1]["model"] == "gpt-4o@fail=hang"
    assert mock.request("GET", "/_mock/health").status == 200


def test_ttft_and_token_delay(mock, client):
    start = time.monotonic()
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-ttft-ms": "200"})
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    stream = client.chat.completions.create(model="gpt-4o@tokens=4@token_delay_ms=50", messages=MESSAGES, stream=True)
    stamps = [(time.monotonic() - start, chunk) for chunk in stream]
    content_times = [t for t, c in stamps if c.choices and c.choices[0].delta.content]
    assert content_times[-1] - content_times[0] >= 0.14  # three gaps of 50 ms
    start = time.monotonic()
    client.chat.completions.create(model="gpt-4o@tokens=4@token_delay_ms=50", messages=MESSAGES)
    assert time.monotonic() - start >= 0.2


# --- bad input, routing, control endpoints ---


@pytest.mark.parametrize(
    ("body", "headers", "param"),
    [
        (b"{not json", {}, None),
        (b'{"messages": []}', {}, "model"),
        (b'{"model": 5}', {}, "model"),
        (b'{"model": "gpt-4o", "mock": {"tokenz": 1}}', {}, "mock"),
        (b'{"model": "gpt-4o@tokens=x"}', {}, "model"),
        (b'{"model": "gpt-4o"}', {"x-mock-fail": "teapot"}, None),
    ],
)
def test_bad_input_is_an_openai_400(mock, body, headers, param):
    response = mock.request("POST", CHAT, body, headers)
    assert response.status == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "Traceback" not in mock.log()


def test_bad_embeddings_input(mock):
    response = mock.request("POST", "/v1/embeddings", {"model": "e", "input": []})
    assert (response.status, response.json()["error"]["param"]) == (400, "input")


def test_routing_errors(mock):
    response = mock.request("POST", "/v1/completions", {"model": "gpt-4o"})
    assert response.status == 404
    assert response.json()["error"]["code"] == "unknown_url"
    assert mock.request("GET", CHAT).status == 405
    assert mock.request("GET", "/nope").status == 404


def test_request_recording(mock, client):
    client.chat.completions.create(
        model="gpt-4o@tokens=2", messages=MESSAGES, extra_headers={"x-request-id": "req-123", "X-Custom": "Yes"}
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True).close()
    mock.request("POST", "/v1/embeddings", {"model": "e", "input": "x"}, {"x-api-key": "key-abcdefghijkl"})
    client.models.list()
    mock.request("GET", "/_mock/health")  # control endpoints are not recorded
    log = mock.request("GET", "/_mock/requests").json()
    assert log["count"] == 4
    first, second, third, fourth = log["requests"]
    assert [r["seq"] for r in log["requests"]] == [1, 2, 3, 4]
    assert (first["method"], first["path"], first["model"], first["stream"]) == ("POST", CHAT, "gpt-4o@tokens=2", False)
    assert first["request_id"] == "req-123"
    assert first["headers"]["x-custom"] == "Yes"
    assert first["headers"]["authorization"] == "Bearer s…"
    assert first["body_size"] == int(first["headers"]["content-length"])
    assert first["body"] == {"model": "gpt-4o@tokens=2", "messages": MESSAGES}
    assert second["stream"] is True and second["request_id"] is None
    assert third["headers"]["x-api-key"] == "key-abcd…"
    assert (fourth["method"], fourth["path"], fourth["model"], fourth["body"]) == ("GET", "/v1/models", None, None)
    assert mock.request("POST", "/_mock/reset").json() == {"cleared": 4}
    assert mock.request("GET", "/_mock/requests").json() == {
        "count": 0,
        "total": 0,
        "requests": [],
        "streams_active": 0,
        "streams_aborted": 0,
    }


# --- process defaults and lifecycle (own servers) ---


def test_process_defaults_reach_the_worker(tmp_path):
    with run_mock(tmp_path, "--tokens", "3", "--fail", "503", "--fail-rate", "0.5") as server:
        line = server.log().splitlines()[0]
        assert line == f"mock provider listening on http://127.0.0.1:{server.port}/v1"
        statuses = [server.request("POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES}).status for _ in range(6)]
        assert statuses == [200, 503] * 3
        ok = server.request("POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES}, {"x-mock-fail": "none"})
        assert ok.json()["usage"]["completion_tokens"] == 3


def test_env_defaults_and_sigterm_is_graceful(tmp_path):
    with run_mock(tmp_path, env={"ROUTER_MOCK_TOKENS": "2"}) as server:
        reply = server.request("POST", CHAT, {"model": "gpt-4o", "messages": MESSAGES}).json()
        assert reply["usage"]["completion_tokens"] == 2
        process = server.process
    assert process.returncode == 0


def test_base64_embeddings_raw(mock):
    body = mock.request(
        "POST", "/v1/embeddings", {"model": "e", "input": "x", "encoding_format": "base64", "dimensions": 3}
    ).json()
    values = struct.unpack("<3f", base64.b64decode(body["data"][0]["embedding"]))
    assert abs(sum(v * v for v in values) - 1) < 1e-6

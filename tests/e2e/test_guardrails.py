"""Guardrails end to end: the openai SDK against a real gateway and the mock provider.

Request side: what reaches the upstream (the mock records bodies) is masked, or the request is blocked and
never forwarded. Response side: the mock echoes text back word by word, so a value the request did not
mask arrives split across stream chunks; the client must never receive it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from servers import MockControl, Server, create_key, gateway_env, router_cli, start_gateway

MODEL = "mock/gpt-4o"
ECHO = {"mock": {"echo": True}}
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@acme-corp.io"
AWS = "AKIAQWERTYUIOPASDFGH"
IBAN = "GB29 NWBK 6016 1331 9268 19"

PROVIDERS = """
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools]}
  - id: mock/gpt-4o
    upstream_model: gpt-4o
    capabilities: [streaming, tools]
  - id: mock/text-embedding-3-small
    upstream_model: text-embedding-3-small
    capabilities: [embeddings]
  # The mock echoes the last user message back word by word (a knob in the upstream model name, so it
  # survives translation to another API).
  - {id: mock/echo, upstream_model: "gpt-4o@echo=true", capabilities: [streaming, tools]}
  - {id: anthropic/echo, upstream_model: "claude-sonnet-4-5@echo=true", capabilities: [streaming, tools]}
  - {id: openai-responses/echo, upstream_model: "gpt-4o@echo=true", capabilities: [streaming, tools]}
"""
# Request scanning with PCI blocked and a custom pattern.
STRICT = (
    PROVIDERS
    + """
guardrails:
  categories: {pci: block}
  custom:
    - {name: employee_id, pattern: "EMP-[0-9]{6}"}
"""
)
# Only answers are scanned: the mock echoes the raw values, the gateway must mask them on the way out.
RESPONSES_ONLY = (
    PROVIDERS
    + """
guardrails:
  scan_requests: false
"""
)

# Answers get the request's values back where the model echoes their placeholders.
RESTORING = (
    PROVIDERS
    + """
guardrails:
  restore_placeholders: true
"""
)


def _gateway(root: Path, mock_base: str, config_text: str) -> Server:
    config = root / "router.yaml"
    config.write_text(config_text)
    server = start_gateway(gateway_env(root / "router.db", mock_base, config))
    server.key = create_key(server.env, "guardrails")["key"]  # type: ignore[attr-defined]
    # One SDK client per gateway, closed with it (an unclosed client's sockets warn when collected).
    server.client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=server.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module")
def strict(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("strict"), mock_server.base, STRICT)
    yield server
    server.client.close()  # type: ignore[attr-defined]
    server.stop()


@pytest.fixture(scope="module")
def responses_only(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("responses"), mock_server.base, RESPONSES_ONLY)
    yield server
    server.client.close()  # type: ignore[attr-defined]
    server.stop()


@pytest.fixture(scope="module")
def restoring(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("restoring"), mock_server.base, RESTORING)
    yield server
    server.client.close()  # type: ignore[attr-defined]
    server.stop()


def _forwarded(mock: MockControl) -> str:
    return json.dumps([r["body"] for r in mock.requests()])


def test_request_values_are_masked_before_the_upstream_sees_them(strict: Server, mock: MockControl) -> None:
    text = f"Mail {EMAIL} or ping EMP-123456; key {AWS}, again {EMAIL}"
    reply = strict.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], extra_body=ECHO
    )
    masked = "Mail [EMAIL_1] or ping [EMPLOYEE_ID_1]; key [AWS_ACCESS_KEY_1], again [EMAIL_1]"
    assert reply.choices[0].message.content == masked
    forwarded = _forwarded(mock)
    assert EMAIL not in forwarded and AWS not in forwarded and "EMP-123456" not in forwarded


def test_every_string_a_model_reads_is_scanned(strict: Server, mock: MockControl) -> None:
    strict.client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": f"Escalate to {EMAIL}."},
            {"role": "user", "content": [{"type": "text", "text": f"My IBAN is {IBAN}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps({"email": EMAIL})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "SSN on file: 123-45-6788"},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": f"Looks up a customer; admin contact {EMAIL}",
                    "parameters": {
                        "type": "object",
                        "properties": {"email": {"type": "string", "description": f"e.g. {EMAIL}"}},
                    },
                },
            }
        ],
        tool_choice="none",
    )
    forwarded = _forwarded(mock)
    for value in (EMAIL, IBAN, "123-45-6788"):
        assert value not in forwarded
    body = mock.requests()[-1]["body"]
    assert body["messages"][1]["content"][0]["text"] == "My IBAN is [IBAN_1]"
    # One numbering across the whole request: the same address is [EMAIL_1] everywhere.
    assert json.loads(body["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL_1]"}
    assert body["tools"][0]["function"]["parameters"]["properties"]["email"]["description"] == "e.g. [EMAIL_1]"


def test_blocked_category_rejects_without_forwarding_or_echoing_the_value(strict: Server, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        strict.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"card {CARD}"}])
    error = caught.value.body
    assert caught.value.status_code == 400
    assert error["code"] == "guardrail_violation" and "pci" in error["message"]
    assert CARD not in json.dumps(error) and "4111" not in json.dumps(error)
    assert mock.count() == 0


def test_anthropic_and_responses_requests_are_screened_too(strict: Server, mock: MockControl) -> None:
    client = anthropic.Anthropic(base_url=strict.base, api_key=strict.key, max_retries=0)  # type: ignore[attr-defined]
    client.messages.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=50,
        system=f"Escalate to {EMAIL}",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": f"my key is {AWS}"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": EMAIL}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"owner {EMAIL}"}]},
        ],
    )
    # Translated to another API as well: what reaches the chat upstream is masked.
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": f"mail {EMAIL}"}])
    strict.client.responses.create(  # type: ignore[attr-defined]
        model="openai-responses/gpt-4o", instructions=f"cc {EMAIL}", input=f"key {AWS}"
    )
    forwarded = _forwarded(mock)
    assert mock.count() == 3
    assert EMAIL not in forwarded and AWS not in forwarded and "[EMAIL_1]" in forwarded
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": f"card {CARD}"}]
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "pci" in caught.value.body["error"]["message"] and "4111" not in json.dumps(caught.value.body)
    assert mock.count() == 3


def test_embeddings_input_is_masked(strict: Server, mock: MockControl) -> None:
    strict.client.embeddings.create(model="mock/text-embedding-3-small", input=[f"to {EMAIL}", "plain"])
    assert mock.requests()[-1]["body"]["input"] == ["to [EMAIL_1]", "plain"]


def test_unary_answer_is_masked(responses_only: Server, mock: MockControl) -> None:
    text = f"card {CARD} mail {EMAIL}"
    reply = responses_only.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], extra_body=ECHO
    )
    assert EMAIL in _forwarded(mock)  # requests are not scanned in this configuration
    assert reply.choices[0].message.content == "card [CARD_1] mail [EMAIL_1]"


def test_streamed_answer_never_leaks_a_value_split_across_chunks(responses_only: Server) -> None:
    text = f"Send {CARD} to {IBAN}, then mail {EMAIL} with key {AWS} today"
    # Tokens 3 ms apart, so they reach the gateway in separate reads (a burst read at once goes out at once).
    paced = {"mock": {"echo": True, "token_delay_ms": 3}}
    stream = responses_only.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], extra_body=paced, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    received = "".join(pieces)
    assert received == "Send [CARD_1] to [IBAN_1], then mail [EMAIL_1] with key [AWS_ACCESS_KEY_1] today"
    # Delivered incrementally, not buffered to the end.
    assert sum(1 for p in pieces if p) > 5
    for value in (CARD, IBAN, EMAIL, AWS, "4111", "NWBK"):
        assert value not in received


def test_streamed_tool_call_arguments_are_masked(responses_only: Server) -> None:
    # The mock answers a tool call with the first enum value of each property, in ~8-character fragments.
    tools = [
        {
            "type": "function",
            "function": {
                "name": "pay",
                "parameters": {"type": "object", "properties": {"card": {"type": "string", "enum": [CARD]}}},
            },
        }
    ]
    stream = responses_only.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "pay"}], tools=tools, tool_choice="required", stream=True
    )
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += call.function.arguments or ""
    assert json.loads(arguments) == {"card": "[CARD_1]"}


def test_metrics_count_findings_by_category_direction_and_action(strict: Server) -> None:
    strict.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"hi {EMAIL}"}])
    text = httpx.get(f"{strict.base}/metrics").text
    line = next(
        ln for ln in text.splitlines()
        if ln.startswith("router_guardrail_findings_total") and 'category="pii"' in ln and 'direction="request"' in ln
    )  # fmt: skip
    assert 'action="mask"' in line and float(line.rsplit(" ", 1)[1]) >= 1
    assert EMAIL not in text


def test_cli_shows_what_would_be_masked(strict: Server) -> None:
    out = router_cli(strict.env, "guardrails", "test", f"EMP-123456 paid with {CARD}").stdout
    assert out.splitlines()[0] == "[EMPLOYEE_ID_1] paid with [CARD_1]"
    assert "block pci" in out and "mask  custom" in out


def test_bad_custom_pattern_is_refused_at_startup(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(PROVIDERS + '\nguardrails:\n  custom:\n    - {name: broken, pattern: "EMP-("}\n')
    result = router_cli({**gateway_env(tmp_path / "r.db", "http://127.0.0.1:1"), "ROUTER_CONFIG": str(config)},
                        "guardrails", "test", "x", check=False)  # fmt: skip
    assert result.returncode != 0
    assert "guardrails.custom[0].pattern" in result.stderr and "not a valid regex" in result.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_echoed_placeholders_are_restored_for_the_client(restoring: Server, mock: MockControl, stream: bool) -> None:
    text = f"Please confirm {EMAIL} and {IBAN} today"
    client = restoring.client
    messages = [{"role": "user", "content": text}]
    if stream:
        chunks = client.chat.completions.create(model=MODEL, messages=messages, extra_body=ECHO, stream=True)
        received = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        received = client.chat.completions.create(model=MODEL, messages=messages, extra_body=ECHO)
        received = received.choices[0].message.content
    assert received == text
    forwarded = _forwarded(mock)
    assert EMAIL not in forwarded and "[EMAIL_1]" in forwarded


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["anthropic/echo", "mock/echo"], ids=["same-api", "from-chat"])
def test_restoring_works_for_the_anthropic_sdk(restoring: Server, mock: MockControl, model: str, stream: bool) -> None:
    text = f"Please confirm {EMAIL} and {IBAN} today"
    messages = [{"role": "user", "content": text}]
    with _claude(restoring) as client:
        if stream:
            with client.messages.stream(model=model, max_tokens=200, messages=messages) as events:
                received = "".join(events.text_stream)
        else:
            received = client.messages.create(model=model, max_tokens=200, messages=messages).content[0].text  # type: ignore[union-attr]
    assert received == text
    forwarded = _forwarded(mock)
    assert EMAIL not in forwarded and "[EMAIL_1]" in forwarded and "[IBAN_1]" in forwarded


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_restoring_works_for_the_responses_api(restoring: Server, mock: MockControl, stream: bool) -> None:
    text = f"Please confirm {EMAIL} and {IBAN} today"
    client = restoring.client  # type: ignore[attr-defined]
    if stream:
        events = client.responses.create(model="openai-responses/echo", input=text, stream=True)
        received = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    else:
        received = client.responses.create(model="openai-responses/echo", input=text).output_text
    assert received == text
    forwarded = _forwarded(mock)
    assert EMAIL not in forwarded and "[EMAIL_1]" in forwarded


# -- answers on every endpoint: Anthropic Messages and OpenAI Responses, same-API and translated ---------------

# The answer's values, split across the mock's word-by-word deltas.
ANSWER = f"Send {CARD} to {IBAN}, then mail {EMAIL} with key {AWS} today"
MASKED = "Send [CARD_1] to [IBAN_1], then mail [EMAIL_1] with key [AWS_ACCESS_KEY_1] today"
LEAKS = (CARD, IBAN, EMAIL, AWS, "4111", "NWBK", "acme-corp", "AKIAQW")


def _claude(server: Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base, api_key=server.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", ["anthropic/echo", "mock/echo"], ids=["same-api", "from-chat"])
def test_messages_stream_is_masked_for_the_anthropic_sdk(responses_only: Server, model: str) -> None:
    with (
        _claude(responses_only) as client,
        client.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": ANSWER}]) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == MASKED and final.content[0].text == MASKED  # type: ignore[union-attr]
    assert sum(1 for p in pieces if p) > 5  # delivered incrementally, not buffered to the end
    assert not any(value in final.model_dump_json() for value in LEAKS)


def test_messages_tool_input_is_masked(responses_only: Server) -> None:
    tools = [
        {"name": "pay", "input_schema": {"type": "object", "properties": {"card": {"type": "string", "enum": [CARD]}}}}
    ]
    with _claude(responses_only) as client:
        with client.messages.stream(
            model="anthropic/claude-sonnet-4-5", max_tokens=200, tools=tools, tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "pay"}],
        ) as stream:  # fmt: skip
            streamed = stream.get_final_message()
        unary = client.messages.create(
            model="anthropic/claude-sonnet-4-5", max_tokens=200, tools=tools, tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "pay"}],
        )  # fmt: skip
    for message in (streamed, unary):
        call = next(b for b in message.content if b.type == "tool_use")
        assert call.input == {"card": "[CARD_1]"}


@pytest.mark.parametrize("model", ["openai-responses/echo", "mock/echo"], ids=["same-api", "from-chat"])
def test_responses_stream_is_masked_for_the_openai_sdk(responses_only: Server, model: str) -> None:
    client = responses_only.client  # type: ignore[attr-defined]
    deltas, completed = [], None
    for event in client.responses.create(model=model, input=ANSWER, stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.output_text.done":
            assert event.text == MASKED
        elif event.type == "response.completed":
            completed = event.response
    assert "".join(deltas) == MASKED and len([d for d in deltas if d]) > 5
    assert completed is not None and completed.output_text == MASKED
    assert not any(value in completed.model_dump_json() for value in LEAKS)


@pytest.mark.parametrize("model", ["openai-responses/echo", "anthropic/echo", "mock/echo"])
def test_unary_answers_are_masked_in_every_api(responses_only: Server, model: str) -> None:
    reply = responses_only.client.responses.create(model=model, input=ANSWER)  # type: ignore[attr-defined]
    assert reply.output_text == MASKED
    with _claude(responses_only) as client:
        message = client.messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": ANSWER}])
    assert message.content[0].text == MASKED  # type: ignore[union-attr]
    chat = responses_only.client.chat.completions.create(  # type: ignore[attr-defined]
        model=model, messages=[{"role": "user", "content": ANSWER}]
    )
    assert chat.choices[0].message.content == MASKED


# Only answers are scanned, and cards are blocked: the mock's answer carries one.
BLOCK_ANSWERS = PROVIDERS + "\nguardrails:\n  scan_requests: false\n  categories: {pci: block}\n"


@pytest.fixture(scope="module")
def blocking(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("blocking"), mock_server.base, BLOCK_ANSWERS)
    yield server
    server.client.close()  # type: ignore[attr-defined]
    server.stop()


def test_blocked_answer_is_a_400_in_the_endpoints_shape(blocking: Server) -> None:
    with _claude(blocking) as client, pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="anthropic/echo", max_tokens=200, messages=[{"role": "user", "content": ANSWER}],
        )  # fmt: skip
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error" and "pci" in error["message"]
    assert "4111" not in json.dumps(caught.value.body)
    with pytest.raises(openai.BadRequestError) as bad:
        blocking.client.responses.create(model="openai-responses/echo", input=ANSWER)  # type: ignore[attr-defined]
    assert bad.value.code == "guardrail_violation"


def test_blocked_stream_ends_with_an_error_event_and_never_the_value(blocking: Server) -> None:
    with _claude(blocking) as client:
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            client.messages.stream(
                model="anthropic/echo", max_tokens=200, messages=[{"role": "user", "content": ANSWER}]
            ) as stream,
        ):
            assert not any(value in "".join(stream.text_stream) for value in LEAKS)
        assert "pci" in str(caught.value) and "4111" not in str(caught.value)
    # The openai SDK hands a Responses `error` event to the caller as the stream's last event.
    events = list(
        blocking.client.responses.create(model="openai-responses/echo", input=ANSWER, stream=True)  # type: ignore[attr-defined]
    )
    assert events[-1].type == "error" and events[-1].code == "guardrail_violation" and "pci" in events[-1].message
    received = "".join(e.model_dump_json() for e in events)
    assert not any(value in received for value in LEAKS)

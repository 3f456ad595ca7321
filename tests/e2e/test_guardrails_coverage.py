"""Guardrails coverage end to end: every request field that carries text a model reads is masked before the
upstream sees it, in each API, and the fields left out (docs/guardrails-coverage.md) reach it unchanged.

Each field gets its own value, so a field that is not scanned shows up by name in the assertion. The mock
provider records every body it receives (`MockControl.requests`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = """
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools]}
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools]}
  - {id: mock/text-embedding-3-small, upstream_model: text-embedding-3-small, capabilities: [embeddings]}
"""


def email(field: str) -> str:
    """A distinct address per field, so a miss names the field."""
    return f"{field.replace('_', '-')}.owner@acme-corp.io"


@pytest.fixture(scope="module")
def gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("coverage")
    (root / "router.yaml").write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "router.yaml"))
    server.key = create_key(server.env, "coverage")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(gateway: Server) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=gateway.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]
    yield client
    client.close()


@pytest.fixture
def claude(gateway: Server) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=gateway.base, api_key=gateway.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]
    yield client
    client.close()


def forwarded(mock: MockControl) -> tuple[dict, str]:
    """The one body the upstream received, and its JSON text."""
    bodies = [r["body"] for r in mock.requests()]
    assert len(bodies) == 1, bodies
    return bodies[0], json.dumps(bodies[0])


def assert_masked(text: str, fields: list[str]) -> None:
    leaked = [f for f in fields if email(f) in text]
    assert not leaked, f"sent upstream unmasked: {leaked}"
    assert "[EMAIL_" in text


def test_chat_every_text_field_is_masked(oai: openai.OpenAI, mock: MockControl) -> None:
    fields = ["system", "user_part", "tool_result", "tool_description", "param_description", "function_description",
              "prediction", "prediction_part", "schema_description", "schema_property", "enum_value"]  # fmt: skip
    schema = {
        "name": "answer",
        "description": f"Reply as {email('schema_description')} would",
        "schema": {
            "type": "object",
            "properties": {
                "to": {"type": "string", "description": f"e.g. {email('schema_property')}"},
                "cc": {"type": "string", "enum": [email("enum_value"), "nobody"]},
            },
            "required": ["to"],
        },
    }
    oai.chat.completions.create(
        model="mock/gpt-4o",
        messages=[
            {"role": "system", "content": f"Escalate to {email('system')}."},
            {"role": "user", "content": [{"type": "text", "text": f"I am {email('user_part')}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"owner: {email('tool_result')}"},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": f"Ask {email('tool_description')}",
                    "parameters": {
                        "type": "object",
                        "properties": {"q": {"type": "string", "description": f"like {email('param_description')}"}},
                    },
                },
            }
        ],
        prediction={"type": "content", "content": f"Dear {email('prediction')}, your order shipped."},
        response_format={"type": "json_schema", "json_schema": schema},  # type: ignore[arg-type, typeddict-item]
        extra_body={"functions": [{"name": "legacy", "description": f"mail {email('function_description')}"}]},
    )
    body, text = forwarded(mock)
    assert_masked(text, fields[:-4] + fields[-3:])
    assert re.fullmatch(r"Dear \[EMAIL_\d+\], your order shipped\.", body["prediction"]["content"])
    # The structure is intact: names, types and the list of required properties are not text.
    props = body["response_format"]["json_schema"]["schema"]["properties"]
    assert body["response_format"]["json_schema"]["name"] == "answer" and props["cc"]["enum"][1] == "nobody"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["to"]

    # The predicted output as content parts.
    mock.reset()
    oai.chat.completions.create(
        model="mock/gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        prediction={"type": "content", "content": [{"type": "text", "text": f"to {email('prediction_part')}"}]},
    )
    body, text = forwarded(mock)
    assert_masked(text, ["prediction_part"])
    assert body["prediction"]["content"] == [{"type": "text", "text": "to [EMAIL_1]"}]


def test_chat_card_in_a_support_ticket_is_masked(oai: openai.OpenAI, mock: MockControl) -> None:
    """The words that label order, ticket and invoice numbers never hide a card number."""
    texts = ["Refund order 88123 to card 4111 1111 1111 1111",
             "ticket #4411: customer card 378282246310005",
             "Invoice INV-2026-0042, serial 7781: paid with 5555-5555-5555-4444"]  # fmt: skip
    oai.chat.completions.create(model="mock/gpt-4o", messages=[{"role": "user", "content": t} for t in texts])
    body, text = forwarded(mock)
    for pan in ("4111 1111 1111 1111", "378282246310005", "5555-5555-5555-4444"):
        assert pan not in text
    assert [m["content"] for m in body["messages"]] == [
        "Refund order 88123 to card [CARD_1]",
        "ticket #4411: customer card [CARD_2]",
        "Invoice INV-2026-0042, serial 7781: paid with [CARD_3]",
    ]


def test_chat_a_build_number_is_not_an_ssn(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.chat.completions.create(
        model="mock/gpt-4o", messages=[{"role": "user", "content": "build 858-12-4680 broke; SSN 123-45-6788"}]
    )
    body, _ = forwarded(mock)
    assert body["messages"][0]["content"] == "build 858-12-4680 broke; SSN [SSN_1]"


def test_chat_exempt_fields_reach_the_upstream_unchanged(oai: openai.OpenAI, mock: MockControl) -> None:
    """Identifiers and control values, documented as exempt: masking them would break what they are for."""
    oai.chat.completions.create(
        model="mock/gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        user=email("user"),
        metadata={"requester": email("metadata")},
        stop=[email("stop")],
    )
    body, _ = forwarded(mock)
    assert body["user"] == email("user") and body["metadata"] == {"requester": email("metadata")}
    assert body["stop"] == [email("stop")]


def test_messages_every_text_field_is_masked(claude: anthropic.Anthropic, mock: MockControl) -> None:
    fields = ["system_block", "user_text", "tool_result_string", "tool_result_block", "tool_input",
              "tool_description", "document_text", "output_schema"]  # fmt: skip
    pdf = base64.b64encode(b"%PDF-1.4 " + email("pdf_payload").encode()).decode()
    claude.messages.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=50,
        system=[{"type": "text", "text": f"Escalate to {email('system_block')}"}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"I am {email('user_text')}"},
                    {
                        "type": "document",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": f"Contract for {email('document_text')}",
                        },
                    },
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": email("tool_input")}},
                    {"type": "tool_use", "id": "t2", "name": "lookup", "input": {"q": "x"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": f"found {email('tool_result_string')}"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [{"type": "text", "text": f"found {email('tool_result_block')}"}],
                    },
                ],
            },
        ],
        tools=[
            {
                "name": "lookup",
                "description": f"Ask {email('tool_description')}",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
        extra_body={
            "output_format": {
                "type": "json_schema",
                "schema": {"type": "object", "description": f"as {email('output_schema')}", "properties": {}},
            },
        },
    )
    body, text = forwarded(mock)
    assert_masked(text, fields)
    # A base64 payload is not text a model reads as such: forwarded byte for byte.
    assert body["messages"][0]["content"][2]["source"]["data"] == pdf


def test_messages_system_string_is_masked(claude: anthropic.Anthropic, mock: MockControl) -> None:
    claude.messages.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=50,
        system=f"Escalate to {email('system_string')}",
        messages=[{"role": "user", "content": "hi"}],
    )
    body, _ = forwarded(mock)
    assert body["system"] == "Escalate to [EMAIL_1]"


def test_responses_every_text_field_is_masked(oai: openai.OpenAI, mock: MockControl) -> None:
    fields = ["instructions", "input_text", "function_output", "tool_description", "text_format",
              "prompt_variable"]  # fmt: skip
    oai.responses.create(
        model="openai-responses/gpt-4o",
        instructions=f"Escalate to {email('instructions')}",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": f"I am {email('input_text')}"}]},
            {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": f"owner {email('function_output')}"},
        ],
        tools=[
            {
                "type": "function",
                "name": "lookup",
                "description": f"Ask {email('tool_description')}",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            }
        ],
        text={
            "format": {
                "type": "json_schema",
                "name": "reply",
                "description": f"as {email('text_format')}",
                "schema": {"type": "object", "properties": {}},
            }
        },
        extra_body={"prompt": {"id": "pmpt_1", "variables": {"customer": email("prompt_variable")}}},
    )
    body, text = forwarded(mock)
    assert_masked(text, fields)
    assert body["text"]["format"]["name"] == "reply" and body["prompt"]["id"] == "pmpt_1"

    mock.reset()
    oai.responses.create(model="openai-responses/gpt-4o", input=f"I am {email('input_string')}")
    body, _ = forwarded(mock)
    assert body["input"] == "I am [EMAIL_1]"


def test_embeddings_strings_are_masked_and_token_arrays_pass(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.embeddings.create(model="mock/text-embedding-3-small", input=f"I am {email('embedding_string')}")
    body, _ = forwarded(mock)
    assert body["input"] == "I am [EMAIL_1]"
    mock.reset()
    oai.embeddings.create(model="mock/text-embedding-3-small", input=[f"to {email('embedding_list')}", "plain"])
    body, _ = forwarded(mock)
    assert body["input"] == ["to [EMAIL_1]", "plain"]
    # Token ids are numbers: there is no text to read, and they go upstream as sent.
    mock.reset()
    oai.embeddings.create(model="mock/text-embedding-3-small", input=[[4111, 1111, 1111, 1111], [1, 2]])
    body, _ = forwarded(mock)
    assert body["input"] == [[4111, 1111, 1111, 1111], [1, 2]]


def test_raw_http_chat_prediction_with_escapes_is_masked(gateway: Server, mock: MockControl) -> None:
    """A body the Rust walk hands to the decoded path (a key spelled with escapes) is scanned as thoroughly."""
    raw = (
        '{"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}],'
        ' "prediction": {"type": "content", "con\\u0074ent": "card 4111 1111 1111 1111 for order 88123"}}'
    )
    r = httpx.post(
        f"{gateway.base}/v1/chat/completions",
        content=raw,
        headers={"authorization": f"Bearer {gateway.key}", "content-type": "application/json"},  # type: ignore[attr-defined]
        timeout=20,
    )
    assert r.status_code == 200, r.text
    body, text = forwarded(mock)
    assert "4111 1111 1111 1111" not in text
    assert body["prediction"]["content"] == "card [CARD_1] for order 88123"

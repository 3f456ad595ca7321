"""The golden matrix: every native provider, every client endpoint (chat, Messages, Responses), unary and
streamed, with text, tools, an image, a PDF, thinking, a JSON schema and web search; one gateway and the mock.

Each case is asserted on what the official SDK parses (`openai` for chat and Responses, `anthropic` for Messages;
streams through the SDKs' own accumulators) and on what reached the mock (which checks each provider's
authentication: SigV4, OAuth tokens, API keys). A combination a provider cannot do is a 400 that names the part
or the model, and nothing goes upstream. The per-provider test files check the wire shapes in detail; this one
checks that no cell of the table is missing or broken.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

from router.mock import azure as mock_azure
from router.mock import bedrock as mock_bedrock
from router.mock import gemini as mock_gemini
from router.mock import vertex as mock_vertex
from router.mock import web_search as canned

from servers import MockControl, Server, create_key, gateway_env, start_gateway

ALL = "[streaming, tools, vision, reasoning, json_mode, web_search]"
NO_SEARCH = "[streaming, tools, vision, reasoning, json_mode]"
CONFIG = f"""
providers:
  openai: {{kind: openai, base_url: env:ROUTER_MOCK_URL, api_key: sk-mock}}
  anthropic: {{kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}}
  bedrock:
    kind: bedrock
    base_url: env:TEST_MOCK_BASE
    region: eu-central-1
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: env:TEST_AWS_SECRET
  bedrockinvoke:
    kind: bedrock
    bedrock_api: invoke
    base_url: env:TEST_MOCK_BASE
    region: eu-central-1
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: env:TEST_AWS_SECRET
  vertex:
    kind: vertex
    base_url: env:TEST_VERTEX_URL
    project: router-test
    region: europe-west1
    service_account: env:TEST_SA_FILE
  google: {{kind: gemini, base_url: env:TEST_GEMINI_URL, api_key: {mock_gemini.API_KEY}}}
  azure: {{kind: azure, base_url: env:TEST_MOCK_BASE, api_key: {mock_azure.API_KEY}}}
models:
  - {{id: openai/gpt-4o, capabilities: {NO_SEARCH}}}
  - {{id: anthropic/claude-sonnet-4-5, capabilities: {ALL}}}
  - {{id: bedrock/claude-sonnet-4-5, upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0,
      capabilities: {NO_SEARCH}}}
  - {{id: bedrockinvoke/claude-sonnet-4-5, upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0,
      capabilities: {NO_SEARCH}}}
  - {{id: vertex/google/gemini-2.5-pro, capabilities: {ALL}}}
  - {{id: vertex/anthropic/claude-sonnet-4-5, upstream_model: anthropic/claude-sonnet-4-5@20250929,
      capabilities: {ALL}}}
  - {{id: google/gemini-2.5-pro, capabilities: {ALL}}}
  - {{id: azure/openai/gpt-4o, capabilities: {NO_SEARCH}}}
"""
PROVIDERS = {
    "openai-compatible": "openai/gpt-4o",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "bedrock-converse": "bedrock/claude-sonnet-4-5",
    "bedrock-invoke": "bedrockinvoke/claude-sonnet-4-5",
    "vertex-gemini": "vertex/google/gemini-2.5-pro",
    "vertex-anthropic": "vertex/anthropic/claude-sonnet-4-5",
    "gemini-api": "google/gemini-2.5-pro",
    "azure": "azure/openai/gpt-4o",
}
ENDPOINTS = ("chat", "messages", "responses")
FEATURES = ("text", "tools", "image", "pdf", "thinking", "json_schema", "web_search")
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"matrix-image" + b"\0" * 8).decode()
PDF_B64 = base64.b64encode(b"%PDF-1.4 matrix-document").decode()
SCHEMA = {
    "type": "object",
    "properties": {"matrix_answer": {"type": "string"}},
    "required": ["matrix_answer"],
    "additionalProperties": False,
}
TOOL_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
URLS = {url for url, _ in canned.RESULTS}
# Upstream paths that are token endpoints, not the provider's API.
_TOKEN_PATHS = ("/oauth2/", "/entra/", "/metadata/", "/msi/")


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("matrix")
    (root / "config.yaml").write_text(CONFIG)
    sa_file = root / "sa.json"
    sa_file.write_text(json.dumps(mock_vertex.service_account(f"{mock_server.base}/oauth2/token")))
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env |= {
        "TEST_MOCK_BASE": mock_server.base,
        "TEST_AWS_SECRET": mock_bedrock.SECRET_ACCESS_KEY,
        "TEST_VERTEX_URL": f"{mock_server.base}/v1",
        "TEST_SA_FILE": str(sa_file),
        "TEST_GEMINI_URL": f"{mock_server.base}/v1beta",
    }
    server = start_gateway(env)
    server.key = create_key(server.env, "matrix")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oai(gw: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=gw.key, max_retries=0, timeout=30) as client:  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
def claude(gw: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.base, api_key=gw.key, max_retries=0, timeout=30) as client:  # type: ignore[attr-defined]
        yield client


@dataclass
class Seen:
    """What the SDK parsed, whatever the endpoint."""

    text: str = ""
    tools: list[str] = field(default_factory=list)
    citations: set[str] = field(default_factory=set)
    thinking: bool = False
    finish: str | None = None


# --- requests, one builder per endpoint ---


def _chat(oai: openai.OpenAI, model: str, feature: str, stream: bool) -> Seen:
    content: Any = "What is the weather in Paris?"
    kwargs: dict[str, Any] = {}
    if feature == "tools":
        kwargs["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOL_PARAMS}}]
        kwargs["tool_choice"] = "required"
    elif feature == "image":
        content = [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        ]
    elif feature == "pdf":
        data = f"data:application/pdf;base64,{PDF_B64}"
        content = [
            {"type": "text", "text": "Summarise the document."},
            {"type": "file", "file": {"filename": "report.pdf", "file_data": data}},
        ]
    elif feature == "thinking":
        kwargs["reasoning_effort"] = "low"
    elif feature == "json_schema":
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "matrix", "schema": SCHEMA}}
    elif feature == "web_search":
        kwargs["tools"] = [{"type": "web_search"}]
    messages = [{"role": "user", "content": content}]
    if not stream:
        reply = oai.chat.completions.create(model=model, messages=messages, **kwargs)  # type: ignore[arg-type]
        message = reply.choices[0].message
        return Seen(
            text=message.content or "",
            tools=[c.function.name for c in message.tool_calls or () if c.type == "function"],
            citations={a.url_citation.url for a in message.annotations or ()},
            thinking=bool((message.model_extra or {}).get("reasoning_content")),
            finish=reply.choices[0].finish_reason,
        )
    seen = Seen()
    for chunk in oai.chat.completions.create(model=model, messages=messages, stream=True, **kwargs):  # type: ignore[arg-type]
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        seen.text += delta.content or ""
        seen.tools += [c.function.name for c in delta.tool_calls or () if c.function and c.function.name]
        extra = delta.model_extra or {}
        seen.citations |= {a["url_citation"]["url"] for a in extra.get("annotations") or ()}
        seen.thinking = seen.thinking or bool(extra.get("reasoning_content"))
        seen.finish = chunk.choices[0].finish_reason or seen.finish
    return seen


def _messages(claude: anthropic.Anthropic, model: str, feature: str, stream: bool) -> Seen:
    content: Any = "What is the weather in Paris?"
    kwargs: dict[str, Any] = {}
    max_tokens = 256
    if feature == "tools":
        kwargs["tools"] = [{"name": "get_weather", "input_schema": TOOL_PARAMS}]
        kwargs["tool_choice"] = {"type": "any"}
    elif feature == "image":
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
        content = [{"type": "text", "text": "What is in this image?"}, image]
    elif feature == "pdf":
        document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}}
        content = [{"type": "text", "text": "Summarise the document."}, document]
    elif feature == "thinking":
        kwargs["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        max_tokens = 2048
    elif feature == "json_schema":
        kwargs["extra_body"] = {"output_format": {"type": "json_schema", "schema": SCHEMA}}
    elif feature == "web_search":
        kwargs["tools"] = [{"type": "web_search_20250305", "name": "web_search"}]
    messages = [{"role": "user", "content": content}]
    if stream:
        with claude.messages.stream(model=model, max_tokens=max_tokens, messages=messages, **kwargs) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = claude.messages.create(model=model, max_tokens=max_tokens, messages=messages, **kwargs)  # type: ignore[arg-type]
    seen = Seen(finish=message.stop_reason)
    for block in message.content:
        if block.type == "text":
            seen.text += block.text
            seen.citations |= {c.url for c in block.citations or () if c.type == "web_search_result_location"}
        elif block.type == "tool_use":
            seen.tools.append(block.name)
        elif block.type == "thinking":
            seen.thinking = True
    return seen


def _responses(oai: openai.OpenAI, model: str, feature: str, stream: bool) -> Seen:
    content: Any = "What is the weather in Paris?"
    kwargs: dict[str, Any] = {}
    if feature == "tools":
        kwargs["tools"] = [{"type": "function", "name": "get_weather", "parameters": TOOL_PARAMS, "strict": False}]
        kwargs["tool_choice"] = "required"
    elif feature == "image":
        content = [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this image?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "auto"},
                ],
            }
        ]
    elif feature == "pdf":
        content = [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Summarise the document."},
                    {
                        "type": "input_file",
                        "filename": "report.pdf",
                        "file_data": f"data:application/pdf;base64,{PDF_B64}",
                    },
                ],
            }
        ]
    elif feature == "thinking":
        kwargs["reasoning"] = {"effort": "low", "summary": "auto"}
    elif feature == "json_schema":
        kwargs["text"] = {"format": {"type": "json_schema", "name": "matrix", "schema": SCHEMA, "strict": True}}
    elif feature == "web_search":
        kwargs["tools"] = [{"type": "web_search"}]
    if stream:
        with oai.responses.stream(model=model, input=content, **kwargs) as events:
            for _ in events:
                pass
            response = events.get_final_response()
    else:
        response = oai.responses.create(model=model, input=content, **kwargs)
    seen = Seen(text=response.output_text, finish=response.status)
    for item in response.output:
        if item.type == "function_call":
            seen.tools.append(item.name)
        elif item.type == "reasoning":
            seen.thinking = True
        elif item.type == "message":
            for part in item.content:
                if part.type == "output_text":
                    seen.citations |= {a.url for a in part.annotations if a.type == "url_citation"}
    return seen


CALL = {"chat": _chat, "messages": _messages, "responses": _responses}


def _upstream(mock: MockControl) -> list[dict]:
    return [r for r in mock.requests() if not r["path"].startswith(_TOKEN_PATHS)]


def _refusal(exc: openai.APIStatusError | anthropic.APIStatusError) -> tuple[int, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return exc.status_code, str(error.get("message") if isinstance(error, dict) else exc.message)


# The path each provider's requests take on the mock (its own wire format), unary or streamed.
PATHS = {
    "openai-compatible": r"^/v1/chat/completions$",
    "anthropic": r"^/v1/messages$",
    "bedrock-converse": r"^/model/[^/]+/converse(-stream)?$",
    "bedrock-invoke": r"^/model/[^/]+/invoke(-with-response-stream)?$",
    "vertex-gemini": r"^/v1/projects/router-test/locations/europe-west1/publishers/google/models/gemini-2\.5-pro:"
    r"(generateContent|streamGenerateContent)$",
    "vertex-anthropic": r"^/v1/projects/router-test/locations/europe-west1/publishers/anthropic/models/"
    r"claude-sonnet-4-5@20250929:(rawPredict|streamRawPredict)$",
    "gemini-api": r"^/v1beta/models/gemini-2\.5-pro:(generateContent|streamGenerateContent)$",
    "azure": r"^/openai/deployments/gpt-4o/chat/completions$",
}
# Providers with a server-side web search (the others' models lack the capability: a 400 naming the model).
SEARCHING = {"anthropic", "vertex-gemini", "vertex-anthropic", "gemini-api"}
# Anthropic models behind chat and Responses get a JSON schema as a forced tool, so even the mock answers JSON.
ANTHROPIC_FAMILY = {"anthropic", "bedrock-converse", "bedrock-invoke", "vertex-anthropic"}
FINISHED = {"stop", "end_turn", "completed"}


def refused(provider: str, endpoint: str, feature: str) -> str | None:
    """What a 400 for this cell must name, or None where the cell must work."""
    if feature == "web_search" and provider not in SEARCHING:
        return PROVIDERS[provider]
    if feature == "json_schema" and endpoint == "messages" and provider == "bedrock-converse":
        return "output_format"  # Converse has no structured output of its own for a Messages body
    return None


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("feature", FEATURES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_matrix(
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
    mock: MockControl,
    provider: str,
    endpoint: str,
    feature: str,
    stream: bool,
) -> None:
    model = PROVIDERS[provider]
    client = claude if endpoint == "messages" else oai
    named = refused(provider, endpoint, feature)
    if named is not None:
        with pytest.raises((openai.BadRequestError, anthropic.BadRequestError)) as info:
            CALL[endpoint](client, model, feature, stream)  # type: ignore[operator]
        status, message = _refusal(info.value)
        assert status == 400 and named in message, message
        assert _upstream(mock) == []
        return
    seen = CALL[endpoint](client, model, feature, stream)  # type: ignore[operator]
    sent = _upstream(mock)
    assert len(sent) == 1 and re.match(PATHS[provider], sent[0]["path"]), [r["path"] for r in sent]
    assert sent[0]["stream"] == stream or provider in ("vertex-gemini", "gemini-api", "bedrock-converse")
    body = json.dumps(sent[0]["body"])
    if feature == "tools":
        assert seen.tools == ["get_weather"] and seen.text == ""
        assert seen.finish in {"tool_calls", "tool_use", "completed"}
        return
    assert seen.text and seen.tools == [] and seen.finish in FINISHED, seen
    if feature == "image":
        assert PNG_B64 in body  # the image itself reached the provider, in its own format
    elif feature == "pdf":
        assert PDF_B64 in body
    elif feature == "thinking":
        assert seen.thinking
        assert any(marker in body for marker in ('"thinking"', '"reasoning_effort"', '"thinkingConfig"'))
    elif feature == "json_schema":
        assert "matrix_answer" in body  # the schema reached the provider
        if provider in ANTHROPIC_FAMILY and endpoint != "messages":
            assert json.loads(seen.text) == {"matrix_answer": "mock"}
    elif feature == "web_search":
        assert canned.CITED in seen.text and seen.citations == URLS
    else:
        assert not seen.citations and not seen.thinking


@pytest.mark.parametrize("model", [PROVIDERS["gemini-api"], PROVIDERS["openai-compatible"]])
def test_a_malformed_output_format_is_a_400(claude: anthropic.Anthropic, mock: MockControl, model: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(
            model=model,
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"output_format": {"type": "json", "schema": SCHEMA}},
        )
    assert "output_format" in refused.value.message
    assert _upstream(mock) == []

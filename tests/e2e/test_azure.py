"""Azure OpenAI (`kind: azure`): deployment paths, api-version and api-key, checked by the mock as Azure does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from router.mock import azure as mock_azure

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = f"""
providers:
  azure:
    kind: azure
    base_url: env:TEST_AZURE_URL
    api_key: {mock_azure.API_KEY}
  entra:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_api_version: 2025-01-01-preview
    headers: {{authorization: Bearer {mock_azure.ENTRA_TOKEN}}}
  azurebad:
    kind: azure
    base_url: env:TEST_AZURE_URL
    api_key: wrong
  azureresp:
    kind: azure
    azure_api: responses
    base_url: env:TEST_AZURE_URL
    api_key: {mock_azure.API_KEY}
  entraapp:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_token_url: env:TEST_ENTRA_URL
    azure_client_id: {mock_azure.CLIENT_ID}
    azure_client_secret: env:TEST_ENTRA_SECRET
  entrashort:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_token_url: env:TEST_ENTRA_SHORT_URL
    azure_client_id: {mock_azure.SHORT_LIVED_CLIENT_ID}
    azure_client_secret: env:TEST_ENTRA_SECRET
  entrabad:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_token_url: env:TEST_ENTRA_URL
    azure_client_id: {mock_azure.CLIENT_ID}
    azure_client_secret: not-the-secret
models:
  - id: azure/openai/gpt-4o@francecentral
    capabilities: [streaming, tools]
  - id: azure/openai/gpt-4o-mini
    upstream_model: openai/gpt-4o-mini@swedencentral
  - id: azure/throttled
    upstream_model: gpt-4o@fail=429
  - id: entra/openai/gpt-4o
  - id: azurebad/openai/gpt-4o
  - id: azureresp/openai/gpt-4.1
    capabilities: [streaming, tools]
  - id: entraapp/openai/gpt-4o
  - id: entrashort/openai/gpt-4o
  - id: entrabad/openai/gpt-4o
  - id: azure/openai/gpt-image-1
    capabilities: [images]
  - id: entraapp/openai/gpt-image-1
    capabilities: [images]
"""
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def azure_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("azure")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml") | {
        "TEST_AZURE_URL": mock_server.base,
        "TEST_ENTRA_URL": f"{mock_server.base}/entra/contoso.onmicrosoft.com/oauth2/v2.0/token",
        # Another tenant: its refreshes every ~2 s are told apart from the long-lived client's requests.
        "TEST_ENTRA_SHORT_URL": f"{mock_server.base}/entra/shortlived.onmicrosoft.com/oauth2/v2.0/token",
        "TEST_ENTRA_SECRET": mock_azure.CLIENT_SECRET,
    }
    server = start_gateway(env)
    server.key = create_key(server.env, "azure")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(azure_gateway: Server) -> Iterator[openai.OpenAI]:
    key = azure_gateway.key  # type: ignore[attr-defined]
    with openai.OpenAI(base_url=f"{azure_gateway.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        yield client


def _last(mock: MockControl) -> dict:
    return [r for r in mock.requests() if r["path"].startswith("/openai/")][-1]


def test_chat_unary_stream_tools(oai: openai.OpenAI, mock: MockControl) -> None:
    model = "azure/openai/gpt-4o@francecentral"
    assert (
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        .choices[0]
        .message.content
    )
    record = _last(mock)
    assert record["path"] == "/openai/deployments/gpt-4o/chat/completions"
    assert record["headers"]["api-key"].startswith("azure-ap")
    stream = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    reply = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], tools=[TOOL])  # type: ignore[list-item]
    assert (
        reply.choices[0].message.tool_calls
        and json.loads(reply.choices[0].message.tool_calls[0].function.arguments) == {}
    )
    assert oai.responses.create(model=model, input="hi").output_text


def test_entra_token_and_api_version(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.chat.completions.create(model="entra/openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "api-key" not in _last(mock)["headers"]


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [("azure/throttled", openai.RateLimitError, 429), ("azurebad/openai/gpt-4o", openai.InternalServerError, 502)],
)
def test_errors(oai: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int) -> None:
    with pytest.raises(error) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status


def test_regions_are_catalog_metadata(azure_gateway: Server) -> None:
    key = azure_gateway.key  # type: ignore[attr-defined]
    data = httpx.get(f"{azure_gateway.base}/v1/models", headers={"authorization": f"Bearer {key}"}).json()["data"]
    regions = {m["id"]: m["region"] for m in data}
    assert regions["azure/openai/gpt-4o@francecentral"] == "francecentral"
    assert regions["azure/openai/gpt-4o-mini"] == "swedencentral"
    prices = {m["id"]: m["pricing"] for m in data}
    assert prices["azure/openai/gpt-4o@francecentral"]["input"] == 2.5


def test_responses_api_on_azure(oai: openai.OpenAI, mock: MockControl) -> None:
    response = oai.responses.create(model="azureresp/openai/gpt-4.1", input="Say hi")
    assert response.output_text
    record = _last(mock)
    assert record["path"] == "/openai/responses" and record["body"]["model"] == "gpt-4.1"
    assert record["headers"]["api-key"].startswith("azure-ap")
    # Chat callers reach a Responses deployment too, unary and streamed.
    reply = oai.chat.completions.create(model="azureresp/openai/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert _last(mock)["body"]["input"][0]["role"] == "user"
    stream = oai.responses.create(model="azureresp/openai/gpt-4.1", input="Story", stream=True)
    assert any(event.type == "response.completed" for event in stream)
    assert _last(mock)["body"]["model"] == "gpt-4.1"


def test_images_on_azure_with_api_key_and_entra(oai: openai.OpenAI, mock: MockControl) -> None:
    for model in ("azure/openai/gpt-image-1", "entraapp/openai/gpt-image-1"):
        assert oai.images.generate(model=model, prompt="a lighthouse", quality="low").data
        record = _last(mock)
        assert record["path"] == "/openai/deployments/gpt-image-1/images/generations"


def _token_requests(mock: MockControl, tenant: str) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith(f"/entra/{tenant}.onmicrosoft.com/")]


def test_entra_client_credentials_token_is_cached(oai: openai.OpenAI, mock: MockControl) -> None:
    for _ in range(3):
        oai.chat.completions.create(model="entraapp/openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    sent = [r for r in mock.requests() if r["path"].startswith("/openai/")]
    assert len(sent) == 3 and all(r["headers"]["authorization"].startswith("Bearer ") for r in sent)
    assert "api-key" not in sent[0]["headers"]
    assert len({r["credential"] for r in sent}) == 1
    # Fetched once at start, then served from the cache: no token request on the request path.
    assert _token_requests(mock, "contoso") == []


def test_entra_token_is_refreshed_before_it_expires(oai: openai.OpenAI, mock: MockControl) -> None:
    # The mock issues this client tokens for 302 s; the gateway refreshes 300 s before expiry, so every ~2 s.
    first = oai.chat.completions.create(model="entrashort/openai/gpt-4o", messages=[{"role": "user", "content": "a"}])
    assert first.choices
    before = [r for r in mock.requests() if r["path"].startswith("/openai/")][-1]["credential"]
    deadline = time.monotonic() + 10
    while not _token_requests(mock, "shortlived") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _token_requests(mock, "shortlived"), "no refresh without traffic"
    oai.chat.completions.create(model="entrashort/openai/gpt-4o", messages=[{"role": "user", "content": "b"}])
    after = [r for r in mock.requests() if r["path"].startswith("/openai/")][-1]["credential"]
    assert after != before


def test_entra_refusal_is_a_gateway_credential_error(oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.APIStatusError) as refused:
        oai.chat.completions.create(model="entrabad/openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 502
    assert "Entra ID application" in refused.value.message and "not-the-secret" not in refused.value.message
    assert not [r for r in mock.requests() if r["path"].startswith("/openai/")]

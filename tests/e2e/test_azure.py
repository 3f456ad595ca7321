"""Azure OpenAI (`kind: azure`): deployment paths, api-version and api-key, checked by the mock as Azure does."""

from __future__ import annotations

import json
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
models:
  - id: azure/openai/gpt-4o@francecentral
    capabilities: [streaming, tools]
  - id: azure/openai/gpt-4o-mini
    upstream_model: openai/gpt-4o-mini@swedencentral
  - id: azure/throttled
    upstream_model: gpt-4o@fail=429
  - id: entra/openai/gpt-4o
  - id: azurebad/openai/gpt-4o
"""
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def azure_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("azure")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml") | {"TEST_AZURE_URL": mock_server.base}
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

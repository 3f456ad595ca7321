"""Azure OpenAI with Entra ID tokens from the resource's managed identity (`azure_managed_identity: true`): the
Instance Metadata Service (overridden with ROUTER_AZURE_IMDS_URL to the mock's loopback fake, which checks the
`Metadata: true` header, the api-version and the resource) and the App Service / Container Apps endpoint
(IDENTITY_ENDPOINT + the IDENTITY_HEADER secret). The Azure paths of the mock accept only the tokens it issued."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from router.config import ProviderConfig, Timeouts
from router.errors import ConfigError
from router.mock import azure as mock_azure
from router.providers.azure import AzureProvider

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = f"""
providers:
  system:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_managed_identity: true
  user:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_managed_identity: true
    azure_client_id: {mock_azure.MANAGED_CLIENT_ID}
  short:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_managed_identity: true
    azure_client_id: {mock_azure.SHORT_LIVED_CLIENT_ID}
  stranger:
    kind: azure
    base_url: env:TEST_AZURE_URL
    azure_managed_identity: true
    azure_client_id: 00000000-0000-0000-0000-0000000bad00
models:
  - {{id: system/openai/gpt-4o, capabilities: [streaming]}}
  - id: user/openai/gpt-4o
  - id: short/openai/gpt-4o
  - id: stranger/openai/gpt-4o
"""
HI = [{"role": "user", "content": "hi"}]
TOKEN_PREFIX = "eyJ0eXAiOiJKV1Qi.mock"  # what the mock's tokens start with


def _gateway(mock_server: Server, root, env_extra: dict[str, str]) -> Server:  # type: ignore[no-untyped-def]
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env |= {"TEST_AZURE_URL": mock_server.base, **env_extra}
    server = start_gateway(env)
    server.key = create_key(server.env, "mi")["key"]  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module")
def imds_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"{mock_server.base}/metadata/identity/oauth2/token"
    server = _gateway(mock_server, tmp_path_factory.mktemp("imds"), {"ROUTER_AZURE_IMDS_URL": url})
    yield server
    output = server.stop()
    assert TOKEN_PREFIX not in output  # no token in the gateway's logs


@pytest.fixture(scope="module")
def app_service_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"IDENTITY_ENDPOINT": f"{mock_server.base}/msi/token", "IDENTITY_HEADER": mock_azure.IDENTITY_HEADER}
    server = _gateway(mock_server, tmp_path_factory.mktemp("appservice"), env)
    yield server
    output = server.stop()
    assert TOKEN_PREFIX not in output and mock_azure.IDENTITY_HEADER not in output


def _client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=server.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]


def _token_requests(mock: MockControl, path: str) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith(path)]


def _upstream(mock: MockControl) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith("/openai/")]


def test_imds_system_assigned_identity(imds_gateway: Server, mock: MockControl) -> None:
    with _client(imds_gateway) as oai:
        assert oai.chat.completions.create(model="system/openai/gpt-4o", messages=HI).choices[0].message.content
        stream = oai.chat.completions.create(model="system/openai/gpt-4o", messages=HI, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent = _upstream(mock)
    assert len(sent) == 2 and all(r["headers"]["authorization"].startswith("Bearer ") for r in sent)
    assert "api-key" not in sent[0]["headers"] and sent[0]["credential"] == sent[1]["credential"]
    # The token was fetched when the gateway started, not on the request path (the short-lived identity's
    # background refreshes are the only token requests).
    assert [r for r in _token_requests(mock, "/metadata/") if "client_id" not in r["body"]] == []


def test_imds_request_shape_and_user_assigned_identity(imds_gateway: Server, mock: MockControl) -> None:
    """A refresh shows what the gateway asks IMDS: a GET with `Metadata: true`, api-version 2018-02-01, the
    Cognitive Services resource and, for a user-assigned identity, its client_id."""
    with _client(imds_gateway) as oai:
        # The mock refuses a client_id it does not know: a user-assigned identity's token was issued and accepted.
        assert oai.chat.completions.create(model="user/openai/gpt-4o", messages=HI).choices
        deadline = time.monotonic() + 10
        while not _token_requests(mock, "/metadata/") and time.monotonic() < deadline:
            time.sleep(0.2)  # the short-lived identity's tokens are refreshed every ~2 s
        asked = _token_requests(mock, "/metadata/")[0]
    assert asked["method"] == "GET" and asked["headers"]["metadata"] == "true"
    assert asked["body"] == {
        "api-version": "2018-02-01",
        "resource": "https://cognitiveservices.azure.com",
        "client_id": mock_azure.SHORT_LIVED_CLIENT_ID,
    }


def test_imds_token_is_refreshed_before_it_expires(imds_gateway: Server, mock: MockControl) -> None:
    # The mock issues this identity tokens for 302 s; the gateway refreshes 300 s before expiry, every ~2 s.
    with _client(imds_gateway) as oai:
        oai.chat.completions.create(model="short/openai/gpt-4o", messages=HI)
        before = _upstream(mock)[-1]["credential"]
        deadline = time.monotonic() + 10
        while len(_token_requests(mock, "/metadata/")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_token_requests(mock, "/metadata/")) >= 2, "no refresh without traffic"
        oai.chat.completions.create(model="short/openai/gpt-4o", messages=HI)
    assert _upstream(mock)[-1]["credential"] != before


def test_an_identity_imds_does_not_know_is_a_502(imds_gateway: Server, mock: MockControl) -> None:
    with _client(imds_gateway) as oai, pytest.raises(openai.APIStatusError) as refused:
        oai.chat.completions.create(model="stranger/openai/gpt-4o", messages=HI)
    assert refused.value.status_code == 502 and refused.value.code == "upstream_auth_failed"
    assert "managed identity" in refused.value.message
    assert _upstream(mock) == []


def test_app_service_identity_endpoint(app_service_gateway: Server, mock: MockControl) -> None:
    with _client(app_service_gateway) as oai:
        assert oai.chat.completions.create(model="user/openai/gpt-4o", messages=HI).choices
        deadline = time.monotonic() + 10
        while not _token_requests(mock, "/msi/") and time.monotonic() < deadline:
            time.sleep(0.2)
    asked = _token_requests(mock, "/msi/")[0]
    assert asked["method"] == "GET" and asked["headers"]["x-identity-header"].startswith("mock-ide")
    assert asked["body"]["api-version"] == "2019-08-01"
    assert asked["body"]["resource"] == "https://cognitiveservices.azure.com"
    assert _upstream(mock)[-1]["headers"]["authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"azure_client_secret": "s3cret"}, "takes no azure_client_secret"),
        ({"api_key": "k"}, "not both"),
    ],
)
def test_managed_identity_config_conflicts(extra: dict[str, str], message: str) -> None:
    config = ProviderConfig(kind="azure", base_url="https://x.openai.azure.com", azure_managed_identity=True, **extra)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        AzureProvider("azure", config, Timeouts())

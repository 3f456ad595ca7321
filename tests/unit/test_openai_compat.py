from __future__ import annotations

import pytest

from router.config import ProviderConfig, Timeouts
from router.errors import GatewayError, InvalidRequest, NotFound, UpstreamError
from router.providers import OpenAICompatProvider


def _provider(**fields) -> OpenAICompatProvider:
    return OpenAICompatProvider("p", ProviderConfig(**fields), Timeouts())


def test_openai_style_urls_and_bearer_auth() -> None:
    p = _provider(base_url="https://api.example.com/v1/", api_key="sk-up", headers={"x-team": "platform"})
    assert p.url("chat", "gpt-4o") == "https://api.example.com/v1/chat/completions"
    assert p.url("embeddings", "text-embedding-3-small") == "https://api.example.com/v1/embeddings"
    headers = p.default_headers()
    assert headers["authorization"] == "Bearer sk-up"
    assert headers["x-team"] == "platform"
    assert headers["content-type"] == "application/json"


def test_azure_deployment_paths_and_api_key_header() -> None:
    p = _provider(
        base_url="https://res.openai.azure.com",
        api_key="az-secret",
        auth_header="api-key",
        azure_api_version="2024-10-21",
    )
    assert p.url("chat", "gpt 4o/prod") == (
        "https://res.openai.azure.com/openai/deployments/gpt%204o%2Fprod/chat/completions?api-version=2024-10-21"
    )
    assert p.url("embeddings", "emb") == (
        "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
    )
    headers = p.default_headers()
    assert headers["api-key"] == "az-secret"
    assert "authorization" not in headers


def test_no_credential_means_no_auth_header() -> None:
    assert "authorization" not in _provider(base_url="http://localhost:11434/v1").default_headers()


@pytest.mark.parametrize(
    ("status", "kind", "client_status", "code"),
    [
        (429, GatewayError, 429, "upstream_rate_limited"),
        (401, UpstreamError, 502, "upstream_auth_failed"),
        (403, UpstreamError, 502, "upstream_auth_failed"),
        (404, NotFound, 404, "upstream_not_found"),
        (400, InvalidRequest, 400, None),
        (422, InvalidRequest, 422, None),
        (408, UpstreamError, 504, "upstream_timeout"),
        (500, UpstreamError, 502, "upstream_error"),
        (503, UpstreamError, 502, "upstream_error"),
    ],
)
def test_upstream_status_mapping(status, kind, client_status, code) -> None:
    body = b'{"error": {"message": "details from upstream", "type": "x"}}'
    error = _provider(base_url="http://x").error_from_status(status, body, "3")
    assert type(error) is kind
    assert error.status == client_status and error.code == code
    if status == 429:
        assert error.headers == [("retry-after", "3")]
    if status not in (401, 403):
        assert "details from upstream" in error.message
    else:
        # Never relay what the provider said about the gateway's own credentials.
        assert "details from upstream" not in error.message


def test_non_json_upstream_error_body() -> None:
    error = _provider(base_url="http://x").error_from_status(500, b"<html>oops</html>", None)
    assert error.message == "Upstream provider 'p' failed with HTTP 500"

"""Reasoning effort reaches each provider as the caller sent it: every value, provider and endpoint.

The gateway's own values (min, max, budgets in tokens) are kept until the provider's mapping: an OpenAI chat
upstream gets the nearest low|medium|high, an OpenAI Responses upstream its own efforts unchanged and the
nearest for the rest, Anthropic (direct or on Bedrock) exact thinking budgets, and "none" turns thinking off.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from router.mock import bedrock as mock_bedrock

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = f"""
providers:
  chat:
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  anthropic:
    kind: anthropic
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  responses:
    kind: openai-responses
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  bedrock:
    kind: bedrock
    base_url: env:TEST_BEDROCK_URL
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: {mock_bedrock.SECRET_ACCESS_KEY}
models:
  - id: chat/o3
    upstream_model: o3
  - id: anthropic/claude
    upstream_model: claude-sonnet-4-5
  - id: responses/o3
    upstream_model: o3
  - id: bedrock/claude
    upstream_model: anthropic.claude-sonnet-4-5-20250929-v1:0@eu-central-1
"""
VALUES: list[str | int] = ["none", "min", "minimal", "low", "medium", "high", "xhigh", "max", "10000", 3000]
# What an OpenAI chat upstream accepts (Requesty's table: budgets ≤1024 low, ≤8192 medium, else high).
CHAT_EFFORT = {
    "none": "low",
    "min": "low",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
    "10000": "high",
    3000: "medium",
}
# OpenAI Responses knows none, minimal and xhigh too.
RESPONSES_EFFORT = CHAT_EFFORT | {"none": "none", "minimal": "minimal", "xhigh": "xhigh"}
# Anthropic thinking budgets without max_tokens from the caller (None: thinking off) …
BUDGET = {
    "none": None,
    "min": 1024,
    "minimal": 1024,
    "low": 1024,
    "medium": 8192,
    "high": 16384,
    "xhigh": 63999,
    "max": 63999,
    "10000": 10000,
    3000: 3000,
}
# … and with max_tokens 2000: clamped just below it.
BUDGET_2000 = {v: None if b is None else min(b, 1999) for v, b in BUDGET.items()}


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("effort")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["TEST_BEDROCK_URL"] = mock_server.base
    server = start_gateway(env)
    server.key = create_key(server.env, "effort")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


def _post(gw: Server, path: str, body: dict) -> httpx.Response:
    key = gw.key  # type: ignore[attr-defined]
    return httpx.post(f"{gw.base}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20)


def _sent(mock: MockControl) -> dict:
    return mock.requests()[-1]["body"]


def _thinking(body: dict) -> dict | None:
    if "additionalModelRequestFields" in body:  # Bedrock Converse
        return body["additionalModelRequestFields"].get("thinking")
    return body.get("thinking")


def _request(endpoint: str, model: str, value: str | int, max_tokens: int | None) -> tuple[str, dict]:
    if endpoint == "chat":
        body: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": value}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return "/v1/chat/completions", body
    body = {"model": model, "input": "hi", "reasoning": {"effort": value}}
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    return "/v1/responses", body


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("value", VALUES, ids=str)
def test_openai_upstreams(gw: Server, mock: MockControl, endpoint: str, value: str | int) -> None:
    response = _post(gw, *_request(endpoint, "chat/o3", value, None))
    assert response.status_code == 200, response.text
    assert _sent(mock)["reasoning_effort"] == CHAT_EFFORT[value]
    response = _post(gw, *_request(endpoint, "responses/o3", value, None))
    assert response.status_code == 200, response.text
    expected = RESPONSES_EFFORT[value] if endpoint == "responses" else CHAT_EFFORT[value]
    assert _sent(mock)["reasoning"]["effort"] == expected


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("model", ["anthropic/claude", "bedrock/claude"])
@pytest.mark.parametrize("value", VALUES, ids=str)
def test_anthropic_budgets(gw: Server, mock: MockControl, endpoint: str, model: str, value: str | int) -> None:
    for max_tokens, table in ((None, BUDGET), (2000, BUDGET_2000)):
        response = _post(gw, *_request(endpoint, model, value, max_tokens))
        assert response.status_code == 200, response.text
        thinking = _thinking(_sent(mock))
        expected = table[value]
        if expected is None:
            assert thinking in (None, {"type": "disabled"})
        else:
            assert thinking == {"type": "enabled", "budget_tokens": expected}


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("value", ["banana", "2000000", -5, True])
def test_invalid_efforts_are_400s(gw: Server, mock: MockControl, endpoint: str, value: object) -> None:
    path, body = _request(endpoint, "anthropic/claude", value, None)  # type: ignore[arg-type]
    response = _post(gw, path, body)
    assert response.status_code == 400, response.text
    assert "effort" in response.json()["error"]["message"]
    assert mock.count() == 0
